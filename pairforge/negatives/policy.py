"""Positive-aware selection of hard negatives from stored candidates ("mine once, select many").

A candidate row holds, per retriever (``bm25``, ``dense``), the top ``range_max`` pool ids with scores and the
query's score for its own positive. Selection walks ranks ``range_min..range_max`` and keeps a candidate only
if it passes every guard, then takes ``num_negatives`` (``top`` or ``random``), split ``bm25_share`` : rest
when both retrievers were mined, and fills a shortfall with random pool passages that pass the same guards.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pairforge.config import MineConfig

GUARDS = (
    "positive",
    "other_positive",
    "false_negative",
    "near_duplicate_of_positive",
    "contains_answer",
    "margin",
    "max_score",
)
MIN_ANSWER_CHARS = 2  # a one-character answer ("3") is in most passages; guarding on it empties the pool
RETRIEVERS = ("bm25", "dense")


@dataclass
class MineSummary:
    """Counts from one selection (and the mining before it); ``--json`` prints this."""

    queries: int = 0
    with_full_negatives: int = 0
    negatives: int = 0
    shortfall: int = 0
    topped_up: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    positive_score_mean: dict[str, float] = field(default_factory=dict)
    negative_score_mean: dict[str, float] = field(default_factory=dict)
    # sums and counts behind the means, so shards' summaries add up (``score_means``)
    positive_score_sum: dict[str, float] = field(default_factory=dict)
    positive_score_n: dict[str, int] = field(default_factory=dict)
    negative_score_sum: dict[str, float] = field(default_factory=dict)
    negative_score_n: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_means(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` (a summed MineSummary dict) with the score means recomputed from the sums and counts."""
    out = dict(details)
    for side in ("positive", "negative"):
        sums, counts = details.get(f"{side}_score_sum", {}), details.get(f"{side}_score_n", {})
        out[f"{side}_score_mean"] = {r: round(sums[r] / counts[r], 4) for r in sums if counts.get(r)}
    return out


@dataclass
class _Tally:
    summary: MineSummary = field(default_factory=MineSummary)
    skipped: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    pos_scores: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in RETRIEVERS})
    neg_scores: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in RETRIEVERS})

    def close(self) -> MineSummary:
        s = self.summary
        s.skipped = {g: self.skipped[g] for g in GUARDS}
        s.by_source = dict(self.by_source)
        s.positive_score_mean = {r: _mean(v) for r, v in self.pos_scores.items() if v}
        s.negative_score_mean = {r: _mean(v) for r, v in self.neg_scores.items() if v}
        s.positive_score_sum = {r: float(sum(v)) for r, v in self.pos_scores.items() if v}
        s.positive_score_n = {r: len(v) for r, v in self.pos_scores.items() if v}
        s.negative_score_sum = {r: float(sum(v)) for r, v in self.neg_scores.items() if v}
        s.negative_score_n = {r: len(v) for r, v in self.neg_scores.items() if v}
        return s


def select_all(
    candidates: Sequence[dict[str, Any]],
    pool_ids: Sequence[str],
    config: MineConfig,
    is_near_duplicate: Callable[[str, str], bool],
    text_of: Callable[[str], str],
    positives_of: dict[str, set[str]] | None = None,
) -> tuple[list[list[tuple[str, float, str]]], MineSummary]:
    """Negatives ``(id, score, source)`` for every candidate row, and the counts.

    ``is_near_duplicate(pool_id, pair_id)`` says whether a pool passage is a MinHash twin of any positive of
    that pair's query; ``text_of(pool_id)`` is the passage text (for the answer guard); ``positives_of`` maps a
    query to positive ids it has beyond these rows (the same query elsewhere in the run)."""
    positives_of = {q: set(ids) for q, ids in (positives_of or {}).items()}
    for c in candidates:
        if c["positive_id"] is not None:
            positives_of.setdefault(c["query"], set()).add(c["positive_id"])
    tally = _Tally()
    chosen = []
    for c in candidates:
        twin = functools.partial(_swap, is_near_duplicate, c["pair_id"])
        chosen.append(select_negatives(c, positives_of.get(c["query"], set()), config, twin, pool_ids, text_of, tally))
    return chosen, tally.close()


def _swap(is_near_duplicate: Callable[[str, str], bool], pair_id: str, pid: str) -> bool:
    return is_near_duplicate(pid, pair_id)


