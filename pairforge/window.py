"""Cut documents into passages on sentence ends, to a maximum length in tokens (or characters).

A window is a run of whole sentences; a sentence longer than the maximum is cut at a clause mark (，、：)
when one lies in the second half of the allowed span, else at the limit. Offsets always reproduce the text:
``passage.text == document.text[passage.start:passage.end]``.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pairforge.config import WindowConfig
from pairforge.records import Document, Passage

# A sentence ends after a run of end marks plus any closing quotes/brackets, after an ASCII period followed by
# whitespace (so 2.4 and example.com are not cut), or at a newline.
SENTENCE_END = re.compile(r"[。！？；…!?;]+[”’\"'』」》）)\]]*|\.(?=\s)|\n")
CLAUSE_MARK = re.compile(r"[，、：,:]")


@dataclass(slots=True)
class WindowStats:
    """What windowing produced and dropped."""

    windows: int = 0
    too_short: int = 0


class _Measure:
    """Span lengths in characters, or in tokens of one tokenisation of the whole document."""

    def __init__(self, text: str, tokenizer: Any | None) -> None:
        self.starts: list[int] | None = None
        if tokenizer is not None:
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            self.starts = [s for s, e in enc["offset_mapping"] if e > s]

    def length(self, a: int, b: int) -> int:
        if self.starts is None:
            return b - a
        return bisect.bisect_left(self.starts, b) - bisect.bisect_left(self.starts, a)

    def furthest_end(self, a: int, limit: int, text_end: int) -> int:
        """The largest end e with length(a, e) <= limit."""
        if self.starts is None:
            return min(a + limit, text_end)
        first = bisect.bisect_left(self.starts, a)
        return self.starts[first + limit] if first + limit < len(self.starts) else text_end


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) that tile ``text`` exactly."""
    spans, start = [], 0
    for match in SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def trimmed_sentences(text: str) -> list[tuple[int, int]]:
    """``split_sentences``'s spans without surrounding whitespace, empty ones left out."""
    spans = []
    for start, end in split_sentences(text):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def window_document(
    doc: Document, config: WindowConfig, tokenizer: Any | None = None, stats: WindowStats | None = None
) -> Iterator[Passage]:
    """Yield the passages of ``doc``: whole sentences packed up to ``config.max_length``."""
    text = doc.text
    measure = _Measure(text, tokenizer)
    units = list(_bounded_units(text, measure, config.max_length))
    window: list[tuple[int, int]] = []
    size = 0
    for unit in units:
        unit_len = measure.length(*unit)
        if window and size + unit_len > config.max_length:
            yield from _emit(doc, window, measure, config, stats)
            window = _overlap_tail(window, measure, config, unit_len)
            size = sum(measure.length(*u) for u in window)
        window.append(unit)
        size += unit_len
    if window:
        yield from _emit(doc, window, measure, config, stats)


def _bounded_units(text: str, measure: _Measure, max_length: int) -> Iterator[tuple[int, int]]:
    """Sentences, with any sentence over ``max_length`` cut into pieces that fit."""
    for start, end in split_sentences(text):
        while measure.length(start, end) > max_length:
            cut = measure.furthest_end(start, max_length, end)
            clause = [m.end() for m in CLAUSE_MARK.finditer(text, start, cut)]
            if clause and clause[-1] > start + (cut - start) // 2:
                cut = clause[-1]
            if cut <= start:  # a single token longer than the limit cannot be split further
                break
            yield start, cut
            start = cut
        if start < end:
            yield start, end


def _overlap_tail(
    window: list[tuple[int, int]], measure: _Measure, config: WindowConfig, next_len: int
) -> list[tuple[int, int]]:
    tail: list[tuple[int, int]] = []
    size = 0
    budget = min(config.overlap, config.max_length - next_len)
    for unit in reversed(window[1:]):  # never repeat the whole previous window
        size += measure.length(*unit)
        if size > budget:
            break
        tail.insert(0, unit)
    return tail


def _emit(
    doc: Document, window: list[tuple[int, int]], measure: _Measure, config: WindowConfig, stats: WindowStats | None
) -> Iterator[Passage]:
    start, end = window[0][0], window[-1][1]
    text = doc.text
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if measure.length(start, end) < config.min_length:
        if stats is not None:
            stats.too_short += 1
        return
    if stats is not None:
        stats.windows += 1
    yield Passage(passage_id(doc.source, doc.id, start, end), doc.id, doc.source, text[start:end], start, end)


def passage_id(source: str, doc_id: str, start: int, end: int) -> str:
    """Stable passage id: a hash of where the passage comes from."""
    return hashlib.sha1(f"{source}\x1f{doc_id}\x1f{start}\x1f{end}".encode()).hexdigest()[:20]
