"""Length bounds on the query and the passage, in characters."""

from __future__ import annotations

from typing import Any

from pairforge.config import FilterConfig


def check_length(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``query_too_short``, ``query_too_long``, ``passage_too_short``, ``passage_too_long`` or None."""
    query, passage = len(pair["query"]), len(pair["positive"])
    if query < config.query_min_chars:
        return "query_too_short"
    if query > config.query_max_chars:
        return "query_too_long"
    if passage < config.passage_min_chars:
        return "passage_too_short"
    if passage > config.passage_max_chars:
        return "passage_too_long"
    return None
