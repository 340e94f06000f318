"""Plan the LLM requests for a set of passages, each keyed for the ledger.

An ``items`` prompt (v1) makes one request per (passage, kind) asking for ``counts[kind]`` items that quote
their own evidence. An evidence-first prompt makes one request per (passage, kind, target): the pipeline
picks ``counts[kind]`` target sentences (``targets.select_targets``), and for qp a query type per target, so
every answer's evidence offsets are known by construction. Keys are computed without rendering prompts; a
prompt is rendered only when its request is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pairforge.config import GenerateConfig
from pairforge.generation.ledger import request_key
from pairforge.generation.parse import ParseResult, parse_generation
from pairforge.generation.targets import Target, assign_query_types, select_targets
from pairforge.llm.base import ChatRequest
from prompts import Prompt, load_prompt, render_messages


@dataclass(slots=True)
class PlannedRequest:
    """A request to make (or already made): its ledger key and what it is made from.

    ``target`` is the sentence the answer is about (``passage["text"][start:end] == target.text``), None for
    an ``items`` prompt, whose items quote their own evidence.
    ``query_type`` is the qp query type asked for (None otherwise).
    """

    key: str
    kind: str
    prompt: Prompt
    count: int
    schema: dict[str, Any]
    passage: dict[str, Any]
    target: Target | None = None
    query_type: str | None = None
    long_chars: int = 512

    def chat_request(self) -> ChatRequest:
        """The chat request to send: the rendered prompt and the answer schema, under the ledger key."""
        marked = (self.target.start, self.target.end) if self.target else None
        messages = render_messages(
            self.prompt,
            self.passage["text"],
            count=self.count,
            long_chars=self.long_chars,
            target=marked,
            query_type=self.query_type,
        )
        return ChatRequest(self.key, messages, self.schema)

    def parse(self, raw: str, finish_reason: str = "stop") -> ParseResult:
        """Parse one sampled answer to this request (checked against its target, when it has one)."""
        return parse_generation(
            raw, schema=self.schema, finish_reason=finish_reason, target=self.target, query_type=self.query_type
        )

    def usable(self, outputs: list[str], finish_reasons: list[str]) -> bool:
        """Whether a stored answer gives anything: at least one of its samples parses to an item."""
        return any(not self.parse(text, reason).failure for text, reason in zip(outputs, finish_reasons, strict=True))


def sampling_dict(config: GenerateConfig) -> dict[str, Any]:
    return config.sampling.model_dump()


def plan_requests(
    passages: list[dict[str, Any]], config: GenerateConfig, model_id: str, *, long_chars: int = 512
) -> list[PlannedRequest]:
    """Every request for ``passages``, each with its ledger key; ``long_chars`` is ``window.long_chars``."""
    prompts = {kind: load_prompt(kind, config.prompt_versions.get(kind, "v1")) for kind in config.kinds}
    sampling = sampling_dict(config)
    schemas: dict[tuple[str, str | None], dict[str, Any]] = {}  # one object per schema: validators compile once
    planned = []
    for passage in passages:
        taken: set[tuple[int, int]] = set()  # sentences another kind already targets
        for kind, prompt in prompts.items():
            count = config.counts.get(kind, 1)
            if prompt.mode == "items":
                planned.append(_items_request(passage, kind, prompt, count, config, model_id, sampling, long_chars))
                continue
            for target, query_type in _targets(passage["text"], kind, prompt, count, config, long_chars, taken):
                taken.add((target.start, target.end))
                schema = schemas.setdefault((kind, query_type), prompt.schema_for(1, query_type))
                extra = {
                    "kind": kind,
                    "schema": schema,
                    "target": [target.start, target.end],
                    "query_type": query_type,
                    "structured": config.structured_output,
                }
                key = request_key(prompt.sha256, model_id, sampling, passage["text"], extra)
                planned.append(PlannedRequest(key, kind, prompt, 1, schema, passage, target, query_type, long_chars))
    return planned


def _items_request(
    passage: dict[str, Any],
    kind: str,
    prompt: Prompt,
    count: int,
    config: GenerateConfig,
    model_id: str,
    sampling: dict[str, Any],
    long_chars: int,
) -> PlannedRequest:
    schema = prompt.schema_for(count)
    # The same key material as before targets existed, so ledgers written by earlier versions stay valid.
    extra = {
        "kind": kind,
        "count": count,
        "schema": schema,
        "long_chars": long_chars,
        "structured": config.structured_output,
    }
    key = request_key(prompt.sha256, model_id, sampling, passage["text"], extra)
    return PlannedRequest(key, kind, prompt, count, schema, passage, long_chars=long_chars)


def _targets(
    text: str, kind: str, prompt: Prompt, count: int, config: GenerateConfig, long_chars: int, taken: set
) -> list[tuple[Target, str | None]]:
    """(target sentence, query type) pairs for one passage and kind."""
    targets = select_targets(
        text,
        count,
        kind=kind,
        long_chars=long_chars,
        long_tail_share=config.long_tail_share,
        min_chars=config.target_min_chars,
        max_chars=config.target_max_chars,
        exclude=taken,
    )
    types: list[str | None] = [None] * len(targets)
    if kind == "qp":
        types = list(assign_query_types(text, len(targets), config.query_types))
    return list(zip(targets, types, strict=True))
