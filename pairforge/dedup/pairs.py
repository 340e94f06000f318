"""The dedup-pairs stage: near-duplicate queries of the same passage out, one input shard at a time.

A near-duplicate query is a duplicate only for the same passage (two passages may well share a question), and
every pair of a passage lies in the passage's input shard, so each shard is clustered on its own: no global step.
"""

from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.dedup.cluster import cluster_of, cluster_representatives, cluster_signatures
from pairforge.dedup.index import dedup_signatures
from pairforge.mapping import Mapper, ShardInputs, serial_map
from pairforge.records import JUDGED_PAIR_SCHEMA
from pairforge.shard_task import StageRun, run_shard_task
from pairforge.shards import ShardWriter, read_shard_table
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats
from pairforge.workdir import Workdir

STAGE = "dedup-pairs"
UNIT = get_stage(STAGE).unit
REASON = "near_duplicate_query"


def run_dedup_pairs(
    config: RunConfig, inputs: ShardInputs, output: Workdir, *, fresh: bool = False,
    map_shards: Mapper = serial_map,
) -> StageStats:  # fmt: skip
    """Deduplicate ``judge``'s pairs of every input shard into ``output.pairs``."""
    run = StageRun(STAGE, output)
    parts = map_shards(STAGE, functools.partial(dedup_pair_shard, config, output, fresh), inputs.shards)
    return run.save(run.combine(parts))


def dedup_pair_shard(config: RunConfig, output: Workdir, fresh: bool, shard: str) -> StageStats:
    """One shard's pairs without near-duplicate queries of the same passage (the smallest pair id stays)."""
    depends_on = (output.key_of("judge", shard), stage_settings(config, STAGE))
    work = functools.partial(_dedup_pairs, config, output, shard)
    return run_shard_task(output, STAGE, shard, depends_on, work, fresh=fresh)


def _dedup_pairs(config: RunConfig, output: Workdir, shard: str) -> StageStats:
    table = read_shard_table(output.judged, shard)
    ids = table["id"].combine_chunks()
    roots = cluster_signatures(
        [dedup_signatures(table["query"].to_pylist(), config.dedup)], config.dedup, output.scratch(STAGE) / shard
    )
    # a cluster *within one passage*: (query cluster, passage) pairs, each led by its smallest pair id
    groups: dict[tuple[int, str], str] = {}
    for root, passage, pair in zip(roots.tolist(), table["passage_id"].to_pylist(), ids.to_pylist(), strict=True):
        groups[(root, passage)] = min(pair, groups.get((root, passage), pair))
    leaders = [groups[(r, p)] for r, p in zip(roots.tolist(), table["passage_id"].to_pylist(), strict=True)]
    keep = pa.array([leader == pair for leader, pair in zip(leaders, ids.to_pylist(), strict=True)], pa.bool_())
    writer = ShardWriter(output.pairs, shard, JUDGED_PAIR_SCHEMA, config.ingest.shard_rows)
    writer.add_table(table.filter(keep))
    writer.close()
    output.pair_clusters.mkdir(parents=True, exist_ok=True)
    representatives = cluster_representatives(roots, lambda rows: ids.take(pa.array(rows, pa.int64())))
    clusters = cluster_of(roots, ids, representatives)
    audit = pa.table({"id": ids, "cluster": clusters, "leader": pa.array(leaders, pa.string()), "kept": keep})
    pq.write_table(audit, output.pair_clusters / f"{shard}.parquet")
    stats = StageStats(STAGE, UNIT, input=table.num_rows, output=table.num_rows - keep.false_count)
    stats.drop(REASON, keep.false_count)
    return stats
