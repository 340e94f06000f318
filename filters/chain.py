"""The filter chain: every configured filter in the order the filter stage applies them (cheap first; the first
reason wins). The stage itself (reading shards, writing kept and dropped pairs, counting) is ``pairforge.filter``;
``build_filters`` is what the flows and the CLI hand it."""

from __future__ import annotations

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
from pairforge.negatives.bm25 import BM25Index
from pairforge.pool import Pool
from pairforge.workdir import Workdir

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
