"""Kill a generating process part-way (SIGKILL), rerun, and check the ledger lost and repeated nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pairforge.config import load_config
from pairforge.generation.generate import read_passages
from pairforge.generation.requests import plan_requests
from pairforge.ingest import run_ingest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")


def ledger_rows(path: Path) -> dict[str, tuple]:
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return {r[0]: r[1:] for r in db.execute("SELECT key, outputs, run_id, created_at FROM requests")}
        except sqlite3.OperationalError:  # table not created yet
            return {}


def generate_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "pairforge.cli", "generate", str(config), "--json"]


def test_sigkill_mid_generation_then_resume(tiny_model_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "run.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "workdir": str(tmp_path / "w"),
                "corpora": [{"format": "squad", "path": str(shared_data / "cmrc2018" / "cmrc2018_trial.squad.json")}],
                "window": {"max_length": 300, "min_length": 50, "long_short_ratio": None},
                "generate": {
                    "backend": "vllm",
                    "model": str(tiny_model_dir),
                    "kinds": ["qp"],
                    "chunk_size": 4,
                    "sampling": {"max_tokens": 32},
                    "vllm": {"max_model_len": 4096, "enforce_eager": True, "kv_cache_gib": 1},
                },
            }
        )
    )
    config = load_config(config_path)
    run_ingest(config, limit=40)
    expected = {
        p.key for p in plan_requests(read_passages(Path(config.workdir)), config.generate, config.generate.model)
    }
    assert len(expected) >= 40
    ledger = Path(config.workdir) / "ledger.sqlite"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}

    proc = subprocess.Popen(
        generate_cmd(config_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while len(ledger_rows(ledger)) < 8:
            assert proc.poll() is None, "the generating process ended before it could be killed"
            assert time.monotonic() < deadline, "no chunk was committed in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its engine workers, mid-chunk
        proc.wait()
    before = ledger_rows(ledger)
    assert 8 <= len(before) < len(expected), "the kill must land part-way"

    done = subprocess.run(generate_cmd(config_path), capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    after = ledger_rows(ledger)

    assert summary["requests"] == len(expected)
    assert summary["cached"] == len(before) and summary["sent"] == len(expected) - len(before)  # none sent twice
    assert {k: after[k] for k in before} == before  # completed outputs untouched, same run id and time
    assert set(after) == expected and len(after) == len(expected)  # none missing, none extra
    assert len({row[1] for k, row in after.items() if k not in before}) == 1  # the rest came from one new run
