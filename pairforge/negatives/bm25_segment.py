"""One batch of texts to one on-disk BM25 segment, in the worker that analyzed it.

A segment holds, for the batch's distinct terms sorted by hash: the hash, its postings (local doc index,
term frequency; docs ascending), the first occurrence (``doc << 32 | position among the doc's terms``, the
order rank-bm25's ``nd`` dict sees terms in), and the term's code points (to prove that no two distinct
terms share a hash). Only a small dict goes back to the parent: no token or term list is pickled.
Files are raw little-endian arrays named ``<array>.bin`` beside ``meta.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numba
import numpy as np

from pairforge.analysis.terms import analyze_arrays

SEGMENT_ARRAYS = {
    "terms": np.uint64,
    "term_ptr": np.int64,
    "first": np.int64,
    "chars": np.uint32,
    "char_ptr": np.int64,
    "docs": np.int32,
    "tf": np.int32,
    "doclen": np.int32,
}


def write_segment(folder: Path, texts: Sequence[str], analyzer: str) -> dict[str, Any]:
    """Analyze ``texts`` and write their segment into ``folder``; returns the segment's meta."""
    t = analyze_arrays(texts, analyzer)
    e_hash, e_doc, e_tf, e_first, e_src, doclen = _doc_entries(t.hashes, t.starts, t.lens, t.doc_ptr, t.cp)
    order = np.argsort(e_hash, kind="stable")  # term-major; a term's docs stay ascending
    terms, term_ptr, first, chars, char_ptr = _distinct_terms(
        e_hash[order], e_doc[order], e_first[order], e_src[order], t.starts, t.lens, t.cp
    )
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"terms": terms, "term_ptr": term_ptr, "first": first, "chars": chars, "char_ptr": char_ptr,
              "docs": e_doc[order], "tf": e_tf[order], "doclen": doclen}  # fmt: skip
    for name, array in arrays.items():
        np.ascontiguousarray(array, dtype=SEGMENT_ARRAYS[name]).tofile(folder / f"{name}.bin")
    meta = {
        "n_docs": len(texts),
        "n_terms": int(terms.shape[0]),
        "n_postings": int(order.shape[0]),
        "total_len": int(doclen.sum(dtype=np.int64)),
        "max_tf": int(e_tf.max()) if e_tf.shape[0] else 0,
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def read_array(folder: Path, name: str, start: int = 0, count: int = -1, dtype: Any = None) -> np.ndarray:
    """``count`` items (all with -1) of a raw array file from item ``start``, read without a memory map."""
    dtype = np.dtype(dtype or SEGMENT_ARRAYS[name])
    return np.fromfile(folder / f"{name}.bin", dtype=dtype, count=count, offset=start * dtype.itemsize)


@numba.njit(cache=True)
def same_chars(cp: np.ndarray, a: int, na: int, cq: np.ndarray, q: int, nq: int) -> bool:
    """Whether ``cp[a:a+na]`` equals ``cq[q:q+nq]``."""
    if na != nq:
        return False
    for i in range(na):  # noqa: SIM110 (numba compiles no generator)
        if cp[a + i] != cq[q + i]:
            return False
    return True


@numba.njit(cache=True)
def _doc_entries(
    hashes: np.ndarray, starts: np.ndarray, lens: np.ndarray, doc_ptr: np.ndarray, cp: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One entry per (doc, distinct term): hash, doc, tf, first position in the doc, the term's source."""
    n = doc_ptr.shape[0] - 1
    total = hashes.shape[0]
    e_hash = np.empty(total, np.uint64)
    e_doc = np.empty(total, np.int32)
    e_tf = np.empty(total, np.int32)
    e_first = np.empty(total, np.int32)
    e_src = np.empty(total, np.int64)
    doclen = np.empty(n, np.int32)
    m = 0
    for d in range(n):
        lo, hi = doc_ptr[d], doc_ptr[d + 1]
        doclen[d] = hi - lo
        order = np.argsort(hashes[lo:hi])
        i = 0
        while i < hi - lo:
            h = hashes[lo + order[i]]
            j, first = i, order[i]
            while j < hi - lo and hashes[lo + order[j]] == h:
                first = min(first, order[j])
                j += 1
            for r in range(i, j):
                a, f = lo + order[r], lo + first
                if not same_chars(cp, starts[a], lens[a], cp, starts[f], lens[f]):
                    raise ValueError("two distinct terms share a 64-bit hash")
            e_hash[m], e_doc[m], e_tf[m], e_first[m], e_src[m] = h, d, j - i, first, lo + first
            m += 1
            i = j
    return e_hash[:m].copy(), e_doc[:m].copy(), e_tf[:m].copy(), e_first[:m].copy(), e_src[:m].copy(), doclen


@numba.njit(cache=True)
def _distinct_terms(
    e_hash: np.ndarray,
    e_doc: np.ndarray,
    e_first: np.ndarray,
    e_src: np.ndarray,
    starts: np.ndarray,
    lens: np.ndarray,
    cp: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    m = e_hash.shape[0]
    n_terms = 0
    for i in range(m):
        n_terms += i == 0 or e_hash[i] != e_hash[i - 1]
    terms = np.empty(n_terms, np.uint64)
    term_ptr = np.empty(n_terms + 1, np.int64)
    first = np.empty(n_terms, np.int64)
    char_ptr = np.zeros(n_terms + 1, np.int64)
    t = -1
    for i in range(m):
        if i == 0 or e_hash[i] != e_hash[i - 1]:
            t += 1
            terms[t], term_ptr[t] = e_hash[i], i
            first[t] = (np.int64(e_doc[i]) << 32) | np.int64(e_first[i])
            char_ptr[t + 1] = char_ptr[t] + lens[e_src[i]]
        else:
            a, f = e_src[i], e_src[term_ptr[t]]
            if not same_chars(cp, starts[a], lens[a], cp, starts[f], lens[f]):
                raise ValueError("two distinct terms share a 64-bit hash")
    term_ptr[n_terms] = m
    chars = np.empty(char_ptr[n_terms], np.uint32)
    for t in range(n_terms):
        src = e_src[term_ptr[t]]
        chars[char_ptr[t] : char_ptr[t + 1]] = cp[starts[src] : starts[src] + lens[src]]
    return terms, term_ptr, first, chars, char_ptr
