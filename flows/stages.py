"""One Prefect flow per stage, and the mapper that runs a stage's shard tasks as Prefect tasks on the configured task
runner (threads, processes, Dask workers). The stages themselves live in the core (``run_<stage>``); flows only
wire them: which inputs, which runner, retries, the LLM concurrency limit, progress.

``run_stage`` is the one way a stage runs over a run plan (its inputs from ``pairforge.wiring.stage_inputs``, its
runner from ``RUNNERS``): the pipeline, the stage contract test and the test workdirs call it. A stage's flow is made
per run with the config bound (loaded once, never re-validated), so Prefect's database never holds a secret.
Whether a shard's work is already done is the core's business (``Workdir.finished``), not Prefect's cache.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from filters.chain import build_filters
from flows.progress import report
from flows.runtime import LLM_LEASE_S, LLM_LIMIT
from pairforge.config import RunConfig
from pairforge.dedup.pairs import run_dedup_pairs
from pairforge.dedup.passages import run_dedup_passages
from pairforge.export import run_export
from pairforge.filter import run_filter
from pairforge.generation.generate import run_generate
from pairforge.ingest import run_ingest
from pairforge.judge import run_judge
from pairforge.mapping import Mapper, ShardFn, serial_map
from pairforge.negatives.index import run_index
from pairforge.negatives.mine import run_mine
from pairforge.negatives.select import run_select
from pairforge.plan import RunPlan
from pairforge.stages import get_stage
from pairforge.stats import StageStats
from pairforge.wiring import stage_inputs
from pairforge.workdir import Workdir

LLM_STAGES = ("generate.send", "judge.send", "mine.adjudicate.send")
# Their progress is reported otherwise (requests).
QUIET = ("generate.send", "generate", "judge.send", "mine.adjudicate.send", "dedup-passages.sign")


def _run_shard(run_shard: ShardFn, shard: str) -> StageStats:
    return run_shard(shard)


def _run_llm_shard(run_shard: ShardFn, shard: str) -> StageStats:
    """An LLM task holds a slot of the global LLM limit (leased: a killed run's slot comes back)."""
    with concurrency(LLM_LIMIT, occupy=1, strict=False, lease_duration=LLM_LEASE_S):
        return run_shard(shard)


def task_mapper(config: RunConfig) -> Any:
    """A ``Mapper`` that submits one Prefect task per shard to the flow's task runner and waits for all."""

    def map_shards(stage: str, run_shard: ShardFn, shards: Sequence[str]) -> list[StageStats]:
        body = _run_llm_shard if stage in LLM_STAGES else _run_shard
        shard_task = task(name=stage, retries=config.flow.retries, retry_delay_seconds=2,
                          cache_policy=NO_CACHE, persist_result=False)(body)  # fmt: skip
        futures = [shard_task.with_options(task_run_name=f"{stage}:{s}").submit(run_shard, s) for s in shards]
        results = []
        for n, future in enumerate(futures, 1):
            results.append(future.result())
            if stage not in QUIET:
                report(stage, "shards", n, len(futures))
        return results

    return map_shards


RUNNERS: dict[str, Callable[..., StageStats]] = {
    "ingest": run_ingest,
    "dedup-passages": run_dedup_passages,
    "index": run_index,
    "generate": run_generate,
    "filter": functools.partial(run_filter, build_filters=build_filters),
    "judge": run_judge,
    "dedup-pairs": run_dedup_pairs,
    "mine": run_mine,
    "select": run_select,
    "export": run_export,
}
LLM_REQUESTS = ("generate", "judge")  # stages that report progress in requests
ASKING = (*LLM_REQUESTS, "mine")  # stages that may ask an LLM (mine: mine.adjudicate), so may need the API key


def run_stage(
    name: str, config: RunConfig, plan: RunPlan, workdir: Workdir, *, fresh: bool = False,
    map_shards: Mapper = serial_map, **options: Any,
) -> StageStats:  # fmt: skip
    """Stage ``name`` over the plan: its inputs from ``stage_inputs``, its runner from ``RUNNERS``. ``fresh`` and
    ``map_shards`` go to the stages that take them (global steps have no shard tasks, export has nothing to redo);
    ``options`` (a progress callback, a backend) to the stage as they are."""
    runner = RUNNERS[name]
    accepted = inspect.signature(runner).parameters
    shared = {k: v for k, v in (("fresh", fresh), ("map_shards", map_shards)) if k in accepted}
    return runner(config, stage_inputs(name, config, plan, workdir), workdir, **shared, **options)


def stage_flow(name: str, config: RunConfig, plan: RunPlan, task_runner: Any = None) -> Any:
    """The Prefect flow of stage ``name``: its shard tasks on ``task_runner``, LLM requests under the global limit.
    The config and plan are bound here, made once per run: the flow's parameters (what Prefect's database records)
    are only the shard keys and ``fresh``, so no secret and no copy of the config reaches it."""

    def run(fresh: bool = False) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if name in ASKING:
            load_api_key(config)
        if name in LLM_REQUESTS:
            options["progress"] = functools.partial(report, name, "requests")
        workdir = Workdir(config.workdir)
        return run_stage(name, config, plan, workdir, fresh=fresh, map_shards=task_mapper(config), **options).to_dict()

    run.__name__ = f"{name.replace('-', '_')}_flow"
    stage_flow = flow(name=name, description=get_stage(name).summary, validate_parameters=False)(run)
    return stage_flow if task_runner is None else stage_flow.with_options(task_runner=task_runner)


def load_api_key(config: RunConfig) -> None:
    """An OpenAI-compatible server's key from a Prefect Secret into the variable the backend reads, unless that
    variable is already set. The key itself never enters a config, a result, a log or an output."""
    engines = [config.generate]
    if config.judge.enabled:
        engines.append(config.judge.engine(config.generate))  # the judge may ask another endpoint
    if config.mine.adjudicate.enabled:
        engines.append(config.mine.adjudicate.engine(config.generate))  # so may false-negative adjudication
    for engine in engines:
        o = engine.openai
        if engine.backend != "openai" or not o.api_key_secret or os.environ.get(o.api_key_env):
            continue
        from prefect.blocks.system import Secret

        secret: Any = Secret.load(o.api_key_secret)  # typed as maybe-async; called from sync code it is the block
        os.environ[o.api_key_env] = str(secret.get())
