"""Kill a judging process part-way (SIGKILL, ``pairforge judge`` against the fake LLM), rerun, and check the judge's
ledger lost and repeated nothing: no committed answer is asked again, none is missing (the judge's version of
tests/pairforge/generation/test_resume.py and tests/reliability/test_crash_resume.py).

Part-way by construction, as generation's test does it: the test holds a write lock on the highest ledger bucket the
plan uses; the ledger commits a batch bucket by bucket in bucket order, so the first batch holding a row for that
bucket commits its lower buckets and waits on the lock, and the process is killed there."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from pairforge.judge.stage import plan_judge_shard
from pairforge.plan import plan_run
from pairforge.stages import STAGE_NAMES
from pairforge.workdir import Workdir
from tests.pairforge.judge.helpers import ScoringLLM, judge_config, write_wudao
from tests.pairforge.llm.helpers import kill_mid_batch_then_resume
from tests.pairforge.test_stage_contract import run_stage

RUN_TIMEOUT_S = 300


def judge_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "pairforge.cli", "judge", str(config), "--json"]


def test_sigkill_mid_judge_then_resume(shared_data: Path, tmp_path: Path) -> None:
    with ScoringLLM() as llm:
        config = judge_config(write_wudao(shared_data, tmp_path / "corpus"), tmp_path / "work", llm.base_url)
        config = config.model_copy(
            update={"judge": config.judge.model_copy(update={"openai": config.generate.openai.model_copy(
                update={"concurrency": 1})})}  # one request on the wire: the kill lands among few in flight
        )  # fmt: skip
        config_path = tmp_path / "run.yaml"
        config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
        plan = plan_run(config)
        workdir = Workdir(config.workdir)
        plan.save(workdir.plan)
        for stage in STAGE_NAMES[: STAGE_NAMES.index("judge")]:
            run_stage(stage, config, plan)
        planned = {p.key: p for shard in plan.keys for p in plan_judge_shard(config, workdir, shard)}
        digests = {key: llm.digest(p.chat_request().messages[-1]["content"]) for key, p in planned.items()}
        ledger = workdir.judge_ledger
        resumed = kill_mid_batch_then_resume(judge_cmd(config_path), ledger, list(planned), llm, RUN_TIMEOUT_S)
        before, after, stats = resumed.before, resumed.after, resumed.stats
        attempts = llm.attempts

    d = stats["details"]
    assert d["enabled"] and d["sent"] == len(planned) - len(before)  # only what the ledger lacked
    assert stats["in"] == len(planned) and d["unanswered"] == 0 and not d.get("backend_errors")
    assert {k: after[k] for k in before} == before  # committed answers untouched, same run id and time
    assert set(after) == set(planned)  # none missing, none extra
    assert all(attempts[digests[k]] == 1 for k in before)  # no committed answer was asked for again
    assert all(attempts[digests[k]] >= 1 for k in planned)
    assert len({row[1] for k, row in after.items() if k not in before}) == 1  # the rest came from one new run
