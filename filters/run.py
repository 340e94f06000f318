"""The filter stage: every filter over the generated pairs of each input shard, in order (cheap first; the first
reason wins). Kept pairs go to ``filter/pairs`` with the round trip's rank and score, dropped ones to
``filter/dropped`` with their reason, so nothing is lost silently."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from filters.base import CheckFilter, PairFilter
from filters.consistency import RoundTripFilter, dense_ranker
from filters.contamination import ContaminationFilter
from filters.copy import check_copy
from filters.evidence import check_evidence
from filters.language import check_language
from filters.length import check_length
from filters.located import check_located
from filters.quality import check_quality
from filters.unsupported import check_unsupported
from pairforge.config import RunConfig
from pairforge.mapping import Mapper, ShardInputs, serial_map
from pairforge.negatives.bm25 import BM25Index
from pairforge.pool import Pool
from pairforge.records import DROPPED_SCHEMA, FILTERED_PAIR_SCHEMA
from pairforge.shard_task import StageRun, run_shard_task
from pairforge.shards import ShardWriter, read_shard_table
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats
from pairforge.workdir import ALL, Workdir

STAGE = "filter"
UNIT = get_stage(STAGE).unit
CHECKS = (  # per-pair checks, cheap first, with the reasons each may give
    (check_length, ("query_too_short", "query_too_long", "passage_too_short", "passage_too_long")),
    (check_language, ("not_chinese", "traditional_script")),
    (check_quality, ("refusal", "template_leftover", "repeated_characters", "no_content")),
    (check_evidence, ("evidence_not_found",)),
    (check_unsupported, ("unsupported",)),
    (check_located, ("not_restated", "off_target")),  # before the copy check, which compares with the evidence
    (check_copy, ("copied_from_target", "copied_from_passage")),
)


def drop_reason(pair: dict[str, Any], config: RunConfig) -> str | None:
    """The first per-pair check's drop reason for ``pair`` (needs ``query`` and ``positive``), or None."""
    for check, _ in CHECKS:
        reason = check(pair, config.filter)
        if reason:
            return reason
    return None


def build_filters(config: RunConfig, output: Workdir) -> list[PairFilter]:
    """Every configured filter, in order: the per-pair checks, contamination, then the round trip."""
    filters: list[PairFilter] = [CheckFilter(check, config.filter, reasons) for check, reasons in CHECKS]
    if config.filter.contamination:
        filters.append(ContaminationFilter(config.filter))
    if config.filter.consistency_top_k:
        pool, index = Pool(output.pool), BM25Index.open(output.bm25)
        filters.append(RoundTripFilter(pool, index, config.filter, dense_ranker(config, output)))
    return filters


def run_filter(
    config: RunConfig, inputs: ShardInputs, output: Workdir, *, fresh: bool = False, map_shards: Mapper = serial_map
) -> StageStats:
    """Filter the generated pairs of every input shard."""
    run = StageRun(STAGE, output)
    index_key = output.key_of("index", ALL) if config.filter.consistency_top_k else None
    parts = map_shards(STAGE, functools.partial(filter_shard, config, output, index_key, fresh), inputs.shards)
    return run.save(run.combine(parts))


def filter_shard(config: RunConfig, output: Workdir, index_key: str | None, fresh: bool, shard: str) -> StageStats:
    """One shard's pairs through every filter."""
    depends_on = (output.key_of("generate", shard), index_key, stage_settings(config, STAGE))
    work = functools.partial(_filter, config, output, shard)
    return run_shard_task(output, STAGE, shard, depends_on, work, fresh=fresh)


def _filter(config: RunConfig, output: Workdir, shard: str) -> StageStats:
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
        if isinstance(pair_filter, RoundTripFilter) and pair_filter.skipped:
            stats.details["round_trip_skipped"] = pair_filter.skipped  # a pool too small to judge by
    return stats


def count_evidence(pair: dict[str, Any], long_chars: int, counts: Counter[str]) -> None:
    """Count a kept pair's evidence: relocated or not, and on a passage longer than ``long_chars``, whether it starts
    past that point (the long-text share, from the evidence as located)."""
    counts["evidence_relocated"] += pair.get("evidence_method") == "located"
    if len(pair["positive"]) > long_chars and pair.get("evidence_start") is not None:
        counts["long_passage_pairs"] += 1
        counts["evidence_past_long"] += pair["evidence_start"] >= long_chars
