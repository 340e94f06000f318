"""The filter stage: a chain of filters over the generated pairs of each input shard, in order (the first reason
wins). Kept pairs go to ``filter/pairs`` with the round trip's rank and score, dropped ones to ``filter/dropped``
with their reason, so nothing is lost silently.

The filters themselves live in the ``filters`` package, above the core: the caller (the flows, the CLI) hands this
stage the function that builds them, ``filters.chain.build_filters``."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pairforge.config import RunConfig
from pairforge.mapping import Mapper, ShardInputs, serial_map
from pairforge.records import DROPPED_SCHEMA, FILTERED_PAIR_SCHEMA
from pairforge.shard_task import StageRun, run_shard_task
from pairforge.shards import ShardWriter, read_shard_table
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats
from pairforge.workdir import ALL, Workdir

STAGE = "filter"
UNIT = get_stage(STAGE).unit


class Filter(Protocol):
    """What the stage needs of a filter (``filters.base.PairFilter`` is one): ``apply`` gives each pair still kept
    (``why[i] is None``) a drop reason or None, ``dropped`` counts its drops by reason, ``details`` holds any other
    counts for the stage's details."""

    dropped: Counter[str]

    def apply(self, pairs: Sequence[dict[str, Any]], why: list[str | None]) -> None: ...

    def details(self) -> dict[str, int]: ...


BuildFilters = Callable[[RunConfig, Workdir], Sequence[Filter]]


def run_filter(
    config: RunConfig,
    inputs: ShardInputs,
    output: Workdir,
    *,
    build_filters: BuildFilters,
    fresh: bool = False,
    map_shards: Mapper = serial_map,
) -> StageStats:
    """Filter the generated pairs of every input shard through the filters ``build_filters`` makes (a module-level
    function: shard tasks may run in other processes)."""
    run = StageRun(STAGE, output)
    index_key = output.key_of("index", ALL) if config.filter.consistency_top_k else None
    shard = functools.partial(filter_shard, config, output, build_filters, index_key, fresh)
    return run.save(run.combine(map_shards(STAGE, shard, inputs.shards)))


def filter_shard(
    config: RunConfig, output: Workdir, build_filters: BuildFilters, index_key: str | None, fresh: bool, shard: str
) -> StageStats:
    """One shard's pairs through every filter."""
    depends_on = (output.key_of("generate", shard), index_key, stage_settings(config, STAGE))
    work = functools.partial(_filter, config, output, build_filters, shard)
    return run_shard_task(output, STAGE, shard, depends_on, work, fresh=fresh)


def _filter(config: RunConfig, output: Workdir, build_filters: BuildFilters, shard: str) -> StageStats:
    pairs = read_shard_table(output.generated, shard).to_pylist()
    for pair in pairs:
        pair["consistency_rank"] = pair["consistency_score"] = pair["consistency_margin"] = None
    why: list[str | None] = [None] * len(pairs)
    filters = build_filters(config, output)
    for pair_filter in filters:
        pair_filter.apply(pairs, why)
    kept = ShardWriter(output.filtered, shard, FILTERED_PAIR_SCHEMA, config.ingest.shard_rows)
    dropped = ShardWriter(output.dropped, shard, DROPPED_SCHEMA, config.ingest.shard_rows)
    details = Counter({"evidence_relocated": 0, "long_passage_pairs": 0, "evidence_past_long": 0})
    for pair, reason in zip(pairs, why, strict=True):
        if reason is None:
            kept.add(pair)
            count_evidence(pair, config.window.long_chars, details)
        else:
            dropped.add({"id": pair["id"], "query": pair["query"], "passage_id": pair["passage_id"], "reason": reason})
    kept.close()
    dropped.close()
    stats = StageStats(STAGE, UNIT, input=len(pairs), output=kept.count, details=dict(details))
    for pair_filter in filters:
        for reason, n in pair_filter.dropped.items():
            stats.drop(reason, n)
        stats.details.update(pair_filter.details())
    return stats


def count_evidence(pair: dict[str, Any], long_chars: int, counts: Counter[str]) -> None:
    """Count a kept pair's evidence: relocated or not, and on a passage longer than ``long_chars``, whether it starts
    past that point (the long-text share, from the evidence as located)."""
    counts["evidence_relocated"] += pair.get("evidence_method") == "located"
    if len(pair["positive"]) > long_chars and pair.get("evidence_start") is not None:
        counts["long_passage_pairs"] += 1
        counts["evidence_past_long"] += pair["evidence_start"] >= long_chars
