"""Any OpenAI-compatible server (the vLLM server, others): async requests with bounded concurrency and
bounded retries with exponential backoff on 5xx, 429, timeouts and dropped connections."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import socket
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from pairforge.config import GenerateConfig
from pairforge.llm.base import ChatRequest, Completion, DoneFn, collect

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
REFUSED_KEY_STATUS = {401, 403}
NO_KEY = "EMPTY"  # what a keyless server (vLLM without --api-key) is sent


class MissingApiKey(RuntimeError):
    """The variable ``api_key_env`` names is not set in the process that sends the requests (a Dask worker does
    not inherit the environment of the process that started the run)."""


class OpenAIBackend:
    """Chat completions against ``generate.openai.base_url``; the API key is read from the environment
    variable named by ``api_key_env`` and is never logged or stored."""

    name = "openai"

    def __init__(self, config: GenerateConfig, model_name: str, base_url: str | None = None) -> None:
        self.config = config
        self.model_name = model_name
        self.base_url = base_url or endpoints(config)[0]
        self.retries = 0  # retries made, over the backend's life: bounded by max_retries per request
        self.api_key = read_api_key(config, self.base_url)

    def stream(self, requests: Iterable[ChatRequest], on_done: DoneFn) -> None:
        asyncio.run(self._stream(requests, on_done))

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return collect(self, requests)

    async def _stream(self, requests: Iterable[ChatRequest], on_done: DoneFn) -> None:
        """One event loop for the whole stream: ``concurrency`` requests on the wire, twice that many in flight
        (some wait out a retry's backoff), the next one started the moment one finishes."""
        from openai import AsyncOpenAI

        o = self.config.openai
        # The SDK's own retries are off: ours are counted and bounded the same way for every error kind.
        client = AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key or NO_KEY, timeout=o.timeout_s,
            max_retries=0,
        )  # fmt: skip
        gate = asyncio.Semaphore(o.concurrency)
        source = iter(requests)
        in_flight: set[asyncio.Task[Completion]] = set()
        exhausted = False
        try:
            while True:
                while not exhausted and len(in_flight) < 2 * o.concurrency:
                    request = next(source, None)
                    if request is None:
                        exhausted = True
                        break
                    in_flight.add(asyncio.create_task(self._one(client, gate, request)))
                if not in_flight:
                    return
                finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    on_done(task.result())
        finally:
            for task in in_flight:
                task.cancel()
            await client.close()

    async def _one(self, client: Any, gate: asyncio.Semaphore, request: ChatRequest) -> Completion:
        import openai

        o, s = self.config.openai, self.config.sampling
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": request.messages,
            "n": s.n,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if o.send_seed:  # a vLLM server on the CPU crashes on per-request seeds (see docs/operations.md)
            body["seed"] = s.seed
        if request.schema and self.config.structured_output and o.json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.schema},
            }
        error = ""
        for attempt in range(o.max_retries + 1):
            if attempt:
                self.retries += 1
                await asyncio.sleep(min(8.0, 0.25 * 2**attempt) * (0.5 + random.random()))
            try:
                async with gate:
                    response = await client.chat.completions.create(**body)
            except openai.APIStatusError as exc:
                if exc.status_code in REFUSED_KEY_STATUS and self.api_key is None:
                    raise _missing(o.api_key_env, f"the server at {self.base_url} wants a key") from None
                error = f"http_{exc.status_code}"
                if exc.status_code not in RETRYABLE_STATUS:
                    break
                continue
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error = type(exc).__name__
                continue
            except (json.JSONDecodeError, UnicodeDecodeError, openai.APIResponseValidationError):
                error = "invalid_response"  # a body cut short on the way: as retryable as a dropped connection
                continue
            answer = _read_choices(response)
            if answer is None:
                error = "invalid_response"
                continue
            if not answer[0]:
                error = "no_choices"
                continue
            usage = getattr(response, "usage", None)
            return Completion(
                key=request.key,
                outputs=answer[0],
                finish_reasons=answer[1],
                tokens_in=_count(usage, "prompt_tokens"),
                tokens_out=_count(usage, "completion_tokens"),
            )
        return Completion(key=request.key, outputs=[], finish_reasons=[], error=error or "failed")

    def close(self) -> None:
        pass


def read_api_key(config: GenerateConfig, base_url: str) -> str | None:
    """The key from the variable ``api_key_env`` names, in this process. Unset, it is ``MissingApiKey`` unless the
    endpoint is on this machine's loopback with no Secret block configured (a local server started without a key);
    there None, and a refused request raises ``MissingApiKey`` instead of failing every request quietly."""
    o = config.openai
    key = os.environ.get(o.api_key_env)
    if key:
        return key
    if o.api_key_secret:
        raise _missing(o.api_key_env, f"api_key_secret {o.api_key_secret!r} is read by the flow's process only")
    if not _on_loopback(base_url):
        raise _missing(o.api_key_env, f"{base_url} is not on this machine")
    return None


def _missing(variable: str, why: str) -> MissingApiKey:
    return MissingApiKey(
        f"generate.openai.api_key_env names {variable}, which is not set in this process (host "
        f"{socket.gethostname()}, pid {os.getpid()}) and {why}: set {variable} in the environment of every "
        "process that sends requests (each Dask worker too; any value for a server that takes no key)"
    )


def _on_loopback(url: str) -> bool:
    return is_loopback_host(urllib.parse.urlsplit(url).hostname or "")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_choices(response: Any) -> tuple[list[str], list[str]] | None:
    """The choices' texts and finish reasons, or None when the body is not shaped like a chat completion (the
    SDK builds responses without validating them, and a non-string text would poison the ledger)."""
    choices = getattr(response, "choices", ...)
    if choices is ...:
        return None
    if not isinstance(choices, list):
        return None if choices else ([], [])
    outputs, reasons = [], []
    for choice in choices:
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        if message is None or not isinstance(content, str | None):
            return None
        outputs.append(content or "")
        reasons.append(str(getattr(choice, "finish_reason", None)))
    return outputs, reasons


def _count(usage: Any, name: str) -> int:
    value = getattr(usage, name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def endpoints(config: GenerateConfig) -> list[str]:
    """The configured OpenAI-compatible endpoints (``base_url`` may be one URL or a list)."""
    urls = config.openai.base_url
    return [urls] if isinstance(urls, str) else list(urls)
