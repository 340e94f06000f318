"""Banded LSH over MinHash signatures and clustering of near-duplicates, with datasketch's parameters.

Bands × rows are chosen from the threshold as datasketch's MinHashLSH chooses them (minimising the
weighted false-positive and false-negative areas). Documents sharing a band bucket are candidates; a
candidate pair is joined only when its signatures agree on at least ``threshold`` of the positions, so
bucket collisions below the threshold do not chain unrelated documents together.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
from scipy.integrate import quad


def _false_positive(threshold: float, b: int, r: int) -> float:
    return float(quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0])


def _false_negative(threshold: float, b: int, r: int) -> float:
    return float(quad(lambda s: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)[0])


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising ``fp_weight * FP + fn_weight * FN``, exactly as datasketch's MinHashLSH."""
    best, best_error = (0, 0), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            error = _false_positive(threshold, b, r) * fp_weight + _false_negative(threshold, b, r) * fn_weight
            if error < best_error:
                best, best_error = (b, r), error
    return best


@numba.njit(cache=True)
def bucket_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit bucket id per (document, band): FNV-1a over the band's rows, the band number mixed in so one
    key space serves all bands."""
    n = sigs.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    for d in range(n):
        for band in range(bands):
            h = np.uint64(14695981039346656037) ^ np.uint64(band)
            for k in range(band * rows, band * rows + rows):
                h = (h ^ np.uint64(sigs[d, k])) * np.uint64(1099511628211)
            keys[d, band] = h
    return keys


@numba.njit(cache=True)
def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True)
def join_bucket_runs(
    sorted_keys: np.ndarray, order: np.ndarray, signatures: np.ndarray, parent: np.ndarray, need: int, max_compare: int
) -> None:
    """Union documents that share a bucket (runs of equal ``sorted_keys``; ``order`` gives their indices) when
    at least ``need`` signature positions agree; each is compared with up to ``max_compare`` earlier members."""
    n = sorted_keys.shape[0]
    start = 0
    while start < n:
        end = start + 1
        while end < n and sorted_keys[end] == sorted_keys[start]:
            end += 1
        for x in range(start + 1, end):
            i = order[x]
            for y in range(x - 1, max(start, x - max_compare) - 1, -1):
                j = order[y]
                ri, rj = _find(parent, i), _find(parent, j)
                if ri == rj:
                    break
                same = 0
                for k in range(signatures.shape[1]):
                    same += signatures[i, k] == signatures[j, k]
                if same >= need:
                    if ri < rj:
                        parent[rj] = ri
                    else:
                        parent[ri] = rj
                    break
        start = end


@numba.njit(cache=True)
def find_roots(parent: np.ndarray) -> np.ndarray:
    """The root of every element of a union-find ``parent`` array."""
    out = np.empty(parent.shape[0], dtype=np.int64)
    for i in range(parent.shape[0]):
        out[i] = _find(parent, i)
    return out
