"""Near-duplicate clustering over shards with bounded memory.

Signatures are computed shard by shard and appended to one file on disk; each document's band buckets go
to one of ``partitions`` bucket files by bucket hash; each bucket file is then sorted on its own, bucket
collisions are verified against the (memory-mapped) signatures, and the joins feed one union-find array.
Memory holds one shard, one bucket partition and an 8-byte parent per document, never an index of all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters.lsh import bucket_keys, find_roots, join_bucket_runs, optimal_bands
from pairforge.config import DedupConfig
from pairforge.minhash import signatures

ProgressFn = Callable[[str, int], None]


def cluster_shards(
    shards: Sequence[Path],
    column: str,
    config: DedupConfig,
    scratch: Path,
    prior: Sequence[Path] = (),
    partitions: int = 16,
    progress: ProgressFn | None = None,
) -> pa.Table:
    """``(id, cluster, earlier)`` for every row of ``shards``: the cluster is the smallest id among its
    members; ``earlier`` is true when the cluster holds a text of a ``prior`` index (an earlier version)."""
    bands, rows = optimal_bands(
        config.threshold, config.num_perm, config.false_positive_weight, config.false_negative_weight
    )
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    sig_path = scratch / "signatures.u32"
    bucket_files = [(scratch / f"part-{p:03d}.key", scratch / f"part-{p:03d}.idx") for p in range(partitions)]
    ids: list[pa.Array] = []
    total = 0

    def add(sigs: np.ndarray, shard_ids: pa.Array, sig_out: BinaryIO) -> None:
        nonlocal total
        sigs.tofile(sig_out)
        keys = bucket_keys(sigs, bands, rows).ravel()
        index = np.repeat(np.arange(total, total + len(sigs), dtype=np.int64), bands)
        part = (keys % np.uint64(partitions)).astype(np.int64)
        for p, (key_file, idx_file) in enumerate(bucket_files):
            mask = part == p
            with key_file.open("ab") as kf, idx_file.open("ab") as xf:
                keys[mask].tofile(kf)
                index[mask].tofile(xf)
        ids.append(shard_ids)
        total += len(sigs)
        if progress:
            progress("signatures", total)

    with sig_path.open("wb") as sig_out:
        for folder in prior:  # earlier texts first: they get the smallest indices, so they root their clusters
            prior_ids, prior_sigs = read_index(folder, config)
            add(prior_sigs, prior_ids, sig_out)
        n_prior = total
        for shard in shards:
            table = pq.read_table(shard, columns=["id", column])
            texts = table[column].to_pylist()
            sigs = signatures(
                texts,
                num_perm=config.num_perm,
                n=config.ngram,
                seed=config.seed,
                tokens=_tokens(texts) if config.unit == "word" else None,
            )
            add(sigs, table["id"].combine_chunks(), sig_out)
    parent = np.arange(total, dtype=np.int64)
    if total:
        sigs_all = np.memmap(sig_path, dtype=np.uint32, mode="r", shape=(total, config.num_perm))
        need = int(np.ceil(config.threshold * config.num_perm - 1e-9))
        for p, (key_file, idx_file) in enumerate(bucket_files):
            if not key_file.exists():
                continue
            keys, index = np.fromfile(key_file, dtype=np.uint64), np.fromfile(idx_file, dtype=np.int64)
            order = np.lexsort((index, keys))  # by bucket, then by document: earlier ids come first
            join_bucket_runs(keys[order], index[order], np.asarray(sigs_all), parent, need, 64)
            if progress:
                progress("buckets", p + 1)
        del sigs_all
    roots = find_roots(parent)
    shutil.rmtree(scratch, ignore_errors=True)
    return _smallest_id_per_cluster(pa.chunked_array(ids, type=pa.string()), roots, n_prior)


def write_index(folder: Path, ids: Sequence[str], texts: Sequence[str], config: DedupConfig) -> None:
    """Persist the signatures of ``texts`` so later runs (later versions) dedup against them."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sigs = signatures(
        list(texts),
        num_perm=config.num_perm,
        n=config.ngram,
        seed=config.seed,
        tokens=_tokens(list(texts)) if config.unit == "word" else None,
    )
    sigs.tofile(folder / "signatures.u32")
    pq.write_table(pa.table({"id": pa.array(list(ids), type=pa.string())}), folder / "ids.parquet")
    (folder / "meta.json").write_text(json.dumps(_index_meta(config)))


def read_index(folder: Path, config: DedupConfig) -> tuple[pa.Array, np.ndarray]:
    """The ids and signatures of an index written by ``write_index``; its MinHash settings must match."""
    meta = json.loads((folder / "meta.json").read_text())
    if meta != _index_meta(config):
        raise ValueError(f"{folder}: MinHash settings {meta} differ from this run's {_index_meta(config)}")
    ids = pq.read_table(folder / "ids.parquet")["id"].combine_chunks()
    sigs = np.fromfile(folder / "signatures.u32", dtype=np.uint32).reshape(len(ids), config.num_perm)
    return ids, sigs


def _index_meta(config: DedupConfig) -> dict[str, object]:
    return {"num_perm": config.num_perm, "ngram": config.ngram, "unit": config.unit, "seed": config.seed}


def _tokens(texts: list[str]) -> list[list[str]]:
    import rjieba

    return [rjieba.cut(t) for t in texts]


def _smallest_id_per_cluster(ids: pa.ChunkedArray, roots: np.ndarray, n_prior: int) -> pa.Table:
    """``(id, cluster, earlier)`` of the rows after the first ``n_prior`` (the earlier versions' texts)."""
    table = pa.table({"id": ids, "root": pa.array(roots), "row": pa.array(np.arange(len(roots)))})
    ordered = table.sort_by([("root", "ascending"), ("id", "ascending")])
    root_col = ordered["root"].to_numpy()
    first = np.ones(len(root_col), dtype=bool)
    first[1:] = root_col[1:] != root_col[:-1]
    reps = pa.table(
        {"root": ordered["root"].filter(pa.array(first)), "cluster": ordered["id"].filter(pa.array(first))}
    )
    joined = table.join(reps, "root").sort_by("row")  # a join does not keep row order
    result = pa.table(
        {"id": joined["id"], "cluster": joined["cluster"], "earlier": pa.array(roots < n_prior)}
    )  # a cluster's root is its smallest index
    return result.slice(n_prior).sort_by("id")


def keep_mask(clusters: pa.Table) -> pa.Array:
    """True where a row is its cluster's representative."""
    return pc.equal(clusters["id"], clusters["cluster"])
