"""The openai backend against the real vLLM OpenAI-compatible server (CPU build) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pairforge.config import GenerateConfig
from pairforge.llm.base import ChatRequest
from pairforge.llm.openai_backend import OpenAIBackend
from prompts import load_prompt, render_prompt
from tests.pairforge.llm.helpers import ingest_cmrc, ledger_rows

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

SENTINEL_KEY = "sk-pairforge-sentinel-7f3a9c"  # the server demands it; it must never be written anywhere


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(tiny_model_dir),
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "bfloat16",
        "--max-model-len",
        "4096",
        "--enforce-eager",
        "--api-key",
        SENTINEL_KEY,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 420  # about 25 s on a quiet machine; much more on a loaded one
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vLLM server did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def config_for(base_url: str, **extra: object) -> GenerateConfig:
    return GenerateConfig.model_validate(
        {
            "backend": "openai",
            "model": "tiny",
            "served_model_name": "tiny",
            "openai": {
                "base_url": base_url,
                "api_key_env": "PAIRFORGE_TEST_API_KEY",
                "concurrency": 4,
                "max_retries": 2,
                "send_seed": False,  # per-request seeds crash the CPU engine
            },
            "sampling": {"max_tokens": 48, "n": 2},
            **extra,
        }
    )


def test_structured_chat_completions(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIRFORGE_TEST_API_KEY", SENTINEL_KEY)
    prompt = load_prompt("sp")
    schema = prompt.schema_for(1)
    backend = OpenAIBackend(config_for(server), "tiny")
    requests = [
        ChatRequest(f"k{i}", [{"role": "user", "content": render_prompt(prompt, t, count=1)}], schema)
        for i, t in enumerate(["长江是中国第一长河。", "北京是首都。", "大熊猫吃竹子。", "茶起源于中国。"])
    ]
    done = backend.generate(requests)
    assert [c.key for c in done] == ["k0", "k1", "k2", "k3"]
    for c in done:
        assert c.error is None, c.error
        assert len(c.outputs) == 2 and c.tokens_in > 100 and 0 < c.tokens_out <= 96
        for text, reason in zip(c.outputs, c.finish_reasons, strict=True):
            if reason == "stop":
                assert isinstance(json.loads(text, strict=False)["sentences"], list)


def test_a_wrong_key_fails_without_retrying_forever(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIRFORGE_TEST_API_KEY", "wrong")
    backend = OpenAIBackend(config_for(server), "tiny")
    (done,) = backend.generate([ChatRequest("k", [{"role": "user", "content": "你好"}])])
    assert done.error == "http_401" and backend.retries == 0  # 401 is not retryable


def test_unreachable_server_retries_a_bounded_number_of_times() -> None:
    backend = OpenAIBackend(config_for(f"http://127.0.0.1:{free_port()}/v1"), "tiny")
    (done,) = backend.generate([ChatRequest("k", [{"role": "user", "content": "你好"}])])
    assert done.error == "APIConnectionError" and backend.retries == 2


def test_generate_through_the_server_never_writes_the_key(
    server: str, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIRFORGE_TEST_API_KEY", SENTINEL_KEY)
    generate = config_for(server).model_dump()
    prepared = ingest_cmrc(shared_data, tmp_path / "w", limit=3, generate=generate)
    stats = prepared.generate()
    d = stats.details
    assert d["sent"] == d["answered"] == d["requests"] == 2 * d["passages"] > 0 and not d["backend_errors"]
    assert d["complete"] and len(ledger_rows(prepared.workdir.ledger)) == d["requests"]
    for path in (tmp_path / "w").rglob("*"):
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path