def select_negatives(
    candidate: dict[str, Any],
    positives: set[str],
    config: MineConfig,
    is_near_duplicate: Callable[[str], bool],
    pool_ids: Sequence[str],
    text_of: Callable[[str], str],
    tally: _Tally,
) -> list[tuple[str, float, str]]:
    """The negatives of one candidate row, best first within each source."""
    rng = random.Random(f"{config.seed}:{candidate['pair_id']}")
    confirmed = set(candidate.get("false_negative_ids") or ())
    answers = [a for a in candidate.get("answers") or [] if len(a) >= MIN_ANSWER_CHARS] if config.answer_guard else []
    allowed: dict[str, list[tuple[str, float, str]]] = {}
    for source in RETRIEVERS:
        ids = candidate.get(f"{source}_ids")
        if ids is None:
            continue
        own = candidate.get(f"{source}_positive_score")
        if own is not None:
            tally.pos_scores[source].append(own)
        allowed[source] = []
        for rank, (pid, score) in enumerate(zip(ids, candidate[f"{source}_scores"], strict=True)):
            if rank < config.range_min:
                continue
            reason = _guard(pid, score, own, candidate["positive_id"], positives, config, is_near_duplicate)
            if pid in confirmed:  # the LLM said it answers the query (mine.adjudicate): never a negative
                reason = "false_negative"
            if not reason and answers and any(a in text_of(pid) for a in answers):
                reason = "contains_answer"
            if reason:
                tally.skipped[reason] += 1
            else:
                allowed[source].append((pid, score, source))
    n = config.num_negatives
    quota = {"bm25": round(n * config.bm25_share), "dense": n - round(n * config.bm25_share)}
    if len(allowed) == 1:
        quota = {source: n for source in allowed}
    chosen: list[tuple[str, float, str]] = []
    for source, items in allowed.items():  # each source's quota, then the others' leftovers
        chosen += _take(items, quota[source], {c[0] for c in chosen}, config.sampling_strategy, rng)
    for items in allowed.values():
        chosen += _take(items, n - len(chosen), {c[0] for c in chosen}, config.sampling_strategy, rng)
    if len(chosen) < n and config.top_up == "random":
        taken = {c[0] for c in chosen} | positives | {candidate["positive_id"]} | confirmed

        def unfit(pid: str) -> bool:
            return is_near_duplicate(pid) or any(a in text_of(pid) for a in answers)

        extra = _random_top_up(n - len(chosen), taken, unfit, pool_ids, rng)
        tally.summary.topped_up += len(extra)
        chosen += extra
    s = tally.summary
    s.queries += 1
    s.negatives += len(chosen)
    s.with_full_negatives += len(chosen) == n
    s.shortfall += n - len(chosen)
    for _, score, source in chosen:
        tally.by_source[source] += 1
        if source in tally.neg_scores:
            tally.neg_scores[source].append(score)
    return chosen


def _take(
    items: list[tuple[str, float, str]], k: int, taken: set[str], strategy: str, rng: random.Random
) -> list[tuple[str, float, str]]:
    free = [item for item in items if item[0] not in taken]
    if k <= 0 or not free:
        return []
    if strategy == "random" and len(free) > k:
        picked = set(rng.sample(range(len(free)), k))
        return [item for i, item in enumerate(free) if i in picked]
    return free[:k]


def _random_top_up(
    k: int,
    taken: set[str],
    unfit: Callable[[str], bool],
    pool_ids: Sequence[str],
    rng: random.Random,
) -> list[tuple[str, float, str]]:
    """Random pool passages that are neither positives nor their twins (bounded tries: tiny pools fall short)."""
    out: list[tuple[str, float, str]] = []
    for _ in range(min(20 * k, 4 * len(pool_ids))):
        if len(out) == k:
            break
        pid = pool_ids[rng.randrange(len(pool_ids))]
        if pid in taken or unfit(pid):
            continue
        taken.add(pid)
        out.append((pid, 0.0, "random"))
    return out


def _guard(
    pid: str,
    score: float,
    positive_score: float | None,
    positive: str | None,
    positives: set[str],
    config: MineConfig,
    is_near_duplicate: Callable[[str], bool],
) -> str | None:
    if pid == positive:
        return "positive"
    if pid in positives:
        return "other_positive"
    if positive_score is not None:
        if config.relative_margin is not None and score > (1 - config.relative_margin) * positive_score:
            return "margin"
        if config.absolute_margin is not None and score > positive_score - config.absolute_margin:
            return "margin"
    if config.max_score is not None and score > config.max_score:
        return "max_score"
    if is_near_duplicate(pid):
        return "near_duplicate_of_positive"
    return None


def format_stats(summary: dict[str, Any]) -> str:
    """A plain-text table like sentence-transformers' mining stats, from a selection's summary (``to_dict``)."""
    lines = [f"{'metric':<38}{'value':>12}"]
    rows: list[tuple[str, Any]] = [("queries", summary["queries"])]
    rows += [("with all negatives", summary["with_full_negatives"])]
    rows += [(f"{r} positive score (mean)", v) for r, v in summary["positive_score_mean"].items()]
    rows += [(f"{r} negative score (mean)", v) for r, v in summary["negative_score_mean"].items()]
    rows += [(f"negatives from {s}", n) for s, n in sorted(summary["by_source"].items())]
    rows += [(f"skipped: {g}", n) for g, n in summary["skipped"].items()]
    rows += [("random top-up", summary["topped_up"]), ("shortfall", summary["shortfall"])]
    lines += [f"{name:<38}{value:>12}" for name, value in rows]
    return "\n".join(lines)


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4)
