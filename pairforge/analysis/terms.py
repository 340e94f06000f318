"""Texts to tokens and BM25 terms as arrays, without a Python object per token.

Texts are joined with ``\\x01`` and cut by rjieba in one call per chunk. ``\\x01`` is neither a jieba "han"
character nor whitespace, so jieba emits it as a token of its own and no word spans two texts; the cut of
the joined string is the cuts of the texts with one ``\\x01`` token between them, whatever the texts hold
(the separator positions come from the text lengths, not from searching for ``\\x01``). rjieba's tokens
cover the text exactly, so their lengths alone locate them in the UTF-32 code points of the joined string.
Everything after the cut runs in numba on those code points:

- jieba's ASCII rule (``tokenize.cut``): a pure-ASCII token is replaced by the non-empty parts of
  ``re.split(r"([a-zA-Z0-9]+(?:\\.\\d+)?%?)", token)``; whitespace tokens (``str.isspace``) are dropped;
- ``analyze``'s filters: tokens in ``STOPWORDS`` and tokens without an alphanumeric character
  (``^[\\W_]+$``) are dropped; ``bigram`` adds every ``text[i:i+2]`` with an alphanumeric character;
- each term is a 64-bit hash of its code points, with its position, so a term id costs no dict lookup.
  The index checks at build time that no two distinct terms share a hash, and at query time that a
  hash's stored term equals the query's, so hashing never changes a score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numba
import numpy as np
import rjieba

from pairforge.analysis.stopwords import STOPWORDS

SEPARATOR = "\x01"
MODES = {"tokens": 0, "jieba": 1, "bigram": 2, "jieba_bigram": 3}
_CHUNK_CHARS = 1 << 16  # one rjieba call per ~64k characters: cut_arrays ran 1.3x faster than with 1M per call

_FNV = np.uint64(0x100000001B3)
_SEED = np.uint64(0xCBF29CE484222325)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@dataclass(slots=True)
class Terms:
    """Terms of a run of texts: ``hashes[i]`` is the term at code points ``cp[starts[i]:starts[i] + lens[i]]``;
    text ``j`` has the terms ``doc_ptr[j]:doc_ptr[j + 1]`` in order (repeats kept)."""

    cp: np.ndarray
    hashes: np.ndarray
    starts: np.ndarray
    lens: np.ndarray
    doc_ptr: np.ndarray

    def strings(self, doc: int) -> list[str]:
        """The terms of text ``doc`` as strings (for tests and debugging)."""
        lo, hi = self.doc_ptr[doc], self.doc_ptr[doc + 1]
        return [_decode(self.cp[s : s + n]) for s, n in zip(self.starts[lo:hi], self.lens[lo:hi], strict=True)]


def _decode(cp: np.ndarray) -> str:
    return cp.astype(np.uint32).tobytes().decode("utf-32-le", errors="surrogatepass")


@cache
def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-code-point ``str.isalnum`` and ``str.isspace``, and the stopwords as (hashes, code points, offsets)."""
    every = _decode(np.arange(0x110000, dtype=np.uint32))
    # re's \w is str.isalnum() or "_", and its \s is str.isspace(), code point by code point
    isalnum = codepoints(re.sub(r"[\W_]", "\x00", every)) != 0
    isspace = codepoints(re.sub(r"\S", "\x00", every)) != 0
    words = sorted(STOPWORDS)
    stop_cp = np.concatenate([codepoints(w) for w in words])
    stop_ptr = np.cumsum([0] + [len(w) for w in words]).astype(np.int64)
    stop_hash = np.array([_hash(stop_cp, stop_ptr[i], len(w)) for i, w in enumerate(words)], np.uint64)
    return isalnum, isspace, stop_hash, stop_cp, stop_ptr


def codepoints(text: str) -> np.ndarray:
    """UTF-32 code points of ``text`` (lone surrogates kept)."""
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


