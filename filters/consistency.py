"""Round-trip consistency (as Promptagator), judged relative to the pool: a generated query must rank its own passage
among all pool passages by BM25 within ``rank_cut`` (the larger of ``consistency_top_k`` and
``consistency_max_rank_share`` of the pool), with a positive score; ``not_retrievable`` otherwise.

Why a share: each other passage outranks the positive with some chance p (how specific the query is), so the rank
grows with the pool, about 1 + p × pool size. A fixed top k therefore drops more pairs the larger the pool (issue
20: 38% → 62% → 85% at 10k → 100k → 1M passages, k = 20); a cut at a share of the pool keeps the same queries.
In a pool under ``consistency_min_pool`` passages BM25 has no statistics to judge by (in 2 passages every IDF is <= 0,
so no query scores above 0): the check is skipped there and the pairs counted as ``round_trip_skipped``.

With a dense retriever configured (``consistency_retriever`` dense or hybrid) the positive is also ranked by
cosine, and hybrid fuses both ranks by reciprocal rank fusion (filters/hybrid.py); in a pool too small for BM25 the
dense rank judges instead of the check being skipped. ``consistency_criterion: margin`` judges by the positive's
score margin against the best other passage instead of its rank.

Every pair it ranks keeps its rank and score (skipped ones too), and its margin where it was computed (the margin
criterion, or a dense or hybrid rank), so the cut can be retuned without recomputing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from filters.base import Pair, PairFilter
from filters.hybrid import hybrid_rank, judge_margin, rank_dense, rrf_score, score_margin
from pairforge.config import FilterConfig, RunConfig
from pairforge.negatives.bm25 import BM25Index
from pairforge.pool import Pool
from pairforge.workdir import Workdir

Ranked = tuple[int, float, float | None]  # a positive's rank, score and margin against the best other passage


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
    """Ranks each query's own passage among all pool passages with the run's BM25 index, the dense retriever or
    both fused (``consistency_retriever``), and judges it by rank or score margin (``consistency_criterion``);
    ``skipped`` counts the pairs ranked but not judged, in a pool too small for BM25's statistics and no dense rank."""

    reasons = ("not_retrievable",)

    def __init__(self, pool: Pool, index: BM25Index, settings: FilterConfig, dense: DenseRanker | None = None) -> None:
        super().__init__()
        self.pool, self.index, self.settings, self.dense = pool, index, settings, dense
        small = index.n_docs < settings.consistency_min_pool
        self.mode = settings.consistency_retriever if dense is not None else "bm25"
        if small and self.mode == "hybrid":
            self.mode = "dense"  # BM25 has no statistics here: the dense rank alone judges
        self.judged = not small or self.mode != "bm25"
        top_k = settings.consistency_top_k or 1
        self.cut = rank_cut(index.n_docs, top_k, settings.consistency_max_rank_share)
        self.skipped = 0

    def check(self, pairs: Sequence[Pair]) -> list[str | None]:
        positions = self.pool.positions([p["passage_id"] for p in pairs])
        inside = [i for i, at in enumerate(positions) if at >= 0]
        out: list[str | None] = ["not_retrievable"] * len(pairs)  # a passage outside the pool cannot be found
        if inside:
            queries, own = [pairs[i]["query"] for i in inside], positions[inside]
            for i, (rank, score, margin) in zip(inside, self._rank(queries, own), strict=True):
                pairs[i]["consistency_rank"], pairs[i]["consistency_score"] = rank, score
                pairs[i]["consistency_margin"] = margin
                out[i] = self._judge(rank, score, margin) if self.judged else None
            self.skipped += 0 if self.judged else len(inside)
        return out

    def details(self) -> dict[str, int]:
        return {"round_trip_skipped": self.skipped} if self.skipped else {}  # a pool too small to judge by

    def _judge(self, rank: int, score: float, margin: float | None) -> str | None:
        s = self.settings
        if self.mode == "bm25" and score <= 0:
            return "not_retrievable"  # no informative term shared: not found, whatever the rank
        if s.consistency_criterion == "margin":
            assert margin is not None
            return judge_margin(margin, s.consistency_max_margin)
        return None if rank <= self.cut else "not_retrievable"

    def _rank(self, queries: list[str], own: np.ndarray) -> list[Ranked]:
        """(rank, score, margin against the best other passage) of each query's positive under the mode."""
        s = self.settings
        depth = min(max(s.consistency_depth, self.cut), self.index.n_docs)
        if self.mode == "dense":
            assert self.dense is not None
            d_ranks, d_scores, d_best, _ = self.dense.rank(queries, own, depth)
            return _with_margins(d_ranks.tolist(), d_scores.tolist(), [_finite(b) for b in d_best.tolist()])
        bm25_ranks, bm25_scores = self.index.rank_of(queries, own.tolist())
        if self.mode == "bm25" and s.consistency_criterion == "rank_share":  # the margin needs a search: skip it
            return [(int(r), float(c), None) for r, c in zip(bm25_ranks, bm25_scores, strict=True)]
        top, top_scores = self.index.search(queries, depth)
        if self.mode == "bm25":
            best = [_best_other(t, sc, p) for t, sc, p in zip(top, top_scores, own.tolist(), strict=True)]
            return _with_margins(bm25_ranks.tolist(), bm25_scores.tolist(), best)
        assert self.dense is not None
        dense_ranks, _, _, dense_top = self.dense.rank(queries, own, depth)
        out: list[Ranked] = []
        for i, p in enumerate(own.tolist()):
            retrieved = [int(d) for d, sc in zip(top[i], top_scores[i], strict=True) if d >= 0 and sc > 0]
            dense_ids = [int(d) for d in dense_top[i] if d >= 0]
            own_ranks = (int(bm25_ranks[i]) if bm25_scores[i] > 0 else None, int(dense_ranks[i]))
            rank, fused = hybrid_rank(retrieved, dense_ids, p, own_ranks, s.consistency_rrf_k)
            out.append((rank, fused, score_margin(fused, best_fused(retrieved, dense_ids, p, s.consistency_rrf_k))))
        return out


