"""The generation ledger: one row per answered LLM request, keyed by what determines its output.

Sixteen SQLite files in WAL mode, one per first hex digit of the key, so send tasks that own different buckets never
contend, and a bucket lock (``lock_buckets``) makes two processes on one workdir take turns instead of sending the
same missing requests. Results are committed in small batches: a killed run loses at most the batch in flight,
and a rerun sends only the keys the ledger does not hold. A request that failed in the backend is never written.

An answer that parsed to nothing usable (invalid JSON, English, a refusal) is stored with the number of times it was
asked (``attempts``): the sender asks it again on a later run (``--fresh`` included) until ``generate.max_attempts``,
and each new answer replaces the old one, so a bad outage is not kept for good and a model that always answers
badly is not asked forever (the sender also stops once the same answer comes back).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUCKETS = 16
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
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1
)
"""
_COLUMNS = (
    "key, kind, passage_id, prompt_id, prompt_sha256, model, sampling, outputs, finish_reasons, tokens_in, "
    "tokens_out, run_id, created_at, attempts"
)


def request_key(
    prompt_sha256: str, model: str, sampling: dict[str, Any], passage_text: str, extra: dict[str, Any] | None = None
) -> str:
    """sha256 over the template, the model, the sampling parameters, the passage and any other input
    that changes what is asked (the answer schema, the item count, the target)."""
    material = json.dumps(
        {"prompt": prompt_sha256, "model": model, "sampling": sampling, "passage": passage_text, **(extra or {})},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()


def bucket_of(key: str) -> int:
    """The ledger bucket of a request key (its first hex digit)."""
    return int(key[0], 16)


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
    attempts: int = 1  # how many times the request was asked (an unusable answer is asked again, bounded)


class Ledger:
    """Store of answered requests under ``folder``: ``add`` writes a key once (later writes are ignored),
    ``replace`` overwrites the answer of a request asked again and counts the attempt."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._dbs: dict[int, sqlite3.Connection] = {}

    def _db(self, bucket: int) -> sqlite3.Connection:
        if bucket not in self._dbs:
            db = sqlite3.connect(self.folder / f"bucket-{bucket:x}.sqlite", timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process kill
            db.execute(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
            if "attempts" not in columns:  # a ledger written before answers were re-asked: each was asked once
                db.execute("ALTER TABLE requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1")
            db.commit()
            self._dbs[bucket] = db
        return self._dbs[bucket]

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys not yet in the ledger, in the order given."""
        keys = list(keys)
        have: set[str] = set()
        for bucket, batch in _by_bucket(keys):
            marks = ",".join("?" * len(batch))
            rows = self._db(bucket).execute(f"SELECT key FROM requests WHERE key IN ({marks})", batch)
            have.update(r[0] for r in rows)
        return [k for k in keys if k not in have]

    def add(self, rows: Iterable[LedgerRow]) -> None:
        """Store answered requests, one transaction per bucket; a key already stored keeps its answer."""
        self._write(rows, "INSERT OR IGNORE")

    def replace(self, rows: Iterable[LedgerRow]) -> None:
        """Store the answers of requests asked again: each replaces the stored answer, with the attempt counted."""
        self._write(rows, "INSERT OR REPLACE")

    def _write(self, rows: Iterable[LedgerRow], verb: str) -> None:
        now = time.time()
        grouped: dict[int, list[tuple[Any, ...]]] = {}
        for r in rows:
            grouped.setdefault(bucket_of(r.key), []).append(
                (r.key, r.kind, r.passage_id, r.prompt_id, r.prompt_sha256, r.model,
                 json.dumps(r.sampling, sort_keys=True), json.dumps(r.outputs, ensure_ascii=False),
                 json.dumps(r.finish_reasons), r.tokens_in, r.tokens_out, r.run_id, r.created_at or now, r.attempts)
            )  # fmt: skip
        for bucket, values in sorted(grouped.items()):  # bucket order: a stalled bucket stops every later one
            db = self._db(bucket)
            with db:
                db.executemany(f"{verb} INTO requests ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values)

    def get(self, keys: Iterable[str]) -> Iterator[LedgerRow]:
        """The stored rows for ``keys`` (missing keys are skipped)."""
        for bucket, batch in _by_bucket(list(keys)):
            marks = ",".join("?" * len(batch))
            for r in self._db(bucket).execute(f"SELECT {_COLUMNS} FROM requests WHERE key IN ({marks})", batch):
                yield LedgerRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]),
                                json.loads(r[8]), r[9], r[10], r[11], r[12], r[13])  # fmt: skip

    def count(self) -> int:
        """Rows in every bucket."""
        total = 0
        for path in sorted(self.folder.glob("bucket-*.sqlite")):
            total += self._db(int(path.stem.split("-")[1], 16)).execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        return total

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()


@contextmanager
def lock_buckets(folder: Path, buckets: Iterable[int]) -> Iterator[None]:
    """Hold the send lock of ``buckets`` (blocking): one process at a time sends a bucket's missing requests."""
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for bucket in sorted(set(buckets)):  # a fixed order: two lockers of overlapping sets cannot deadlock
            handle = stack.enter_context((folder / f"bucket-{bucket:x}.lock").open("a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
            stack.callback(fcntl.flock, handle, fcntl.LOCK_UN)
        yield


def _by_bucket(keys: list[str], size: int = 500) -> Iterator[tuple[int, list[str]]]:
    grouped: dict[int, list[str]] = {}
    for key in keys:
        grouped.setdefault(bucket_of(key), []).append(key)
    for bucket, members in sorted(grouped.items()):
        for i in range(0, len(members), size):
            yield bucket, members[i : i + size]
