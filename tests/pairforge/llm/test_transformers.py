"""The transformers fallback on the tiny model: batching with left padding gives what one-by-one gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from pairforge.config import GenerateConfig
from pairforge.llm.base import ChatRequest
from pairforge.llm.transformers_backend import TransformersBackend

MESSAGES = ["你好", "长江是中国第一长河，请提一个问题。", "北京"]


@pytest.fixture(scope="module")
def greedy(tiny_model_dir: Path) -> TransformersBackend:
    config = GenerateConfig(
        backend="transformers",
        model=str(tiny_model_dir),
        transformers={"batch_size": 3, "dtype": "float32"},
        sampling={"temperature": 0, "max_tokens": 12},
    )
    return TransformersBackend(config, str(tiny_model_dir))


def requests() -> list[ChatRequest]:
    return [ChatRequest(f"k{i}", [{"role": "user", "content": m}]) for i, m in enumerate(MESSAGES)]


def test_left_padded_batch_matches_single_requests(greedy: TransformersBackend) -> None:
    batched = greedy.generate(requests())
    single = [greedy.generate([r])[0] for r in requests()]
    assert [c.outputs for c in batched] == [c.outputs for c in single]
    assert [c.tokens_in for c in batched] == [c.tokens_in for c in single]  # padding is not counted
    assert all(0 < c.tokens_out <= 12 and c.finish_reasons[0] in {"stop", "length"} for c in batched)


def test_sampling_n_returns_n_outputs(tiny_model_dir: Path) -> None:
    config = GenerateConfig(
        backend="transformers", model=str(tiny_model_dir), sampling={"temperature": 1.0, "max_tokens": 8, "n": 3}
    )
    done = TransformersBackend(config, str(tiny_model_dir)).generate(requests()[:2])
    assert [len(c.outputs) for c in done] == [3, 3] and [c.key for c in done] == ["k0", "k1"]
