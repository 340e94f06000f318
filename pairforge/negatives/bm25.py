"""BM25 with rank-bm25's BM25Okapi semantics on a sparse matrix.

Per-term, per-document weights ``idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))`` are
precomputed once; a query's scores are one sparse product. The IDF is rank-bm25's, floor included:
``log(N - df + 0.5) - log(df + 0.5)``, and a negative IDF (a term in more than half of the documents)
becomes ``epsilon * mean IDF``. Query terms count with their multiplicity, as rank-bm25 loops over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """jieba tokens (rjieba: the same segmenter in Rust), whitespace tokens dropped."""
    import rjieba

    return [[t for t in rjieba.cut(text) if t.strip()] for text in texts]


class BM25Index:
    """A BM25Okapi index over tokenised documents."""

    def __init__(self, corpus: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        self.vocab: dict[str, int] = {}
        rows, cols = [], []
        for d, doc in enumerate(corpus):
            for token in doc:
                rows.append(d)
                cols.append(self.vocab.setdefault(token, len(self.vocab)))
        n_docs, n_terms = len(corpus), len(self.vocab)
        tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_docs, n_terms))
        tf.sum_duplicates()
        doc_len = np.asarray([len(doc) for doc in corpus], dtype=np.float64)
        df = np.bincount(tf.indices, minlength=n_terms).astype(np.float64)
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        idf[idf < 0] = epsilon * idf.mean() if n_terms else 0.0
        norm = k1 * (1 - b + b * doc_len / doc_len.mean()) if n_docs else doc_len
        row_of = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        data = idf[tf.indices] * tf.data * (k1 + 1) / (tf.data + norm[row_of])
        # term-major, so a query reads only its terms' columns
        self.weights = sp.csr_matrix((data, tf.indices, tf.indptr), shape=(n_docs, n_terms)).T.tocsr()
        self.n_docs = n_docs

    def _query_matrix(self, queries: Sequence[Sequence[str]]) -> sp.csr_matrix:
        rows, cols = [], []
        for q, tokens in enumerate(queries):
            for token in tokens:
                term = self.vocab.get(token)
                if term is not None:
                    rows.append(q)
                    cols.append(term)
        matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(self.vocab)))
        matrix.sum_duplicates()
        return matrix

    def get_scores(self, query: Sequence[str]) -> np.ndarray:
        """Scores of every document for one tokenised query (rank-bm25's ``get_scores``)."""
        return self.scores([query])[0]

    def scores(self, queries: Sequence[Sequence[str]]) -> np.ndarray:
        """A dense (queries × documents) score matrix; call it on batches to bound memory."""
        return np.asarray((self._query_matrix(queries) @ self.weights).todense())

    def search(self, queries: Sequence[Sequence[str]], k: int, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` document indices and scores per query, best first (ties: lower index first)."""
        k = min(k, self.n_docs)
        top_idx = np.zeros((len(queries), k), dtype=np.int64)
        top_scores = np.zeros((len(queries), k))
        for start in range(0, len(queries), batch):
            scores = self.scores(queries[start : start + batch])
            part = (
                np.argpartition(-scores, k - 1, axis=1)[:, :k]
                if k < self.n_docs
                else np.tile(np.arange(self.n_docs), (len(scores), 1))
            )
            for i, (row, cand) in enumerate(zip(scores, part, strict=True)):
                order = cand[np.lexsort((cand, -row[cand]))]
                top_idx[start + i], top_scores[start + i] = order, row[order]
        return top_idx, top_scores
