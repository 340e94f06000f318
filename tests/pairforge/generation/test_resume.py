"""Kill a generating process part-way (SIGKILL, with its engine's processes), rerun, and check the bucketed ledger
lost and repeated nothing: no answered request is sent again, none is missing.

Part-way by construction, not by timing: the test holds a write lock on the highest ledger bucket the plan uses.
The ledger commits a batch bucket by bucket in bucket order, so the first batch with a row for that bucket commits
its lower buckets and then waits on the lock (SQLite's busy timeout), and the process is killed there, with its
engine mid-batch. (Racing a poll against the commits failed on a fast machine: it answered all 89 requests before
the poll saw the first commit.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pairforge.config import load_config
from pairforge.generation.ledger import bucket_of
from tests.conftest import REPO
from tests.pairforge.llm.helpers import cmrc_config, hold_bucket, ledger_rows, prepare, wait_until_stalled

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

DOCUMENTS = 40  # CMRC documents: about 90 qp requests over the 16 buckets
RUN_TIMEOUT_S = 900  # per run: about a minute on a quiet machine (engine start-up dominates), far more when loaded


def generate_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "pairforge.cli", "generate", str(config), "--json"]


def test_sigkill_mid_generation_then_resume(tiny_model_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    generate = {
        "backend": "vllm",
        "model": str(tiny_model_dir),
        "kinds": ["qp"],
        "chunk_size": 4,
        "max_attempts": 1,  # the tiny random model answers garbage: one ask each, so the rerun sends only the lost
        "sampling": {"max_tokens": 32},
        "vllm": {"max_model_len": 4096, "enforce_eager": True, "kv_cache_gib": 1},
    }
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(cmrc_config(shared_data, tmp_path / "w", generate=generate)))
    prepared = prepare(load_config(config_path), limit=DOCUMENTS)
    expected = {p.key for p in prepared.planned()}
    held = max(map(bucket_of, expected))
    assert len(expected) > 64 and len(set(map(bucket_of, expected))) > 8
    ledger = prepared.workdir.ledger
    lock = hold_bucket(ledger, held, next(k for k in expected if bucket_of(k) == held))
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": str(REPO)}

    proc = subprocess.Popen(
        generate_cmd(config_path),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        wait_until_stalled(proc, ledger, RUN_TIMEOUT_S)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its engine's processes, mid-batch
        proc.wait()
        lock.rollback()
        lock.close()
    before = ledger_rows(ledger)
    assert 0 < len(before) < len(expected), "the kill must land part-way"
    assert held not in set(map(bucket_of, before))  # the batch stopped at the held bucket

    done = subprocess.run(
        generate_cmd(config_path), cwd=REPO, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    after = ledger_rows(ledger)

    d = stats["details"]
    assert d["requests"] == len(expected) and d["complete"] and not d["backend_errors"]
    assert d["sent"] == len(expected) - len(before)  # none sent twice
    assert d["answered"] == len(expected)
    assert {k: after[k] for k in before} == before  # completed outputs untouched, same run id and time
    assert set(after) == expected and len(after) == len(expected)  # none missing, none extra
    assert len({row[1] for k, row in after.items() if k not in before}) == 1  # the rest came from one new run
    assert {p.name for p in ledger.glob("bucket-*.sqlite")} == {f"bucket-{b:x}.sqlite" for b in map(bucket_of, after)}
