"""The fake LLM server: every fault kind as the real OpenAI backend sees it, run-time switching from Python and
over HTTP from another process, the command line, counters, loopback only, and the bounds."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from typing import Any

import pytest

from pairforge.config import GenerateConfig
from pairforge.generation.parse import parse_generation
from pairforge.llm.base import ChatRequest, Completion
from pairforge.llm.openai_backend import OpenAIBackend
from pairforge.testing.fake_llm import MAX_WAIT_S, FakeLLM
from pairforge.testing.faults import FAULTS, FaultBook, prompt_digest
from pairforge.testing.process import spawn_fake_llm
from prompts import load_prompt, render_prompt
from tests.conftest import REPO

KEY_ENV = "PAIRFORGE_FAKE_LLM_TEST_KEY"
KEY = "sk-fake-llm-test-2b7d"
PASSAGE = "长江是中国第一长河，全长约6300公里。它发源于青藏高原的唐古拉山脉。长江流经十一个省级行政区，最后注入东海。"
SCHEMA = load_prompt("qp").schema_for(3)
URL_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)/v1")
START_S = 20


def chat(i: int = 0, passage: str = PASSAGE) -> ChatRequest:
    prompt = render_prompt(load_prompt("qp"), f"{passage}第{i}段。", count=3)
    return ChatRequest(f"k{i}", [{"role": "user", "content": prompt}], SCHEMA)


def backend(base_url: str, **openai: Any) -> OpenAIBackend:
    settings = {"base_url": base_url, "api_key_env": KEY_ENV, "concurrency": 4, "max_retries": 0, "timeout_s": 5}
    config = GenerateConfig.model_validate({"backend": "openai", "openai": settings | openai})
    return OpenAIBackend(config, "fake-model")


def call(base_url: str, method: str, path: str, body: Any = None, key: str | None = KEY) -> tuple[int, Any]:
    """One request with the standard library; (status, decoded JSON body)."""
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = connection.getresponse()
    status, raw = response.status, response.read()
    connection.close()
    return status, json.loads(raw) if raw else None


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


# What the real backend must make of each fault: (backend error, or the parse failure of its answer).
SEEN_AS = {
    "ok": (None, None),
    "http_500": ("http_500", None),
    "timeout": ("APITimeoutError", None),
    "truncated": (None, "truncated"),
    "malformed": (None, "invalid_json"),
    "empty_choices": ("no_choices", None),
    "empty_content": (None, "empty"),
    "refusal": (None, "refusal"),
    "broken_body": ("invalid_response", None),
}


def test_every_fault_kind_reaches_the_openai_backend_as_its_error(key_env: None) -> None:
    assert set(SEEN_AS) == set(FAULTS)
    with FakeLLM(api_key=KEY, hang_s=1.5) as server:
        client = backend(server.base_url, timeout_s=0.5)
        for i, (fault, (error, failure)) in enumerate(SEEN_AS.items()):
            server.set_faults(rates={fault: 1.0})
            [completion] = client.generate([chat(i)])
            assert completion.error == error, fault
            if error is None:
                parsed = parse_generation(
                    completion.outputs[0], schema=SCHEMA, finish_reason=completion.finish_reasons[0]
                )
                assert parsed.failure == failure, (fault, completion.outputs)
                assert fault != "ok" or len(parsed.items) == 3
        assert server.faults == dict.fromkeys(FAULTS, 1)
        assert server.received == len(FAULTS) and server.unauthorised == 0
        assert set(server.attempts.values()) == {1} and len(server.prompts()) == len(FAULTS)


def test_answers_are_deterministic_n_choices_and_usage(key_env: None) -> None:
    with FakeLLM(api_key=KEY, seed=3) as server:
        client = backend(server.base_url)
        first, again = client.generate([chat(1)]), client.generate([chat(1)])
        assert first[0].outputs == again[0].outputs and first[0].error is None
        prompt = chat(1).messages[0]["content"]
        assert first[0].tokens_in == len(prompt) // 2
        assert first[0].tokens_out == len(first[0].outputs[0]) // 2
        assert server.attempts[FakeLLM.digest(prompt)] == 2

        config = GenerateConfig.model_validate(
            {
                "backend": "openai",
                "sampling": {"n": 4},
                "openai": {"base_url": server.base_url, "api_key_env": KEY_ENV},
            }
        )
        [several] = OpenAIBackend(config, "fake-model").generate([chat(1)])
        assert len(several.outputs) == 4 and len(set(several.outputs)) > 1
        assert all(parse_generation(o, schema=SCHEMA).failure is None for o in several.outputs)
    with FakeLLM(api_key=KEY, seed=3) as other:  # a fresh server with the same seed answers the same
        assert backend(other.base_url).generate([chat(1)])[0].outputs == first[0].outputs


def test_plans_follow_distinct_prompts_attempt_by_attempt_and_rates_are_pure(key_env: None) -> None:
    with FakeLLM(api_key=KEY, plans=[["http_500", "http_500"], ["ok"]]) as server:
        client = backend(server.base_url)
        errors = [client.generate([chat(0)])[0].error for _ in range(3)]
        assert errors == ["http_500", "http_500", None]
        server.set_faults(plans=[["refusal"]])  # numbered afresh: chat(0) is now the first distinct prompt
        [answer] = client.generate([chat(0)])
        assert parse_generation(answer.outputs[0], schema=SCHEMA).failure == "refusal"

    book, other = FaultBook(rates={"http_500": 0.3}, seed=5), FaultBook(rates={"http_500": 0.3}, seed=5)
    prompts = [prompt_digest(f"p{i}") for i in range(2000)]
    drawn = [book.choose(p) for p in prompts]
    assert drawn == [other.choose(p) for p in reversed(prompts)][::-1]  # the same faults in any arrival order
    assert 0.25 < drawn.count("http_500") / len(drawn) < 0.35
    for bad in ({"nope": 0.1}, {"http_500": 1.5}, {"http_500": 0.6, "timeout": 0.6}):
        with pytest.raises(ValueError):
            book.configure(rates=bad)
    with pytest.raises(ValueError, match="plan 0"):
        book.configure(plans=[["ok", "nope"]])


def test_authentication_counts_and_refuses(key_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeLLM(api_key=KEY) as server:
        monkeypatch.setenv(KEY_ENV, "sk-wrong")
        assert backend(server.base_url).generate([chat()])[0].error == "http_401"
        assert call(server.base_url, "GET", "/_fake/stats", key=None)[0] == 401
        assert call(server.base_url, "GET", "/health", key=None) == (200, {"status": "ok"})
        assert server.received == server.unauthorised == 1 and not server.faults
    with FakeLLM() as open_server:  # no key: anyone on the loopback may call
        assert (
            call(
                open_server.base_url,
                "POST",
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "好"}]},
                key=None,
            )[0]
            == 200
        )


def test_bad_requests_and_bounds() -> None:
    with FakeLLM(api_key=KEY, max_body=2048) as server:
        url = server.base_url
        assert call(url, "POST", "/v1/chat/completions", {"messages": []})[0] == 400
        assert (
            call(url, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n": 99})[0]
            == 400
        )
        assert (
            call(url, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x" * 4096}]})[0]
            == 413
        )
        assert call(url, "GET", "/v1/chat/completions")[0] == 405
        assert call(url, "GET", "/v2/nothing")[0] == 404
        assert call(url, "GET", "/v1/models")[1]["data"][0]["id"] == "fake-llm"
        status, body = call(url, "POST", "/_fake/faults", {"rates": {"http_500": 2}})
        assert status == 400 and "http_500" in body["error"]["message"]
        assert call(url, "POST", "/_fake/faults", {"rate": {}})[0] == 400
        assert server.stats()["settings"]["rates"] == {}
    for bad in ({"hang_s": MAX_WAIT_S + 1}, {"hang_s": 0}, {"latency_s": -1}, {"rates": {"nope": 1}}):
        with pytest.raises(ValueError):
            FakeLLM(**bad)  # type: ignore[arg-type]


def read_response(reader: Any) -> tuple[bytes, bytes]:
    """(status line, body) of one HTTP/1.1 response framed by Content-Length."""
    status, length = reader.readline(), 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        length = int(value) if name.lower() == "content-length" else length
    return status, reader.read(length)


def test_keep_alive_and_expect_continue() -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "你好"}]}).encode()
    with FakeLLM() as server, socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):  # one connection, three requests
            head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            sock.sendall(head.encode() + b"Expect: 100-continue\r\n\r\n")
            assert read_response(reader) == (b"HTTP/1.1 100 Continue\r\n", b"")
            sock.sendall(body)
            status, answer = read_response(reader)
            assert status == b"HTTP/1.1 200 OK\r\n" and json.loads(answer)["choices"][0]["message"]["content"] == "{}"
        assert server.received == 3


def test_loopback_only() -> None:
    for host in ("0.0.0.0", "10.1.2.3", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            FakeLLM(host=host)
    with FakeLLM(host="localhost") as server:
        assert server.base_url.startswith("http://localhost:")
    with FakeLLM() as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"


def test_the_command_line_prints_its_url_and_switches_faults_over_http(key_env: None) -> None:
    with spawn_fake_llm("--api-key-env", KEY_ENV, "--fault", "http_500=1", "--seed", "2") as (url, process):
        assert URL_LINE.fullmatch(url), url
        client = backend(url)
        assert client.generate([chat(0)])[0].error == "http_500"

        status, settings = call(url, "POST", "/_fake/faults", {"rates": {}, "plans": [["empty_choices"]]})
        assert status == 200 and settings == {"rates": {}, "plans": [["empty_choices"]], "seed": 2}
        errors = [c.error for c in client.generate([chat(1), chat(1)])]
        assert sorted(map(str, errors)) == ["None", "no_choices"]  # whichever of the two arrived first

        status, stats = call(url, "GET", "/_fake/stats?attempts=1")
        assert status == 200 and stats["received"] == 3 and stats["unauthorised"] == 0
        assert stats["faults"] == {"http_500": 1, "empty_choices": 1, "ok": 1}
        assert stats["prompts"] == 2 and stats["retried"] == 1 and sorted(stats["attempts"].values()) == [1, 2]
        assert call(url, "POST", "/_fake/reset")[1]["received"] == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=START_S) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "loopback"),
        (["--fault", "nope=1"], "unknown fault"),
        (["--fault", "http_500"], "KIND=RATE"),
        (["--api-key-env", "PAIRFORGE_FAKE_LLM_UNSET_VAR"], "not set"),
    ],
)
def test_the_command_line_refuses_bad_options(args: list[str], message: str) -> None:
    command = [sys.executable, "-m", "pairforge.testing.fake_llm", "--port", "0", *args]
    env = {k: v for k, v in os.environ.items() if k != "PAIRFORGE_FAKE_LLM_UNSET_VAR"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=START_S)
    assert done.returncode == 2 and message in done.stderr and not done.stdout


def test_many_concurrent_requests_are_answered(key_env: None) -> None:
    with FakeLLM(api_key=KEY, latency_s=0.01) as server:
        completions: list[Completion] = backend(server.base_url, concurrency=32).generate(
            [chat(i) for i in range(100)]
        )
    assert all(c.error is None for c in completions) and server.received == 100
    assert all(parse_generation(c.outputs[0], schema=SCHEMA).failure is None for c in completions)


def test_spawning_a_server_that_cannot_start_raises() -> None:
    with pytest.raises(RuntimeError, match="did not start"), spawn_fake_llm("--fault", "nope=1"):
        pass
