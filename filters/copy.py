"""Copying: a query that lifts a long span of its passage teaches lexical matching, not retrieval
(InPars' "copied from context")."""

from __future__ import annotations

import difflib
from typing import Any

from pairforge.config import FilterConfig

_PUNCTUATION = str.maketrans("", "", "，。！？；：、“”‘’（）《》,.!?;:\"'() ")


def longest_shared_span(query: str, passage: str) -> int:
    """Length of the longest common substring of ``query`` and ``passage`` (punctuation ignored)."""
    q, p = query.translate(_PUNCTUATION), passage.translate(_PUNCTUATION)
    if not q or not p:
        return 0
    return difflib.SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p)).size


def check_copy(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``copied_from_passage`` when the query shares a span longer than ``max_copy_chars`` with the passage,
    or when that span is at least ``max_copy_share`` of the query; else None."""
    span = longest_shared_span(pair["query"], pair["positive"])
    query_len = len(pair["query"].translate(_PUNCTUATION))
    if span > config.max_copy_chars or (query_len >= 6 and span >= config.max_copy_share * query_len):
        return "copied_from_passage"
    return None
