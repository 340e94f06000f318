"""Round-trip consistency (as Promptagator): a generated query must retrieve its own passage from the whole pool
within the top k by BM25, with a positive score (``not_retrievable`` otherwise). Every pair it checks keeps its
rank and score, so the cut can be retuned without recomputing."""

from __future__ import annotations

from collections.abc import Sequence

from filters.base import Pair, PairFilter
from pairforge.negatives.bm25 import BM25Index
from pairforge.pool import Pool


class RoundTripFilter(PairFilter):
    """Ranks each query's own passage among all pool passages with the run's BM25 index."""

    reasons = ("not_retrievable",)

    def __init__(self, pool: Pool, index: BM25Index, top_k: int) -> None:
        super().__init__()
        self.pool, self.index, self.top_k = pool, index, top_k

    def check(self, pairs: Sequence[Pair]) -> list[str | None]:
        positions = self.pool.positions([p["passage_id"] for p in pairs])
        inside = [i for i, at in enumerate(positions) if at >= 0]
        out: list[str | None] = ["not_retrievable"] * len(pairs)  # a passage outside the pool cannot be found
        if inside:
            ranks, scores = self.index.rank_of([pairs[i]["query"] for i in inside], positions[inside].tolist())
            for i, rank, score in zip(inside, ranks.tolist(), scores.tolist(), strict=True):
                pairs[i]["consistency_rank"], pairs[i]["consistency_score"] = int(rank), float(score)
                out[i] = None if rank <= self.top_k and score > 0 else "not_retrievable"  # no shared term: not found
        return out
