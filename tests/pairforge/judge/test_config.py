"""JudgeConfig: off by default, engine settings taken from generate where unset, the cut checked."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pairforge.config import GenerateConfig, JudgeConfig, RunConfig

GENERATE = GenerateConfig(backend="openai", model="gen", served_model_name="gen-served",
                          openai={"base_url": "http://127.0.0.1:9000/v1"})  # fmt: skip


@pytest.mark.parametrize(
    ("judge", "backend", "model", "served", "url"),
    [
        ({}, "openai", "gen", "gen-served", "http://127.0.0.1:9000/v1"),
        ({"served_model_name": "judge-served"}, "openai", "gen", "judge-served", "http://127.0.0.1:9000/v1"),
        ({"model": "big"}, "openai", "big", None, "http://127.0.0.1:9000/v1"),
        ({"openai": {"base_url": "http://127.0.0.1:9001/v1"}}, "openai", "gen", "gen-served",
         "http://127.0.0.1:9001/v1"),
        ({"backend": "vllm", "model": "/models/judge"}, "vllm", "/models/judge", None, "http://127.0.0.1:9000/v1"),
    ],
)  # fmt: skip
def test_the_engine_is_generates_unless_the_judge_names_its_own(
    judge: dict[str, Any], backend: str, model: str, served: str | None, url: str
) -> None:
    engine = JudgeConfig.model_validate(judge).engine(GENERATE)
    assert (engine.backend, engine.model, engine.served_model_name, engine.openai.base_url) == (
        backend, model, served, url)  # fmt: skip
    assert engine.sampling.temperature == 0.0 and engine.sampling.max_tokens == 48  # the judge's sampling


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"min_score": 6}, "less than or equal to 5"),
        ({"min_scores": {"faithfulness": 0}}, "not a score"),
        ({"min_scores": {"fluency": 3}}, "faithfulness"),
        ({"prompt_version": "v9"}, "no judge prompt 'v9'"),
        ({"threshold": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_judge_settings_are_refused(judge: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        JudgeConfig.model_validate(judge)


def test_the_judge_is_off_by_default_and_its_endpoint_takes_no_pasted_key() -> None:
    corpora = [{"format": "jsonl", "path": "x.jsonl"}]
    assert not RunConfig.model_validate({"corpora": corpora}).judge.enabled
    with pytest.raises(ValidationError, match="must name the environment variable"):
        RunConfig.model_validate({"corpora": corpora, "judge": {"openai": {"api_key_env": "sk-pasted-secret-1234"}}})
