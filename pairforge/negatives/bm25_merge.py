"""The global step of the BM25 build: segments to one term-major index, in bounded memory.

The hash space is cut into buckets sized so that one bucket's terms and postings fit a fixed budget
(``_BUCKET_POSTINGS``); segments are read bucket by bucket with ``np.fromfile`` slices, never whole.

- Pass 1 (vocabulary): per bucket, the segments' terms are merged: global hash order, document frequency,
  first occurrence, and a check that equal hashes carry equal code points across segments.
- IDF, exactly as rank-bm25's ``_calc_idf``: ``math.log(N - df + 0.5) - math.log(df + 0.5)`` (one
  ``math.log`` per distinct df), summed in the order rank-bm25's dict holds the terms (first occurrence in
  the corpus), so the mean, hence the ``epsilon * mean`` floor of negative IDFs, is bit-identical.
- Pass 2 (postings): per bucket, each segment's postings are scattered into global term order (docs stay
  ascending), then weighted ``float32(idf * ((tf * (k1 + 1)) / (tf + k1 * (1 - b + b * dl / avgdl))))``.

Memory: O(N) doc lengths and norms, O(V) vocabulary arrays, and one bucket.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numba
import numpy as np

from pairforge.negatives.bm25_segment import read_array, same_chars

_BUCKET_POSTINGS = 8_000_000
_BUCKET_TERMS = 4_000_000


def merge_segments(segments: list[Path], metas: list[dict[str, Any]], out: Path, params: dict[str, float]) -> dict:
    """Merge ``segments`` (in document order) into the index files under ``out``; returns the index meta."""
    n_docs = sum(m["n_docs"] for m in metas)
    base = np.cumsum([0] + [m["n_docs"] for m in metas]).astype(np.int64)
    doclen = np.concatenate([read_array(s, "doclen") for s in segments] or [np.zeros(0, np.int32)])
    doclen.astype(np.int32).tofile(out / "doclen.bin")
    total_len = sum(m["total_len"] for m in metas)
    avgdl = total_len / n_docs if n_docs else 0.0  # rank-bm25: num_doc / corpus_size
    n_buckets = max(1, -(-sum(m["n_postings"] for m in metas) // _BUCKET_POSTINGS),
                    -(-sum(m["n_terms"] for m in metas) // _BUCKET_TERMS))  # fmt: skip
    bounds = np.array([(i << 64) // n_buckets for i in range(n_buckets)] + [(1 << 64) - 1], dtype=np.uint64)
    cuts = [_bucket_cuts(read_array(s, "terms"), bounds) for s in segments]
    bucket_terms = _vocabulary(segments, cuts, base, n_buckets, out)
    df = np.fromfile(out / "df.bin", dtype=np.int64)
    idf, eps = _idf(df, np.fromfile(out / "first.bin", dtype=np.int64), n_docs, params["epsilon"])
    idf.tofile(out / "idf.bin")
    term_ptr = np.zeros(df.shape[0] + 1, np.int64)
    np.cumsum(df, out=term_ptr[1:])
    term_ptr.tofile(out / "term_ptr.bin")
    k1, b = params["k1"], params["b"]
    norm = k1 * (1 - b + b * doclen / avgdl) if n_docs else np.zeros(0)  # the exact expression rank-bm25 uses
    # tf in the narrowest type that holds them all: one byte for passages of ~600 characters (391 → 196 MB at 1M)
    max_tf = max([m["max_tf"] for m in metas] or [0])
    tf_dtype = np.uint8 if max_tf < 1 << 8 else np.uint16 if max_tf < 1 << 16 else np.uint32
    maxc = np.zeros(df.shape[0], np.float64)
    with open(out / "docs.bin", "wb") as f_docs, open(out / "w.bin", "wb") as f_w, open(out / "tf.bin", "wb") as f_tf:
        for bucket in range(n_buckets):
            g_lo, g_hi = bucket_terms[bucket], bucket_terms[bucket + 1]
            docs, tf = _bucket_postings(segments, cuts, base, bucket, term_ptr[g_lo : g_hi + 1], out, g_lo)
            w = _weights(docs, tf, term_ptr[g_lo : g_hi + 1], idf[g_lo:g_hi], norm, k1 + 1, maxc[g_lo:g_hi])
            docs.tofile(f_docs)
            w.tofile(f_w)
            tf.astype(tf_dtype).tofile(f_tf)
    maxc.tofile(out / "maxc.bin")
    (out / "df.bin").unlink()
    (out / "first.bin").unlink()
    return {"n_docs": n_docs, "n_terms": int(df.shape[0]), "n_postings": int(term_ptr[-1]), "total_len": total_len,
            "avgdl": avgdl, "eps": eps, "tf_dtype": np.dtype(tf_dtype).name}  # fmt: skip


def _bucket_cuts(terms: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    cuts = np.searchsorted(terms, bounds, side="left").astype(np.int64)
    cuts[-1] = terms.shape[0]  # the last bound is 2**64 - 1, which a hash may equal
    return cuts


def _vocabulary(segments: list[Path], cuts: list[np.ndarray], base: np.ndarray, n_buckets: int, out: Path) -> list:
    """Pass 1: the global terms (hash order) with df, first occurrence and code points; bucket term offsets."""
    bucket_terms = [0]
    files = {name: open(out / f"{name}.bin", "wb") for name in ("terms", "df", "first", "chars")}
    char_ptr = [np.zeros(1, np.int64)]
    try:
        for bucket in range(n_buckets):
            parts: dict[str, list[np.ndarray]] = {"h": [], "df": [], "first": [], "chars": [], "clen": []}
            for s, seg in enumerate(segments):
                lo, hi = int(cuts[s][bucket]), int(cuts[s][bucket + 1])
                if lo == hi:
                    continue
                ptr = read_array(seg, "term_ptr", lo, hi - lo + 1)
                cptr = read_array(seg, "char_ptr", lo, hi - lo + 1)
                parts["h"].append(read_array(seg, "terms", lo, hi - lo))
                parts["df"].append(np.diff(ptr))
                parts["first"].append(read_array(seg, "first", lo, hi - lo) + (base[s] << 32))
                parts["chars"].append(read_array(seg, "chars", int(cptr[0]), int(cptr[-1] - cptr[0])))
                parts["clen"].append(np.diff(cptr))
            if not parts["h"]:
                bucket_terms.append(bucket_terms[-1])
                continue
            h, dfs, first = (np.concatenate(parts[k]) for k in ("h", "df", "first"))
            clen = np.concatenate(parts["clen"])
            cstart = np.concatenate([[0], np.cumsum(clen)[:-1]]).astype(np.int64)
            chars = np.concatenate(parts["chars"])
            order = np.argsort(h, kind="stable")  # equal hashes stay in segment (document) order
            g_h, g_df, g_first, g_src = _merge_terms(h[order], dfs[order], first[order], order, chars, cstart, clen)
            g_h.tofile(files["terms"])
            g_df.tofile(files["df"])
            g_first.tofile(files["first"])
            for src in g_src:  # the code points of each global term, from its first segment
                chars[cstart[src] : cstart[src] + clen[src]].tofile(files["chars"])
            char_ptr.append(char_ptr[-1][-1] + np.cumsum(clen[g_src]))
            bucket_terms.append(bucket_terms[-1] + g_h.shape[0])
    finally:
        for f in files.values():
            f.close()
    np.concatenate(char_ptr).astype(np.int64).tofile(out / "char_ptr.bin")
    return bucket_terms


@numba.njit(cache=True, error_model="numpy")
def _merge_terms(
    h: np.ndarray, df: np.ndarray, first: np.ndarray, src: np.ndarray, chars: np.ndarray, cstart: np.ndarray,
    clen: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    n = 0
    for i in range(h.shape[0]):
        n += i == 0 or h[i] != h[i - 1]
    g_h = np.empty(n, np.uint64)
    g_df = np.zeros(n, np.int64)
    g_first = np.empty(n, np.int64)
    g_src = np.empty(n, np.int64)
    t = -1
    for i in range(h.shape[0]):
        if i == 0 or h[i] != h[i - 1]:
            t += 1
            g_h[t], g_first[t], g_src[t] = h[i], first[i], src[i]
        else:
            a, f = src[i], g_src[t]
            if not same_chars(chars, cstart[a], clen[a], chars, cstart[f], clen[f]):
                raise ValueError("two distinct terms share a 64-bit hash")
            g_first[t] = min(g_first[t], first[i])
        g_df[t] += df[i]
    return g_h, g_df, g_first, g_src


def _idf(df: np.ndarray, first: np.ndarray, n_docs: int, epsilon: float) -> tuple[np.ndarray, float]:
    """rank-bm25's IDF with its floor, bit for bit (see the module docstring)."""
    values, inverse = np.unique(df, return_inverse=True)
    idf = np.array([math.log(n_docs - int(v) + 0.5) - math.log(int(v) + 0.5) for v in values])[inverse]
    if not idf.shape[0]:
        return idf.astype(np.float64), 0.0
    idf_sum = _ordered_sum(idf, np.argsort(first, kind="stable"))
    eps = epsilon * (idf_sum / idf.shape[0])
    idf[idf < 0] = eps
    return idf.astype(np.float64), eps


