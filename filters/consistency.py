"""Round-trip consistency (as Promptagator), judged relative to the pool: a generated query must rank its own passage
among all pool passages by BM25 within ``rank_cut`` (the larger of ``consistency_top_k`` and
``consistency_max_rank_share`` of the pool), with a positive score; ``not_retrievable`` otherwise.

Why a share: each other passage outranks the positive with some chance p (how specific the query is), so the rank
grows with the pool, about 1 + p × pool size. A fixed top k therefore drops more pairs the larger the pool (issue
20: 38% → 62% → 85% at 10k → 100k → 1M passages, k = 20); a cut at a share of the pool keeps the same queries.
In a pool under ``consistency_min_pool`` passages BM25 has no statistics to judge by (in 2 passages every IDF is <= 0,
so no query scores above 0): the check is skipped there and the pairs counted as ``round_trip_skipped``.

Every pair it ranks keeps its rank and score (skipped ones too), so the cut can be retuned without recomputing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from filters.base import Pair, PairFilter
from pairforge.config import FilterConfig
from pairforge.negatives.bm25 import BM25Index
from pairforge.pool import Pool


def rank_cut(pool_size: int, top_k: int, max_rank_share: float | None) -> int:
    """The largest rank that passes in a pool of ``pool_size`` passages: ``top_k``, or ``max_rank_share`` of the
    pool where that is larger (no share: ``top_k`` at every size)."""
    if max_rank_share is None:
        return top_k
    return max(top_k, math.floor(max_rank_share * pool_size + 1e-9))  # 0.002 × 100k is 200.00000000000003


def judge_round_trip(rank: int, score: float, cut: int) -> str | None:
    """``not_retrievable`` unless the positive ranks within ``cut`` with a positive score (a query sharing no
    informative term with its passage is not found, whatever its rank among equally zero-scored passages)."""
    return None if rank <= cut and score > 0 else "not_retrievable"


class RoundTripFilter(PairFilter):
    """Ranks each query's own passage among all pool passages with the run's BM25 index; ``skipped`` counts the
    pairs ranked but not judged, in a pool too small for BM25's statistics."""

    reasons = ("not_retrievable",)

    def __init__(self, pool: Pool, index: BM25Index, settings: FilterConfig) -> None:
        super().__init__()
        self.pool, self.index = pool, index
        self.judged = index.n_docs >= settings.consistency_min_pool
        top_k = settings.consistency_top_k or 1
        self.cut = rank_cut(index.n_docs, top_k, settings.consistency_max_rank_share)
        self.skipped = 0

    def check(self, pairs: Sequence[Pair]) -> list[str | None]:
        positions = self.pool.positions([p["passage_id"] for p in pairs])
        inside = [i for i, at in enumerate(positions) if at >= 0]
        out: list[str | None] = ["not_retrievable"] * len(pairs)  # a passage outside the pool cannot be found
        if inside:
            ranks, scores = self.index.rank_of([pairs[i]["query"] for i in inside], positions[inside].tolist())
            for i, rank, score in zip(inside, ranks.tolist(), scores.tolist(), strict=True):
                pairs[i]["consistency_rank"], pairs[i]["consistency_score"] = int(rank), float(score)
                out[i] = judge_round_trip(int(rank), float(score), self.cut) if self.judged else None
            self.skipped += 0 if self.judged else len(inside)
        return out
