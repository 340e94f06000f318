"""BM25 query kernels: a float32 term-at-a-time pass to find candidates, exact float64 rescoring to rank them.

Per query, on the thread's own scratch (a float32 accumulator over the docs, zero between queries, and a
touched-doc list), only the postings of the query's distinct terms are read: ``acc[d] += m * w32`` where
``m`` is the term's multiplicity in the query. A doc enters the touched list when its accumulator is still
0 (every weight in this pass is > 0), so selection and reset cost the touched docs, not N.

Why the result is exact: with ``n`` distinct terms, ``|s32(d) - s(d)| <= E = (n + 4) * 2**-23 * sum(m *
max|c_t|)`` for every doc (float32 rounding of each weight, of ``m * w`` and of each add; a 2x margin on the
textbook bound). If ``t32`` is the k-th best float32 score, the true k-th best is ``>= t32 - E``, so every
doc of the true top-k has ``s32 >= t32 - 2E``. Those candidates (the top k plus near-ties) are rescored
with rank-bm25's own arithmetic: ``score = 0.0``, then for each query term in query order, repeats
included, ``score += idf * ((tf * (k1 + 1)) / (tf + k1 * (1 - b + b * dl / avgdl)))`` (a term absent from
the doc adds 0.0 there, which changes nothing). The scores are therefore bit-identical to
``BM25Okapi.get_scores`` and the top-k is ordered by (score desc, doc asc).

MaxScore (Turtle & Flood) on top: terms are taken rare and strong first; before each further term, if what
the remaining terms can add to any doc (``rem``, the sum of ``m * max c``) is below a lower bound of the
true k-th score (the float32 k-th best so far minus E), no untouched doc can enter the top k, so the
remaining postings are skipped and the touched docs whose bound (``s32 + E + rem``) reaches that lower
bound are rescored exactly instead, when they are few enough to be cheaper than the postings skipped.
``rank_of`` does the same with the own doc's exact score as the bar.

Terms with IDF exactly 0 add exactly 0 and are skipped. A negative IDF only exists when rank-bm25's floor
``epsilon * mean IDF`` is itself negative (a corpus where most terms are in most docs); such queries are
flagged and scored densely and exactly by ``dense_scores``.
"""

from __future__ import annotations

import numba
import numpy as np

_HALF_ULP = 2.0**-23


@numba.njit(cache=True, inline="always", error_model="numpy")
def _tf_of(docs: np.ndarray, tf: np.ndarray, lo: int, end: int, d: int) -> int:
    hi = end
    while lo < hi:
        mid = (lo + hi) >> 1
        if docs[mid] < d:
            lo = mid + 1
        else:
            hi = mid
    return int(tf[lo]) if lo < end and docs[lo] == d else 0


@numba.njit(cache=True, error_model="numpy")
def exact_score(
    d: int, toks: np.ndarray, ptr: np.ndarray, docs: np.ndarray, tf: np.ndarray, idf: np.ndarray,
    doclen: np.ndarray, k1: float, kp1: float, omb: float, b: float, avgdl: float,
) -> float:  # fmt: skip
    """rank-bm25's score of doc ``d`` for the query terms ``toks`` (term ids, -1 unknown), in its arithmetic."""
    norm = k1 * (omb + (b * doclen[d]) / avgdl)
    score = 0.0
    for g in toks:
        if g < 0 or idf[g] == 0.0:
            continue
        f = _tf_of(docs, tf, ptr[g], ptr[g + 1], d)
        if f > 0:
            score += idf[g] * ((f * kp1) / (f + norm))
    return score


