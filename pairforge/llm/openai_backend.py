"""Any OpenAI-compatible server (the vLLM server, others): async requests with bounded concurrency and
bounded retries with exponential backoff on 5xx, 429, timeouts and dropped connections."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from typing import Any

from pairforge.config import GenerateConfig
from pairforge.llm.base import ChatRequest, Completion

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIBackend:
    """Chat completions against ``generate.openai.base_url``; the API key is read from the environment
    variable named by ``api_key_env`` and is never logged or stored."""

    name = "openai"

    def __init__(self, config: GenerateConfig, model_name: str) -> None:
        self.config = config
        self.model_name = model_name
        self.retries = 0  # retries made, over the backend's life: bounded by max_retries per request

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return asyncio.run(self._generate_all(requests))

    async def _generate_all(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        from openai import AsyncOpenAI

        o = self.config.openai
        # The SDK's own retries are off: ours are counted and bounded the same way for every error kind.
        client = AsyncOpenAI(
            base_url=o.base_url, api_key=os.environ.get(o.api_key_env) or "EMPTY", timeout=o.timeout_s, max_retries=0
        )
        gate = asyncio.Semaphore(o.concurrency)
        try:
            return list(await asyncio.gather(*(self._one(client, gate, r) for r in requests)))
        finally:
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
        if o.send_seed:  # a vLLM server on the CPU crashes on per-request seeds (see README)
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
                error = f"http_{exc.status_code}"
                if exc.status_code not in RETRYABLE_STATUS:
                    break
                continue
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error = type(exc).__name__
                continue
            choices = response.choices or []
            if not choices:
                error = "no_choices"
                continue
            usage = response.usage
            return Completion(
                key=request.key,
                outputs=[c.message.content or "" for c in choices],
                finish_reasons=[str(c.finish_reason) for c in choices],
                tokens_in=usage.prompt_tokens if usage else 0,
                tokens_out=usage.completion_tokens if usage else 0,
            )
        return Completion(key=request.key, outputs=[], finish_reasons=[], error=error or "failed")

    def close(self) -> None:
        pass
