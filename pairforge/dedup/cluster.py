"""Near-duplicate clustering over shards with bounded memory: the global step of both dedup stages.

The parts' signatures (memory-mapped files, one per shard) are copied into one scratch file; each row's band
buckets go to one of ``partitions`` bucket files by bucket hash; each bucket file is then sorted on its own,
bucket collisions are verified against the signatures, and the joins feed one union-find array. Memory holds one
part's bucket keys, one bucket partition and 8 bytes per row, never an index of all.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pairforge.config import DedupConfig
from pairforge.dedup.lsh import bucket_keys, find_roots, join_bucket_runs, optimal_bands

ProgressFn = Callable[[str, int], None]
MAX_COMPARE = 64  # members of a bucket each row is compared with (a bucket of thousands is one cluster anyway)


def cluster_signatures(
    parts: Sequence[np.ndarray],
    config: DedupConfig,
    scratch: Path,
    partitions: int = 16,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Union-find roots, one per row of the parts taken in order: rows in one cluster share a root, the cluster's
    smallest row (so a cluster holding a row of an earlier part is rooted there)."""
    bands, rows = lsh_shape(config)
    total = sum(len(p) for p in parts)
    parent = np.arange(total, dtype=np.int64)
    if total == 0:
        return parent
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        sig_path = scratch / "signatures.u32"
        buckets = [(scratch / f"part-{p:03d}.key", scratch / f"part-{p:03d}.idx") for p in range(partitions)]
        with sig_path.open("wb") as sig_out:
            offset = 0
            for n, part in enumerate(parts):
                np.ascontiguousarray(part, dtype=np.uint32).tofile(sig_out)
                _write_buckets(part, offset, bands, rows, buckets)
                offset += len(part)
                if progress:
                    progress("signatures", n + 1)
        signatures = np.memmap(sig_path, dtype=np.uint32, mode="r", shape=(total, config.num_perm))
        need = int(np.ceil(config.threshold * config.num_perm - 1e-9))
        for p, (key_file, idx_file) in enumerate(buckets):
            if key_file.exists():
                keys, index = np.fromfile(key_file, dtype=np.uint64), np.fromfile(idx_file, dtype=np.int64)
                order = np.lexsort((index, keys))  # by bucket, then by row: earlier rows come first
                join_bucket_runs(keys[order], index[order], np.asarray(signatures), parent, need, MAX_COMPARE)
            if progress:
                progress("buckets", p + 1)
        del signatures
        return find_roots(parent)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_buckets(part: np.ndarray, offset: int, bands: int, rows: int, buckets: list[tuple[Path, Path]]) -> None:
    keys = bucket_keys(np.asarray(part), bands, rows).ravel()
    index = np.repeat(np.arange(offset, offset + len(part), dtype=np.int64), bands)
    partition = (keys % np.uint64(len(buckets))).astype(np.int64)
    for p, (key_file, idx_file) in enumerate(buckets):
        mask = partition == p
        with key_file.open("ab") as kf, idx_file.open("ab") as xf:
            keys[mask].tofile(kf)
            index[mask].tofile(xf)


def lsh_shape(config: DedupConfig) -> tuple[int, int]:
    """(bands, rows) for the config's threshold and weights, as datasketch's MinHashLSH chooses them."""
    return optimal_bands(config.threshold, config.num_perm, config.false_positive_weight, config.false_negative_weight)


def cluster_representatives(roots: np.ndarray, ids: Callable[[np.ndarray], pa.Array]) -> dict[int, str]:
    """For every cluster with more than one row: root → the smallest id among its rows. ``ids(rows)`` gives the
    ids of the given rows; it is called only for rows in such clusters (few), never for all."""
    sizes = np.bincount(roots, minlength=len(roots))
    clustered = np.flatnonzero(sizes[roots] > 1)
    if not len(clustered):
        return {}
    table = pa.table({"root": pa.array(roots[clustered], pa.int64()), "id": ids(clustered)})
    smallest = table.group_by("root").aggregate([("id", "min")])
    return dict(zip(smallest["root"].to_pylist(), smallest["id_min"].to_pylist(), strict=True))


def cluster_of(roots: np.ndarray, ids: pa.Array, representatives: dict[int, str]) -> pa.Array:
    """Each row's cluster name: its cluster's smallest id, or its own id when it is alone."""
    names = [representatives.get(int(r)) for r in roots]
    return pc.if_else(pc.is_null(pa.array(names, type=pa.string())), ids, pa.array(names, type=pa.string()))
