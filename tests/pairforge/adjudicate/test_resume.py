"""Kill an adjudicating process part-way (SIGKILL, ``pairforge mine`` against the fake LLM), rerun, and check the
adjudication ledger lost and repeated nothing: no committed answer is asked again, none is missing (adjudication's
version of tests/pairforge/judge/test_resume.py, part-way by the same held ledger bucket)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from pairforge.adjudicate.stage import plan_adjudication_shard
from pairforge.plan import plan_run
from pairforge.stages import STAGE_NAMES
from pairforge.workdir import Workdir
from tests.pairforge.adjudicate.helpers import AdjudicatingLLM, adjudicate_config
from tests.pairforge.judge.helpers import write_wudao
from tests.pairforge.llm.helpers import kill_mid_batch_then_resume
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
        ledger = workdir.adjudicate_ledger
        resumed = kill_mid_batch_then_resume(mine_cmd(config_path), ledger, list(planned), llm, RUN_TIMEOUT_S)
        before, after, stats = resumed.before, resumed.after, resumed.stats
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
