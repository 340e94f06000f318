"""BM25 with rank-bm25's BM25Okapi semantics on a sparse matrix.

Per-term, per-document weights ``idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))`` are
precomputed once; a query's scores are one sparse product. The IDF is rank-bm25's, floor included:
``log(N - df + 0.5) - log(df + 0.5)``, and a negative IDF (a term in more than half of the documents)
becomes ``epsilon * mean IDF``. Query terms count with their multiplicity, as rank-bm25 loops over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import scipy.sparse as sp

from pairforge.negatives.tokenize import tokenize

__all__ = ["BM25Index", "tokenize"]


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

    def _query_terms(self, queries: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Known query terms flattened, with offsets: (terms, offsets). Repeats are kept (rank-bm25 does)."""
        terms: list[int] = []
        offsets = [0]
        for tokens in queries:
            terms.extend(t for t in (self.vocab.get(token) for token in tokens) if t is not None)
            offsets.append(len(terms))
        return np.asarray(terms, dtype=np.int64), np.asarray(offsets, dtype=np.int64)

    def get_scores(self, query: Sequence[str]) -> np.ndarray:
        """Scores of every document for one tokenised query (rank-bm25's ``get_scores``)."""
        return self.scores([query])[0]

    def scores(self, queries: Sequence[Sequence[str]]) -> np.ndarray:
        """A dense (queries × documents) score matrix; call it on batches to bound memory."""
        terms, offsets = self._query_terms(queries)
        w = self.weights
        return _dense_scores(w.indptr, w.indices, w.data, terms, offsets, self.n_docs)

    def search(self, queries: Sequence[Sequence[str]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` document indices and scores per query, best first (ties: lower index first)."""
        terms, offsets = self._query_terms(queries)
        w = self.weights
        return _top_k(w.indptr, w.indices, w.data, terms, offsets, self.n_docs, min(k, self.n_docs))


@numba.njit(cache=True, parallel=True)
def _dense_scores(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, terms: np.ndarray, offsets: np.ndarray, n_docs: int
) -> np.ndarray:
    out = np.zeros((offsets.shape[0] - 1, n_docs))
    for q in numba.prange(offsets.shape[0] - 1):
        for t in terms[offsets[q] : offsets[q + 1]]:
            for j in range(indptr[t], indptr[t + 1]):
                out[q, indices[j]] += data[j]
    return out


@numba.njit(cache=True, parallel=True)
def _top_k(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    terms: np.ndarray,
    offsets: np.ndarray,
    n_docs: int,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    n_queries = offsets.shape[0] - 1
    top_idx = np.zeros((n_queries, k), dtype=np.int64)
    top_scores = np.zeros((n_queries, k))
    for q in numba.prange(n_queries):
        scores = np.zeros(n_docs)
        for t in terms[offsets[q] : offsets[q + 1]]:
            for j in range(indptr[t], indptr[t + 1]):
                scores[indices[j]] += data[j]
        best_i = np.full(k, n_docs, dtype=np.int64)  # sorted: score desc, then index asc
        best_s = np.full(k, -np.inf)
        for d in range(n_docs):  # insertion into a sorted buffer of k; most documents fail the first test
            s = scores[d]
            if s < best_s[k - 1] or (s == best_s[k - 1] and d > best_i[k - 1]):
                continue
            pos = k - 1
            while pos > 0 and (best_s[pos - 1] < s or (best_s[pos - 1] == s and best_i[pos - 1] > d)):
                best_s[pos] = best_s[pos - 1]
                best_i[pos] = best_i[pos - 1]
                pos -= 1
            best_s[pos] = s
            best_i[pos] = d
        top_idx[q] = best_i
        top_scores[q] = best_s
    return top_idx, top_scores
