"""Unsupported facts: a query (qp) or restatement (sp) holding a number, a Latin-script word or a quoted name
that its passage does not hold states something the passage does not (a wrong year, an invented English name)
and is dropped as ``unsupported`` (``filter.unsupported``)."""

from __future__ import annotations

from typing import Any

from pairforge.config import FilterConfig
from pairforge.grounding import find_unsupported


def check_unsupported(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``unsupported`` when the pair's query holds a number, Latin word or quoted name absent from its passage."""
    if config.unsupported and find_unsupported(pair["query"], pair["positive"]):
        return "unsupported"
    return None
