"""Generation through the openai backend against a server that fails in every way a real one does: retries stay
bounded, the run completes, each failure is counted by kind, a rerun sends only what is missing, and the API key
is never written anywhere."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from pairforge.config import RunConfig
from pairforge.generation.generate import read_passages, run_generate
from pairforge.generation.parse import FAILURE_KINDS
from pairforge.generation.requests import plan_requests
from pairforge.testing.fake_llm import FakeLLM
from tests.pairforge.llm.helpers import ingest_cmrc

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


def fault_config(tmp_path: Path, shared_data: Path, base_url: str, kinds: list[str]) -> RunConfig:
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


def ledger_keys(workdir: Path) -> set[str]:
    with sqlite3.connect(workdir / "ledger.sqlite") as db:
        return {row[0] for row in db.execute("SELECT key FROM requests")}


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
        config = fault_config(tmp_path, shared_data, server.base_url, ["qp"])
        workdir = Path(config.workdir)
        planned = plan_requests(read_passages(workdir), config.generate, config.generate.model)
        n = len(planned)
        assert n >= len(PLANS)

        summary = run_generate(config)

        outcomes = Counter(outcome for _, outcome in PLANS)
        expected_requests = sum(len(plan) for plan, _ in PLANS) + (n - len(PLANS))
        assert server.unauthorised == 0
        assert server.received == expected_requests <= n * (1 + MAX_RETRIES)
        assert summary.requests == summary.sent == n and summary.cached == 0
        assert summary.backend_errors == {k.split(":")[1]: v for k, v in outcomes.items() if k.startswith("backend")}
        assert summary.failures == {k.split(":")[1]: v for k, v in outcomes.items() if k.startswith("failure")}
        completed = ledger_keys(workdir)
        ok = n - sum(summary.backend_errors.values()) - sum(summary.failures.values())
        assert len(completed) == n - sum(summary.backend_errors.values())
        assert summary.pairs == 3 * ok and not summary.dropped_items

        # The rerun sends exactly the requests that failed in the backend, none that completed.
        completed_prompts = {
            FakeLLM.digest(p.chat_request().messages[-1]["content"]) for p in planned if p.key in completed
        }
        before = dict(server.attempts)
        rerun = run_generate(config)
        resent = {prompt for prompt, count in server.attempts.items() if count != before.get(prompt, 0)}
        assert not resent & completed_prompts
        assert len(resent) == rerun.sent == sum(summary.backend_errors.values())
        assert rerun.cached == len(completed) and not rerun.backend_errors
        assert server.received == expected_requests + rerun.sent
        assert rerun.failures == summary.failures and rerun.pairs == summary.pairs + 3 * rerun.sent

        received = server.received
        third = run_generate(config)
        assert server.received == received and third.sent == 0 and third.cached == n

    out, err = capfd.readouterr()
    assert_key_never_written(tmp_path, out, err, caplog.text)


def test_random_faults_keep_the_books_balanced(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
    rates = {"http_500": 0.2, "empty_choices": 0.1, "broken_body": 0.1, "truncated": 0.1, "malformed": 0.1}
    with FakeLLM(api_key=SENTINEL_KEY, rates=rates, seed=7) as server:
        config = fault_config(tmp_path, shared_data, server.base_url, ["qp", "sp"])
        summary = run_generate(config)
        served = server.faults

    n = summary.requests
    rows = len(ledger_keys(Path(config.workdir)))
    assert server.unauthorised == 0 and server.received == sum(served.values()) <= n * (1 + MAX_RETRIES)
    assert summary.sent == n and rows + sum(summary.backend_errors.values()) == n
    assert rows == served["ok"] + served["truncated"] + served["malformed"]  # every 200 with content is kept
    assert summary.failures.get("truncated", 0) == served["truncated"]
    assert summary.failures.get("invalid_json", 0) == served["malformed"]
    assert set(summary.failures) <= set(FAILURE_KINDS)
    assert set(summary.backend_errors) <= {"http_500", "no_choices", "invalid_response"}
    out, err = capfd.readouterr()
    assert_key_never_written(tmp_path, out, err)
