"""Generation test helpers: real CMRC passages brought up to the generate stage's input (ingest, then passage
dedup, as the pipeline does), the run of that stage, and reads of the bucketed ledger."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pairforge.config import RunConfig
from pairforge.dedup.passages import DedupInputs, run_dedup_passages
from pairforge.generation.generate import GenerateInputs, passage_budget, plan_shard, run_generate
from pairforge.generation.ledger import Ledger, bucket_of
from pairforge.generation.requests import PlannedRequest
from pairforge.ingest import run_ingest
from pairforge.plan import plan_run
from pairforge.stats import StageStats
from pairforge.workdir import Workdir
from tests.conftest import REPO

CMRC = ("cmrc2018", "cmrc2018_trial.squad.json")


@dataclass(frozen=True)
class Prepared:
    """A workdir whose input shards are ingested and deduplicated: ready for ``run_generate``."""

    config: RunConfig
    workdir: Workdir
    shards: list[str]

    @property
    def inputs(self) -> GenerateInputs:
        return GenerateInputs(self.shards)

    def generate(self, **kwargs: Any) -> StageStats:
        """``run_generate`` over every shard (``backend=``, ``fresh=`` … pass through)."""
        return run_generate(self.config, self.inputs, self.workdir, **kwargs)

    def planned(self) -> list[PlannedRequest]:
        """Every planned request of the shards, as the stage plans them."""
        budget = passage_budget(self.workdir, self.inputs)
        return [p for shard in self.shards for p in plan_shard(self.config, self.workdir, budget, shard)]


def cmrc_config(shared_data: Path, workdir: Path, *, generate: dict[str, Any] | None = None, **extra: Any) -> dict:
    """A RunConfig (as a dict) over real CMRC 2018 passages, cut to at most 300 characters to keep the tiny model's
    prompts short."""
    return {
        "workdir": str(workdir),
        "store": str(workdir.parent / f"{workdir.name}-store"),
        "corpora": [{"format": "squad", "path": str(shared_data.joinpath(*CMRC))}],
        "window": {"max_length": 300, "min_length": 50, "long_short_ratio": None},
        "generate": generate or {},
        **extra,
    }


def prepare(config: RunConfig, limit: int | None = None) -> Prepared:
    """Plan the run (so the stage commands, ``pairforge generate`` among them, can run on the workdir), then
    ingest (at most ``limit`` documents) and deduplicate the config's passages."""
    workdir = Workdir(config.workdir)
    plan = plan_run(config)
    plan.save(workdir.plan)
    shards = plan.keys
    run_ingest(config, limit=limit)
    run_dedup_passages(config, DedupInputs(shards), workdir)
    return Prepared(config, workdir, shards)


def ingest_cmrc(shared_data: Path, workdir: Path, limit: int, *, generate: dict[str, Any] | None = None) -> Prepared:
    """CMRC passages of the first ``limit`` documents, ready for the generate stage."""
    return prepare(RunConfig.model_validate(cmrc_config(shared_data, workdir, generate=generate)), limit)


def ledger_rows(folder: Path) -> dict[str, tuple[Any, ...]]:
    """key → (outputs, run_id, created_at) of every row in every bucket of the ledger at ``folder``, read with
    plain SQLite (safe while another process writes: WAL readers see committed transactions only)."""
    rows: dict[str, tuple[Any, ...]] = {}
    for path in sorted(folder.glob("bucket-*.sqlite")):
        db = sqlite3.connect(path, timeout=30)
        try:
            for key, *rest in db.execute("SELECT key, outputs, run_id, created_at FROM requests"):
                assert key not in rows, f"{key} in two buckets"
                rows[key] = tuple(rest)
        except sqlite3.OperationalError:  # the bucket's table is not created yet
            pass
        finally:
            db.close()
    return rows


STALLED_S = 2.0  # the ledger unchanged this long, with the process alive: it waits on the held bucket


def hold_bucket(folder: Path, bucket: int, key: str) -> sqlite3.Connection:
    """A connection holding the write lock of ``bucket`` (created first, as the ledger creates it)."""
    ledger = Ledger(folder)
    assert ledger.missing([key]) == [key]  # opens the bucket: WAL mode and the table
    ledger.close()
    lock = sqlite3.connect(folder / f"bucket-{bucket:x}.sqlite", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # readers still read (WAL); a writer waits out its busy timeout
    return lock


def wait_until_stalled(proc: subprocess.Popen, ledger: Path, timeout_s: float) -> dict[str, tuple[Any, ...]]:
    """The ledger's rows once some are committed and none has come for ``STALLED_S`` (the process, still alive,
    waits on a held bucket); fails when the process ends first or nothing is committed within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    rows, since = ledger_rows(ledger), time.monotonic()
    while not rows or time.monotonic() - since < STALLED_S:
        assert proc.poll() is None, "the process ended before it could be killed"
        assert time.monotonic() < deadline, "no batch was committed in time"
        time.sleep(0.1)
        now = ledger_rows(ledger)
        if len(now) != len(rows):
            rows, since = now, time.monotonic()
    return rows


@dataclass
class Resumed:
    """A stage command killed mid-batch and run again: the ledger's rows at the kill and after, the rerun's stats."""

    before: dict[str, tuple[Any, ...]]
    after: dict[str, tuple[Any, ...]]
    stats: dict[str, Any]
    sent_before_kill: int


def kill_mid_batch_then_resume(command: list[str], ledger: Path, planned: list[str], llm: Any, timeout_s: float
                               ) -> Resumed:  # fmt: skip
    """Run ``command`` (a stage of ``python -m pairforge.cli``, printing its stats as JSON last) with the ledger's
    last bucket of ``planned`` keys held, SIGKILL its process group once the other buckets are committed, then run it
    again to the end. Checks that the kill landed part-way and before the held bucket."""
    held = max(map(bucket_of, planned))
    assert len(planned) > 20 and len(set(map(bucket_of, planned))) > 8
    lock = hold_bucket(ledger, held, next(k for k in planned if bucket_of(k) == held))
    sent_before = llm.received
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)  # fmt: skip
    try:
        wait_until_stalled(proc, ledger, timeout_s)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # mid-batch, the process and anything it started
        proc.wait()
        lock.rollback()
        lock.close()
    before = ledger_rows(ledger)
    assert 0 < len(before) < len(planned), "the kill must land part-way"
    assert held not in set(map(bucket_of, before))  # the batch stopped at the held bucket
    sent = llm.received - sent_before
    assert sent >= len(before)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout_s)
    assert done.returncode == 0, done.stderr[-3000:]
    return Resumed(before, ledger_rows(ledger), json.loads(done.stdout.strip().splitlines()[-1]), sent)
