"""Reading a JSON-array dump past a broken record: the records after it are recovered, not lost.

ijson reads a dump fast but stops at the first syntax error. When it does, ``recover_array`` reads the shard again
with a small scanner that cuts the array into its top-level elements by bracket depth (outside strings) and
parses each one on its own: a broken element is quarantined with its number, and the ones after it are read. A
string that runs past the end of its line (raw newlines are not JSON) marks its element broken, and the scanner
picks up again at the next line that starts with ``{``, so one unclosed quote costs one record, not the rest of
the file. Only the error path pays for this per-character scan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pairforge.corpora.streams import open_utf8

CHUNK = 1 << 16  # characters decoded per read
RAW_KEEP = 2_000  # characters of a broken element kept in quarantine
MAX_ELEMENT_CHARS = 64 << 20  # one element past this is broken (a runaway scan would otherwise hold the file)


def recover_array(path: str, encoding: str, records_key: str | None) -> Iterator[tuple[int, Any | None, str]]:
    """(number, value, raw) for every element of the shard's array (the top-level one, or the one under
    ``records_key``), numbered from 1; ``value`` is None for an element that is not valid JSON, ``raw`` its text
    (for quarantine). Raises ``CutArrayError`` when the array never ends, and what the byte stream raises (a cut
    or damaged file, undecodable bytes)."""
    with open_utf8(path, encoding) as raw:
        text = _Chars(raw)
        if not _seek_array(text, records_key):
            raise CutArrayError("no JSON array found")
        for number, (element, ok) in enumerate(_elements(text), start=1):
            value = None
            if ok:
                try:
                    value = json.loads(element)
                except (json.JSONDecodeError, RecursionError):
                    value = None
            yield number, value, element[:RAW_KEEP]


class CutArrayError(ValueError):
    """A dump whose array never ends: the file was cut, and what followed is lost."""


class _Chars:
    """Characters of a UTF-8 byte stream, one at a time, decoded in chunks."""

    def __init__(self, raw: Any) -> None:
        self._raw, self._buffer, self._at = raw, "", 0

    def next(self) -> str:
        if self._at >= len(self._buffer):
            data = self._raw.read(CHUNK)
            if not data:
                return ""
            self._buffer, self._at = data.decode("utf-8"), 0  # open_utf8 hands out whole characters
        ch = self._buffer[self._at]
        self._at += 1
        return ch


def _seek_array(text: _Chars, records_key: str | None) -> bool:
    """Move past the array's ``[``: the first character for a bare array, else the ``[`` of ``"records_key":``."""
    first = text.next()
    while first.isspace():
        first = text.next()
    if first == "[" or records_key is None:
        return first == "["
    opener = re.compile(r'"' + re.escape(records_key) + r'"\s*:\s*\[$')
    seen = first
    while ch := text.next():
        seen = (seen + ch)[-(len(records_key) + 64) :]
        if ch == "[" and opener.search(seen):
            return True
    return False


def _elements(text: _Chars) -> Iterator[tuple[str, bool]]:
    """The array's elements as text, each with whether it was cut cleanly (balanced, its strings closed)."""
    ch = text.next()
    while True:
        while ch and (ch.isspace() or ch == ","):
            ch = text.next()
        if ch == "]":
            return
        if not ch:
            raise CutArrayError("the array never ends: the file is cut")
        element, ok, ch = _element(text, ch)
        if not ok and not ch:
            raise CutArrayError("the file ends inside a record: it is cut")
        yield element, ok
        if not ok and ch == "\n":
            ch = _resync(text)


def _element(text: _Chars, ch: str) -> tuple[str, bool, str]:
    """One element starting at ``ch``: (its text, cut cleanly, the character after it). A string running past
    its line ends the element broken at the newline; a ``{`` where no value can start (in an object not after
    ``:``, in an array not after ``[`` or ``,``) ends it broken and starts the next element."""
    out: list[str] = []
    opened: list[str] = []  # the containers the scan is in
    in_string, escaped, last = False, False, ""
    while ch:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch == "\n":
                return "".join(out), False, ch
        elif ch == '"':
            in_string = True
        elif ch == "{" and opened and last not in (":" if opened[-1] == "{" else "[,"):
            return "".join(out), False, ch
        elif ch in "{[":
            opened.append(ch)
        elif ch in "}]":
            if not opened:  # the array's own "]" after a scalar element
                return "".join(out), True, ch
            opened.pop()
        elif ch == "," and not opened:
            return "".join(out), True, ch
        out.append(ch)
        if not in_string and not ch.isspace():
            last = ch
        if len(out) > MAX_ELEMENT_CHARS:
            return "".join(out[:RAW_KEEP]), False, "\n"
        if not opened and ch in "}]":
            return "".join(out), True, text.next()
        ch = text.next()
    return "".join(out), False, ""


def _resync(text: _Chars) -> str:
    """Skip to the next line that starts (after blanks) with ``{``; returns that ``{`` (or "" at the end)."""
    at_line_start = True
    while ch := text.next():
        if ch == "\n":
            at_line_start = True
        elif at_line_start and ch == "{":
            return ch
        elif not ch.isspace():
            at_line_start = False
    return ""
