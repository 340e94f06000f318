"""Plan adjudication requests: one per (pair, candidate) worth asking, keyed for the adjudication ledger.

The key holds the prompt's sha256, the model, the sampling, the candidate passage, the pair's kind and query, and
the answer schema. Which candidates are asked (``margin``, ``max_candidates``, ``kinds``) is not in it: a changed
margin finds every question asked before in the ledger and sends only new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pairforge.adjudicate.verdict import candidates_to_ask, parse_adjudication, render_adjudication
from pairforge.config import GenerateConfig
from pairforge.config_adjudicate import AdjudicateConfig
from pairforge.generation.ledger import request_key
from pairforge.generation.requests import PlannedRequest, sampling_dict
from pairforge.llm.base import ChatRequest
from pairforge.pool import Pool
from prompts import Prompt

CANDIDATE_COLUMNS = ("pair_id", "kind", "query", "positive_id", "bm25_ids", "bm25_scores", "bm25_positive_score",
                     "dense_ids", "dense_scores", "dense_positive_score")  # fmt: skip


@dataclass(slots=True)
class AdjudicationRequest(PlannedRequest):
    """An adjudication request: generation's planned request (so the same send machinery streams and ledgers it),
    whose ``passage`` is the candidate and whose ``pair`` is the pair it was mined for (with the candidate's
    ``score`` and ``source``)."""

    pair: dict[str, Any] = field(default_factory=dict)

    def chat_request(self) -> ChatRequest:
        """The rendered adjudication prompt for this candidate and pair, with the answer schema, under its key."""
        messages = render_adjudication(
            self.prompt, kind=self.pair["kind"], query=self.pair["query"], passage=self.passage["text"]
        )
        return ChatRequest(self.key, messages, self.schema)

    def usable(self, outputs: list[str], finish_reasons: list[str]) -> bool:
        """Whether a stored answer gives a verdict (one that gave none is asked again, as generation's are)."""
        return any(parse_adjudication(t, r).failure is None for t, r in zip(outputs, finish_reasons, strict=True))


def adjudication_model_id(engine: GenerateConfig) -> str:
    """The model name adjudication requests are keyed (and sent) by."""
    return engine.served_model_name or engine.model


def plan_adjudication_requests(
    rows: list[dict[str, Any]], pool: Pool, settings: AdjudicateConfig, engine: GenerateConfig, prompt: Prompt
) -> list[AdjudicationRequest]:
    """One request per candidate to ask about, over candidate ``rows`` (``CANDIDATE_COLUMNS``), in row order."""
    model_id, sampling = adjudication_model_id(engine), sampling_dict(engine)
    asks = [
        (row, ask)
        for row in rows
        if row["kind"] in settings.kinds
        for ask in candidates_to_ask(row, settings.margin, settings.max_candidates)
    ]
    texts = pool.texts(pool.positions([pid for _, (pid, _, _) in asks]).tolist())
    planned: list[AdjudicationRequest] = []
    for (row, (pid, score, source)), text in zip(asks, texts, strict=True):
        extra = {"stage": "adjudicate", "kind": row["kind"], "query": row["query"], "schema": prompt.schema,
                 "structured": engine.structured_output}  # fmt: skip
        key = request_key(prompt.sha256, model_id, sampling, text, extra)
        pair = {"pair_id": row["pair_id"], "kind": row["kind"], "query": row["query"], "score": score,
                "source": source}  # fmt: skip
        planned.append(AdjudicationRequest(key, row["kind"], prompt, 1, prompt.schema, {"id": pid, "text": text},
                                           pair=pair))  # fmt: skip
    return planned
