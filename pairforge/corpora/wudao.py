"""WuDao: JSON Lines {title, text, id, ...} or the dump layout, a JSON array (or {"RECORDS": [...]}) of
{id, uniqueKey, titleUkey, dataType, title, content}. Dumps are streamed with ijson, never loaded whole."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson

from pairforge.config import WudaoCorpus
from pairforge.corpora.files import get_text, iter_json_lines, json_excerpt, stopped_reading
from pairforge.corpora.recover import CutArrayError, recover_array
from pairforge.corpora.streams import READ_ERRORS, open_utf8
from pairforge.records import Document, Record, Rejected

_STOPS: tuple[type[Exception], ...] = (UnicodeDecodeError, *READ_ERRORS)  # errors past which nothing can be read
_STOPS_RECOVERING: tuple[type[Exception], ...] = (CutArrayError, *_STOPS)


def read_wudao(path: str, corpus: WudaoCorpus) -> Iterator[Record]:
    """Yield a Document per WuDao record of one shard, in either layout."""
    if _is_json_lines(path, corpus):
        for item in iter_json_lines(path, corpus.encoding):
            if isinstance(item, Rejected):
                yield item
            else:
                yield _to_document(path, corpus, item[1], line=item[0])
        return
    yield from _read_dump(path, corpus)


def _read_dump(path: str, corpus: WudaoCorpus) -> Iterator[Record]:
    index = 0
    try:
        with open_utf8(path, corpus.encoding, errors="replace") as raw:
            first = _first_byte(raw)
        prefix = "item" if first == b"[" else f"{corpus.records_key}.item"
        with open_utf8(path, corpus.encoding) as raw:
            for index, obj in enumerate(ijson.items(raw, prefix, use_float=True), start=1):
                yield _to_record(path, corpus, obj, index)
    except ijson.JSONError:
        # ijson stops at a broken record: read the shard again record by record, from the one after the last
        # it read, so a broken record costs itself, not the rest of the shard.
        yield from _recover_dump(path, corpus, first == b"[", index)
    except _STOPS as exc:
        # Past a cut, damage or undecodable bytes nothing more can be read from this shard.
        yield stopped_reading(path, exc, corpus.encoding, record=index + 1)


def _recover_dump(path: str, corpus: WudaoCorpus, bare: bool, read: int) -> Iterator[Record]:
    number = read
    try:
        for number, obj, raw in recover_array(path, corpus.encoding, None if bare else corpus.records_key):
            if number <= read:
                continue  # ijson read it
            if obj is None:
                yield Rejected(path, None, "invalid_json", "not a valid JSON record", raw, record=number)
            else:
                yield _to_record(path, corpus, obj, number)
    except _STOPS_RECOVERING as exc:
        yield stopped_reading(path, exc, corpus.encoding, record=number + 1)


def _to_record(path: str, corpus: WudaoCorpus, obj: Any, index: int) -> Record:
    if isinstance(obj, dict):
        return _to_document(path, corpus, obj, record=index)
    return Rejected(path, None, "not_an_object", type(obj).__name__, record=index)


def _to_document(
    path: str, corpus: WudaoCorpus, obj: dict[str, Any], *, line: int | None = None, record: int | None = None
) -> Record:
    text = get_text(obj, "content", "text")
    if text is None:
        reason = "wrong_type" if ("content" in obj or "text" in obj) else "missing_field"
        return Rejected(path, line, reason, "content/text", json_excerpt(obj), record)
    raw_id = get_text(obj, "id", "uniqueKey")
    position = f"L{line}" if line is not None else f"R{record}"
    return Document(
        id=f"{Path(path).name}:{raw_id if raw_id else position}",
        source=corpus.source,
        title=get_text(obj, "title") or "",
        text=text,
        meta={"file": path, "line": line, "record": record, "data_type": obj.get("dataType", "")},
    )


def _is_json_lines(path: str, corpus: WudaoCorpus) -> bool:
    """JSON Lines unless the file starts like a dump: an array, ``{`` alone or ``{"RECORDS": ...`` on the first
    line, or one line holding the whole dump. A broken first record does not make a JSON Lines shard a dump.
    The file is sniffed as UTF-8 without its BOM, undecodable bytes replaced: the readers quarantine those."""
    records_key = corpus.records_key
    try:
        with io.BufferedReader(open_utf8(path, corpus.encoding, errors="replace")) as raw:
            lines = (line.strip() for line in raw)
            first = next((line for line in lines if line), b"")
            try:
                obj = json.loads(first)
            except (json.JSONDecodeError, UnicodeDecodeError):
                opener = rb'^(\[|\{\s*$|\{\s*"' + re.escape(records_key.encode()) + rb'"\s*:)'
                return re.match(opener, first) is None
            except RecursionError:  # complete, but nested too deeply to load
                obj = [] if first.startswith(b"[") else None
            if isinstance(obj, dict):
                return not isinstance(obj.get(records_key), list)
            # A whole array: the dump itself if nothing follows, else a bad first record.
            return not isinstance(obj, list) or next((line for line in lines if line), None) is not None
    except READ_ERRORS:
        return True  # the line reader quarantines what cannot be read


def _first_byte(raw: Any) -> bytes:
    while chunk := raw.read(1):
        if not chunk.isspace():
            return bytes(chunk)
    return b""
