"""Positive-aware selection of hard negatives from stored candidates ("mine once, select many")."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pairforge.config import MineConfig

GUARDS = ("positive", "other_positive", "near_duplicate_of_positive", "margin", "max_score")


@dataclass
class SelectionStats:
    """What selection kept, skipped by guard, and fell short of."""

    queries: int = 0
    with_full_negatives: int = 0
    shortfall: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def select_negatives(
    candidate: dict[str, Any],
    positives_of_query: set[str],
    config: MineConfig,
    is_near_duplicate: Callable[[str, str], bool],
    stats: SelectionStats,
) -> tuple[list[str], list[float]]:
    """Negative ids and scores for one candidate row (``positive_id``, ``ids``, ``scores``, ``positive_score``)."""
    rng = random.Random(f"{config.seed}:{candidate['pair_id']}")
    positive, positive_score = candidate["positive_id"], candidate["positive_score"]
    allowed: list[tuple[str, float]] = []
    for rank, (pid, score) in enumerate(zip(candidate["ids"], candidate["scores"], strict=True)):
        if rank < config.range_min:
            continue
        reason = _guard(pid, score, positive, positive_score, positives_of_query, config, is_near_duplicate)
        if reason:
            stats.skipped[reason] += 1
            continue
        allowed.append((pid, score))
    if config.sampling_strategy == "random" and len(allowed) > config.num_negatives:
        allowed = sorted(rng.sample(allowed, config.num_negatives), key=lambda x: -x[1])
    chosen = allowed[: config.num_negatives]
    stats.queries += 1
    if len(chosen) == config.num_negatives:
        stats.with_full_negatives += 1
    else:
        stats.shortfall += config.num_negatives - len(chosen)
    return [pid for pid, _ in chosen], [float(s) for _, s in chosen]


def _guard(
    pid: str,
    score: float,
    positive: str,
    positive_score: float | None,
    positives: Sequence[str] | set[str],
    config: MineConfig,
    is_near_duplicate: Callable[[str, str], bool],
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
    if is_near_duplicate(pid, positive):
        return "near_duplicate_of_positive"
    return None
