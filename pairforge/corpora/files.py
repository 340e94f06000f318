"""Shard discovery and streaming reads: globs, line numbers, per-line decoding and JSON checks (the byte
streams, .gz/.zst included, are in ``streams``)."""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pairforge.corpora.decoding import decode_line, gb18030_hint
from pairforge.corpora.streams import READ_ERRORS, open_binary
from pairforge.records import Document, HumanPair, Record, Rejected

_log = logging.getLogger(__name__)
RAW_KEEP = 2_000  # characters of a bad record kept in quarantine; file:line points at the rest
# A \uD800-\uDFFF escape; json.loads joins valid pairs, so only lone surrogates survive (and cannot be stored).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
REST_NOT_READ = "(rest of the file not read)"  # ends the detail of a record after which reading stopped


class CorpusPathError(FileNotFoundError):
    """A corpus path or glob that matches no file."""


def expand_paths(pattern: str) -> list[str]:
    """The regular files a path or glob names, sorted so shard order is stable; an error if there are none.
    Anything else it matches (a directory, a FIFO, a dangling symlink, a socket or device) is skipped with one
    warning naming each and how many; none is opened, so a FIFO cannot hang the run."""
    paths, skipped = [], {}
    for path in sorted(glob.glob(pattern, recursive=True)):
        kind = _not_a_file(path)
        if kind is None:
            paths.append(path)
        else:
            skipped[path] = kind
    named = "; ".join(f"{path} ({kind})" for path, kind in skipped.items())
    if not paths:
        also = f"; it matches only what is not a regular file: {named}" if skipped else ""
        raise CorpusPathError(f"{pattern}: no such file (or the glob matches nothing){also}")
    if skipped:
        _log.warning("%s: %d matched path(s) skipped, not regular files: %s", pattern, len(skipped), named)
    return paths


def _not_a_file(path: str) -> str | None:
    """None for a regular file (or a symlink to one), else what the path is; never opens it."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        return "dangling symlink" if os.path.islink(path) else "vanished"
    except OSError as exc:  # a symlink loop, a permission denied on the way
        return f"unreadable: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def iter_lines(path: str, encoding: str = "utf-8") -> Iterator[tuple[int, str] | Rejected]:
    """Yield (line number, text) for each non-blank line, decoded with ``encoding`` and without a BOM (at the
    start of the file, or of any line, as in shards joined with ``cat``). Undecodable lines come back as
    Rejected; a cut or damaged file ends in one ``unreadable`` record at the line where reading stopped (a
    partial last line included)."""
    number = 0
    try:
        with open_binary(path) as raw:
            for number, line in enumerate(raw, start=1):
                text = decode_line(line, encoding)
                if isinstance(text, tuple):
                    yield Rejected(path, number, *text, _excerpt(line))
                    continue
                text = text.rstrip("\r\n")
                if text.strip():
                    yield number, text
    except READ_ERRORS as exc:
        yield Rejected(path, number + 1, "unreadable", f"{exc} {REST_NOT_READ}")


def stopped_reading(path: str, exc: Exception, encoding: str, *, record: int) -> Rejected:
    """The record of an error that ended the reading of a one-JSON-value file (a dump, a SQuAD file) at
    ``record``: ``unreadable`` (a cut or damaged file), ``invalid_utf8`` / ``invalid_encoding``, or
    ``invalid_json``."""
    reason, detail = "invalid_json", str(exc)
    if isinstance(exc, UnicodeDecodeError):
        reason = "invalid_utf8" if encoding == "utf-8" else "invalid_encoding"
        detail += gb18030_hint(exc) if encoding == "utf-8" else ""
    elif isinstance(exc, READ_ERRORS):
        reason = "unreadable"
    return Rejected(path, None, reason, f"{detail} {REST_NOT_READ}", record=record)


def lost_the_rest(rejected: Rejected) -> bool:
    """Whether reading its shard stopped at this record: what followed it was not read (records were lost)."""
    return rejected.detail.endswith(REST_NOT_READ)


def iter_json_lines(path: str, encoding: str = "utf-8") -> Iterator[tuple[int, dict[str, Any]] | Rejected]:
    """Yield (line number, object) for each JSON Lines record; broken lines come back as Rejected."""
    for item in iter_lines(path, encoding):
        if isinstance(item, Rejected):
            yield item
            continue
        number, text = item
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Rejected(path, number, "invalid_json", str(exc), text[:RAW_KEEP])
            continue
        except RecursionError:
            yield Rejected(path, number, "too_deep", "JSON nested too deeply", text[:RAW_KEEP])
            continue
        if not isinstance(obj, dict):
            yield Rejected(path, number, "not_an_object", type(obj).__name__, text[:RAW_KEEP])
            continue
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(obj):
            yield Rejected(path, number, "invalid_unicode", "a lone surrogate escape", text[:RAW_KEEP])
            continue
        yield number, obj


def read_json_records(
    path: str, convert: Callable[[dict[str, Any], int], Record | Sequence[Record] | str], encoding: str = "utf-8"
) -> Iterator[Record]:
    """JSON Lines records turned into Documents/HumanPairs by ``convert(obj, line)``; a string it returns is
    a drop reason, and the record goes to quarantine with it."""
    for item in iter_json_lines(path, encoding):
        if isinstance(item, Rejected):
            yield item
            continue
        line, obj = item
        converted = convert(obj, line)
        if isinstance(converted, str):
            yield Rejected(path, line, converted, ",".join(sorted(obj))[:200], json_excerpt(obj))
        elif isinstance(converted, Document | HumanPair | Rejected):
            yield converted
        else:
            yield from converted


def get_text(obj: dict[str, Any], *names: str) -> str | None:
    """The first of ``names`` present in ``obj`` as a string (numbers are accepted and stringified)."""
    for name in names:
        value = obj.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def get_texts(obj: dict[str, Any], name: str) -> list[str] | None:
    """A string or list-of-strings field as a list; None when missing or of another type."""
    value = obj.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def json_excerpt(obj: Any) -> str:
    """The start of ``obj`` as JSON for quarantine; a value nested too deeply to dump is only named."""
    try:
        return json.dumps(obj, ensure_ascii=False, default=str)[:RAW_KEEP]
    except (RecursionError, ValueError):
        return f"<{type(obj).__name__} nested too deeply to show>"


def _has_lone_surrogate(obj: Any) -> bool:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (RecursionError, ValueError):
        return False
    return False


def _excerpt(line: bytes) -> str:
    return line[:RAW_KEEP].decode("utf-8", errors="backslashreplace")
