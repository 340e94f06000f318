"""Quarantine: every record that could not be used, with its file, line and reason, one JSON per line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import IO

from pairforge.records import Rejected


class StrictModeError(ValueError):
    """Raised by ``--strict`` at the first bad record; the message is ``file:line: reason``."""


class Quarantine:
    """Writes Rejected records to ``path`` and counts them by reason; ``strict`` raises on the first."""

    def __init__(self, path: Path, *, strict: bool = False) -> None:
        self.path, self.strict = path, strict
        self.counts: Counter[str] = Counter()
        self._file: IO[str] | None = None

    def add(self, rejected: Rejected) -> None:
        if self.strict:
            detail = f" ({rejected.detail})" if rejected.detail else ""
            raise StrictModeError(f"{rejected.where()}: {rejected.reason}{detail}")
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        row = {
            "file": rejected.file,
            "line": rejected.line,
            "record": rejected.record,
            "reason": rejected.reason,
            "detail": rejected.detail,
            "raw": rejected.raw,
        }
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.counts[rejected.reason] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def raise_first_quarantined(path: Path, shard: str) -> None:
    """``--strict`` on a shard read before: raise what reading it would, the first record it quarantined (or,
    if its quarantine file is gone, that the shard had bad records)."""
    try:
        with path.open(encoding="utf-8") as handle:
            row = json.loads(handle.readline())
    except (OSError, ValueError):
        raise StrictModeError(
            f"{shard}: bad records were quarantined when it was read ({path} is unreadable)"
        ) from None
    rejected = Rejected(row["file"], row["line"], row["reason"], row["detail"], record=row["record"])
    detail = f" ({rejected.detail})" if rejected.detail else ""
    raise StrictModeError(f"{rejected.where()}: {rejected.reason}{detail}")
