"""Plan the LLM requests for a set of passages: one per (passage, kind), keyed for the ledger.

Keys are computed without rendering prompts; a prompt is rendered only when its request is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pairforge.config import GenerateConfig
from pairforge.generation.ledger import request_key
from pairforge.llm.base import ChatRequest
from prompts import Prompt, load_prompt, render_prompt

LONG_CHARS = 512  # stella's long-text point: some questions must need text after this character


@dataclass(slots=True)
class PlannedRequest:
    """A request to make (or already made): its ledger key and what it is made from."""

    key: str
    kind: str
    prompt: Prompt
    count: int
    schema: dict[str, Any]
    passage: dict[str, Any]

    def chat_request(self) -> ChatRequest:
        content = render_prompt(self.prompt, self.passage["text"], count=self.count, long_chars=LONG_CHARS)
        return ChatRequest(self.key, [{"role": "user", "content": content}], self.schema)


def sampling_dict(config: GenerateConfig) -> dict[str, Any]:
    return config.sampling.model_dump()


def plan_requests(passages: list[dict[str, Any]], config: GenerateConfig, model_id: str) -> list[PlannedRequest]:
    """Every (passage, kind) request, each with its ledger key."""
    prompts = {kind: load_prompt(kind, config.prompt_versions.get(kind, "v1")) for kind in config.kinds}
    schemas = {kind: prompts[kind].schema_for(config.counts.get(kind, 1)) for kind in config.kinds}
    sampling = sampling_dict(config)
    planned = []
    for passage in passages:
        for kind, prompt in prompts.items():
            count = config.counts.get(kind, 1)
            extra = {
                "kind": kind,
                "count": count,
                "schema": schemas[kind],
                "long_chars": LONG_CHARS,
                "structured": config.structured_output,
            }
            key = request_key(prompt.sha256, model_id, sampling, passage["text"], extra)
            planned.append(PlannedRequest(key, kind, prompt, count, schemas[kind], passage))
    return planned
