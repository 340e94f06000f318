"""The round trip's ranks beyond BM25: a dense rank of the positive, a hybrid rank by reciprocal rank fusion (RRF) of
the BM25 and dense ranks, and a score margin against the best other passage. Pure functions over ranks and scores,
plus one that ranks positives by cosine over the pool's stored embeddings.

Why RRF: BM25 scores and cosines are on different scales, ranks are not. A passage's fused score is
``1/(k + bm25 rank) + 1/(k + dense rank)``; the positive's hybrid rank is 1 plus the number of passages, among the
union of both retrievers' top ``depth``, whose fused score is higher. A passage in neither list scores at most
``2/(k + depth + 1)``, so a positive that scores above that is ranked exactly; one that does not is counted as past
both lists (rank ``depth + 1`` at least), which the cut (at most ``depth``) drops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BATCH = 64  # queries scored against the whole pool at once: BATCH x pool floats of memory


def rrf_score(ranks: Sequence[int | None], k: int) -> float:
    """The fused score of a passage at ``ranks`` (1-based; None: not in that retriever's list)."""
    return sum(1.0 / (k + r) for r in ranks if r is not None)


def hybrid_rank(
    bm25_ids: Sequence[int],
    dense_ids: Sequence[int],
    positive: int,
    positive_ranks: tuple[int | None, int | None],
    k: int,
) -> tuple[int, float]:
    """The positive's rank and fused score among the union of both top lists (best first, pool positions), given
    its own 1-based BM25 and dense ranks over the whole pool (None: that retriever does not find it)."""
    own = rrf_score(positive_ranks, k)
    at_bm25 = {pid: r for r, pid in enumerate(bm25_ids, 1)}
    at_dense = {pid: r for r, pid in enumerate(dense_ids, 1)}
    higher = sum(
        1
        for pid in at_bm25.keys() | at_dense.keys()
        if pid != positive and rrf_score((at_bm25.get(pid), at_dense.get(pid)), k) > own
    )
    depth = max(len(bm25_ids), len(dense_ids))
    if own <= 2.0 / (k + depth + 1):  # passages outside both lists could score as high: past the lists
        return max(higher, depth) + 1, own
    return higher + 1, own


def score_margin(own: float, best_other: float | None) -> float:
    """How far the positive's score falls short of the best other passage's, relative to it: 0.1 is 10% below;
    negative when the positive is the best (no other passage: -1)."""
    if best_other is None:
        return -1.0
    return (best_other - own) / max(abs(best_other), 1e-12)


def judge_margin(margin: float, max_margin: float) -> str | None:
    """``not_retrievable`` when the positive falls more than ``max_margin`` short of the best other passage."""
    return None if margin <= max_margin else "not_retrievable"


def rank_dense(
    queries: np.ndarray, docs: np.ndarray, positives: Sequence[int], depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each (normalised) query embedding and its positive's pool position: the positive's 1-based cosine rank
    over the whole pool, its cosine, the best other passage's cosine (nan in a pool of one) and the top ``depth``
    positions (best first). Memory: ``BATCH`` x pool floats."""
    n, size = len(positives), docs.shape[0]
    ranks, own, best = np.zeros(n, np.int64), np.zeros(n, np.float64), np.full(n, np.nan)
    top = np.full((n, min(depth, size)), -1, np.int64)
    for start in range(0, n, BATCH):
        scores = np.asarray(queries[start : start + BATCH] @ np.asarray(docs).T, dtype=np.float64)
        for i, row in enumerate(scores):
            at = int(positives[start + i])
            own[start + i] = row[at]
            ranks[start + i] = 1 + int((row > row[at]).sum())
            others = np.delete(row, at)
            best[start + i] = others.max() if others.size else np.nan
            k = top.shape[1]
            head = np.argpartition(-row, k - 1)[:k] if k < size else np.arange(size)
            top[start + i] = head[np.argsort(-row[head], kind="stable")]
    return ranks, own, best, top