def cut_arrays(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """rjieba's cut of ``texts``: (code points of the ``\\x01``-joined texts, token ends, text starts, text ends)."""
    return cut_joined(SEPARATOR.join(texts), np.fromiter(map(len, texts), np.int64, len(texts)))


def cut_joined(joined: str, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``cut_arrays`` of the texts whose ``\\x01``-join is ``joined`` and whose lengths are ``lengths``."""
    ends = np.cumsum(lengths + 1) - 1
    starts = ends - lengths
    pieces: list[np.ndarray] = []
    lo = 0
    while lo < lengths.shape[0]:  # chunks of whole texts, one rjieba call each
        hi = max(int(np.searchsorted(ends, ends[lo] + _CHUNK_CHARS, side="right")), lo + 1)
        tokens = rjieba.cut(joined[starts[lo] : ends[hi - 1]])
        pieces.append(np.fromiter(map(len, tokens), np.int64, len(tokens)))
        if hi < lengths.shape[0]:
            pieces.append(np.ones(1, np.int64))  # the separator between two chunks
        lo = hi
    tok_end = np.cumsum(np.concatenate(pieces)) if pieces else np.zeros(0, np.int64)
    return codepoints(joined), tok_end, starts, ends


def analyze_arrays(texts: Sequence[str], mode: str) -> Terms:
    """The terms of ``texts`` under an analyzer (``jieba``, ``bigram``, ``jieba_bigram``) or, with ``tokens``,
    ``tokenize``'s tokens (whitespace dropped) hashed the same way."""
    isalnum, isspace, stop_hash, stop_cp, stop_ptr = tables()
    if mode == "bigram":  # no cut needed
        lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        ends = np.cumsum(lengths + 1) - 1
        cp, tok_end, starts = codepoints(SEPARATOR.join(texts)), np.zeros(0, np.int64), ends - lengths
        t_start, t_len, t_ptr = np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(len(texts) + 1, np.int64)
    else:
        cp, tok_end, starts, ends = cut_arrays(texts)
        t_start, t_len, t_ptr = split_tokens(cp, tok_end, starts, ends, False, isspace)
    hashes, h_start, h_len, doc_ptr = _terms(
        cp, t_start, t_len, t_ptr, starts, ends, MODES[mode], isalnum, stop_hash, stop_cp, stop_ptr
    )
    return Terms(cp, hashes, h_start, h_len, doc_ptr)


def hash_terms(term_lists: Sequence[Sequence[str]]) -> Terms:
    """Already analyzed term lists as ``Terms`` (the same hashes as ``analyze_arrays`` gives those terms)."""
    flat = [term for terms in term_lists for term in terms]
    lens = np.fromiter(map(len, flat), np.int64, len(flat))
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    doc_ptr = np.cumsum([0] + [len(terms) for terms in term_lists]).astype(np.int64)
    cp = codepoints("".join(flat))
    return Terms(cp, _hash_all(cp, starts, lens), starts, lens.astype(np.int32), doc_ptr)


@numba.njit(cache=True)
def _hash_all(cp: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    out = np.empty(starts.shape[0], np.uint64)
    for i in range(starts.shape[0]):
        out[i] = _hash(cp, starts[i], lens[i])
    return out


@numba.njit(cache=True)
def _hash(cp: np.ndarray, start: int, length: int) -> np.uint64:
    h = _SEED ^ np.uint64(length)
    for i in range(start, start + length):
        h = (h ^ np.uint64(cp[i])) * _FNV
    h = (h ^ (h >> np.uint64(30))) * _M1  # splitmix64's finaliser: every input bit reaches every output bit
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


@numba.njit(cache=True)
def _ascii_alnum(c: int) -> bool:
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


@numba.njit(cache=True)
def split_tokens(
    cp: np.ndarray, tok_end: np.ndarray, starts: np.ndarray, ends: np.ndarray, keep_ws: bool, isspace: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tokenize.cut`` on arrays: (token starts, lengths, per-text token offsets). Raises if rjieba's tokens
    do not line up with the texts (which would mean the separator argument above is wrong)."""
    out_s = np.empty(cp.shape[0], np.int64)
    out_n = np.empty(cp.shape[0], np.int32)
    ptr = np.empty(starts.shape[0] + 1, np.int64)
    m = split_tokens_into(cp, tok_end, starts, ends, keep_ws, isspace, 0, out_s, out_n, ptr)
    return out_s[:m].copy(), out_n[:m].copy(), ptr


@numba.njit(cache=True)
def split_tokens_into(
    cp: np.ndarray,
    tok_end: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    keep_ws: bool,
    isspace: np.ndarray,
    base: int,
    out_s: np.ndarray,
    out_n: np.ndarray,
    ptr: np.ndarray,
) -> int:
    """``split_tokens`` into given buffers (``out_s``/``out_n`` of at least ``cp``'s length, ``ptr`` of one more
    than the texts), with ``base`` added to every start; returns the number of tokens."""
    n = starts.shape[0]
    ptr[0] = 0
    m = 0
    j = 0
    s = 0
    for t in range(n):
        if s != starts[t]:
            raise ValueError("rjieba tokens do not line up with the texts")
        while s < ends[t]:
            e = tok_end[j]
            j += 1
            if e > ends[t]:
                raise ValueError("an rjieba token spans two texts")
            ascii_only = True
            for i in range(s, e):
                if cp[i] >= 128:
                    ascii_only = False
                    break
            if not ascii_only:
                m = _emit(cp, s, e, keep_ws, isspace, out_s, out_n, m)
            else:  # re.split with the capturing word pattern, empty parts dropped
                run = s
                i = s
                while i < e:
                    if not _ascii_alnum(cp[i]):
                        i += 1
                        continue
                    if run < i:
                        m = _emit(cp, run, i, keep_ws, isspace, out_s, out_n, m)
                    k = i
                    while k < e and _ascii_alnum(cp[k]):
                        k += 1
                    if k + 1 < e and cp[k] == 46 and 48 <= cp[k + 1] <= 57:
                        k += 1
                        while k < e and 48 <= cp[k] <= 57:
                            k += 1
                    if k < e and cp[k] == 37:
                        k += 1
                    m = _emit(cp, i, k, keep_ws, isspace, out_s, out_n, m)
                    i = k
                    run = k
                if run < e:
                    m = _emit(cp, run, e, keep_ws, isspace, out_s, out_n, m)
            s = e
        ptr[t + 1] = m
        if t < n - 1:
            if j >= tok_end.shape[0] or tok_end[j] != ends[t] + 1:
                raise ValueError("rjieba did not cut the text separator on its own")
            s = tok_end[j]
            j += 1
    if base:
        for i in range(m):
            out_s[i] += base
    return m


@numba.njit(cache=True)  # not inline="always": numba's own inlining of _emit made split_tokens 7x slower
def _emit(
    cp: np.ndarray, s: int, e: int, keep_ws: bool, isspace: np.ndarray, out_s: np.ndarray, out_n: np.ndarray, m: int
) -> int:
    if not keep_ws:
        blank = True
        for i in range(s, e):
            if not isspace[cp[i]]:
                blank = False
                break
        if blank:
            return m
    out_s[m] = s
    out_n[m] = e - s
    return m + 1


@numba.njit(cache=True)
def _terms(
    cp: np.ndarray,
    t_start: np.ndarray,
    t_len: np.ndarray,
    t_ptr: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    mode: int,
    isalnum: np.ndarray,
    stop_hash: np.ndarray,
    stop_cp: np.ndarray,
    stop_ptr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = starts.shape[0]
    cap = t_start.shape[0] + (cp.shape[0] if mode >= 2 else 0)
    hashes = np.empty(cap, np.uint64)
    h_start = np.empty(cap, np.int64)
    h_len = np.empty(cap, np.int32)
    doc_ptr = np.zeros(n + 1, np.int64)
    m = 0
    for t in range(n):
        if mode != 2:  # jieba tokens
            for j in range(t_ptr[t], t_ptr[t + 1]):
                s, ln = t_start[j], t_len[j]
                if mode != 0:
                    word = False
                    for i in range(s, s + ln):
                        if isalnum[cp[i]]:
                            word = True
                            break
                    if not word:
                        continue
                h = _hash(cp, s, ln)
                if mode != 0 and _is_stopword(h, cp, s, ln, stop_hash, stop_cp, stop_ptr):
                    continue
                hashes[m], h_start[m], h_len[m] = h, s, ln
                m += 1
        if mode >= 2:  # character bigrams with an alphanumeric character
            for i in range(starts[t], ends[t] - 1):
                if isalnum[cp[i]] or isalnum[cp[i + 1]]:
                    hashes[m], h_start[m], h_len[m] = _hash(cp, i, 2), i, 2
                    m += 1
        doc_ptr[t + 1] = m
    return hashes[:m].copy(), h_start[:m].copy(), h_len[:m].copy(), doc_ptr


@numba.njit(cache=True)
def _is_stopword(
    h: np.uint64, cp: np.ndarray, s: int, ln: int, stop_hash: np.ndarray, stop_cp: np.ndarray, stop_ptr: np.ndarray
) -> bool:
    for w in range(stop_hash.shape[0]):
        if stop_hash[w] == h and stop_ptr[w + 1] - stop_ptr[w] == ln:
            same = True
            for i in range(ln):
                if stop_cp[stop_ptr[w] + i] != cp[s + i]:
                    same = False
                    break
            if same:
                return True
    return False
