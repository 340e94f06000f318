"""BM25 terms of a text: jieba tokens without punctuation and the commonest function words, or character
bigrams, or both.

Measured on CMRC 2018 dev (848 paragraphs, 3,219 questions), BM25 recall@5 of the gold paragraph:
raw jieba tokens 0.987, without punctuation 0.990, also without the function words of ``stopwords`` 0.992
(``jieba``), character bigrams 0.996 (``bigram``), both 0.997 (``jieba_bigram``, the largest index).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pairforge.analysis.stopwords import STOPWORDS
from pairforge.analysis.tokenize import tokenize

Analyzer = Literal["jieba", "bigram", "jieba_bigram"]

_PUNCTUATION = re.compile(r"^[\W_]+$")


def analyze(texts: Sequence[str], analyzer: Analyzer = "jieba") -> list[list[str]]:
    """The BM25 terms of each text under ``analyzer``."""
    words = tokenize(texts) if analyzer != "bigram" else [[] for _ in texts]
    out = []
    for text, tokens in zip(texts, words, strict=True):
        terms = [t for t in tokens if t not in STOPWORDS and not _PUNCTUATION.match(t)]
        if analyzer != "jieba":
            terms.extend(text[i : i + 2] for i in range(len(text) - 1) if not _PUNCTUATION.match(text[i : i + 2]))
        out.append(terms)
    return out