class DenseRanker:
    """Ranks positives by cosine over the pool's stored embeddings (the index stage's), encoding the queries with
    ``mine.dense_model`` through the run's embedding cache."""

    def __init__(self, config: RunConfig, output: Workdir) -> None:
        self.config, self.output = config, output

    def rank(
        self, queries: list[str], positives: np.ndarray, depth: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``rank_dense`` of the encoded queries against the pool."""
        from pairforge.negatives.dense import Embedder
        from pairforge.negatives.index import dense_device, open_embeddings

        mine = self.config.mine
        assert mine.dense_model  # checked by RunConfig
        docs = open_embeddings(self.output, Pool(self.output.pool).size)
        embedder = Embedder(mine.dense_model, batch_size=mine.dense_batch_size, device=dense_device(self.config),
                            cache=self.output.embeddings)  # fmt: skip
        try:
            encoded = embedder.encode(queries)
        finally:
            embedder.close()
        return rank_dense(encoded, docs, positives.tolist(), depth)


def dense_ranker(config: RunConfig, output: Workdir) -> DenseRanker | None:
    """The round trip's dense ranker when ``filter.consistency_retriever`` asks for one."""
    return None if config.filter.consistency_retriever == "bm25" else DenseRanker(config, output)


def best_fused(bm25_ids: Sequence[int], dense_ids: Sequence[int], positive: int, k: int) -> float | None:
    """The highest fused score of a passage other than ``positive`` in either top list (None: no other)."""
    at_bm25 = {pid: r for r, pid in enumerate(bm25_ids, 1)}
    at_dense = {pid: r for r, pid in enumerate(dense_ids, 1)}
    scores = [
        rrf_score((at_bm25.get(p), at_dense.get(p)), k) for p in at_bm25.keys() | at_dense.keys() if p != positive
    ]
    return max(scores, default=None)


def _best_other(top: np.ndarray, scores: np.ndarray, positive: int) -> float | None:
    return next((float(sc) for d, sc in zip(top.tolist(), scores.tolist(), strict=True) if d >= 0 and d != positive),
                None)  # fmt: skip


def _with_margins(ranks: list[int], scores: list[float], best: list[float | None]) -> list[Ranked]:
    return [(int(r), float(c), score_margin(float(c), b)) for r, c, b in zip(ranks, scores, best, strict=True)]


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
