"""Tokenising ~11 MB of real Chinese lines from ../shared/data: jieba (``jieba.lcut``, HMM on) against ours
(rjieba with jieba's ASCII-run rule, one process per core). Prints how many lines get identical tokens and
the lines that differ, then ``RESULT tokenize ours=<MB/s> anchor=<MB/s> ratio=<r> unit=MB/s``."""

from __future__ import annotations

import time

import jieba
from passages import _sentences

from pairforge.negatives.tokenize import tokenize


def main() -> None:
    lines = [s for s in _sentences() if s.strip()]
    megabytes = sum(len(line.encode()) for line in lines) / 1e6
    jieba.setLogLevel(60)
    jieba.initialize()
    start = time.perf_counter()
    reference = [jieba.lcut(line) for line in lines]
    anchor = megabytes / (time.perf_counter() - start)
    tokenize(lines[:100])  # load the dictionary before timing, as jieba.initialize() did for jieba
    start = time.perf_counter()
    ours_tokens = tokenize(lines, keep_whitespace=True)
    ours = megabytes / (time.perf_counter() - start)
    differ = [(line, a, b) for line, a, b in zip(lines, reference, ours_tokens, strict=True) if a != b]
    print(f"{len(lines):,} lines, {megabytes:.1f} MB")
    print(f"identical tokens on {1 - len(differ) / len(lines):.4%} of lines; {len(differ)} differ:")
    for line, a, b in differ[:10]:
        print(f"  {line[:40]!r}: jieba {[t for t in a if t not in b][:4]} / ours {[t for t in b if t not in a][:4]}")
    print(f"jieba {anchor:.2f} MB/s; ours {ours:.2f} MB/s")
    print(f"RESULT tokenize ours={ours:.2f} anchor={anchor:.2f} ratio={ours / anchor:.1f} unit=MB/s")


if __name__ == "__main__":
    main()
