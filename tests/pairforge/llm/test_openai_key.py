"""The API key where the request is sent (issue 21, item 13): a Dask worker started as docs/scaleout.md shows has
no key in its environment; the backend used to send "EMPTY" instead, so every request came back 401 and nothing was
published, without a word about the key. Now an unset variable is an error naming it."""

from __future__ import annotations

import pytest

from pairforge.config import GenerateConfig
from pairforge.llm.base import ChatRequest
from pairforge.llm.openai_backend import MissingApiKey, OpenAIBackend, read_api_key
from pairforge.testing.fake_llm import FakeLLM

KEY_ENV = "PAIRFORGE_KEY_TEST_VARIABLE"


def config(base_url: str, **openai: object) -> GenerateConfig:
    settings = {"base_url": base_url, "api_key_env": KEY_ENV, "max_retries": 0, "timeout_s": 5}
    return GenerateConfig.model_validate({"backend": "openai", "openai": settings | openai})


@pytest.mark.parametrize(
    ("url", "secret", "key", "expected"),
    [
        ("https://api.deepseek.com/v1", None, "sk-1", "sk-1"),
        ("http://127.0.0.1:8000/v1", None, "sk-1", "sk-1"),
        ("http://127.0.0.1:8000/v1", None, None, None),  # a local server started without a key
        ("http://localhost:8000/v1", None, None, None),
        ("http://[::1]:8000/v1", None, None, None),
        ("https://api.deepseek.com/v1", None, None, MissingApiKey),
        ("http://10.0.0.1:8000/v1", None, None, MissingApiKey),  # a vLLM server on another node
        ("http://127.0.0.1:8000/v1", "openai-api-key", None, MissingApiKey),  # the secret is the flow's only
        ("http://127.0.0.1:8000/v1", None, "", None),  # an empty value is as good as unset
    ],
)
def test_read_api_key(
    url: str, secret: str | None, key: str | None, expected: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    if key is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, key)
    cfg = config(url, api_key_secret=secret)
    if expected is MissingApiKey:
        with pytest.raises(MissingApiKey, match=f"names {KEY_ENV}, which is not set") as info:
            read_api_key(cfg, url)
        assert "Dask worker" in str(info.value)
    else:
        assert read_api_key(cfg, url) == expected


def test_a_server_that_wants_the_unset_key_fails_the_stream_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Was: every request's Completion carried ``http_401`` and the run went on to publish nothing."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    request = ChatRequest("k0", [{"role": "user", "content": "你好"}])
    with FakeLLM(api_key="sk-the-real-one") as server:
        backend = OpenAIBackend(config(server.base_url), "fake-model")
        with pytest.raises(MissingApiKey, match=KEY_ENV) as info:
            backend.generate([request])
        assert "sk-the-real-one" not in str(info.value)
        monkeypatch.setenv(KEY_ENV, "sk-wrong")  # a key that is set but wrong stays a per-request error
        assert OpenAIBackend(config(server.base_url), "fake-model").generate([request])[0].error == "http_401"