@numba.njit(cache=True, error_model="numpy")
def _distinct(toks: np.ndarray, idf: np.ndarray, maxc: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Distinct known terms with nonzero IDF, their multiplicities, the error bound E, and whether one is < 0."""
    s = np.sort(toks)
    terms = np.empty(s.shape[0], np.int64)
    mult = np.empty(s.shape[0], np.float32)
    n, total, negative = 0, 0.0, False
    for i in range(s.shape[0]):
        g = s[i]
        if g < 0 or idf[g] == 0.0:
            continue
        if n > 0 and terms[n - 1] == g:
            mult[n - 1] += 1
        else:
            terms[n], mult[n] = g, 1
            n += 1
        total += maxc[g]
        negative |= idf[g] < 0
    return terms[:n], mult[:n], (n + 4) * _HALF_ULP * total, negative


@numba.njit(cache=True, inline="always", error_model="numpy")
def _accumulate(g, m, ptr, docs, w, acc, touched, n_t):
    """Term ``g`` (multiplicity ``m``) into the accumulator; returns the new number of touched docs."""
    for j in range(ptr[g], ptr[g + 1]):
        d = docs[j]
        v = acc[d]
        touched[n_t] = d
        n_t += v == 0  # first touch: every weight here is > 0
        acc[d] = v + m * w[j]
    return n_t


@numba.njit(cache=True, error_model="numpy")
def _by_bound(
    terms: np.ndarray, mult: np.ndarray, maxc: np.ndarray, ptr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Terms by decreasing bound ``m * max c`` (rare, strong terms first), with suffix sums of the bounds
    (what the terms from ``i`` on can still add to any doc) and of their postings."""
    n = terms.shape[0]
    bound = np.empty(n)
    for i in range(n):
        bound[i] = mult[i] * maxc[terms[i]]
    order = np.argsort(-bound)
    rem = np.zeros(n + 1)
    rem_post = np.zeros(n + 1, np.int64)
    for i in range(n - 1, -1, -1):
        g = terms[order[i]]
        rem[i] = rem[i + 1] + bound[order[i]] * (1 + 1e-9)  # the slack covers the float64 rounding of the sum
        rem_post[i] = rem_post[i + 1] + ptr[g + 1] - ptr[g]
    return terms[order], mult[order], rem, rem_post


@numba.njit(cache=True, error_model="numpy")
def _count_above(acc: np.ndarray, touched: np.ndarray, n_t: int, cut: float) -> int:
    n = 0
    for i in range(n_t):
        n += acc[touched[i]] > cut
    return n


@numba.njit(cache=True, inline="always", error_model="numpy")
def _worse(s1: float, d1: int, s2: float, d2: int) -> bool:
    return s1 < s2 or (s1 == s2 and d1 > d2)


@numba.njit(cache=True, error_model="numpy")
def _sift_down(hs: np.ndarray, hd: np.ndarray, size: int, i: int) -> None:
    while True:
        low, left, right = i, 2 * i + 1, 2 * i + 2
        if left < size and _worse(hs[left], hd[left], hs[low], hd[low]):
            low = left
        if right < size and _worse(hs[right], hd[right], hs[low], hd[low]):
            low = right
        if low == i:
            return
        hs[i], hs[low] = hs[low], hs[i]
        hd[i], hd[low] = hd[low], hd[i]
        i = low


@numba.njit(cache=True, error_model="numpy")
def _push(hs: np.ndarray, hd: np.ndarray, size: int, s: float, d: int) -> int:
    """Bounded min-heap of the best ``len(hs)`` by (score desc, doc asc); returns the new size."""
    k = hs.shape[0]
    if size < k:
        i = size
        hs[i], hd[i] = s, d
        while i > 0 and _worse(hs[i], hd[i], hs[(i - 1) // 2], hd[(i - 1) // 2]):
            p = (i - 1) // 2
            hs[i], hs[p] = hs[p], hs[i]
            hd[i], hd[p] = hd[p], hd[i]
            i = p
        return size + 1
    if _worse(s, d, hs[0], hd[0]):
        return size
    hs[0], hd[0] = s, d
    _sift_down(hs, hd, size, 0)
    return size


@numba.njit(cache=True, error_model="numpy")
def _kth_float32(acc: np.ndarray, touched: np.ndarray, n_t: int, k: int) -> float:
    """The k-th largest accumulator among the touched docs (-inf when fewer than k)."""
    if n_t < k:
        return -np.inf
    heap = np.empty(k, np.float32)
    for i in range(k):
        heap[i] = acc[touched[i]]
    heap.sort()  # a sorted array is a valid min-heap
    for i in range(k, n_t):
        v = acc[touched[i]]
        if v > heap[0]:
            heap[0] = v
            j = 0
            while True:  # sift down
                low, left, right = j, 2 * j + 1, 2 * j + 2
                if left < k and heap[left] < heap[low]:
                    low = left
                if right < k and heap[right] < heap[low]:
                    low = right
                if low == j:
                    break
                heap[j], heap[low] = heap[low], heap[j]
                j = low
    return float(heap[0])


@numba.njit(cache=True, parallel=True, error_model="numpy")
def search_kernel(
    q_tok,
    q_ptr,
    k,
    ptr,
    docs,
    w,
    tf,
    idf,
    maxc,
    doclen,
    k1,
    kp1,
    omb,
    b,
    avgdl,
    acc,
    touched,
    out_idx,
    out_s,
    flagged,
):
    """Top-``k`` (index, exact score) per query into ``out_idx``/``out_s``; ``flagged[q]`` for dense queries."""
    n_q = q_ptr.shape[0] - 1
    for c in numba.prange((n_q + 15) // 16):
        tid = numba.get_thread_id()
        a, t = acc[tid], touched[tid]
        hs, hd = np.empty(k, np.float64), np.empty(k, np.int64)
        for q in range(16 * c, min(16 * c + 16, n_q)):
            toks = q_tok[q_ptr[q] : q_ptr[q + 1]]
            terms, mult, err, negative = _distinct(toks, idf, maxc)
            if negative:
                flagged[q] = True
                continue
            terms, mult, rem, rem_post = _by_bound(terms, mult, maxc, ptr)
            n_t, floor, cost = 0, -np.inf, 64 * toks.shape[0]  # rescoring a doc ~ 64 postings a query term (tried)
            for i in range(terms.shape[0]):
                if i > 0 and n_t >= k and rem_post[i] > 2 * n_t:  # MaxScore: may the rest add new top docs?
                    low = _kth_float32(a, t, n_t, k) - err  # the true k-th score is at least this
                    if rem[i] < low and _count_above(a, t, n_t, low - err - rem[i]) * cost < rem_post[i]:
                        floor = np.nextafter(low - err - rem[i], -np.inf)
                        break  # no untouched doc can reach the top k; the touched ones that may are rescored
                n_t = _accumulate(terms[i], mult[i], ptr, docs, w, a, t, n_t)
            else:
                floor = _kth_float32(a, t, n_t, k) - 2 * err
            size = 0
            for i in range(n_t):
                d = t[i]
                if a[d] >= floor:
                    s = exact_score(d, toks, ptr, docs, tf, idf, doclen, k1, kp1, omb, b, avgdl)
                    if s > 0:
                        size = _push(hs, hd, size, s, d)
                a[d] = 0
            for j in range(size - 1, -1, -1):  # pop worst first: best ends up in column 0
                out_s[q, j], out_idx[q, j] = hs[0], hd[0]
                hs[0], hd[0] = hs[j], hd[j]
                _sift_down(hs, hd, j, 0)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def rank_kernel(
    q_tok,
    q_ptr,
    own,
    ptr,
    docs,
    w,
    tf,
    idf,
    maxc,
    doclen,
    k1,
    kp1,
    omb,
    b,
    avgdl,
    acc,
    touched,
    out_rank,
    out_s,
    flagged,
):
    """1 + the number of docs scoring strictly above doc ``own[q]``, and that doc's exact score."""
    n_q = q_ptr.shape[0] - 1
    for c in numba.prange((n_q + 15) // 16):
        tid = numba.get_thread_id()
        a, t = acc[tid], touched[tid]
        for q in range(16 * c, min(16 * c + 16, n_q)):
            toks = q_tok[q_ptr[q] : q_ptr[q + 1]]
            terms, mult, err, negative = _distinct(toks, idf, maxc)
            if negative:
                flagged[q] = True
                continue
            mine = exact_score(own[q], toks, ptr, docs, tf, idf, doclen, k1, kp1, omb, b, avgdl)
            terms, mult, rem, rem_post = _by_bound(terms, mult, maxc, ptr)
            n_t, rest, cost = 0, 0.0, 64 * toks.shape[0]
            for i in range(terms.shape[0]):
                # MaxScore: once the rest cannot lift an untouched doc above ours, rescore the touched that may pass
                cheap = i > 0 and rem_post[i] > 2 * n_t and rem[i] <= mine
                if cheap and _count_above(a, t, n_t, mine - err - rem[i]) * cost < rem_post[i]:
                    rest = rem[i]
                    break
                n_t = _accumulate(terms[i], mult[i], ptr, docs, w, a, t, n_t)
            above = 0
            for i in range(n_t):
                d = t[i]
                v = a[d]
                if v - err > mine:
                    above += 1
                elif v + err + rest > mine:
                    above += exact_score(d, toks, ptr, docs, tf, idf, doclen, k1, kp1, omb, b, avgdl) > mine
                a[d] = 0
            out_rank[q], out_s[q] = above + 1, mine


@numba.njit(cache=True, error_model="numpy")
def dense_scores(
    toks: np.ndarray, ptr: np.ndarray, docs: np.ndarray, tf: np.ndarray, idf: np.ndarray, doclen: np.ndarray,
    k1: float, kp1: float, omb: float, b: float, avgdl: float,
) -> np.ndarray:  # fmt: skip
    """Every doc's exact score for one query, term at a time in query order, as rank-bm25 adds them."""
    out = np.zeros(doclen.shape[0])
    for g in toks:
        if g < 0 or idf[g] == 0.0:
            continue
        for j in range(ptr[g], ptr[g + 1]):
            d = docs[j]
            f = np.float64(tf[j])
            out[d] += idf[g] * ((f * kp1) / (f + k1 * (omb + (b * doclen[d]) / avgdl)))
    return out
