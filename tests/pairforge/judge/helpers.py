"""Judge test helpers: a small real workdir brought through every stage by the fake LLM, and a fake judge whose
scores differ from pair to pair (the fake LLM fills an enum with its first value: every pair would score 1)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pairforge.config import RunConfig
from pairforge.plan import RunPlan, plan_run
from pairforge.stages import STAGE_NAMES
from pairforge.stats import StageStats
from pairforge.testing.answers import request_schema
from pairforge.testing.fake_llm import FakeLLM
from pairforge.workdir import Workdir
from tests.pairforge.test_stage_contract import run_stage

DOCUMENTS = 6  # WuDao documents: about 30 filtered pairs


class ScoringLLM(FakeLLM):
    """The fake LLM, answering the judge's schema with scores drawn from the prompt's hash (deterministic)."""

    def answer(self, body: dict[str, Any], choice: int) -> str:
        schema = request_schema(body) or {}
        if "faithfulness" not in schema.get("properties", {}):
            return super().answer(body, choice)
        return json.dumps(fake_scores(body["messages"][-1]["content"]))


def fake_scores(prompt: str) -> dict[str, int]:
    """The scores ``ScoringLLM`` gives the judge prompt whose last message is ``prompt``."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return {"relevance": 1 + digest[0] % 5, "faithfulness": 1 + digest[1] % 5, "clarity": 1 + digest[2] % 5}


def write_wudao(shared_data: Path, folder: Path, documents: int = DOCUMENTS) -> Path:
    """The first ``documents`` WuDao documents as one input shard."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = (shared_data / "wudao" / "wudao_demo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    path = folder / "wudao.jsonl"
    path.write_text("".join(lines[:documents]), encoding="utf-8")
    return path


def judge_config(corpus: Path, work: Path, base_url: str, **judge: Any) -> RunConfig:
    """A run over ``corpus`` generating and judging with the fake LLM at ``base_url`` (the judge on)."""
    openai = {"base_url": base_url, "concurrency": 4, "timeout_s": 10, "max_retries": 0}
    return RunConfig.model_validate({
        "name": "judged", "workdir": str(work), "store": str(work.parent / "store"),
        "corpora": [{"format": "wudao", "path": str(corpus)}],
        "window": {"max_length": 600, "min_length": 64},
        "generate": {"backend": "openai", "model": "test-model", "openai": openai},
        "judge": {"enabled": True, **judge},
        "mine": {"range_max": 20, "num_negatives": 3},
    })  # fmt: skip


def run_all(config: RunConfig, plan: RunPlan | None = None) -> dict[str, StageStats]:
    """Every stage but export over the config's plan (made and saved when not given)."""
    if plan is None:
        plan = plan_run(config)
        plan.save(Workdir(config.workdir).plan)
    return {stage: run_stage(stage, config, plan) for stage in STAGE_NAMES[:-1]}
