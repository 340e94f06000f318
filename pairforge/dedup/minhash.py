"""MinHash signatures, computed in bulk with numba, with datasketch's meaning.

Shingles are character n-grams (default 5) or jieba word n-grams. Each shingle gets a 32-bit FNV-1a hash
over its units (code points, or word hashes); the permutations are datasketch 2.0's default ``affine32``
scheme: the MurmurHash3 finaliser, then ``a * h + b`` modulo 2^32 with ``a`` and ``b`` drawn exactly as
datasketch draws them from ``seed``. So a datasketch ``MinHash(num_perm, seed, hashfunc=shingle_hash)``
fed the same shingles holds the same signature, bit for bit; only the per-shingle Python loop is gone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

FNV_OFFSET = np.uint32(2166136261)
FNV_PRIME = np.uint32(16777619)
EMPTY = np.uint32(0xFFFFFFFF)  # the signature value of an empty set, as in datasketch


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 parameters: odd ``a`` and any ``b``, from ``np.random.RandomState(seed)``."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def shingle_hash(shingle: str | Sequence[str]) -> int:
    """The 32-bit hash of one shingle: a string of characters, or a sequence of words (word n-grams).
    The reference implementation of what the vectorised code computes; datasketch takes it as hashfunc."""
    units = [ord(c) for c in shingle] if isinstance(shingle, str) else [word_hash(w) for w in shingle]
    h = int(FNV_OFFSET)
    for unit in units:
        h = ((h ^ unit) * int(FNV_PRIME)) & 0xFFFFFFFF
    return h


def word_hash(word: str) -> int:
    """A word's 32-bit unit value for word n-grams (FNV-1a over its code points)."""
    return shingle_hash(word)


def char_shingles(text: str, n: int) -> list[str]:
    """The character n-grams of ``text`` (the whole text if shorter than n; none if empty)."""
    if len(text) <= n:
        return [text] if text else []
    return [text[i : i + n] for i in range(len(text) - n + 1)]


def signatures(
    texts: Sequence[str],
    *,
    num_perm: int = 128,
    n: int = 5,
    seed: int = 1,
    tokens: Sequence[Sequence[str]] | None = None,
) -> np.ndarray:
    """MinHash signatures (len(texts) × num_perm, uint32) of character n-grams of ``texts`` or, when
    ``tokens`` is given, of word n-grams of those token lists."""
    if tokens is None:
        joined = "".join(texts)
        units = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    else:
        units = np.fromiter((word_hash(w) for ws in tokens for w in ws), dtype=np.uint32)
        lengths = np.fromiter((len(ws) for ws in tokens), dtype=np.int64, count=len(tokens))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    a, b = permutations(num_perm, seed)
    return _signatures(units, offsets, n, a, b)


# numba widens uint32 arithmetic to 64 bits, so every product is masked back to 32 bits explicitly.
_MASK = np.uint64(0xFFFFFFFF)


@numba.njit(cache=True, inline="always")
def _fmix32(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _MASK
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _MASK
    h ^= h >> np.uint64(16)
    return h


@numba.njit(cache=True, parallel=True)
def _signatures(units: np.ndarray, offsets: np.ndarray, n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    docs = offsets.shape[0] - 1
    num_perm = a.shape[0]
    a64 = a.astype(np.uint64)
    b64 = b.astype(np.uint64)
    out = np.full((docs, num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    for d in numba.prange(docs):
        start, end = offsets[d], offsets[d + 1]
        length = end - start
        if length == 0:
            continue
        width = n if length > n else length
        sig = np.full(num_perm, _MASK, dtype=np.uint64)
        for i in range(start, end - width + 1):
            h = np.uint64(2166136261)
            for j in range(width):
                h = ((h ^ np.uint64(units[i + j])) * np.uint64(16777619)) & _MASK
            h = _fmix32(h)
            for p in range(num_perm):
                v = (a64[p] * h + b64[p]) & _MASK
                if v < sig[p]:
                    sig[p] = v
        for p in range(num_perm):
            out[d, p] = np.uint32(sig[p])
    return out


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of equal signature positions (datasketch's ``MinHash.jaccard``)."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)
