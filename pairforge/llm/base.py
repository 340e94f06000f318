"""The one interface every LLM backend implements: requests in, completions out, continuously.

``stream`` keeps a bounded window of requests in flight and hands each completion to ``on_done`` as soon as it
is finished, pulling the next request from the iterable meanwhile, so there is no barrier at batch ends and the
caller commits results in small batches while the engine keeps working.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
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


DoneFn = Callable[[Completion], None]


class Backend(Protocol):
    """An LLM. ``stream`` calls ``on_done`` once per request, in completion order; it never raises for one bad
    request (that request's Completion carries ``error``). ``generate`` is the same for a list, in order."""

    name: str

    def stream(self, requests: Iterable[ChatRequest], on_done: DoneFn) -> None: ...

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]: ...

    def close(self) -> None: ...


def collect(backend: Backend, requests: Sequence[ChatRequest]) -> list[Completion]:
    """``backend.stream`` over ``requests``, the completions back in request order (requests with the same key
    each get their own completion, in the order they finish)."""
    waiting: dict[str, deque[int]] = {}
    for i, r in enumerate(requests):
        waiting.setdefault(r.key, deque()).append(i)
    done: list[Completion | None] = [None] * len(requests)

    def on_done(completion: Completion) -> None:
        done[waiting[completion.key].popleft()] = completion

    backend.stream(requests, on_done)
    return [c for c in done if c is not None]


def stream_in_batches(
    run_batch: Callable[[Sequence[ChatRequest]], list[Completion]],
    requests: Iterable[ChatRequest],
    on_done: DoneFn,
    size: int,
) -> None:
    """For engines that only take whole batches: ``size`` requests at a time."""
    iterator = iter(requests)
    while batch := list(itertools.islice(iterator, size)):
        for completion in run_batch(batch):
            on_done(completion)
