"""A full disk, told apart from other failures and said in one sentence naming the stage and the folder.

A full disk surfaces in many shapes: ``OSError`` ENOSPC/EDQUOT (Python's own writes), pyarrow's ``OSError: N
requested and M written`` (no errno), SQLite's ``disk I/O error`` or ``database or disk is full``, and often a
second error while cleaning up. ``is_disk_full`` recognises them (the vaguer ones only when a folder of the run
is in fact out of space), and ``describe_disk_full`` says which file system is full.
"""

from __future__ import annotations

import errno
import re
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from pairforge.stages import StageError

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
LOW_SPACE = 1 << 20  # bytes: a file system with less free than this cannot take a stage's next write
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")  # pyarrow's words for a short write
_SQLITE_FULL = ("database or disk is full", "disk I/O error")


class DiskFullError(StageError):
    """A stage stopped because the disk holding its output is full."""


def is_disk_full(exc: BaseException, folders: Iterable[str | Path]) -> bool:
    """Whether ``exc`` (or an error it came from) is a full disk: an ENOSPC/EDQUOT ``OSError``, or a short
    write or SQLite I/O error while one of ``folders`` has (almost) no free space left."""
    vague = False
    for error in _chain(exc):
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return True
        text = str(error)
        vague = vague or bool(_SHORT_WRITE.search(text))
        vague = vague or (isinstance(error, sqlite3.Error) and any(s in text for s in _SQLITE_FULL))
    return vague and any(free_bytes(f) < LOW_SPACE for f in folders)


def describe_disk_full(stage: str, folders: Iterable[str | Path]) -> str:
    """One sentence: the stage, the folder(s) whose file system is full and what is free there, what to do."""
    named = [str(f) for f in folders]
    full = [f for f in named if free_bytes(f) < LOW_SPACE] or named
    by_device: dict[int, str] = {}
    for folder in full:  # one folder per file system (workdir and store often share one)
        by_device.setdefault(_device(folder), folder)
    full = list(by_device.values())
    where = ", ".join(f"{f} ({free_bytes(f):,} bytes free)" for f in full)
    return (
        f"stage {stage} failed: the disk is full (no space left on the file system of {where}); "
        "free some space there and rerun: finished work is kept"
    )


def free_bytes(folder: str | Path) -> int:
    """Free bytes on the file system holding ``folder`` (its nearest existing parent); a large number for a URL."""
    if "://" in str(folder):
        return 1 << 62  # an object store: no local file system to measure
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 1 << 62


def _device(folder: str) -> int:
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return path.stat().st_dev
    except OSError:
        return hash(folder)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        todo += [error.__cause__, error.__context__]
