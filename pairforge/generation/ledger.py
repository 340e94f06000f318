"""The generation ledger: one row per LLM request, keyed by what determines its output.

SQLite in WAL mode: each chunk of completions is committed in one transaction, so a killed run loses at
most the chunk in flight, and a rerun sends only the keys the ledger does not hold.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    passage_id TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    sampling TEXT NOT NULL,
    outputs TEXT NOT NULL,
    finish_reasons TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def request_key(
    prompt_sha256: str, model: str, sampling: dict[str, Any], passage_text: str, extra: dict[str, Any] | None = None
) -> str:
    """sha256 over the template, the model, the sampling parameters, the passage and any other input
    that changes what is asked (the answer schema, the item count)."""
    material = json.dumps(
        {"prompt": prompt_sha256, "model": model, "sampling": sampling, "passage": passage_text, **(extra or {})},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(slots=True)
class LedgerRow:
    """A completed request: the raw outputs (one per sample) and what they cost."""

    key: str
    kind: str
    passage_id: str
    prompt_id: str
    prompt_sha256: str
    model: str
    sampling: dict[str, Any]
    outputs: list[str]
    finish_reasons: list[str]
    tokens_in: int
    tokens_out: int
    run_id: str
    created_at: float = 0.0


class Ledger:
    """Append-only store of completed requests (a key is written once; later writes of it are ignored)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process kill
        self._db.execute(_SCHEMA)
        self._db.commit()

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys not yet in the ledger, in the order given."""
        keys = list(keys)
        have: set[str] = set()
        for i in range(0, len(keys), 500):
            batch = keys[i : i + 500]
            marks = ",".join("?" * len(batch))
            have.update(r[0] for r in self._db.execute(f"SELECT key FROM requests WHERE key IN ({marks})", batch))
        return [k for k in keys if k not in have]

    def add(self, rows: Iterable[LedgerRow]) -> None:
        """Store completed requests in one transaction."""
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r.key,
                        r.kind,
                        r.passage_id,
                        r.prompt_id,
                        r.prompt_sha256,
                        r.model,
                        json.dumps(r.sampling, sort_keys=True),
                        json.dumps(r.outputs, ensure_ascii=False),
                        json.dumps(r.finish_reasons),
                        r.tokens_in,
                        r.tokens_out,
                        r.run_id,
                        r.created_at or now,
                    )
                    for r in rows
                ],
            )

    def get(self, keys: Iterable[str]) -> Iterator[LedgerRow]:
        """The stored rows for ``keys`` (missing keys are skipped)."""
        keys = list(keys)
        for i in range(0, len(keys), 500):
            batch = keys[i : i + 500]
            marks = ",".join("?" * len(batch))
            for r in self._db.execute(f"SELECT * FROM requests WHERE key IN ({marks})", batch):
                yield LedgerRow(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    json.loads(r[6]),
                    json.loads(r[7]),
                    json.loads(r[8]),
                    r[9],
                    r[10],
                    r[11],
                    r[12],
                )

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0])

    def close(self) -> None:
        self._db.close()
