"""Locate the evidence a model quoted inside its passage: exact first, then fuzzy."""

from __future__ import annotations

import difflib
import re

_SPACE = re.compile(r"\s+")


def locate_evidence(passage: str, evidence: str, *, min_ratio: float = 0.8) -> tuple[int, int, str] | None:
    """(start, end, method) of ``evidence`` in ``passage``; method is ``exact``, ``normalized`` or ``fuzzy``.

    Fuzzy matching aligns the evidence with the passage (difflib) and accepts the span covering the
    matched blocks when at least ``min_ratio`` of the evidence's characters are matched in order.
    """
    evidence = evidence.strip()
    if not evidence:
        return None
    start = passage.find(evidence)
    if start >= 0:
        return start, start + len(evidence), "exact"
    trimmed = evidence.strip("。！？；，…\"“”'")
    if trimmed and (start := passage.find(trimmed)) >= 0:
        return start, start + len(trimmed), "normalized"
    matcher = difflib.SequenceMatcher(None, passage, evidence, autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size >= 2]
    if not blocks:
        return None
    matched = sum(b.size for b in blocks)
    span_start, span_end = blocks[0].a, blocks[-1].a + blocks[-1].size
    if matched / len(evidence) < min_ratio or (span_end - span_start) > 1.5 * len(evidence):
        return None
    return span_start, span_end, "fuzzy"
