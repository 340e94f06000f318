"""The dedup-passages stage: near-duplicate passages out, within this run and against every earlier version.

Three steps: MinHash signatures per input shard (shard tasks); one global clustering over all of them, earlier
versions' index parts first (disk-backed, ``cluster``); then per shard the kept passages, their cluster audit and
the shard's MinHash index part (shard tasks). One representative per cluster, the smallest id; a cluster that
holds an earlier version's passage keeps none of this run's (``seen_in_earlier_version``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.dedup.cluster import cluster_of, cluster_representatives, cluster_signatures, lsh_shape
from pairforge.dedup.index import dedup_signatures, read_index, write_index
from pairforge.mapping import Mapper, serial_map
from pairforge.records import PASSAGE_SCHEMA
from pairforge.shard_task import StageRun, run_shard_task
from pairforge.shards import ShardWriter, read_shard_table
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats
from pairforge.workdir import ALL, Workdir, shard_files

STAGE = "dedup-passages"
UNIT = get_stage(STAGE).unit
KEEP, NEAR, SEEN = "kept", "near_duplicate_passage", "seen_in_earlier_version"


@dataclass(frozen=True)
class DedupInputs:
    """This run's ingested input shards (their keys, in order) and the MinHash index parts of earlier versions."""

    shards: list[str]
    prior: list[Path] = field(default_factory=list)


def run_dedup_passages(
    config: RunConfig, inputs: DedupInputs, output: Workdir, *, fresh: bool = False, map_shards: Mapper = serial_map
) -> StageStats:
    """Deduplicate the ingested passages of ``inputs.shards`` into ``output.passages``."""
    run = StageRun(STAGE, output)
    map_shards(f"{STAGE}.sign", functools.partial(sign_shard, config, output, fresh), inputs.shards)
    sign_keys = [output.key_of(STAGE, f"{s}.sig") for s in inputs.shards]
    clustered = cluster_passages(config, inputs, output, sign_keys, fresh=fresh)
    keep = functools.partial(keep_shard, config, output, output.key_of(STAGE, ALL), fresh)
    stats = run.combine(map_shards(STAGE, keep, inputs.shards))
    stats.details.update({k: clustered.details[k] for k in ("clusters", "bands", "rows", "prior_passages")})
    return run.save(stats)


def sign_shard(config: RunConfig, output: Workdir, fresh: bool, shard: str) -> StageStats:
    """Step 1: the MinHash signatures of one ingested shard, to ``dedup-passages/signatures/<shard>.u32``."""
    depends_on = (output.key_of("ingest", shard), stage_settings(config, STAGE))

    def work() -> StageStats:
        return StageStats(STAGE, UNIT, input=len(_sign(config, output, shard)))

    return run_shard_task(output, f"{STAGE}.sign", f"{shard}.sig", depends_on, work, fresh=fresh)


def cluster_passages(
    config: RunConfig, inputs: DedupInputs, output: Workdir, sign_keys: list[str], *, fresh: bool = False
) -> StageStats:
    """Step 2 (global): cluster the earlier versions' and this run's signatures; writes each row's root and the
    clusters' representatives to ``dedup-passages/_global``."""
    prior_parts = [read_index(folder, config.dedup) for folder in inputs.prior]
    depends_on = (sign_keys, [str(p) for p in inputs.prior], [len(i) for i, _ in prior_parts])
    work = functools.partial(_cluster, config, inputs, output, prior_parts)
    return run_shard_task(output, f"{STAGE}.cluster", ALL, depends_on, work, fresh=fresh)


def _cluster(
    config: RunConfig, inputs: DedupInputs, output: Workdir, prior_parts: list[tuple[pa.Array, np.ndarray]]
) -> StageStats:
    parts = [sigs for _, sigs in prior_parts]
    sizes = {}
    for shard in inputs.shards:
        sigs = _read_signatures(config, output, shard)
        parts.append(sigs)
        sizes[shard] = len(sigs)
    roots = cluster_signatures(parts, config.dedup, output.scratch(STAGE))
    id_parts = [ids for ids, _ in prior_parts] + [
        read_shard_table(output.ingested, s, ["id"])["id"].combine_chunks() for s in inputs.shards
    ]  # only the clustered rows' ids are kept below
    starts = np.cumsum([0] + [len(p) for p in id_parts])
    reps = cluster_representatives(roots, lambda rows: _take_ids(id_parts, starts, rows))
    folder = _global(output)
    folder.mkdir(parents=True, exist_ok=True)
    roots.tofile(folder / "roots.i64")
    pq.write_table(pa.table({"root": list(reps), "id": list(reps.values())}), folder / "representatives.parquet")
    n_prior = int(starts[len(prior_parts)])
    offsets = dict(zip(inputs.shards, (int(s) for s in starts[len(prior_parts) :]), strict=False))
    (folder / "rows.json").write_text(json.dumps({"prior": n_prior, "offsets": offsets, "sizes": sizes}))
    bands, rows = lsh_shape(config.dedup)
    clusters = len(np.unique(roots[n_prior:])) if len(roots) > n_prior else 0
    details = {"clusters": clusters, "bands": bands, "rows": rows, "prior_passages": n_prior}
    return StageStats(STAGE, UNIT, details=details)


