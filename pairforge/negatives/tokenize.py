"""jieba tokens, fast: rjieba (jieba's dictionary and HMM in Rust).

rjieba keeps ASCII runs such as ``2.4km`` or ``1958-1965`` whole, where jieba splits them into
``[a-zA-Z0-9]+(\\.\\d+)?%?`` words and the characters between; that rule is applied to rjieba's pure-ASCII
tokens, so the tokens equal jieba's on all but a handful of lines (see ``benchmarks/bench_tokenize.py``).

``tokenize``/``cut`` return Python lists. ``tokenize_packed`` gives the same tokens as positions in the
joined texts (``terms.split_tokens``, no Python object per token) and can use several processes: a
worker sends back only its position arrays, never token lists (pickling lists back made a pool slower
than one process). The BM25 index goes further and analyzes inside the worker that writes the segment.
"""

from __future__ import annotations

import itertools
import multiprocessing
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import rjieba

_JIEBA_ASCII_WORD = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")


def tokenize(texts: Sequence[str], *, keep_whitespace: bool = False) -> list[list[str]]:
    """jieba-compatible tokens of each text; whitespace tokens dropped unless ``keep_whitespace``."""
    return [cut(text, keep_whitespace=keep_whitespace) for text in texts]


def cut(text: str, *, keep_whitespace: bool = False) -> list[str]:
    """The jieba-compatible tokens of one text."""
    out: list[str] = []
    for token in rjieba.cut(text):
        if token.isascii() and len(token) > 1 and not _JIEBA_ASCII_WORD.fullmatch(token):
            out.extend(part for part in _JIEBA_ASCII_WORD.split(token) if part)
        else:
            out.append(token)
    return out if keep_whitespace else [t for t in out if t.strip()]


@dataclass(slots=True)
class PackedTokens:
    """Tokens of many texts as positions: text ``i``'s tokens are ``joined[starts[j]:starts[j] + lens[j]]``
    for ``j`` in ``doc_ptr[i]:doc_ptr[i + 1]``, where ``joined`` is the texts joined with ``\\x01``."""

    joined: str
    starts: np.ndarray
    lens: np.ndarray
    doc_ptr: np.ndarray

    def __len__(self) -> int:
        return self.doc_ptr.shape[0] - 1

    def tokens(self, i: int) -> list[str]:
        """The tokens of text ``i``."""
        lo, hi = self.doc_ptr[i], self.doc_ptr[i + 1]
        starts, lens = self.starts[lo:hi].tolist(), self.lens[lo:hi].tolist()
        return [self.joined[s : s + n] for s, n in zip(starts, lens, strict=True)]

    def lists(self) -> list[list[str]]:
        """All tokens as ``tokenize`` returns them."""
        return [self.tokens(i) for i in range(len(self))]


def tokenize_packed(texts: Sequence[str], *, keep_whitespace: bool = False, workers: int = 1) -> PackedTokens:
    """``tokenize(texts)`` as a ``PackedTokens``, cut by ``workers`` processes (this one when 1)."""
    from pairforge.negatives import terms  # terms needs analyze, which needs this module

    texts = list(texts)
    if workers <= 1 or len(texts) < 2:
        parts = [_positions(texts, keep_whitespace)]
    else:
        bounds = np.linspace(0, len(texts), 4 * workers + 1).astype(int)
        chunks = [texts[lo:hi] for lo, hi in itertools.pairwise(bounds)]
        with ProcessPoolExecutor(workers, mp_context=pool_context()) as pool:
            parts = list(pool.map(_positions, chunks, [keep_whitespace] * len(chunks)))
    starts, lens, ptrs, offset, count = [], [], [np.zeros(1, np.int64)], 0, 0
    for (s, n, p), chunk_chars in zip(parts, _chunk_chars(parts, texts), strict=True):
        starts.append(s + offset)
        lens.append(n)
        ptrs.append(p[1:] + count)
        offset, count = offset + chunk_chars + 1, count + int(p[-1])  # + 1: the separator between chunks
    joined = terms.SEPARATOR.join(texts)
    return PackedTokens(joined, np.concatenate(starts), np.concatenate(lens), np.concatenate(ptrs))


def _chunk_chars(parts: list, texts: list[str]) -> list[int]:
    sizes, lo = [], 0
    for _, _, p in parts:
        n = p.shape[0] - 1
        sizes.append(sum(map(len, texts[lo : lo + n])) + max(n - 1, 0))
        lo += n
    return sizes


def pool_context() -> multiprocessing.context.BaseContext:
    """fork where there is one: a worker only runs rjieba and numba on its texts and takes no lock a parent
    thread could hold, and unlike spawn it needs no ``if __name__ == "__main__"`` guard in the caller's script."""
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def _positions(texts: list[str], keep_whitespace: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from pairforge.negatives import terms

    cp, tok_end, starts, ends = terms.cut_arrays(texts)
    return terms.split_tokens(cp, tok_end, starts, ends, keep_whitespace, terms.tables()[1])
