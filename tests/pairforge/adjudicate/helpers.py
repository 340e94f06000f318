"""Adjudication test helpers: a fake LLM whose verdicts differ from candidate to candidate, and a small run over
real WuDao documents with adjudication on (the fake LLM fills an enum round robin, not by the question)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pairforge.config import RunConfig
from pairforge.testing.answers import request_schema
from pairforge.testing.fake_llm import FakeLLM


class AdjudicatingLLM(FakeLLM):
    """The fake LLM, answering adjudication's schema with a verdict drawn from the prompt's hash: about one in
    three candidates is confirmed (deterministic, so a test can recompute it)."""

    def answer(self, body: dict[str, Any], choice: int) -> str:
        schema = request_schema(body) or {}
        if "verdict" not in schema.get("properties", {}):
            return super().answer(body, choice)
        return json.dumps({"verdict": fake_verdict(body["messages"][-1]["content"])})


def fake_verdict(prompt: str) -> str:
    """The verdict ``AdjudicatingLLM`` gives the adjudication prompt whose last message is ``prompt``."""
    return "yes" if hashlib.sha256(prompt.encode()).digest()[0] % 3 == 0 else "no"


def adjudicate_config(corpus: Path, work: Path, base_url: str, **adjudicate: Any) -> RunConfig:
    """A run over ``corpus`` generating and adjudicating with the fake LLM at ``base_url``."""
    openai = {"base_url": base_url, "concurrency": 4, "timeout_s": 10, "max_retries": 0}
    return RunConfig.model_validate({
        "name": "adjudicated", "workdir": str(work), "store": str(work.parent / "store"),
        "corpora": [{"format": "wudao", "path": str(corpus)}],
        "window": {"max_length": 600, "min_length": 64},
        "generate": {"backend": "openai", "model": "test-model", "openai": openai},
        "mine": {"range_max": 20, "num_negatives": 3, "relative_margin": None,
                 "adjudicate": {"enabled": True, "margin": 0.5, **adjudicate}},
    })  # fmt: skip
