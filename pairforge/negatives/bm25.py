"""BM25 over a passage pool of any size: one on-disk index, built shard by shard, memory-mapped to query.

Scores are rank-bm25's ``BM25Okapi(corpus, k1, b, epsilon).get_scores(query)`` bit for bit, where
``corpus`` and ``query`` are ``analyze(texts, analyzer)``: IDF ``log(N - df + 0.5) - log(df + 0.5)`` with a
negative IDF replaced by ``epsilon * mean IDF``, query terms counted with their multiplicity. Rankings are
those scores sorted descending, ties to the lower doc index (``np.argsort(-scores, kind="stable")``).
How: ``bm25_kernels`` (float32 candidates, exact float64 rescoring), ``bm25_build``/``bm25_segment``/
``bm25_merge`` (the build), ``terms`` (analysis into hashed terms).

Memory: building keeps a few batches and one merge bucket in memory, plus O(N) doc lengths and O(V)
vocabulary arrays; querying maps the files and adds, per thread, a float32 accumulator and an int32
touched list of N each (8 bytes per doc per thread).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numba
import numpy as np

from pairforge.analysis.terms import Terms, analyze_arrays, hash_terms
from pairforge.negatives import bm25_kernels as K
from pairforge.negatives.bm25_build import build_folder
from pairforge.negatives.bm25_segment import same_chars
from pairforge.pinning import usable_cores

__all__ = ["BM25Index", "build_bm25_index"]
_QUERY_CHUNK = 8192


def build_bm25_index(
    batches: Iterable[tuple[Sequence[str], Sequence[str]]],
    folder: Path,
    *,
    analyzer: str = "jieba",
    k1: float = 1.5,
    b: float = 0.75,
    epsilon: float = 0.25,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BM25Index:
    """Index ``batches`` of ``(ids, texts)`` (e.g. one Parquet shard each) into ``folder`` and open it.

    Docs are numbered in input order (the first batch's first text is doc 0). Each batch is analyzed and
    written as a segment by one of ``workers`` processes (in this process when ``workers <= 1``; default two, or
    one in a pinned worker, see ``pairforge.pinning.usable_cores``, so the build stays inside the pin), at most
    two batches per worker in flight; a global merge then computes N, avgdl, df and the IDFs over all of
    them. ``progress(n)`` is called with the number of docs indexed so far after each batch. The index is
    written aside and renamed into ``folder`` when whole, replacing an existing index only then.
    Raises ValueError/TypeError naming the batch and row for mismatched ids/texts or a non-str text."""
    params = {"k1": float(k1), "b": float(b), "epsilon": float(epsilon)}
    workers = min(2, usable_cores()) if workers is None else workers
    build_folder(batches, Path(folder), analyzer=analyzer, params=params, workers=workers, progress=progress)
    return BM25Index.open(folder)


class DocIds(Sequence[str]):
    """The doc ids in index order, read from the memory-mapped id file on access."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self._blob, self._offsets = blob, offsets

    def __len__(self) -> int:
        return self._offsets.shape[0] - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        return bytes(self._blob[self._offsets[i] : self._offsets[i + 1]]).decode("utf-8", errors="surrogatepass")

    def take(self, indices: Iterable[int]) -> list[str]:
        """The ids at ``indices`` (e.g. one row of ``search``'s result, -1 entries skipped)."""
        return [self[int(i)] for i in indices if i >= 0]


class BM25Index:
    """A memory-mapped BM25 index folder written by ``build_bm25_index``."""

    def __init__(self, folder: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.folder, self.meta, self._a = folder, meta, arrays
        self.n_docs: int = meta["n_docs"]
        self.analyzer: str = meta["analyzer"]
        self.ids = DocIds(arrays["ids"], arrays["ids_ptr"])
        k1, b = meta["k1"], meta["b"]
        self._consts = (k1, k1 + 1, 1 - b, b, meta["avgdl"])  # exactly rank-bm25's subexpressions
        self._scratch: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def open(cls, folder: Path) -> BM25Index:
        """Open a complete index folder (raises FileNotFoundError when ``folder`` holds none)."""
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        dtypes = {"ids": np.uint8, "ids_ptr": np.int64, "doclen": np.int32, "terms": np.uint64, "term_ptr": np.int64,
                  "chars": np.uint32, "char_ptr": np.int64, "idf": np.float64, "maxc": np.float64,
                  "docs": np.int32, "w": np.float32, "tf": np.dtype(meta["tf_dtype"])}  # fmt: skip
        return cls(folder, meta, {name: _map(folder / f"{name}.bin", dtype) for name, dtype in dtypes.items()})

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` docs per query (analyzed with the index's analyzer), best first, ties to the lower index.

        Returns ``(indices, scores)``, both shaped ``(len(queries), k)``: int64 doc indices and their exact
        float64 rank-bm25 scores. Only docs scoring > 0 are returned; the remaining slots (a query sharing
        no term with k docs, or k > n_docs) hold index -1 and score 0.0."""
        return self._chunked(queries, lambda t: self._search(t, k), analyzed=False)

    def search_terms(self, queries: Sequence[Sequence[str]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """``search`` for queries already analyzed into term lists (any strings; unknown terms score 0)."""
        return self._chunked(queries, lambda t: self._search(t, k), analyzed=True)

    def rank_of(self, queries: Sequence[str], doc_index: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """For each query, the 1-based rank of doc ``doc_index[i]`` (1 + the number of docs scoring strictly
        higher) and its exact score: ``(int64 ranks, float64 scores)``. Reads only the query terms' postings."""
        own = np.asarray(doc_index, dtype=np.int64)
        if own.shape != (len(queries),):
            raise ValueError(f"{len(queries)} queries but doc_index has shape {own.shape}")
        if own.size and (own.min() < 0 or own.max() >= self.n_docs):
            raise IndexError(f"doc_index outside 0..{self.n_docs - 1}")
        done = 0

        def run(terms: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            nonlocal done
            n = terms[1].shape[0] - 1
            done += n
            return self._rank(terms, own[done - n : done])

        return self._chunked(queries, run, analyzed=False)

    def doc_freq(self, terms: Sequence[str]) -> np.ndarray:
        """The number of docs containing each (already analyzed) term; 0 for terms the index lacks."""
        ids, _ = self._term_ids(hash_terms([terms]))
        ptr = self._a["term_ptr"]
        return np.where(ids >= 0, ptr[ids + 1] - ptr[np.maximum(ids, 0)], 0)

    def get_scores(self, query: str) -> np.ndarray:
        """Every doc's exact score for one query (O(N) memory and time: for checks, not for serving)."""
        toks, _ = self._term_ids(analyze_arrays([query], self.analyzer))
        return self._dense(toks)

    def get_scores_terms(self, terms: Sequence[str]) -> np.ndarray:
        """``get_scores`` for an already analyzed query."""
        toks, _ = self._term_ids(hash_terms([terms]))
        return self._dense(toks)

    def _chunked(self, queries, run, *, analyzed: bool):
        parts = []
        for lo in range(0, max(len(queries), 1), _QUERY_CHUNK):
            chunk = queries[lo : lo + _QUERY_CHUNK]
            terms = hash_terms(chunk) if analyzed else analyze_arrays(chunk, self.analyzer)
            parts.append(run(self._term_ids(terms)))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _term_ids(self, t: Terms) -> tuple[np.ndarray, np.ndarray]:
        """Term ids of the analyzed queries (-1 for terms the index lacks), with per-query offsets."""
        a = self._a
        pos = np.searchsorted(a["terms"], t.hashes).astype(np.int64)
        return _lookup(t.hashes, t.starts, t.lens, t.cp, pos, a["terms"], a["chars"], a["char_ptr"]), t.doc_ptr

    def _buffers(self) -> tuple[np.ndarray, np.ndarray]:
        if self._scratch is None:  # one accumulator and touched list per numba thread, zero between queries
            threads, n = numba.config.NUMBA_NUM_THREADS, self.n_docs
            self._scratch = np.zeros((threads, n), np.float32), np.zeros((threads, n + 1), np.int32)
        return self._scratch

    def _args(self) -> tuple:
        a = self._a
        return (a["term_ptr"], a["docs"], a["w"], a["tf"], a["idf"], a["maxc"], a["doclen"], *self._consts)

    def _search(self, terms: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        toks, ptr = terms
        n_q = ptr.shape[0] - 1
        idx, scores = np.full((n_q, k), -1, np.int64), np.zeros((n_q, k))
        if k <= 0 or self.n_docs == 0 or n_q == 0:
            return idx, scores
        flagged = np.zeros(n_q, np.bool_)
        K.search_kernel(toks, ptr, k, *self._args(), *self._buffers(), idx, scores, flagged)
        for q in np.flatnonzero(flagged):  # a negative IDF floor: exact dense scoring
            s = self._dense(toks[ptr[q] : ptr[q + 1]])
            order = np.argsort(-s, kind="stable")[:k]
            order = order[s[order] > 0]
            idx[q, : order.shape[0]], scores[q, : order.shape[0]] = order, s[order]
        return idx, scores

    def _rank(self, terms: tuple[np.ndarray, np.ndarray], own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        toks, ptr = terms
        n_q = ptr.shape[0] - 1
        ranks, scores = np.ones(n_q, np.int64), np.zeros(n_q)
        if self.n_docs == 0 or n_q == 0:
            return ranks, scores
        flagged = np.zeros(n_q, np.bool_)
        K.rank_kernel(toks, ptr, own, *self._args(), *self._buffers(), ranks, scores, flagged)
        for q in np.flatnonzero(flagged):
            s = self._dense(toks[ptr[q] : ptr[q + 1]])
            ranks[q], scores[q] = int(np.count_nonzero(s > s[own[q]])) + 1, s[own[q]]
        return ranks, scores

    def _dense(self, toks: np.ndarray) -> np.ndarray:
        if self.n_docs == 0:
            return np.zeros(0)
        a = self._a
        return K.dense_scores(toks, a["term_ptr"], a["docs"], a["tf"], a["idf"], a["doclen"], *self._consts)


def _map(path: Path, dtype: np.dtype | type) -> np.ndarray:
    """A read-only memory map of a raw array file (an empty array for an empty file, which mmap refuses)."""
    if path.stat().st_size == 0:
        return np.zeros(0, dtype)
    return np.asarray(np.memmap(path, dtype=dtype, mode="r"))


@numba.njit(cache=True)
def _lookup(hashes, starts, lens, cp, pos, terms, chars, char_ptr):
    out = np.full(hashes.shape[0], -1, np.int64)
    for i in range(hashes.shape[0]):
        p = pos[i]
        found = p < terms.shape[0] and terms[p] == hashes[i]
        if found and same_chars(cp, starts[i], lens[i], chars, char_ptr[p], char_ptr[p + 1] - char_ptr[p]):
            out[i] = p  # the hash is the term's: no other indexed term has it (checked at build)
    return out
