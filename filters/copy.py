"""Copying: a query that lifts a long span of its passage teaches lexical matching, not retrieval
(InPars' "copied from context"). A restatement (``sp``) shares characters with its source by nature, so it has
its own rule: the share of its character n-grams found in the target sentence, with its own threshold."""

from __future__ import annotations

import difflib
from typing import Any

from pairforge.config import FilterConfig
from pairforge.text import strip_punctuation


def longest_shared_span(query: str, passage: str) -> int:
    """Length of the longest common substring of ``query`` and ``passage`` (punctuation ignored)."""
    q, p = strip_punctuation(query), strip_punctuation(passage)
    if not q or not p:
        return 0
    return difflib.SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p)).size


def ngram_overlap(text: str, source: str, n: int) -> float:
    """Share of the distinct character ``n``-grams of ``text`` that occur in ``source`` (punctuation ignored);
    0.0 for a text shorter than ``n``."""
    t, s = strip_punctuation(text), strip_punctuation(source)
    grams = {t[i : i + n] for i in range(len(t) - n + 1)}
    if not grams:
        return 0.0
    return len(grams & {s[i : i + n] for i in range(len(s) - n + 1)}) / len(grams)


def check_copy(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``copied_from_target`` for a restatement too close to its target sentence (``kind`` sp), or
    ``copied_from_passage`` for a query sharing a span longer than ``max_copy_chars`` with the passage, or
    one at least ``max_copy_share`` of which is that span; else None."""
    if pair.get("kind") == "sp":
        return check_restatement(pair, config)
    span = longest_shared_span(pair["query"], pair["positive"])
    query_len = len(strip_punctuation(pair["query"]))
    if span > config.max_copy_chars or (
        query_len >= config.copy_share_min_chars and span >= config.max_copy_share * query_len
    ):
        return "copied_from_passage"
    return None


def check_restatement(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``copied_from_target`` when more than ``sp_max_ngram_overlap`` of the sentence's character
    ``sp_ngram``-grams occur in its evidence (the target sentence; the passage when no evidence is known)."""
    source = pair.get("evidence") or pair["positive"]
    if ngram_overlap(pair["query"], source, config.sp_ngram) > config.sp_max_ngram_overlap:
        return "copied_from_target"
    return None
