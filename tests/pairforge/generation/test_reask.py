"""Unusable HTTP-200 answers are not done (issue 21 item 6): a later run asks them again, bounded by
``generate.max_attempts`` (``--fresh`` too), and what is stored per answer is bounded (item 16). Against
the project's fake LLM on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pairforge.generation.ledger import Ledger
from pairforge.generation.requests import PlannedRequest
from pairforge.generation.send import CHARS_PER_TOKEN
from pairforge.testing.fake_llm import FakeLLM
from tests.pairforge.llm.helpers import Prepared, ingest_cmrc

DOCUMENTS = 3


def openai(base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "backend": "openai",
        "model": "fake-model",
        "kinds": ["qp"],
        "openai": {"base_url": base_url, "concurrency": 4, "timeout_s": 30, "max_retries": 0},
        **extra,
    }


def attempts(prepared: Prepared) -> list[int]:
    ledger = Ledger(prepared.workdir.ledger)
    try:
        return sorted(row.attempts for row in ledger.get(p.key for p in prepared.planned()))
    finally:
        ledger.close()


def test_an_outage_answering_garbage_is_asked_again_by_the_next_healthy_run(shared_data: Path, tmp_path: Path) -> None:
    with FakeLLM(seed=1) as server:
        prepared = ingest_cmrc(shared_data, tmp_path / "w", DOCUMENTS, generate=openai(server.base_url))
        server.set_faults(rates={"malformed": 0.5, "refusal": 0.5})  # HTTP 200, nothing usable
        first = prepared.generate()
        n = first.details["requests"]
        assert n > 0 and first.details["sent"] == n and first.output == 0
        assert sum(first.details["failures"].values()) == n and first.details["complete"]

        server.set_faults(rates={})  # healthy again
        second = prepared.generate()
        d = second.details
        assert d["sent"] == d["reasked"] == n and second.output > 0 and not d["failures"]
        assert attempts(prepared) == [2] * n

        received = server.received
        third = prepared.generate()  # every answer usable: nothing to ask, nothing rebuilt
        assert third.details["sent"] == 0 and third.output == second.output and server.received == received


def test_fresh_asks_again_and_re_asking_is_bounded(shared_data: Path, tmp_path: Path) -> None:
    with FakeLLM(seed=1) as server:
        prepared = ingest_cmrc(
            shared_data, tmp_path / "w", DOCUMENTS, generate=openai(server.base_url, max_attempts=2)
        )
        server.set_faults(rates={"malformed": 1.0})  # a model that always answers badly
        n = prepared.generate().details["requests"]
        again = prepared.generate(fresh=True)  # --fresh asks the unusable answers again
        assert again.details["sent"] == again.details["reasked"] == n
        assert attempts(prepared) == [2] * n
        for rerun in (prepared.generate(), prepared.generate(fresh=True)):  # max_attempts reached: final
            assert rerun.details["sent"] == 0 and rerun.details["failures"] == {"invalid_json": n}
        assert server.received == 2 * n


def test_the_same_unusable_answer_again_is_final(shared_data: Path, tmp_path: Path) -> None:
    with FakeLLM(seed=1) as server:  # its malformed answer to a prompt is the same every time
        prepared = ingest_cmrc(shared_data, tmp_path / "w", DOCUMENTS, generate=openai(server.base_url))
        server.set_faults(rates={"malformed": 1.0})
        n = prepared.generate().details["requests"]
        assert prepared.generate().details["reasked"] == n  # asked once more: an outage would answer otherwise
        assert attempts(prepared) == [3] * n  # the model repeats itself: final, though max_attempts is 3
        assert prepared.generate().details["sent"] == 0 and server.received == 2 * n


def test_an_answer_longer_than_max_tokens_allows_is_cut_and_counted(shared_data: Path, tmp_path: Path) -> None:
    max_tokens = 2  # the fake LLM's answers are far longer than 2 × CHARS_PER_TOKEN characters
    generate = openai("", max_attempts=1, sampling={"max_tokens": max_tokens})
    with FakeLLM(seed=1) as server:
        generate["openai"]["base_url"] = server.base_url
        prepared = ingest_cmrc(shared_data, tmp_path / "w", DOCUMENTS, generate=generate)
        stats = prepared.generate()
    n = stats.details["requests"]
    assert stats.details["oversized_answers"] == n and stats.details["failures"] == {"truncated": n}
    ledger = Ledger(prepared.workdir.ledger)
    rows = list(ledger.get(p.key for p in prepared.planned()))
    ledger.close()
    assert all(len(o) == max_tokens * CHARS_PER_TOKEN for r in rows for o in r.outputs)
    assert all(r.finish_reasons == ["length"] for r in rows)


@pytest.fixture(scope="module")
def planned(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> PlannedRequest:
    prepared = ingest_cmrc(shared_data, tmp_path_factory.mktemp("usable"), 1, generate=openai("http://127.0.0.1:9/v1"))
    return prepared.planned()[0]


@pytest.mark.parametrize(
    ("raw", "usable"),
    [
        (json.dumps({"queries": [{"query": "中国的首都是哪里", "evidence": "北京是中国的首都", "type": "factoid"}]},
                    ensure_ascii=False), True),
        ('{"queries": [', False),
        (json.dumps({"queries": [{"query": "What is the capital?", "evidence": "北京是中国的首都"}]}), False),
        ("抱歉，我无法回答。", False),
        ("", False),
    ],
)  # fmt: skip
def test_usable_means_one_sample_gives_an_item(planned: PlannedRequest, raw: str, usable: bool) -> None:
    assert planned.usable([raw], ["stop"]) is usable
    assert planned.usable([raw, "{}"], ["stop", "stop"]) is usable
