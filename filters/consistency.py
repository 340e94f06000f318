"""Round-trip consistency (as Promptagator): a generated query must retrieve its own passage from the
passage pool within the top k by BM25. Rank and score are kept on every pair, so the cut can be retuned."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from pairforge.negatives.bm25 import build_bm25_index


class RoundTrip:
    """BM25 over the passage pool, answering "where does this query rank its passage?"."""

    def __init__(self, passage_ids: Sequence[str], passage_texts: Sequence[str]) -> None:
        self.position = {pid: i for i, pid in enumerate(passage_ids)}
        self._folder = tempfile.TemporaryDirectory(prefix="pairforge-roundtrip-")
        batches = [
            (passage_ids[i : i + 20_000], passage_texts[i : i + 20_000]) for i in range(0, len(passage_ids), 20_000)
        ]
        self.index = build_bm25_index(batches, Path(self._folder.name) / "bm25")

    def ranks(self, queries: Sequence[str], passage_ids: Sequence[str], batch: int = 256) -> tuple[list, list]:
        """(rank, score) of each query's own passage: rank 1 is best; None where the passage is not in the pool."""
        own = [self.position.get(pid) for pid in passage_ids]
        known = [i for i, at in enumerate(own) if at is not None]
        found, found_scores = self.index.rank_of([queries[i] for i in known], [at for at in own if at is not None])
        ranks: list[int | None] = [None] * len(queries)
        scores: list[float | None] = [None] * len(queries)
        for j, i in enumerate(known):
            ranks[i], scores[i] = int(found[j]), float(found_scores[j])
        return ranks, scores
