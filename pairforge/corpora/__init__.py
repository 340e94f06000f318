"""Corpus readers: each streams one shard and yields Documents, HumanPairs and Rejected records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pairforge.config import CorpusConfig
from pairforge.corpora.files import CorpusPathError, expand_paths
from pairforge.corpora.generic import read_jsonl, read_parquet
from pairforge.corpora.m3e import read_m3e
from pairforge.corpora.pairs_tsv import read_pairs_tsv
from pairforge.corpora.simclue import read_simclue
from pairforge.corpora.squad import read_squad
from pairforge.corpora.wudao import read_wudao
from pairforge.records import Record

READERS: dict[str, Callable[[str, Any], Iterator[Record]]] = {
    "wudao": read_wudao,
    "m3e": read_m3e,
    "simclue": read_simclue,
    "pairs_tsv": read_pairs_tsv,
    "squad": read_squad,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
}

__all__ = ["READERS", "CorpusPathError", "expand_paths", "read_shard"]


def read_shard(path: str, corpus: CorpusConfig) -> Iterator[Record]:
    """Stream the records of one shard of ``corpus``."""
    return READERS[corpus.format](path, corpus)
