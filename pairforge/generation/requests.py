"""Build the LLM requests for a set of passages: one per (passage, kind), keyed for the ledger."""

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
    """A request plus what it was made from."""

    request: ChatRequest
    kind: str
    prompt: Prompt
    passage: dict[str, Any]


def sampling_dict(config: GenerateConfig) -> dict[str, Any]:
    return config.sampling.model_dump()


def plan_requests(passages: list[dict[str, Any]], config: GenerateConfig, model_id: str) -> list[PlannedRequest]:
    """Every (passage, kind) request, each with its ledger key."""
    prompts = {kind: load_prompt(kind, config.prompt_versions.get(kind, "v1")) for kind in config.kinds}
    sampling = sampling_dict(config)
    planned = []
    for passage in passages:
        for kind, prompt in prompts.items():
            count = config.counts.get(kind, 1)
            schema = prompt.schema_for(count)
            key = request_key(
                prompt.sha256,
                model_id,
                sampling,
                passage["text"],
                {
                    "kind": kind,
                    "count": count,
                    "schema": schema,
                    "long_chars": LONG_CHARS,
                    "structured": config.structured_output,
                },
            )
            content = render_prompt(prompt, passage["text"], count=count, long_chars=LONG_CHARS)
            request = ChatRequest(key, [{"role": "user", "content": content}], schema)
            planned.append(PlannedRequest(request, kind, prompt, passage))
    return planned