def keep_shard(config: RunConfig, output: Workdir, cluster_key: str, fresh: bool, shard: str) -> StageStats:
    """Step 3: one shard's kept passages, its cluster audit and its MinHash index part."""
    work = functools.partial(_keep, config, output, shard)
    return run_shard_task(output, STAGE, shard, (cluster_key, shard), work, fresh=fresh)


def _keep(config: RunConfig, output: Workdir, shard: str) -> StageStats:
    folder = _global(output)
    layout = json.loads((folder / "rows.json").read_text())
    start, size = layout["offsets"][shard], layout["sizes"][shard]
    roots = np.fromfile(folder / "roots.i64", dtype=np.int64, count=size, offset=8 * start)
    reps = _representatives(folder)
    table = read_shard_table(output.ingested, shard)
    status = _status(table["id"].to_pylist(), roots, reps, layout["prior"])
    kept = table.filter(pa.array([s == KEEP for s in status], pa.bool_()))
    writer = ShardWriter(output.passages, shard, PASSAGE_SCHEMA, config.ingest.shard_rows)
    writer.add_table(kept)
    writer.close()
    audit = pa.table({"id": table["id"], "cluster": cluster_of(roots, table["id"].combine_chunks(), reps),
                      "status": pa.array(status, pa.string())})  # fmt: skip
    output.passage_clusters.mkdir(parents=True, exist_ok=True)
    pq.write_table(audit, output.passage_clusters / f"{shard}.parquet")
    sigs = _read_signatures(config, output, shard)
    keep_rows = np.asarray([s == KEEP for s in status], dtype=bool)  # bool even when the shard has no passage
    write_index(output.passage_index / shard, kept["id"], sigs[keep_rows], config.dedup)
    del sigs
    # The kept rows' signatures live on in the index part; the whole shard's are needed again only if the
    # clustering reruns, which signs the shard again (``_read_signatures``): no second copy stays on disk.
    _signature_file(output, shard).unlink(missing_ok=True)
    stats = StageStats(STAGE, UNIT, input=table.num_rows, output=kept.num_rows)
    for reason in (NEAR, SEEN):
        stats.drop(reason, status.count(reason))
    return stats


def _status(ids: list[str], roots: np.ndarray, reps: dict[int, str], n_prior: int) -> list[str]:
    out = []
    for pid, root in zip(ids, roots.tolist(), strict=True):
        if root < n_prior:
            out.append(SEEN)  # a cluster's root is its smallest row: an earlier version's passage roots it
        elif root in reps and reps[root] != pid:
            out.append(NEAR)
        else:
            out.append(KEEP)
    return out


def _signature_file(output: Workdir, shard: str) -> Path:
    return output.stage(STAGE) / "signatures" / f"{shard}.u32"


def _sign(config: RunConfig, output: Workdir, shard: str) -> np.ndarray:
    """Sign one ingested shard and write its signatures (aside, then renamed) to its signature file."""
    texts = read_shard_table(output.ingested, shard, ["text"])["text"].to_pylist()
    sigs = dedup_signatures(texts, config.dedup)
    path = _signature_file(output, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sigs.tofile(tmp)
    tmp.replace(path)
    return sigs


def _read_signatures(config: RunConfig, output: Workdir, shard: str) -> np.ndarray:
    """The shard's signatures, memory-mapped; signed again when ``keep_shard`` has removed them (a clustering
    or a keep step that runs again after its shard was kept)."""
    path = _signature_file(output, shard)
    num_perm = config.dedup.num_perm
    if not path.is_file():
        _sign(config, output, shard)
    count = path.stat().st_size // (4 * num_perm)
    if count == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    return np.memmap(path, dtype=np.uint32, mode="r", shape=(count, num_perm))


def _global(output: Workdir) -> Path:
    return output.stage(STAGE) / "_global"


def _representatives(folder: Path) -> dict[int, str]:
    table = pq.read_table(folder / "representatives.parquet")
    return dict(zip(table["root"].to_pylist(), table["id"].to_pylist(), strict=True))


def _take_ids(parts: list[pa.Array], starts: np.ndarray, rows: np.ndarray) -> pa.Array:
    """The ids of global ``rows`` (sorted ascending) from the per-part id arrays."""
    out = []
    for n, part in enumerate(parts):
        inside = rows[(rows >= starts[n]) & (rows < starts[n + 1])] - starts[n]
        if len(inside):
            out.append(pc.take(part, pa.array(inside, pa.int64())))
    return pa.concat_arrays(out) if out else pa.array([], type=pa.string())


def kept_files(output: Workdir, shards: list[str]) -> list[Path]:
    """The kept passages' files of ``shards``, in order."""
    return [f for s in shards for f in shard_files(output.passages, s)]
