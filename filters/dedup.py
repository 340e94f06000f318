"""Near-duplicate removal with MinHash LSH: passages before generation, pairs after.

One representative per cluster, the smallest id; every row keeps its cluster id for audit.
"""

from __future__ import annotations

import glob
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from filters.lsh import optimal_bands
from filters.sharded import cluster_shards, keep_mask, write_index
from pairforge.config import RunConfig
from pairforge.store import Store


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


def run_dedup(config: RunConfig, target: Literal["passages", "pairs"] = "passages") -> DedupSummary:
    """Deduplicate ``workdir/<target>`` in place, shard by shard; every id's cluster goes to
    ``workdir/dedup/<target>-clusters.parquet``."""
    started = time.perf_counter()
    workdir = Path(config.workdir)
    folder = workdir / target
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{folder}: nothing to deduplicate; run the stage that writes it first")
    column = "text" if target == "passages" else "query"
    prior = _prior_indexes(config) if target == "passages" else []
    clusters = cluster_shards(shards, column, config.dedup, workdir / "dedup" / f".{target}-scratch", prior=prior)
    earlier = clusters["earlier"]
    if target == "pairs":
        # A near-duplicate query is a duplicate only for the same passage; across passages both are kept.
        passage_of = pa.concat_tables(pq.read_table(s, columns=["id", "passage_id"]) for s in shards)
        clusters = _per_passage(clusters.join(passage_of, "id"))
    representative = keep_mask(clusters)
    keep = pc.and_(representative, pc.invert(earlier)) if prior else representative
    audit = clusters.append_column("kept", keep)
    pq.write_table(audit, workdir / "dedup" / f"{target}-clusters.parquet")
    kept_ids = clusters["id"].filter(keep)
    staging = workdir / f".{target}-dedup"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for shard in shards:
        table = pq.read_table(shard)
        pq.write_table(table.filter(pc.is_in(table["id"], value_set=kept_ids)), staging / shard.name)
    shutil.rmtree(folder)
    staging.rename(folder)
    if target == "passages":  # what this run keeps, for later versions to dedup against
        kept = pq.read_table(sorted(folder.glob("*.parquet")), columns=["id", "text"])
        write_index(
            workdir / "dedup" / "passages-index", kept["id"].to_pylist(), kept["text"].to_pylist(), config.dedup
        )
    bands, rows = optimal_bands(
        config.dedup.threshold,
        config.dedup.num_perm,
        config.dedup.false_positive_weight,
        config.dedup.false_negative_weight,
    )
    summary = DedupSummary(
        target=target,
        input=len(clusters),
        kept=len(kept_ids),
        bands=bands,
        rows=rows,
        clusters=len(pc.unique(clusters["cluster"])),
    )
    reason = "near_duplicate_passage" if target == "passages" else "near_duplicate_query"
    # A text whose cluster holds an earlier version's text is "seen", whatever its rank in the cluster.
    seen = pc.sum(earlier).as_py() if prior else 0
    near = len(clusters) - summary.kept - seen
    summary.dropped = {k: v for k, v in ((reason, near), ("seen_in_earlier_version", seen)) if v}
    summary.seconds = round(time.perf_counter() - started, 3)
    (workdir / f"dedup_{target}_summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    return summary


def _per_passage(table: pa.Table) -> pa.Table:
    """Re-cluster (id, cluster, passage_id) so a cluster is a query cluster *within one passage*."""
    ordered = table.sort_by([("cluster", "ascending"), ("passage_id", "ascending"), ("id", "ascending")])
    cluster, passage, ids = (ordered[c].to_pylist() for c in ("cluster", "passage_id", "id"))
    reps, current, key = [], "", None
    for c, p, i in zip(cluster, passage, ids, strict=True):
        if (c, p) != key:
            key, current = (c, p), i
        reps.append(current)
    return pa.table({"id": ordered["id"], "cluster": pa.array(reps, type=pa.string())}).sort_by("id")


def _prior_indexes(config: RunConfig) -> list[Path]:
    """The MinHash indexes of earlier versions: every published version's, plus ``dedup.against``."""
    folders = []
    if config.dedup.against_store:
        store = Store(config.store)
        for version in store.versions(config.name):
            remote = f"{store.path(config.name, version)}/index/passages"
            if not store.fs.exists(f"{remote}/meta.json"):
                continue
            if isinstance(store.fs, LocalFileSystem):
                folders.append(Path(remote))
            else:  # indexes are memory-mapped, so a remote one is fetched once into the workdir
                local = Path(config.workdir) / "dedup" / "prior" / f"v{version}"
                if not (local / "meta.json").is_file():
                    store.fs.get(remote, str(local), recursive=True)
                folders.append(local)
    for pattern in config.dedup.against:
        found = sorted(Path(p) for p in glob.glob(pattern) if (Path(p) / "meta.json").is_file())
        if not found:
            raise FileNotFoundError(f"dedup.against: {pattern}: no MinHash index there")
        folders.extend(found)
    return folders
