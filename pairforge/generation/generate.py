"""The generate stage: (query, passage) pairs from the LLM for the deduplicated passages of each input shard.

Two steps. **Send**: one task per partition of the ledger's key space asks the backend for the planned requests the
ledger lacks (``send``). **Build**: one task per input shard turns every planned request's ledger answer into pairs
(``build``), ``generate/pairs/<shard>-*.parquet``. A shard is complete when all its requests have answers; one
that is not (a backend outage, ``--limit``) is rebuilt by the next run, which sends exactly the missing requests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.generation.build import build_shard
from pairforge.generation.requests import PlannedRequest, plan_requests
from pairforge.generation.send import ProgressFn, partition_count, send_partition
from pairforge.llm import Backend
from pairforge.mapping import Mapper, serial_map
from pairforge.shard_task import StageRun, Unfinished, run_shard_task
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats, combine
from pairforge.workdir import Workdir, shard_files

STAGE = "generate"
UNIT = get_stage(STAGE).unit
PASSAGE_COLUMNS = ["id", "doc_id", "source", "text"]


@dataclass(frozen=True)
class GenerateInputs:
    """The input shards whose deduplicated passages get requests; with ``limit``, only the first that many passages
    (in shard order) do, and the shards it cuts are not complete."""

    shards: list[str]
    limit: int | None = None


def run_generate(
    config: RunConfig,
    inputs: GenerateInputs,
    output: Workdir,
    *,
    fresh: bool = False,
    map_shards: Mapper = serial_map,
    progress: ProgressFn | None = None,
    backend: Backend | None = None,
) -> StageStats:
    """Send what the ledger lacks, then build every shard's pairs."""
    run = StageRun(STAGE, output)
    budget = passage_budget(output, inputs)
    plan = functools.partial(plan_shard, config, output, budget)
    partitions = partition_count(config)
    send = functools.partial(_send, config, output, inputs.shards, plan, partitions, backend, progress)
    sent = map_shards(f"{STAGE}.send", send, [str(p) for p in range(partitions)])
    build = functools.partial(_build, config, output, plan, budget, fresh)
    stats = run.combine(map_shards(STAGE, build, inputs.shards))
    sending = combine(STAGE, UNIT, sent)
    for kind, n in sending.details.get("backend_errors", {}).items():
        stats.drop(f"backend_{kind}", n)
    stats.details.update(
        sent=sending.details.get("sent", 0), backend_errors=sending.details.get("backend_errors", {}),
        reasked=sending.details.get("reasked", 0), oversized_answers=sending.details.get("oversized_answers", 0),
        tokens_out_sent=sending.details.get("tokens_out_sent", 0), send_seconds=round(sending.seconds, 3),
        model=config.generate.model, backend=config.generate.backend, send_tasks=partitions,
    )  # fmt: skip
    return run.save(stats)


def passage_budget(output: Workdir, inputs: GenerateInputs) -> dict[str, int]:
    """How many of each shard's passages get requests (all, unless ``limit`` cuts them), in shard order."""
    budget, left = {}, inputs.limit
    for shard in inputs.shards:
        rows = sum(pq.read_metadata(f).num_rows for f in shard_files(output.passages, shard))
        budget[shard] = rows if left is None else min(rows, left)
        left = None if left is None else left - budget[shard]
    return budget


def plan_shard(config: RunConfig, output: Workdir, budget: dict[str, int], shard: str) -> list[PlannedRequest]:
    """The planned requests of one input shard's (budgeted) passages."""
    passages: list[dict[str, str]] = []
    for path in shard_files(output.passages, shard):
        if len(passages) >= budget[shard]:
            break
        passages.extend(pq.read_table(path, columns=PASSAGE_COLUMNS).to_pylist())
    model_id = config.generate.served_model_name or config.generate.model
    return plan_requests(passages[: budget[shard]], config.generate, model_id, long_chars=config.window.long_chars)


def _send(
    config: RunConfig, output: Workdir, shards: list[str], plan: functools.partial[list[PlannedRequest]],
    partitions: int, backend: Backend | None, progress: ProgressFn | None, partition: str,
) -> StageStats:  # fmt: skip
    return send_partition(config, output, shards, plan, int(partition), partitions, backend=backend, progress=progress)


def _build(
    config: RunConfig, output: Workdir, plan: functools.partial[list[PlannedRequest]], budget: dict[str, int],
    fresh: bool, shard: str,
) -> StageStats:  # fmt: skip
    """One shard's pairs; skipped when complete under the same passages, settings and budget."""
    depends_on = (output.key_of("dedup-passages", shard), stage_settings(config, STAGE), budget[shard])
    work = functools.partial(_build_pairs, config, output, plan, budget, shard)
    return run_shard_task(output, STAGE, shard, depends_on, work, fresh=fresh, reuse=_complete)


def _complete(done: StageStats) -> bool:
    return bool(done.details.get("complete"))


def _build_pairs(
    config: RunConfig, output: Workdir, plan: functools.partial[list[PlannedRequest]], budget: dict[str, int],
    shard: str,
) -> Unfinished:  # fmt: skip
    planned = plan(shard)
    unanswered: list[str] = []
    retryable: list[str] = []
    stats = build_shard(config, output, shard, planned, unanswered, retryable)
    total = sum(pq.read_metadata(f).num_rows for f in shard_files(output.passages, shard))
    stats.details["passages_left_by_limit"] = total - budget[shard]
    stats.details["complete"] = stats.details["complete"] and total == budget[shard]
    # The same settings give other pairs once more answers arrive (or an unusable one is asked again): keyed by
    # what it lacks, the next run rebuilds it and the stages after it redo their work.
    lacking = [sorted(unanswered), *([sorted(retryable)] if retryable else [])] if unanswered or retryable else []
    return Unfinished(stats, lacking)
