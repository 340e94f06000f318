"""Plan the judge's requests: one per kept pair, keyed for the judge's ledger by what is asked.

The key holds the judge prompt's sha256, the model, the sampling, the pair's passage, kind and text, and the answer
schema: the cut is not in it, so re-tuning the cut finds every answer in the ledger and sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pairforge.config import GenerateConfig
from pairforge.generation.ledger import request_key
from pairforge.generation.requests import PlannedRequest, sampling_dict
from pairforge.judge.rubric import parse_verdict, render_judge
from pairforge.llm.base import ChatRequest
from prompts import Prompt


@dataclass(slots=True)
class JudgeRequest(PlannedRequest):
    """A judge request: generation's planned request (so the same send machinery streams and ledgers it), made
    from one ``pair`` (its kind, query and positive passage) instead of a passage alone."""

    pair: dict[str, Any] = field(default_factory=dict)

    def chat_request(self) -> ChatRequest:
        """The rendered judge prompt for this request's pair, with the answer schema, under the ledger key."""
        pair = self.pair
        messages = render_judge(self.prompt, kind=pair["kind"], query=pair["query"], passage=pair["positive"])
        return ChatRequest(self.key, messages, self.schema)

    def usable(self, outputs: list[str], finish_reasons: list[str]) -> bool:
        """Whether a stored judge answer gives scores (one that gave none is asked again, as generation's are)."""
        return any(parse_verdict(t, r).failure is None for t, r in zip(outputs, finish_reasons, strict=True))


def judge_model_id(engine: GenerateConfig) -> str:
    """The model name the judge's requests are keyed (and sent) by."""
    return engine.served_model_name or engine.model


def plan_judge_requests(pairs: list[dict[str, Any]], engine: GenerateConfig, prompt: Prompt) -> list[PlannedRequest]:
    """One ``JudgeRequest`` per pair, in the pairs' order; ``engine`` is ``JudgeConfig.engine``'s settings."""
    model_id, sampling = judge_model_id(engine), sampling_dict(engine)
    planned: list[PlannedRequest] = []
    for pair in pairs:
        extra = {
            "stage": "judge",
            "kind": pair["kind"],
            "query": pair["query"],
            "schema": prompt.schema,
            "structured": engine.structured_output,
        }
        key = request_key(prompt.sha256, model_id, sampling, pair["positive"], extra)
        passage = {"id": pair["passage_id"], "text": pair["positive"]}
        planned.append(JudgeRequest(key, pair["kind"], prompt, 1, prompt.schema, passage, pair=pair))
    return planned
