"""Round-trip consistency (as Promptagator): a generated query must retrieve its own passage from the
passage pool within the top k by BM25. Rank and score are kept on every pair, so the cut can be retuned."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pairforge.negatives.bm25 import BM25Index, tokenize


class RoundTrip:
    """BM25 over the passage pool, answering "where does this query rank its passage?"."""

    def __init__(self, passage_ids: Sequence[str], passage_texts: Sequence[str]) -> None:
        self.position = {pid: i for i, pid in enumerate(passage_ids)}
        self.index = BM25Index(tokenize(passage_texts))

    def ranks(self, queries: Sequence[str], passage_ids: Sequence[str], batch: int = 256) -> tuple[list, list]:
        """(rank, score) of each query's own passage: rank 1 is best; None where the passage is not in the pool."""
        ranks: list[int | None] = []
        scores: list[float | None] = []
        tokens = tokenize(queries)
        for start in range(0, len(queries), batch):
            matrix = self.index.scores(tokens[start : start + batch])
            for row, pid in zip(matrix, passage_ids[start : start + batch], strict=True):
                own = self.position.get(pid)
                if own is None:
                    ranks.append(None)
                    scores.append(None)
                    continue
                ranks.append(int(np.count_nonzero(row > row[own])) + 1)
                scores.append(float(row[own]))
        return ranks, scores
