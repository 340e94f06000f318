"""The MinHash index of kept passages, one part per input shard: ids and signatures on disk. A version carries the
parts of its segments (``index/passages/<shard>/``), and a later run drops passages any of them already holds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.config import DedupConfig
from pairforge.dedup.minhash import signatures

META = "meta.json"


def index_meta(config: DedupConfig) -> dict[str, object]:
    """The MinHash settings two indexes must share to be compared."""
    return {"num_perm": config.num_perm, "ngram": config.ngram, "unit": config.unit, "seed": config.seed,
            "scheme": config.scheme}  # fmt: skip


def write_index(folder: Path, ids: Sequence[str] | pa.Array, signatures: np.ndarray, config: DedupConfig) -> None:
    """Persist ``signatures`` (rows aligned with ``ids``), written aside and renamed."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.ascontiguousarray(signatures, dtype=np.uint32).tofile(tmp / "signatures.u32")
    pq.write_table(pa.table({"id": pa.array(ids, type=pa.string())}), tmp / "ids.parquet")
    (tmp / META).write_text(json.dumps(index_meta(config)))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def read_index(folder: Path, config: DedupConfig) -> tuple[pa.Array, np.ndarray]:
    """The ids and (memory-mapped) signatures of an index part; its MinHash settings must match ``config``."""
    meta = json.loads((folder / META).read_text())
    if meta != index_meta(config):
        raise ValueError(f"{folder}: MinHash settings {meta} differ from this run's {index_meta(config)}")
    ids = pq.read_table(folder / "ids.parquet")["id"].combine_chunks()
    if len(ids) == 0:
        return ids, np.zeros((0, config.num_perm), dtype=np.uint32)
    sigs = np.memmap(folder / "signatures.u32", dtype=np.uint32, mode="r", shape=(len(ids), config.num_perm))
    return ids, sigs


def is_index(folder: Path) -> bool:
    """Whether ``folder`` holds an index part."""
    return (folder / META).is_file()


def dedup_signatures(texts: Sequence[str], config: DedupConfig) -> np.ndarray:
    """The MinHash signatures of ``texts`` under ``config``: character n-grams, or jieba word n-grams."""
    tokens = None
    if config.unit == "word":
        from pairforge.analysis.tokenize import tokenize

        tokens = tokenize(list(texts))
    return signatures(
        list(texts), num_perm=config.num_perm, n=config.ngram, seed=config.seed, tokens=tokens, scheme=config.scheme
    )
