"""Kill a generating process part-way (SIGKILL, with its engine's processes), rerun, and check the bucketed ledger
lost and repeated nothing: no answered request is sent again, none is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pairforge.config import load_config
from pairforge.generation.ledger import bucket_of
from pairforge.generation.send import COMMIT_EVERY
from tests.conftest import REPO
from tests.pairforge.llm.helpers import cmrc_config, ledger_rows, prepare

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

DOCUMENTS = 160  # CMRC documents: about 360 qp requests, ten commits, so a kill after the first lands part-way
# (with 40 documents, 89 requests, a fast machine answered the 57 after the first commit within one poll)
RUN_TIMEOUT_S = 900  # per run: about a minute on a quiet machine (engine start-up dominates), far more when loaded


def generate_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "pairforge.cli", "generate", str(config), "--json"]


def test_sigkill_mid_generation_then_resume(tiny_model_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    generate = {
        "backend": "vllm",
        "model": str(tiny_model_dir),
        "kinds": ["qp"],
        "chunk_size": 4,  # a small engine window: the run takes long enough to be caught between commits
        "sampling": {"max_tokens": 32},
        "vllm": {"max_model_len": 4096, "enforce_eager": True, "kv_cache_gib": 1},
    }
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(cmrc_config(shared_data, tmp_path / "w", generate=generate)))
    prepared = prepare(load_config(config_path), limit=DOCUMENTS)
    expected = {p.key for p in prepared.planned()}
    assert len(expected) > 8 * COMMIT_EVERY  # the kill after the first commit leaves several commits to send
    ledger = prepared.workdir.ledger
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
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while len(ledger_rows(ledger)) < COMMIT_EVERY:
            assert proc.poll() is None, "the generating process ended before it could be killed"
            assert time.monotonic() < deadline, "no batch was committed in time"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its engine's processes, mid-batch
        proc.wait()
    before = ledger_rows(ledger)
    assert COMMIT_EVERY <= len(before) < len(expected), "the kill must land part-way"

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
