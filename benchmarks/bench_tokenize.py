"""Tokenising ~11 MB of real Chinese lines from ../shared/data: jieba (``jieba.lcut`` per line, HMM on, one
core) against ours, ``tokenize_packed(lines, workers=2)``: rjieba over ``\\x01``-joined chunks, jieba's
ASCII-run rule in numba, tokens returned as positions (no token list pickled back), both cores.
Also prints our single-core figures and the list-returning ``tokenize``. Checks how many lines get tokens
identical to jieba's and shows lines that differ. Ours: median of 3 runs. Prints
``RESULT tokenize ours=<MB/s> anchor=<MB/s> ratio=<r> unit=MB/s`` last."""

from __future__ import annotations

import os
import statistics
import time

import jieba
from passages import _sentences

from pairforge.negatives.tokenize import tokenize, tokenize_packed


def rate(megabytes: float, run, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return megabytes / statistics.median(times)


def main() -> None:
    print(f"load before: {os.getloadavg()[0]:.2f}")
    lines = [s for s in _sentences() if s.strip()]
    megabytes = sum(len(line.encode()) for line in lines) / 1e6
    jieba.setLogLevel(60)
    jieba.initialize()
    start = time.perf_counter()
    reference = [jieba.lcut(line) for line in lines]
    anchor = megabytes / (time.perf_counter() - start)
    tokenize_packed(lines[:100], workers=2)  # load the dictionary and kernels, as jieba.initialize() did for jieba
    ours = rate(megabytes, lambda: tokenize_packed(lines, keep_whitespace=True, workers=2))
    one_core = rate(megabytes, lambda: tokenize_packed(lines, keep_whitespace=True))
    as_lists = rate(megabytes, lambda: tokenize(lines, keep_whitespace=True), repeats=1)
    ours_tokens = tokenize_packed(lines, keep_whitespace=True, workers=2).lists()
    differ = [(line, a, b) for line, a, b in zip(lines, reference, ours_tokens, strict=True) if a != b]
    print(f"{len(lines):,} lines, {megabytes:.1f} MB")
    print(f"identical tokens on {1 - len(differ) / len(lines):.4%} of lines; {len(differ)} differ:")
    for line, a, b in differ[:10]:
        print(f"  {line[:40]!r}: jieba {[t for t in a if t not in b][:4]} / ours {[t for t in b if t not in a][:4]}")
    print(f"jieba {anchor:.2f} MB/s (1 core); ours {ours:.2f} MB/s (2 workers), {one_core:.2f} MB/s (1 core), "
          f"list-returning tokenize {as_lists:.2f} MB/s (1 core)")  # fmt: skip
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(f"RESULT tokenize ours={ours:.2f} anchor={anchor:.2f} ratio={ours / anchor:.1f} unit=MB/s")


if __name__ == "__main__":
    main()
