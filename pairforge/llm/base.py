"""The one interface every LLM backend implements: a batch of chat requests in, completions out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class ChatRequest:
    """One request: its ledger key, the chat messages, and the JSON schema the answer must follow (or None)."""

    key: str
    messages: list[dict[str, str]]
    schema: dict[str, Any] | None = None


@dataclass(slots=True)
class Completion:
    """The answer to one request: ``n`` sampled texts, or ``error`` when the backend gave up on it."""

    key: str
    outputs: list[str]
    finish_reasons: list[str]
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None


class Backend(Protocol):
    """A batch LLM. ``generate`` returns one Completion per request, in order; it never raises for one bad
    request (that request's Completion carries ``error``)."""

    name: str

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]: ...

    def close(self) -> None: ...
