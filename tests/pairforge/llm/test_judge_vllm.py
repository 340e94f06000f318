"""The judge stage on the real vLLM engine (CPU build, the session's tiny random model): every filtered pair asked
once under the judge's JSON schema, every answer parsed into three scores 1..5 (the grammar holds even random
weights to the rubric's shape), and a changed cut answered from the ledger without the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pairforge.config import VllmConfig
from pairforge.judge import run_judge
from pairforge.mapping import ShardInputs
from pairforge.plan import plan_run
from pairforge.stages import STAGE_NAMES
from pairforge.testing.fake_llm import FakeLLM
from pairforge.workdir import Workdir
from tests.pairforge.judge.helpers import judge_config, write_wudao
from tests.pairforge.llm.conftest import ENGINE
from tests.pairforge.test_stage_contract import run_stage

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")


def test_the_judge_scores_every_pair_on_the_real_engine(
    vllm_backend: Any, tiny_model_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    with FakeLLM() as llm:  # generation is not what this test is about: the fake writes the pairs
        config = judge_config(write_wudao(shared_data, tmp_path / "corpus", 3), tmp_path / "work", llm.base_url)
        # No round trip: in a pool this small BM25 retrieves nothing (issue 20, part 3), and pairs are what we need.
        config = config.model_copy(update={"filter": config.filter.model_copy(update={"consistency_top_k": None})})
        plan = plan_run(config)
        workdir = Workdir(config.workdir)
        plan.save(workdir.plan)
        for stage in STAGE_NAMES[: STAGE_NAMES.index("judge")]:
            filtered = run_stage(stage, config, plan)
    engine = {"backend": "vllm", "model": str(tiny_model_dir), "vllm": VllmConfig(**ENGINE)}
    judge = config.judge.model_copy(update=engine)
    config = config.model_copy(update={"judge": judge})
    stats = run_judge(config, ShardInputs(plan.keys), workdir, backend=vllm_backend)  # the session's engine
    d = stats.details
    assert stats.input == filtered.output > 0 and d["sent"] == stats.input and d["unanswered"] == 0
    assert not d.get("backend_errors") and d["failures"] == {}  # every answer gave three scores
    assert all(sum(d["scores"][name].values()) == stats.input for name in ("relevance", "faithfulness", "clarity"))
    assert stats.input == stats.output + sum(stats.dropped.values())

    recut = config.model_copy(update={"judge": judge.model_copy(update={"min_score": None})})
    again = run_judge(recut, ShardInputs(plan.keys), workdir)  # no backend given: one would have to be built
    assert again.details["sent"] == 0 and again.output == again.input and again.details["scores"] == d["scores"]
