"""jieba tokens, fast: rjieba (jieba's dictionary and HMM in Rust).

rjieba keeps ASCII runs such as ``2.4km`` or ``1958-1965`` whole, where jieba splits them into
``[a-zA-Z0-9]+(\\.\\d+)?%?`` words and the characters between; that rule is applied to rjieba's pure-ASCII
tokens, so the tokens equal jieba's on all but a handful of lines (see ``benchmarks/bench_tokenize.py``).

``tokenize``/``cut`` return Python lists. ``tokenize_packed`` gives the same tokens as positions in the
joined texts (``terms.split_tokens``, no Python object per token) and can use several processes: this
one cuts the first share of the texts while helper processes, started once and kept, cut the others
straight into memory-mapped files in /dev/shm that this process then reads; only a share's text goes to
a helper and only its token count comes back (pickling token lists back made a pool slower than one
process). The BM25 index analyzes inside the worker that writes the segment instead.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import rjieba

from pairforge.analysis import terms

_JIEBA_ASCII_WORD = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")
_POOL: tuple[int, int, ProcessPoolExecutor] | None = None  # (owner pid, helpers, pool): see helper_pool


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
    """``tokenize(texts)`` as a ``PackedTokens``, cut by ``workers`` processes: this one and ``workers - 1``
    helpers (``helper_pool``), each on a contiguous share of the texts of about equal length."""
    texts = list(texts)
    joined = terms.SEPARATOR.join(texts)
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    bounds = _shares(lengths, workers)
    if len(bounds) == 2:
        starts, lens, ptr = _positions(joined, lengths, keep_whitespace)
        return PackedTokens(joined, starts, lens, ptr)
    text_start = np.concatenate([[0], np.cumsum(lengths + 1)])  # where each text begins in ``joined``
    pool = helper_pool(len(bounds) - 2)
    folder = _shared_folder()
    paths: list[str] = []
    futures: list[Future[int]] = []
    maps: list[np.memmap] = []
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    try:
        for lo, hi in itertools.pairwise(bounds[1:]):
            fd, path = tempfile.mkstemp(prefix="pairforge-tokens-", dir=folder)
            os.close(fd)
            paths.append(path)
            share = joined[text_start[lo] : text_start[hi] - 1]
            base = int(text_start[lo])
            futures.append(pool.submit(_tokenize_share, share, lengths[lo:hi], keep_whitespace, base, path))
        first = joined[: text_start[bounds[1]] - 1]
        parts.append(_positions(first, lengths[: bounds[1]], keep_whitespace))  # this process's share, meanwhile
        for (lo, hi), future, path in zip(itertools.pairwise(bounds[1:]), futures, paths, strict=True):
            count = future.result()  # the helper has written its file
            maps.append(np.memmap(path, np.uint8, "r"))
            parts.append(_read_share(maps[-1], count, hi - lo, int(text_start[hi] - text_start[lo] - 1)))
        return PackedTokens(joined, *_concatenate(parts))
    except BrokenProcessPool:
        close_helper_pool()
        raise
    finally:
        for future in futures:
            future.cancel()
        wait(futures)
        parts.clear()  # unmapped before the files go
        maps.clear()
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def helper_pool(count: int) -> ProcessPoolExecutor:
    """``count`` helper processes for ``tokenize_packed``, started once per process and kept for later calls
    (their start-up is paid by the first call); a new pool replaces one of another size or another process."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] != count:
        close_helper_pool()
        _POOL = (os.getpid(), count, ProcessPoolExecutor(count, mp_context=pool_context()))
    return _POOL[2]


def close_helper_pool() -> None:
    """Stop ``helper_pool``'s processes (they also stop when this process exits)."""
    global _POOL
    if _POOL is not None and _POOL[0] == os.getpid():  # a pool inherited through fork is not ours to stop
        _POOL[2].shutdown(wait=True, cancel_futures=True)
    _POOL = None


def pool_context() -> multiprocessing.context.BaseContext:
    """fork where there is one: a worker only runs rjieba and numba on its texts and takes no lock a parent
    thread could hold, and unlike spawn it needs no ``if __name__ == "__main__"`` guard in the caller's script."""
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def _shared_folder() -> str:
    """Where the helpers' files go: /dev/shm (memory) where it can be written, else the temporary folder."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _shares(lengths: np.ndarray, workers: int) -> np.ndarray:
    """Text bounds of up to ``workers`` non-empty contiguous shares of about equal length (separators counted)."""
    n = lengths.shape[0]
    if workers <= 1 or n < 2:
        return np.array([0, n])
    cum = np.cumsum(lengths + 1)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, workers) / workers, side="right")
    return np.unique(np.concatenate([[0], np.clip(cuts, 1, n - 1), [n]]))


def _positions(joined: str, lengths: np.ndarray, keep_whitespace: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cp, tok_end, starts, ends = terms.cut_joined(joined, lengths)
    return terms.split_tokens(cp, tok_end, starts, ends, keep_whitespace, terms.tables()[1])


def _tokenize_share(joined: str, lengths: np.ndarray, keep_whitespace: bool, base: int, path: str) -> int:
    """In a helper: cut one share straight into the memory-mapped file ``path``; returns its token count."""
    cp, tok_end, starts, ends = terms.cut_joined(joined, lengths)
    buffer = np.memmap(path, np.uint8, "w+", shape=(_share_bytes(lengths.shape[0], cp.shape[0]),))
    ptr, out_s, out_n = _share_views(buffer, lengths.shape[0], cp.shape[0])
    isspace = terms.tables()[1]
    return int(terms.split_tokens_into(cp, tok_end, starts, ends, keep_whitespace, isspace, base, out_s, out_n, ptr))


def _share_bytes(n_texts: int, chars: int) -> int:
    """A share's file: per-text token offsets (int64), then room for a token per character: starts (int64)
    and lengths (int32). Only the pages written take memory."""
    return 8 * (n_texts + 1) + 12 * chars


def _share_views(buffer: np.ndarray, n_texts: int, chars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = 8 * (n_texts + 1), 8 * (n_texts + 1 + chars)
    return buffer[:a].view(np.int64), buffer[a:b].view(np.int64), buffer[b : b + 4 * chars].view(np.int32)


def _read_share(buffer: np.ndarray, count: int, n_texts: int, chars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ptr, starts, lens = _share_views(buffer, n_texts, chars)
    return starts[:count], lens[:count], ptr


def _concatenate(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (starts, lengths, per-text offsets) from the shares' in order (their starts already global)."""
    ptrs, count = [np.zeros(1, np.int64)], 0
    for _, lens, ptr in parts:
        ptrs.append(ptr[1:] + count)
        count += lens.shape[0]
    starts = np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False)
    lens = np.concatenate([p[1] for p in parts]).astype(np.int32, copy=False)
    return starts, lens, np.concatenate(ptrs)
