"""Sending: one task per partition of the ledger's buckets asks the LLM for the planned requests the ledger lacks.

Partitions split the key space, so tasks on several engines (several OpenAI-compatible endpoints, or an engine per
GPU worker) never send the same request, and a bucket lock makes a second process on the same workdir wait and then
find nothing to send. Requests stream into the backend (no barrier between batches) and answers are committed in
small batches; a request that failed in the backend is counted by kind and not written, so the next run sends it.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
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
    """Send the missing requests of ``partition`` (of ``partitions``) over ``shards``; returns what was sent.
    Another LLM stage (the judge) passes its ``engine`` settings, its own ``ledger_folder`` and its name."""
    started = time.perf_counter()
    engine = engine or config.generate
    folder = ledger_folder or output.ledger
    buckets = [b for b in range(BUCKETS) if b % partitions == partition]
    stats = StageStats(stage, "requests", details={"sent": 0, "answered": 0, "backend_errors": {},
                                                    "tokens_out_sent": 0})  # fmt: skip
    with lock_buckets(folder, buckets):
        ledger = Ledger(folder)
        try:
            todo = {s: len(_missing(plan(s), buckets, ledger)) for s in shards}  # counted first, for progress
            total = sum(todo.values())
            if total:
                owned = backend is None
                if backend is None:  # an in-process engine's own log lines go to WORKDIR/logs/vllm.log
                    model = resolve_model(engine.model)
                    backend = create_backend(engine, model, partition, log_path=output.logs / "vllm.log")
                try:
                    requests = _requests(plan, [s for s in shards if todo[s]], buckets, ledger)
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


def _missing(planned: list[PlannedRequest], buckets: list[int], ledger: Ledger) -> list[PlannedRequest]:
    """The planned requests of ``buckets`` the ledger lacks, each key once (two equal requests are one answer)."""
    mine = list({p.key: p for p in planned if bucket_of(p.key) in buckets}.values())
    missing = set(ledger.missing(p.key for p in mine))
    return [p for p in mine if p.key in missing]


def _requests(
    plan: PlanFn, shards: list[str], buckets: list[int], ledger: Ledger
) -> Iterator[tuple[PlannedRequest, ChatRequest]]:
    """The missing requests, one input shard at a time (memory holds one shard's plan)."""
    for shard in shards:
        for planned in _missing(plan(shard), buckets, ledger):
            yield planned, planned.chat_request()


def _stream(
    engine: GenerateConfig, backend: Backend, requests: Iterator[tuple[PlannedRequest, ChatRequest]], ledger: Ledger,
    stats: StageStats, total: int, progress: ProgressFn | None,
) -> None:  # fmt: skip
    model_id = engine.served_model_name or engine.model
    sampling = sampling_dict(engine)
    run_id = uuid.uuid4().hex[:12]
    planned_of: dict[str, PlannedRequest] = {}
    buffer: list[LedgerRow] = []
    errors: Counter[str] = Counter()

    def chat_requests() -> Iterator[ChatRequest]:
        for planned, request in requests:
            planned_of[request.key] = planned
            yield request

    def on_done(done: Completion) -> None:
        planned = planned_of.pop(done.key)
        stats.details["sent"] += 1
        if done.error is not None:
            errors[done.error] += 1  # not stored: the next run sends it again
        else:
            buffer.append(_row(planned, done, model_id, sampling, run_id))
            stats.details["answered"] += 1
            stats.details["tokens_out_sent"] += done.tokens_out
        if len(buffer) >= COMMIT_EVERY:
            ledger.add(buffer)
            buffer.clear()
        if progress:
            progress(stats.details["sent"], total)

    try:
        backend.stream(chat_requests(), on_done)
    finally:
        ledger.add(buffer)  # what was answered before a failure is kept
        stats.details["backend_errors"] = dict(errors)


def _row(planned: PlannedRequest, done: Completion, model_id: str, sampling: dict[str, Any], run_id: str) -> LedgerRow:
    p = planned
    return LedgerRow(done.key, p.kind, p.passage["id"], p.prompt.id, p.prompt.sha256, model_id, sampling,
                     done.outputs, done.finish_reasons, done.tokens_in, done.tokens_out, run_id)  # fmt: skip
