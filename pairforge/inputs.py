"""Input shards: the corpus files a config names, each identified by the sha256 of its bytes.

A shard's key (the first 16 hex digits of its sha256) names its outputs in every stage folder and its segment in
every version, so renaming or moving a file does not make it new, and editing it does.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pairforge.config import RunConfig
from pairforge.corpora import expand_paths


@dataclass(frozen=True)
class InputShard:
    """One corpus file: which corpus entry reads it, where it is, and what its bytes are."""

    key: str
    corpus_index: int
    path: str
    sha256: str
    bytes: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputShard:
        return cls(**{k: data[k] for k in ("key", "corpus_index", "path", "sha256", "bytes", "source")})


def list_input_shards(config: RunConfig) -> list[InputShard]:
    """Every input shard of ``config``, in config order (each file hashed once); an error if a corpus path or glob
    matches nothing. A file named by two corpus entries is one shard of the first."""
    shards: list[InputShard] = []
    seen: set[str] = set()
    for i, corpus in enumerate(config.corpora):
        for path in expand_paths(corpus.path):
            digest = file_sha256(path)
            if digest in seen:
                continue
            seen.add(digest)
            shards.append(InputShard(digest[:16], i, path, digest, Path(path).stat().st_size, corpus.source))
    return shards


def file_sha256(path: str) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
