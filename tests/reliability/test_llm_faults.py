"""Generation through the openai backend against a server that fails in every way a real one does: retries stay
bounded, the run completes, each failure is counted by kind, a rerun sends only what is missing or gave nothing,
and the API key is never written anywhere."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from pairforge.generation.ledger import Ledger
from pairforge.generation.parse import FAILURE_KINDS
from pairforge.generation.requests import PlannedRequest
from pairforge.testing.fake_llm import FakeLLM
from tests.pairforge.llm.helpers import Prepared, ingest_cmrc, ledger_rows

SENTINEL_KEY = "sk-reliability-sentinel-4c1e8b"  # the server demands it; it must never be written anywhere
KEY_ENV = "PAIRFORGE_RELIABILITY_KEY"
MAX_RETRIES = 2

# One plan per distinct prompt (attempt by attempt), with what the run must make of it.
PLANS: list[tuple[list[str], str]] = [
    (["ok"], "pairs"),
    (["http_500", "ok"], "pairs"),
    (["http_500"] * 3, "backend:http_500"),
    (["timeout", "ok"], "pairs"),
    (["timeout"] * 3, "backend:APITimeoutError"),
    (["empty_choices", "ok"], "pairs"),
    (["empty_choices"] * 3, "backend:no_choices"),
    (["broken_body", "ok"], "pairs"),
    (["broken_body"] * 3, "backend:invalid_response"),
    (["truncated"], "failure:truncated"),
    (["malformed"], "failure:invalid_json"),
    (["empty_content"], "failure:empty"),
    (["refusal"], "failure:refusal"),
]


def fault_config(tmp_path: Path, shared_data: Path, base_url: str, kinds: list[str]) -> Prepared:
    generate = {
        "backend": "openai",
        "model": "fault-model",
        "kinds": kinds,
        "chunk_size": 8,
        "openai": {
            "base_url": base_url,
            "api_key_env": KEY_ENV,
            "concurrency": 8,
            "timeout_s": 1.5,
            "max_retries": MAX_RETRIES,
        },
    }
    return ingest_cmrc(shared_data, tmp_path / "w", limit=8, generate=generate)


def ledger_keys(prepared: Prepared) -> set[str]:
    return set(ledger_rows(prepared.workdir.ledger))


def usable(prepared: Prepared, planned: PlannedRequest) -> bool:
    ledger = Ledger(prepared.workdir.ledger)
    try:
        row = next(ledger.get([planned.key]))
    finally:
        ledger.close()
    return planned.usable(row.outputs, row.finish_reasons)


def assert_key_never_written(workdir: Path, *texts: str) -> None:
    for path in workdir.rglob("*"):
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path
    for text in texts:
        assert SENTINEL_KEY not in text


def test_planned_faults_are_retried_boundedly_counted_by_kind_and_resumed(
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
    caplog.set_level(logging.DEBUG)  # the SDK's and httpx's debug logs must not carry the key either
    with FakeLLM(api_key=SENTINEL_KEY, plans=[plan for plan, _ in PLANS], hang_s=3.0) as server:
        prepared = fault_config(tmp_path, shared_data, server.base_url, ["qp"])
        planned = prepared.planned()
        n = len(planned)
        assert n >= len(PLANS) and len({p.key for p in planned}) == n

        summary = prepared.generate()

        outcomes = Counter(outcome for _, outcome in PLANS)
        errors = {k.split(":")[1]: v for k, v in outcomes.items() if k.startswith("backend")}
        failures = {k.split(":")[1]: v for k, v in outcomes.items() if k.startswith("failure")}
        expected_requests = sum(len(plan) for plan, _ in PLANS) + (n - len(PLANS))
        d = summary.details
        assert server.unauthorised == 0
        assert server.received == expected_requests <= n * (1 + MAX_RETRIES)
        assert d["requests"] == d["sent"] == n and d["answered"] == n - sum(errors.values())  # nothing cached
        assert d["backend_errors"] == errors
        assert {k: v for k, v in summary.dropped.items() if k.startswith("backend_")} == {
            f"backend_{k}": v for k, v in errors.items()
        }  # counted by kind in the funnel too
        assert d["failures"] == failures
        assert not d["complete"] and d["unanswered"] == sum(errors.values())
        completed = ledger_keys(prepared)
        ok = n - sum(errors.values()) - sum(failures.values())
        assert len(completed) == n - sum(errors.values()) and completed <= {p.key for p in planned}
        assert summary.output == 3 * ok and not d["dropped_items"]

        # The rerun sends exactly the requests that failed in the backend and those whose answer was unusable
        # (asked again: their plans are spent, so the server answers them well now), none that gave pairs.
        failed_keys = {p.key for p in planned} - completed  # never written to the ledger
        unusable = {p.key for p in planned if p.key in completed and not usable(prepared, p)}
        assert len(unusable) == sum(failures.values())
        resend_prompts = {FakeLLM.digest(p.chat_request().messages[-1]["content"]) for p in planned
                          if p.key in failed_keys | unusable}  # fmt: skip
        before = dict(server.attempts)
        rerun = prepared.generate()
        resent = {prompt for prompt, count in server.attempts.items() if count != before.get(prompt, 0)}
        r = rerun.details
        assert resent == resend_prompts and len(resent) == r["sent"] == sum(errors.values()) + len(unusable)
        assert r["reasked"] == len(unusable)
        assert r["answered"] == n and r["complete"] and not r["backend_errors"]
        assert server.received == expected_requests + r["sent"]
        assert not r["failures"] and rerun.output == summary.output + 3 * r["sent"]
        assert ledger_keys(prepared) == {p.key for p in planned}

        received = server.received
        third = prepared.generate()
        assert server.received == received and third.details["sent"] == 0 and third.details["answered"] == n

    out, err = capfd.readouterr()
    assert_key_never_written(tmp_path, out, err, caplog.text)


def test_random_faults_keep_the_books_balanced(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
    rates = {"http_500": 0.2, "empty_choices": 0.1, "broken_body": 0.1, "truncated": 0.1, "malformed": 0.1}
    with FakeLLM(api_key=SENTINEL_KEY, rates=rates, seed=7) as server:
        prepared = fault_config(tmp_path, shared_data, server.base_url, ["qp", "sp"])
        summary = prepared.generate()
        served = server.faults

    d = summary.details
    n = d["requests"]
    rows = len(ledger_keys(prepared))
    assert server.unauthorised == 0 and server.received == sum(served.values()) <= n * (1 + MAX_RETRIES)
    assert d["sent"] == n and rows + sum(d["backend_errors"].values()) == n == rows + d["unanswered"]
    assert rows == served["ok"] + served["truncated"] + served["malformed"]  # every 200 with content is kept
    assert d["failures"].get("truncated", 0) == served["truncated"]
    assert d["failures"].get("invalid_json", 0) == served["malformed"]
    assert set(d["failures"]) <= set(FAILURE_KINDS)
    assert set(d["backend_errors"]) <= {"http_500", "no_choices", "invalid_response"}
    out, err = capfd.readouterr()
    assert_key_never_written(tmp_path, out, err)
