"""Near-duplicate removal with MinHash LSH: passages before generation, pairs after.

One representative per cluster, the smallest id; every row keeps its cluster id for audit.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters.lsh import cluster_signatures, optimal_bands
from filters.minhash import signatures
from pairforge.config import DedupConfig, RunConfig


@dataclass
class DedupSummary:
    """Counts from one dedup run; ``--json`` prints this."""

    target: str = ""
    input: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    clusters: int = 0
    bands: int = 0
    rows: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cluster_texts(texts: list[str], config: DedupConfig) -> np.ndarray:
    """Cluster ids (index of the cluster's first text) for ``texts``, in the order given."""
    tokens = None
    if config.unit == "word":
        import rjieba

        tokens = [rjieba.cut(t) for t in texts]
    sigs = signatures(texts, num_perm=config.num_perm, n=config.ngram, seed=config.seed, tokens=tokens)
    bands, rows = optimal_bands(
        config.threshold, config.num_perm, config.false_positive_weight, config.false_negative_weight
    )
    return cluster_signatures(sigs, config.threshold, bands, rows)


def run_dedup(config: RunConfig, target: Literal["passages", "pairs"] = "passages") -> DedupSummary:
    """Deduplicate ``workdir/<target>`` in place; clusters go to ``workdir/dedup/<target>-clusters.parquet``."""
    started = time.perf_counter()
    workdir = Path(config.workdir)
    folder = workdir / target
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{folder}: nothing to deduplicate; run the stage that writes it first")
    table = pq.read_table(shards)
    table = table.take(pc.sort_indices(table, [("id", "ascending")]))  # representative = smallest id
    texts = table["text" if target == "passages" else "query"].to_pylist()
    clusters = cluster_texts(texts, config.dedup)
    if target == "pairs":
        # A near-duplicate query is a duplicate only for the same passage; across passages it is kept.
        firsts: dict[tuple[int, str], int] = {}
        passage_ids = table["passage_id"].to_pylist()
        clusters = np.array(
            [firsts.setdefault((int(c), p), i) for i, (c, p) in enumerate(zip(clusters, passage_ids, strict=True))]
        )
    keep = clusters == np.arange(len(clusters))
    ids = table["id"]
    audit = pa.table({"id": ids, "cluster": pc.take(ids, pa.array(clusters)), "kept": pa.array(keep)})
    (workdir / "dedup").mkdir(parents=True, exist_ok=True)
    pq.write_table(audit, workdir / "dedup" / f"{target}-clusters.parquet")
    staging = workdir / f".{target}-dedup"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pq.write_table(table.filter(pa.array(keep)), staging / f"{target}-dedup-00000.parquet")
    shutil.rmtree(folder)
    staging.rename(folder)
    bands, rows = optimal_bands(
        config.dedup.threshold,
        config.dedup.num_perm,
        config.dedup.false_positive_weight,
        config.dedup.false_negative_weight,
    )
    summary = DedupSummary(
        target=target,
        input=len(texts),
        kept=int(keep.sum()),
        bands=bands,
        rows=rows,
        clusters=len(np.unique(clusters)),
    )
    reason = "near_duplicate_passage" if target == "passages" else "near_duplicate_query"
    summary.dropped = {reason: summary.input - summary.kept} if summary.input > summary.kept else {}
    summary.seconds = round(time.perf_counter() - started, 3)
    (workdir / f"dedup_{target}_summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    return summary
