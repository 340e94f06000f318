"""Which fault each fake-LLM request gets, and the counters the tests read.

Faults come from a plan per distinct prompt (the n-th distinct prompt seen since the plans were set follows
``plans[n]``, attempt by attempt, then falls back to the rates), or from ``rates``: a draw that is a pure function
of (seed, prompt, attempt), so the same requests get the same faults whatever the concurrency. Both can be
replaced at run time (``FaultBook.configure``); the counters keep running until ``reset``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

FAULTS = (
    "ok",  # a valid answer following the request's JSON schema
    "http_500",  # an internal server error
    "timeout",  # no answer before the client's timeout (the server hangs for hang_s, then answers)
    "truncated",  # the content is valid JSON cut in half, finish_reason "length"
    "malformed",  # the content is broken JSON, finish_reason "stop"
    "empty_choices",  # HTTP 200 with ``choices: []``
    "empty_content",  # HTTP 200 with an empty message
    "refusal",  # HTTP 200, the model declines in Chinese
    "broken_body",  # HTTP 200 whose JSON body itself is cut short
)
MAX_PLANS = 100_000  # distinct prompts a plan list may cover
MAX_PLAN_STEPS = 100  # attempts one plan may script


def prompt_digest(prompt: str) -> str:
    """The key the counters use for a prompt (a 128-bit BLAKE2b hex digest: a million prompts stay small)."""
    return hashlib.blake2b(prompt.encode(), digest_size=16).hexdigest()


class FaultBook:
    """Fault choice and counters, safe to share between the server's loop and the caller's threads."""

    def __init__(
        self, *, plans: Sequence[Sequence[str]] = (), rates: Mapping[str, float] | None = None, seed: int = 0
    ) -> None:
        self._lock = threading.Lock()
        self.received = 0  # requests to /v1/*, authorised or not
        self.unauthorised = 0
        self.faults: Counter[str] = Counter()  # faults served, by kind ("ok" included)
        self.attempts: Counter[str] = Counter()  # completion requests per distinct prompt (by prompt_digest)
        self._rates: dict[str, float] = {}
        self._plans: list[list[str]] = []
        self._plan_of: dict[str, int] = {}
        self._plan_steps: Counter[str] = Counter()
        self.seed = 0
        self.configure(plans=plans, rates=rates or {}, seed=seed)

    def configure(
        self,
        *,
        rates: Mapping[str, float] | None = None,
        plans: Sequence[Sequence[str]] | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Replace the rates, the plans (numbering distinct prompts afresh) and/or the seed; None keeps one.
        Raises ValueError naming the bad entry. Returns the settings now in force."""
        checked_rates = _check_rates(rates) if rates is not None else None
        checked_plans = _check_plans(plans) if plans is not None else None
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an integer, not {seed!r}")
        with self._lock:
            if checked_rates is not None:
                self._rates = checked_rates
            if checked_plans is not None:
                self._plans, self._plan_of, self._plan_steps = checked_plans, {}, Counter()
            if seed is not None:
                self.seed = seed
            return self._settings()

    def count(self, *, authorised: bool) -> None:
        """Count one request to /v1/*."""
        with self._lock:
            self.received += 1
            self.unauthorised += not authorised

    def choose(self, digest: str) -> str:
        """The fault for this request of the prompt with this ``prompt_digest``: its plan's next step, else a draw
        from the rates."""
        with self._lock:
            attempt = self.attempts[digest]
            self.attempts[digest] += 1
            fault = self._planned(digest)
            if fault is None:
                fault = self._draw(digest, attempt)
            self.faults[fault] += 1
            return fault

    def reset(self) -> None:
        """Zero every counter (the settings stay)."""
        with self._lock:
            self.received = self.unauthorised = 0
            self.faults, self.attempts = Counter(), Counter()

    def stats(self, *, per_prompt: bool = False) -> dict[str, Any]:
        """The counters as plain JSON: received, unauthorised, faults, prompts (distinct), retried (prompts sent
        more than once), settings; with ``per_prompt`` also attempts (digest → count)."""
        with self._lock:
            stats: dict[str, Any] = {
                "received": self.received,
                "unauthorised": self.unauthorised,
                "faults": dict(self.faults),
                "prompts": len(self.attempts),
                "retried": sum(1 for n in self.attempts.values() if n > 1),
                "settings": self._settings(),
            }
            if per_prompt:
                stats["attempts"] = dict(self.attempts)
            return stats

    def _settings(self) -> dict[str, Any]:
        return {"rates": dict(self._rates), "plans": [list(p) for p in self._plans], "seed": self.seed}

    def _planned(self, digest: str) -> str | None:
        if not self._plans:
            return None
        if digest not in self._plan_of:
            if len(self._plan_of) >= len(self._plans):
                return None  # past the last plan: no need to remember this prompt
            self._plan_of[digest] = len(self._plan_of)
        plan, step = self._plans[self._plan_of[digest]], self._plan_steps[digest]
        self._plan_steps[digest] += 1
        return plan[step] if step < len(plan) else None

    def _draw(self, digest: str, attempt: int) -> str:
        raw = hashlib.blake2b(f"{self.seed}\0{attempt}\0{digest}".encode(), digest_size=8).digest()
        roll = int.from_bytes(raw, "big") / 2**64
        for fault, rate in sorted(self._rates.items()):
            if roll < rate:
                return fault
            roll -= rate
        return "ok"


def _check_rates(rates: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(rates, Mapping):
        raise ValueError(f"rates must be an object of fault: rate, not {rates!r}")
    checked: dict[str, float] = {}
    for fault, rate in rates.items():
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
            raise ValueError(f"rate of {fault} must be a number in [0, 1], not {rate!r}")
        checked[fault] = float(rate)
    if sum(checked.values()) > 1 + 1e-9:
        raise ValueError(f"fault rates add up to {sum(checked.values()):g} > 1")
    return checked


def _check_plans(plans: Sequence[Sequence[str]]) -> list[list[str]]:
    if isinstance(plans, str) or not isinstance(plans, Sequence) or len(plans) > MAX_PLANS:
        raise ValueError(f"plans must be a list of at most {MAX_PLANS} lists of fault names")
    checked = []
    for i, plan in enumerate(plans):
        if isinstance(plan, str) or not isinstance(plan, Sequence) or len(plan) > MAX_PLAN_STEPS:
            raise ValueError(f"plan {i} must be a list of at most {MAX_PLAN_STEPS} fault names, not {plan!r}")
        for fault in plan:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r} in plan {i}; known: {', '.join(FAULTS)}")
        checked.append(list(plan))
    return checked
