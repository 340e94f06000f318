"""MinHash signatures, computed in bulk with numba, with datasketch's meaning.

Shingles are character n-grams (default 5) or jieba word n-grams. Each shingle gets a 32-bit FNV-1a hash
over its units (code points, or word hashes), then the MurmurHash3 finaliser. Two schemes turn those hashes
into ``num_perm`` coordinates:

- ``affine32`` (default), datasketch 2.0's scheme: coordinate p is the minimum of ``a[p] * h + b[p]`` modulo
  2^32 with ``a`` and ``b`` drawn exactly as datasketch draws them from ``seed``. So a datasketch
  ``MinHash(num_perm, seed, hashfunc=shingle_hash)`` fed the same shingles holds the same signature, bit for bit.
- ``oph``, one-permutation hashing with rounds (Dahlgaard, Knudsen and Thorup's fast similarity sketching,
  the idea behind rensa's R-MinHash): each round drops every shingle into one of ``num_perm`` buckets and keeps
  the smallest value per bucket; rounds repeat (at most 4) while a bucket is empty, and a bucket still empty
  takes the affine32 minimum of its coordinate. Every coordinate stays a min-wise hash (equal with probability
  J), the buckets sample without replacement, so estimates are slightly more accurate, and each shingle costs
  O(1) instead of O(num_perm). Not interchangeable with affine32 signatures.

How the kernel runs near this CPU's limit (AVX-512, 2 cores):
- Texts are read where CPython stores them: each str's 1-, 2- or 4-byte code units are viewed in place
  (numba's own unboxing helper gives the address), never converted to UTF-32 or copied per passage.
- The n-gram hashes of a passage go into a scratch buffer in L1, 16 windows per zmm register (``_fnv16``); the
  next passage's text is prefetched meanwhile.
- affine32 keeps a block of 128 permutations in registers (8 vectors each of a, b and running minima: 24 of the
  32 zmm registers) while it streams the passage's hashes: per shingle one broadcast, then per 16 permutations
  vpmulld, vpaddd, vpminud. LLVM's loop vectoriser stops at 256 bits on Intel AVX-512 parts, so this loop is
  written as explicit 16-lane LLVM IR (``_affine_min``).
- oph computes buckets and values 16 lanes at a time (``_buckets16``) and keeps the minima with scalar stores.
- Passages are spread over the cores with ``numba.prange`` in chunks, scheduled dynamically so a core shared with
  another process does not hold the other one up.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numba
import numpy as np

from pairforge.dedup.minhash_kernels import (
    _CHUNK,
    _LANES,
    _ROUNDS,
    EMPTY,
    FNV_OFFSET,
    FNV_PRIME,
    _extract_views,
    _signatures,
    _signatures_serial,
    _word_hashes,
)

__all__ = ["EMPTY", "FNV_OFFSET", "FNV_PRIME", "char_shingles", "estimate_jaccard", "permutations", "shingle_hash",
           "signatures", "word_hash"]  # fmt: skip

Scheme = Literal["affine32", "oph"]


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
    scheme: Scheme = "affine32",
) -> np.ndarray:
    """MinHash signatures (len(texts) × num_perm, uint32) of character n-grams of ``texts`` or, when
    ``tokens`` is given, of word n-grams of those token lists (``texts`` is then unused). ``scheme`` is
    ``"affine32"`` (datasketch-identical) or ``"oph"`` (faster, as accurate; see the module docstring).
    Runs on numba's threads (``numba.set_num_threads``); the result does not depend on their number."""
    if num_perm < 1 or n < 1:
        raise ValueError(f"num_perm and n must be positive, got num_perm={num_perm}, n={n}")
    if scheme not in ("affine32", "oph"):
        raise ValueError(f"unknown MinHash scheme {scheme!r}: expected 'affine32' or 'oph'")
    # The views point into the memory of `owner` (the strings, or the word hashes): it lives until we return.
    owner: object
    if tokens is None:
        owner = texts if isinstance(texts, list | tuple) else list(texts)
        views = _string_views(owner)
    else:
        owner, views = _word_views(tokens)
    a, b, salts = _parameters(num_perm, seed)
    if len(views) < 4 * _CHUNK:  # waking the other threads would cost more than they save
        return _signatures_serial(views, n, num_perm, a, b, salts, scheme == "oph")
    with numba.parallel_chunksize(1):  # dynamic scheduling, one chunk of _CHUNK passages at a time
        return _signatures(views, n, num_perm, a, b, salts, scheme == "oph")


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of equal signature positions (datasketch's ``MinHash.jaccard``)."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


@lru_cache(maxsize=16)
def _parameters(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a and b padded with zeros to whole vectors, and the oph round salts (drawn after a and b)."""
    gen = np.random.RandomState(seed)
    gen.randint(0, 1 << 31, num_perm, dtype=np.uint32)
    gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    salts = gen.randint(0, 1 << 32, _ROUNDS, dtype=np.uint32)
    width = -(-num_perm // _LANES) * _LANES
    a, b = (np.zeros(width, dtype=np.uint32) for _ in range(2))
    a[:num_perm], b[:num_perm] = permutations(num_perm, seed)
    for array in (a, b, salts):
        array.flags.writeable = False
    return a, b, salts


def _string_views(strings: Sequence[str]) -> np.ndarray:
    """(address, length, kind) of each string's code units where CPython keeps them (kind = bytes per unit).
    The strings must outlive the views."""
    if not all(issubclass(t, str) for t in set(map(type, strings))):
        bad = next(s for s in strings if not isinstance(s, str))
        raise TypeError(f"MinHash input must be str, got {type(bad).__name__}: {bad!r:.80}")
    views = _extract_views(np.fromiter(map(id, strings), dtype=np.int64, count=len(strings)))
    if len(views) and not views[:, 0].all():
        raise ValueError("a string's buffer could not be read")
    return views


def _word_views(tokens: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Each token list as a run of word hashes (4-byte units) in one array, which the views point into."""
    words = [w for ws in tokens for w in ws]
    units = _word_hashes(_string_views(words))
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    starts = np.zeros(len(tokens), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    views = np.stack([units.ctypes.data + 4 * starts, lengths, np.full(len(tokens), 4)], axis=1)
    return units, views.astype(np.int64)
