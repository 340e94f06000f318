"""Near-duplicate clustering over shards with bounded memory.

Signatures are computed shard by shard and appended to one file on disk; each document's band buckets go
to one of ``partitions`` bucket files by bucket hash; each bucket file is then sorted on its own, bucket
collisions are verified against the (memory-mapped) signatures, and the joins feed one union-find array.
Memory holds one shard, one bucket partition and an 8-byte parent per document, never an index of all.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters.lsh import _join_bucket_runs, _roots, optimal_bands
from filters.minhash import signatures
from pairforge.config import DedupConfig

ProgressFn = Callable[[str, int], None]


def cluster_shards(
    shards: Sequence[Path],
    column: str,
    config: DedupConfig,
    scratch: Path,
    partitions: int = 16,
    progress: ProgressFn | None = None,
) -> pa.Table:
    """``(id, cluster)`` for every row of ``shards``: the cluster is the smallest id among its members."""
    bands, rows = optimal_bands(
        config.threshold, config.num_perm, config.false_positive_weight, config.false_negative_weight
    )
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    sig_path = scratch / "signatures.u32"
    bucket_files = [(scratch / f"part-{p:03d}.key", scratch / f"part-{p:03d}.idx") for p in range(partitions)]
    ids: list[pa.Array] = []
    total = 0
    with sig_path.open("wb") as sig_out:
        for shard in shards:
            table = pq.read_table(shard, columns=["id", column])
            sigs = signatures(
                table[column].to_pylist(),
                num_perm=config.num_perm,
                n=config.ngram,
                seed=config.seed,
                tokens=_tokens(table[column].to_pylist()) if config.unit == "word" else None,
            )
            sigs.tofile(sig_out)
            keys = _bucket_keys(sigs, bands, rows).ravel()
            index = np.repeat(np.arange(total, total + len(sigs), dtype=np.int64), bands)
            part = (keys % np.uint64(partitions)).astype(np.int64)
            for p, (key_file, idx_file) in enumerate(bucket_files):
                mask = part == p
                with key_file.open("ab") as kf, idx_file.open("ab") as xf:
                    keys[mask].tofile(kf)
                    index[mask].tofile(xf)
            ids.append(table["id"].combine_chunks())
            total += len(sigs)
            if progress:
                progress("signatures", total)
    parent = np.arange(total, dtype=np.int64)
    if total:
        sigs_all = np.memmap(sig_path, dtype=np.uint32, mode="r", shape=(total, config.num_perm))
        need = int(np.ceil(config.threshold * config.num_perm - 1e-9))
        for p, (key_file, idx_file) in enumerate(bucket_files):
            if not key_file.exists():
                continue
            keys, index = np.fromfile(key_file, dtype=np.uint64), np.fromfile(idx_file, dtype=np.int64)
            order = np.lexsort((index, keys))  # by bucket, then by document: earlier ids come first
            _join_bucket_runs(keys[order], index[order], np.asarray(sigs_all), parent, need, 64)
            if progress:
                progress("buckets", p + 1)
        del sigs_all
    roots = _roots(parent)
    shutil.rmtree(scratch, ignore_errors=True)
    return _smallest_id_per_cluster(pa.chunked_array(ids, type=pa.string()), roots)


def _tokens(texts: list[str]) -> list[list[str]]:
    import rjieba

    return [rjieba.cut(t) for t in texts]


@numba.njit(cache=True)
def _bucket_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit bucket id per (document, band); the band number is mixed in, so one key space serves all."""
    n = sigs.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    for d in range(n):
        for band in range(bands):
            h = np.uint64(14695981039346656037) ^ np.uint64(band)
            for k in range(band * rows, band * rows + rows):
                h = (h ^ np.uint64(sigs[d, k])) * np.uint64(1099511628211)
            keys[d, band] = h
    return keys


def _smallest_id_per_cluster(ids: pa.ChunkedArray, roots: np.ndarray) -> pa.Table:
    table = pa.table({"id": ids, "root": pa.array(roots)})
    ordered = table.sort_by([("root", "ascending"), ("id", "ascending")])
    root_col = ordered["root"].to_numpy()
    first = np.ones(len(root_col), dtype=bool)
    first[1:] = root_col[1:] != root_col[:-1]
    reps = pa.table(
        {"root": ordered["root"].filter(pa.array(first)), "cluster": ordered["id"].filter(pa.array(first))}
    )
    joined = table.join(reps, "root", join_type="left outer")
    return joined.select(["id", "cluster"]).sort_by("id")


def keep_mask(clusters: pa.Table) -> pa.Array:
    """True where a row is its cluster's representative."""
    return pc.equal(clusters["id"], clusters["cluster"])
