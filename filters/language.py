"""Language: the query must be Chinese (CJK share) and in simplified script."""

from __future__ import annotations

from typing import Any

from pairforge.config import FilterConfig
from pairforge.text import is_chinese, normalize_text


def check_language(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``not_chinese`` or ``traditional_script`` (OpenCC would change the query), or None."""
    query = pair["query"]
    if not is_chinese(query, config.min_cjk_share):
        return "not_chinese"
    if normalize_text(query, t2s=True) != normalize_text(query):
        return "traditional_script"
    return None
