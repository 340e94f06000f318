"""jieba tokens, fast: rjieba (jieba's dictionary and HMM in Rust).

rjieba keeps ASCII runs such as ``2.4km`` or ``1958-1965`` whole, where jieba splits them into
``[a-zA-Z0-9]+(\\.\\d+)?%?`` words and the characters between; that rule is applied to rjieba's pure-ASCII
tokens, so the tokens equal jieba's on all but a handful of lines (see ``benchmarks/bench_tokenize.py``).
One process: a process pool was slower here at every size tried (pickling the tokens back costs more than
the cut), so parallelism comes from shard-level tasks instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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
