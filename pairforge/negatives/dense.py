"""Dense retrieval: an embedder over any sentence-transformers model folder, with an embedding cache, and
exact top-k by blocked matrix products (memory bounded: never a full queries × documents matrix)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class Embedder:
    """Normalised embeddings of texts; vectors already computed for (model, text) come from the cache."""

    def __init__(
        self,
        model_path: str,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        cache: Path | None = None,
        model: Any | None = None,
    ) -> None:
        if model is None:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(model_path, device=device)
        self.model, self.batch_size = model, batch_size
        self.model_id = hashlib.sha256(str(model_path).encode()).hexdigest()[:16]
        self.encoded = 0  # texts sent to the model, over this embedder's life
        self._db: sqlite3.Connection | None = None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(cache)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model_id}\x1f{text}".encode()).hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts) × dim) float32 array of unit vectors, in the order given."""
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        if self._db is not None:
            for i in range(0, len(keys), 500):
                batch = keys[i : i + 500]
                rows = self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(batch))})", batch
                )
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        todo_texts = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        if todo_texts:
            vectors = self.model.encode(
                todo_texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            self.encoded += len(todo_texts)
            fresh = {self._key(t): v for t, v in zip(todo_texts, vectors, strict=True)}
            found.update(fresh)
            if self._db is not None:
                with self._db:
                    self._db.executemany(
                        "INSERT OR IGNORE INTO vectors VALUES (?, ?)", [(k, v.tobytes()) for k, v in fresh.items()]
                    )
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float32)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def top_k_dense(
    queries: np.ndarray, docs: np.ndarray, k: int, *, block: int = 8192, query_batch: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` documents by inner product for each query (best first, ties: lower index first).
    Memory holds ``query_batch × (k + block)`` scores at a time."""
    k = min(k, len(docs))
    top_idx = np.zeros((len(queries), k), dtype=np.int64)
    top_scores = np.zeros((len(queries), k), dtype=np.float32)
    for q0 in range(0, len(queries), query_batch):
        q = queries[q0 : q0 + query_batch]
        best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
        best_i = np.zeros((len(q), 0), dtype=np.int64)
        for d0 in range(0, len(docs), block):
            scores = q @ docs[d0 : d0 + block].T
            idx = np.broadcast_to(np.arange(d0, d0 + scores.shape[1]), scores.shape)
            cand_s, cand_i = np.concatenate([best_s, scores], axis=1), np.concatenate([best_i, idx], axis=1)
            order = np.lexsort((cand_i, -cand_s), axis=1)[:, :k]
            best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
        top_idx[q0 : q0 + len(q)], top_scores[q0 : q0 + len(q)] = best_i, best_s
    return top_idx, top_scores


def top_k_faiss(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same exact top-``k`` by inner product through faiss (``IndexFlatIP``: SIMD, multi-threaded),
    for large pools; needs faiss-cpu (the ``dense`` extra)."""
    try:
        import faiss
    except ImportError:
        raise ValueError(
            "mine.dense_index is faiss but faiss is not installed: pip install 'pairforge[dense]'"
        ) from None
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(np.ascontiguousarray(docs, dtype=np.float32))
    scores, top = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(docs)))
    return top.astype(np.int64), scores
