"""Text normalisation, applied once at ingest, and the CJK-share test (``is_chinese``) the parser and the
language filter share.

NFKC folds full-width ASCII letters, digits and symbols (``ＡＢＣ１２３`` → ``ABC123``) and the ideographic
space. Plain NFKC would also turn Chinese punctuation (，！？；：（）…～) into ASCII, which makes the text read
unlike the Chinese the models will see at inference time; those marks are kept unless
``fold_punctuation`` is set.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

# Full-width punctuation conventionally used in Chinese; kept by default (see module docstring).
CJK_PUNCTUATION = "，！？；：（）…～"
# Stand-ins from a Private Use Area block that NFKC leaves alone.
_PUA_BASE = 0xF0000
_STAND_INS = [(ch, chr(_PUA_BASE + i)) for i, ch in enumerate(CJK_PUNCTUATION)]

# C0/C1 control characters except tab and newline, DEL, and zero-width format characters.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u2060\ufeff]")
_HSPACE = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]+")  # a Latin word weighs as much as one CJK character
_PUNCTUATION = str.maketrans("", "", "，。！？；：、“”‘’（）《》,.!?;:\"'() ")


def normalize_text(text: str, *, t2s: bool = False, fold_punctuation: bool = False) -> str:
    """Return ``text`` normalised: NFKC, control characters removed, whitespace collapsed.

    Runs of spaces and tabs become one space; any whitespace run holding a newline becomes one newline,
    so paragraph breaks survive. ``t2s`` converts traditional to simplified Chinese with OpenCC.
    """
    # str.replace per mark is ~20x faster than str.translate here, and most Chinese text is already NFKC
    # once the marks are swapped out, which the quick check finds without normalising.
    if not fold_punctuation:
        for mark, stand_in in _STAND_INS:
            text = text.replace(mark, stand_in)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    if not fold_punctuation:
        for mark, stand_in in _STAND_INS:
            text = text.replace(stand_in, mark)
    text = _CONTROL.sub("", text)
    text = _NEWLINES.sub("\n", text)
    text = _HSPACE.sub(" ", text).strip()
    if t2s and text:
        text = _opencc_t2s().convert(text)
    return text


@lru_cache(maxsize=1)
def _opencc_t2s() -> Any:
    import opencc  # imported lazily: only configs with t2s pay for it

    return opencc.OpenCC("t2s")


def is_chinese(text: str, min_share: float = 0.5) -> bool:
    """At least one CJK character, and CJK characters at least ``min_share`` of CJK characters + Latin words."""
    cjk = len(CJK.findall(text))
    latin = len(_LATIN.findall(text))
    return cjk > 0 and cjk / (cjk + latin) >= min_share


def strip_punctuation(text: str) -> str:
    """``text`` without Chinese and ASCII punctuation and spaces: what copy checks compare."""
    return text.translate(_PUNCTUATION)