@numba.njit(cache=True, error_model="numpy")
def _ordered_sum(values: np.ndarray, order: np.ndarray) -> float:
    total = 0.0
    for i in order:  # one add at a time, in rank-bm25's dict order: the same rounding as its loop
        total += values[i]
    return total


def _bucket_postings(
    segments: list[Path], cuts: list[np.ndarray], base: np.ndarray, bucket: int, ptr: np.ndarray, out: Path, g_lo: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2 for one bucket: (global docs, tf) of its terms in term-major order, docs ascending."""
    g_terms = np.fromfile(out / "terms.bin", dtype=np.uint64, count=ptr.shape[0] - 1, offset=g_lo * 8)
    docs = np.empty(ptr[-1] - ptr[0], np.int32)
    tf = np.empty(ptr[-1] - ptr[0], np.int32)
    cursor = (ptr[:-1] - ptr[0]).copy()
    for s, seg in enumerate(segments):
        lo, hi = int(cuts[s][bucket]), int(cuts[s][bucket + 1])
        if lo == hi:
            continue
        terms = read_array(seg, "terms", lo, hi - lo)
        gid = np.searchsorted(g_terms, terms)
        sptr = read_array(seg, "term_ptr", lo, hi - lo + 1)
        p_lo, p_hi = int(sptr[0]), int(sptr[-1])
        seg_docs, seg_tf = read_array(seg, "docs", p_lo, p_hi - p_lo), read_array(seg, "tf", p_lo, p_hi - p_lo)
        _scatter(gid, sptr - p_lo, seg_docs, seg_tf, int(base[s]), cursor, docs, tf)
    return docs, tf


@numba.njit(cache=True, error_model="numpy")
def _scatter(
    gid: np.ndarray, sptr: np.ndarray, sdocs: np.ndarray, stf: np.ndarray, base: int, cursor: np.ndarray,
    docs: np.ndarray, tf: np.ndarray,
) -> None:  # fmt: skip
    for i in range(gid.shape[0]):
        g = gid[i]
        for j in range(sptr[i], sptr[i + 1]):
            docs[cursor[g]] = base + sdocs[j]
            tf[cursor[g]] = stf[j]
            cursor[g] += 1


@numba.njit(cache=True, error_model="numpy")
def _weights(
    docs: np.ndarray, tf: np.ndarray, ptr: np.ndarray, idf: np.ndarray, norm: np.ndarray, kp1: float,
    maxc: np.ndarray,
) -> np.ndarray:  # fmt: skip
    w = np.empty(docs.shape[0], np.float32)
    tiny = np.float32(1e-38)
    for t in range(idf.shape[0]):
        best = 0.0
        for j in range(ptr[t] - ptr[0], ptr[t + 1] - ptr[0]):
            f = np.float64(tf[j])
            c = idf[t] * ((f * kp1) / (f + norm[docs[j]]))
            best = max(best, abs(c))
            w[j] = max(np.float32(c), tiny) if c > 0 else np.float32(c)  # a positive weight never rounds to 0
        maxc[t] = best
    return w
