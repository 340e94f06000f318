"""Kill an adjudicating process part-way (SIGKILL, ``pairforge mine`` against the fake LLM), rerun, and check the
adjudication ledger lost and repeated nothing: no committed answer is asked again, none is missing (adjudication's
version of tests/pairforge/judge/test_resume.py, part-way by the same held ledger bucket)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from pairforge.adjudicate.stage import plan_adjudication_shard
from pairforge.generation.ledger import bucket_of
from pairforge.plan import plan_run
from pairforge.stages import STAGE_NAMES
from pairforge.workdir import Workdir
from tests.conftest import REPO
from tests.pairforge.adjudicate.helpers import AdjudicatingLLM, adjudicate_config
from tests.pairforge.judge.helpers import write_wudao
from tests.pairforge.llm.helpers import hold_bucket, ledger_rows, wait_until_stalled
from tests.pairforge.test_stage_contract import run_stage

RUN_TIMEOUT_S = 300


def mine_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "pairforge.cli", "mine", str(config), "--json"]


def test_sigkill_mid_adjudication_then_resume(shared_data: Path, tmp_path: Path) -> None:
    with AdjudicatingLLM() as llm:
        config = adjudicate_config(write_wudao(shared_data, tmp_path / "corpus"), tmp_path / "work", llm.base_url)
        one = config.generate.openai.model_copy(update={"concurrency": 1})  # few in flight when the kill lands
        mine = config.mine.model_copy(update={"adjudicate": config.mine.adjudicate.model_copy(update={"openai": one})})
        config = config.model_copy(update={"mine": mine})
        config_path = tmp_path / "run.yaml"
        config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
        plan = plan_run(config)
        workdir = Workdir(config.workdir)
        plan.save(workdir.plan)
        unasked = mine.adjudicate.model_copy(update={"enabled": False})
        off = config.model_copy(update={"mine": mine.model_copy(update={"adjudicate": unasked})})
        for stage in STAGE_NAMES[: STAGE_NAMES.index("mine") + 1]:
            run_stage(stage, off, plan)  # the candidates, mined once (adjudication's settings do not key them)
        planned = {p.key: p for shard in plan.keys for p in plan_adjudication_shard(config, workdir, shard)}
        digests = {key: llm.digest(p.chat_request().messages[-1]["content"]) for key, p in planned.items()}
        held = max(map(bucket_of, planned))
        assert len(planned) > 20 and len(set(map(bucket_of, planned))) > 8
        ledger = workdir.adjudicate_ledger
        lock = hold_bucket(ledger, held, next(k for k in planned if bucket_of(k) == held))
        sent_before = llm.received
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(mine_cmd(config_path), cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, start_new_session=True)  # fmt: skip
        try:
            wait_until_stalled(proc, ledger, RUN_TIMEOUT_S)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # mid-batch, the process and anything it started
            proc.wait()
            lock.rollback()
            lock.close()
        before = ledger_rows(ledger)
        assert 0 < len(before) < len(planned), "the kill must land part-way"
        assert held not in set(map(bucket_of, before))  # the batch stopped at the held bucket
        assert llm.received - sent_before >= len(before)

        done = subprocess.run(mine_cmd(config_path), cwd=REPO, capture_output=True, text=True, env=env,
                              timeout=RUN_TIMEOUT_S)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        stats = json.loads(done.stdout.strip().splitlines()[-1])
        after = ledger_rows(ledger)
        attempts = llm.attempts

    a = stats["details"]["adjudication"]
    assert a["sent"] == len(planned) - len(before)  # only what the ledger lacked
    assert sum(c["asked"] for c in a["by_kind"].values()) == len(planned)
    assert not any(c["unanswered"] for c in a["by_kind"].values()) and not a["backend_errors"]
    assert {k: after[k] for k in before} == before  # committed answers untouched, same run id and time
    assert set(after) == set(planned)  # none missing, none extra
    assert all(attempts[digests[k]] == 1 for k in before)  # no committed answer was asked for again
    assert all(attempts[digests[k]] >= 1 for k in planned)
    assert len({row[1] for k, row in after.items() if k not in before}) == 1  # the rest came from one new run
