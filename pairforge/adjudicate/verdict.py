"""Adjudication's pure parts: which candidates of a candidate row are asked about, the prompt for one, and the
parse of its answer.

A candidate is asked about when, for the retriever that found it, its score is at least the positive's score minus
``margin`` x |the positive's score| (it outranks the positive, or comes within the margin). An answer is ``yes``
(the candidate answers the query or states the sentence: a false negative), ``no``, or a failure of one kind:
``empty``, ``truncated``, ``refusal``, ``invalid_json``, ``missing_verdict``, ``unknown_verdict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pairforge.generation.parse import REFUSAL, extract_json
from prompts import Prompt, render_values

FAILURE_KINDS = ("empty", "truncated", "refusal", "invalid_json", "missing_verdict", "unknown_verdict")
LABELS = {"qp": "问题", "sp": "复述句", "human": "问题"}
ASKS = {
    "qp": "这段候选段落能回答这个问题吗？",
    "sp": "这段候选段落陈述了这个复述句所说的事实吗？",
    "human": "这段候选段落能回答这个问题吗？",
}
# What a model may write for each verdict beyond the schema's own words (an unconstrained backend).
YES = {"yes", "true", "是", "能", "对"}
NO = {"no", "false", "否", "不能", "不是", "不"}
RETRIEVERS = ("bm25", "dense")


@dataclass(frozen=True, slots=True)
class Adjudication:
    """One answer: ``confirmed`` (the candidate is a false negative) or ``failure`` (the answer said nothing)."""

    confirmed: bool | None = None
    failure: str | None = None


def candidates_to_ask(row: dict[str, Any], margin: float, max_candidates: int) -> list[tuple[str, float, str]]:
    """The ``(pool id, score, retriever)`` of a candidate row's candidates to ask about, highest score first within
    each retriever, each id once, at most ``max_candidates``; none when the row has no positive score (a positive
    outside the pool) for any retriever."""
    chosen: dict[str, tuple[str, float, str]] = {}
    ranked: list[tuple[int, str, float, str]] = []  # (rank, id, score, retriever): interleave retrievers by rank
    for source in RETRIEVERS:
        ids, own = row.get(f"{source}_ids"), row.get(f"{source}_positive_score")
        if ids is None or own is None:
            continue
        floor = own - margin * abs(own)
        for rank, (pid, score) in enumerate(zip(ids, row[f"{source}_scores"], strict=True)):
            if score < floor:
                break  # candidates are stored best first
            if pid != row.get("positive_id"):
                ranked.append((rank, pid, score, source))
    for _, pid, score, source in sorted(ranked, key=lambda r: (r[0], RETRIEVERS.index(r[3]))):
        if pid not in chosen and len(chosen) < max_candidates:
            chosen[pid] = (pid, score, source)
    return list(chosen.values())


def render_adjudication(prompt: Prompt, *, kind: str, query: str, passage: str) -> list[dict[str, str]]:
    """The chat messages asking whether ``passage`` answers ``query`` (qp, human) or states it (sp)."""
    if kind not in LABELS:
        raise ValueError(f"adjudication asks about qp, sp and human pairs, not {kind!r}")
    # One line: a newline in a generated query must not start a line of its own in the prompt.
    return render_values(prompt, passage=passage, query=" ".join(query.split()), label=LABELS[kind], ask=ASKS[kind])


def parse_adjudication(raw: str, finish_reason: str = "stop") -> Adjudication:
    """The verdict in one answer, or why there is none."""
    text = raw.strip()
    if not text:
        return Adjudication(failure="empty")
    obj = extract_json(text)
    if obj is None:
        if finish_reason == "length":
            return Adjudication(failure="truncated")
        return Adjudication(failure="refusal" if REFUSAL.search(text) else "invalid_json")
    if "verdict" not in obj:
        return Adjudication(failure="missing_verdict")
    value = obj["verdict"]
    word = str(value).strip().lower() if isinstance(value, (str, bool)) else None
    if word in YES:
        return Adjudication(confirmed=True)
    if word in NO:
        return Adjudication(confirmed=False)
    return Adjudication(failure="unknown_verdict")
