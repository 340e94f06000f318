"""False-negative adjudication on the real vLLM engine (CPU build, the session's tiny random model): every candidate
worth asking asked once under the JSON schema, every answer parsed into a verdict (the grammar holds even random
weights to ``{"verdict": "yes" | "no"}``), and a changed margin answered from the ledger without the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pairforge.config import VllmConfig
from pairforge.mapping import ShardInputs
from pairforge.negatives.mine import run_mine
from pairforge.plan import plan_run
from pairforge.stages import STAGE_NAMES
from pairforge.testing.fake_llm import FakeLLM
from pairforge.workdir import Workdir
from tests.pairforge.adjudicate.helpers import adjudicate_config
from tests.pairforge.judge.helpers import write_wudao
from tests.pairforge.llm.conftest import ENGINE
from tests.pairforge.test_stage_contract import run_stage

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")


def test_adjudication_on_the_real_engine(
    vllm_backend: Any, tiny_model_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    with FakeLLM() as llm:  # generation is not what this test is about: the fake writes the pairs
        config = adjudicate_config(write_wudao(shared_data, tmp_path / "corpus"), tmp_path / "work", llm.base_url)
        plan = plan_run(config)
        workdir = Workdir(config.workdir)
        plan.save(workdir.plan)
        off = config.mine.adjudicate.model_copy(update={"enabled": False})
        unasked = config.model_copy(update={"mine": config.mine.model_copy(update={"adjudicate": off})})
        for stage in STAGE_NAMES[: STAGE_NAMES.index("mine") + 1]:
            run_stage(stage, unasked, plan)
    engine = {"backend": "vllm", "model": str(tiny_model_dir), "vllm": VllmConfig(**ENGINE), "max_candidates": 2}
    adjudicate = config.mine.adjudicate.model_copy(update=engine)
    config = config.model_copy(update={"mine": config.mine.model_copy(update={"adjudicate": adjudicate})})
    stats = run_mine(config, ShardInputs(plan.keys), workdir, backend=vllm_backend)  # the session's engine
    a = stats.details["adjudication"]
    asked = sum(c["asked"] for c in a["by_kind"].values())
    assert asked > 0 and a["sent"] == asked and not a["backend_errors"]
    assert a["failures"] == {} and not any(c["unanswered"] or c["failed"] for c in a["by_kind"].values())

    narrow = adjudicate.model_copy(update={"margin": 0.0})
    config = config.model_copy(update={"mine": config.mine.model_copy(update={"adjudicate": narrow})})
    again = run_mine(config, ShardInputs(plan.keys), workdir)  # no backend given: one would have to be built
    assert again.details["adjudication"]["sent"] == 0
    assert sum(c["asked"] for c in again.details["adjudication"]["by_kind"].values()) <= asked
