"""Sending: one task per partition of the ledger's buckets asks the LLM for the planned requests the ledger lacks.

Partitions split the key space, so tasks on several engines (several OpenAI-compatible endpoints, or an engine per
GPU worker) never send the same request, and a bucket lock makes a second process on the same workdir wait and then
find nothing to send. Requests stream into the backend (no barrier between batches) and answers are committed in
small batches; a request that failed in the backend is counted by kind and not written, so the next run sends it.

An answer that parsed to nothing usable is not done either: a later run (``--fresh`` included) asks it again, at
most ``generate.max_attempts`` times in all, and no more once the model gave the same answer again (a deterministic
model would only repeat it; an outage's garbage differs from the model's answer). What is stored per answer is
bounded by ``sampling.max_tokens`` (``CHARS_PER_TOKEN`` characters a token): a longer one is cut, marked
``length`` (so it parses as ``truncated``) and counted as ``oversized_answers``.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pairforge.config import GenerateConfig, RunConfig
from pairforge.generation.ledger import BUCKETS, Ledger, LedgerRow, bucket_of, lock_buckets
from pairforge.generation.requests import PlannedRequest, sampling_dict
from pairforge.llm import Backend, ChatRequest, Completion, create_backend
from pairforge.models import resolve_model
from pairforge.stats import StageStats
from pairforge.workdir import Workdir

COMMIT_EVERY = 32  # answers per ledger transaction: a kill loses at most these
# A token is one to a few characters (Chinese ~1.3, English ~4): 16 a token bounds only answers that no
# tokenizer could have produced within max_tokens (a broken proxy, a server ignoring max_tokens).
CHARS_PER_TOKEN = 16
ProgressFn = Callable[[int, int], None]  # (requests done, requests to send)
PlanFn = Callable[[str], list[PlannedRequest]]  # input shard → its planned requests


def partition_count(config: RunConfig, engine: GenerateConfig | None = None) -> int:
    """How many send tasks: ``generate.send_tasks``, else one per OpenAI-compatible endpoint (one for in-process
    engines); at most one per ledger bucket. ``engine``: another stage's engine settings (the judge's)."""
    from pairforge.llm.openai_backend import endpoints

    gen = engine or config.generate
    count = gen.send_tasks or (len(endpoints(gen)) if gen.backend == "openai" else 1)
    return max(1, min(count, BUCKETS))


def send_partition(
    config: RunConfig,
    output: Workdir,
    shards: list[str],
    plan: PlanFn,
    partition: int,
    partitions: int,
    *,
    backend: Backend | None = None,
    progress: ProgressFn | None = None,
    engine: GenerateConfig | None = None,
    ledger_folder: Path | None = None,
    stage: str = "generate",
) -> StageStats:
    """Send the missing requests of ``partition`` (of ``partitions``) over ``shards``, and ask again those whose
    stored answer was unusable (at most ``generate.max_attempts`` asks in all); returns what was sent. Another LLM
    stage (the judge) passes its ``engine`` settings, its own ``ledger_folder`` and its name."""
    started = time.perf_counter()
    engine = engine or config.generate
    folder = ledger_folder or output.ledger
    buckets = [b for b in range(BUCKETS) if b % partitions == partition]
    stats = StageStats(stage, "requests", details={"sent": 0, "answered": 0, "backend_errors": {},
                                                    "tokens_out_sent": 0, "reasked": 0,
                                                    "oversized_answers": 0})  # fmt: skip
    asks = Asks(buckets, engine.max_attempts)
    with lock_buckets(folder, buckets):
        ledger = Ledger(folder)
        try:
            todo = {s: len(asks.todo(plan(s), ledger)) for s in shards}  # counted first, for progress
            total = sum(todo.values())
            if total:
                owned = backend is None
                if backend is None:  # an in-process engine's own log lines go to WORKDIR/logs/vllm.log
                    model = resolve_model(engine.model)
                    backend = create_backend(engine, model, partition, log_path=output.logs / "vllm.log")
                try:
                    requests = _requests(plan, [s for s in shards if todo[s]], asks, ledger)
                    _stream(engine, backend, requests, ledger, stats, total, progress)
                finally:
                    if owned:
                        backend.close()
        finally:
            ledger.close()
    stats.input = stats.details["sent"]
    stats.output = stats.details["answered"]
    stats.seconds = time.perf_counter() - started
    return stats


Ask = tuple[PlannedRequest, int, list[str] | None]  # a request, the attempt it is, the answer it replaces


@dataclass(frozen=True)
class Asks:
    """Which planned requests a send task asks: those of its ``buckets`` the ledger lacks, and those whose stored
    answer is unusable and was asked fewer than ``max_attempts`` times."""

    buckets: list[int]
    max_attempts: int

    def todo(self, planned: list[PlannedRequest], ledger: Ledger) -> list[Ask]:
        """(request, the attempt this send is, the stored answer it replaces) for each request to send, each key
        once (equal requests are one answer)."""
        mine = {p.key: p for p in planned if bucket_of(p.key) in self.buckets}
        todo: dict[str, tuple[int, list[str] | None]] = {key: (1, None) for key in ledger.missing(mine)}
        for row in ledger.get(k for k in mine if k not in todo):
            if row.attempts < self.max_attempts and not mine[row.key].usable(row.outputs, row.finish_reasons):
                todo[row.key] = (row.attempts + 1, row.outputs)
        return [(p, *todo[key]) for key, p in mine.items() if key in todo]


def _requests(plan: PlanFn, shards: list[str], asks: Asks, ledger: Ledger) -> Iterator[tuple[Ask, ChatRequest]]:
    """The requests to send, one input shard at a time (memory holds one shard's plan)."""
    for shard in shards:
        for ask in asks.todo(plan(shard), ledger):
            yield ask, ask[0].chat_request()


def _stream(
    engine: GenerateConfig, backend: Backend, requests: Iterator[tuple[Ask, ChatRequest]],
    ledger: Ledger, stats: StageStats, total: int, progress: ProgressFn | None,
) -> None:  # fmt: skip
    model_id = engine.served_model_name or engine.model
    sampling = sampling_dict(engine)
    bound = engine.sampling.max_tokens * CHARS_PER_TOKEN
    run_id = uuid.uuid4().hex[:12]
    planned_of: dict[str, Ask] = {}
    buffer: list[LedgerRow] = []
    errors: Counter[str] = Counter()

    def chat_requests() -> Iterator[ChatRequest]:
        for ask, request in requests:
            planned_of[request.key] = ask
            yield request

    def commit() -> None:
        ledger.add(r for r in buffer if r.attempts == 1)
        ledger.replace(r for r in buffer if r.attempts > 1)  # a new answer replaces the unusable one
        buffer.clear()

    def on_done(done: Completion) -> None:
        planned, attempt, replaced = planned_of.pop(done.key)
        stats.details["sent"] += 1
        stats.details["reasked"] += attempt > 1
        if done.error is not None:
            errors[done.error] += 1  # not stored: the next run sends it again
        else:
            stats.details["oversized_answers"] += _bound_outputs(done, bound)
            if replaced is not None and done.outputs == replaced:
                attempt = engine.max_attempts  # the same answer again: asking more would repeat it
            buffer.append(_row(planned, done, model_id, sampling, run_id, attempt))
            stats.details["answered"] += 1
            stats.details["tokens_out_sent"] += done.tokens_out
        if len(buffer) >= COMMIT_EVERY:
            commit()
        if progress:
            progress(stats.details["sent"], total)

    try:
        backend.stream(chat_requests(), on_done)
    finally:
        commit()  # what was answered before a failure is kept
        stats.details["backend_errors"] = dict(errors)


def _bound_outputs(done: Completion, bound: int) -> int:
    """Cut each output longer than ``bound`` characters (marked ``length``); returns how many were cut."""
    cut = 0
    for i, text in enumerate(done.outputs):
        if len(text) > bound:
            done.outputs[i] = text[:bound]
            done.finish_reasons[i] = "length"
            cut += 1
    return cut


def _row(
    planned: PlannedRequest, done: Completion, model_id: str, sampling: dict[str, Any], run_id: str, attempt: int
) -> LedgerRow:
    p = planned
    return LedgerRow(done.key, p.kind, p.passage["id"], p.prompt.id, p.prompt.sha256, model_id, sampling,
                     done.outputs, done.finish_reasons, done.tokens_in, done.tokens_out, run_id,
                     attempts=attempt)  # fmt: skip
