"""One Prefect flow per stage, and the mapper that runs a stage's shard tasks as Prefect tasks on the configured task
runner (threads, processes, Dask workers). The stages themselves live in the core (``run_<stage>``); flows only
wire them: which inputs, which runner, retries, the LLM concurrency limit, progress.

Flows receive the config as redacted JSON (``RunConfig.redacted``), so Prefect's database never holds a secret.
Whether a shard's work is already done is the core's business (``Workdir.finished``), not Prefect's cache.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from filters.run import FilterInputs, run_filter
from flows.progress import report
from flows.runtime import LLM_LEASE_S, LLM_LIMIT, create_task_runner
from pairforge.config import RunConfig
from pairforge.dedup.pairs import DedupPairsInputs, run_dedup_pairs
from pairforge.dedup.passages import DedupInputs, run_dedup_passages
from pairforge.export import ExportInputs, run_export
from pairforge.generation.generate import GenerateInputs, run_generate
from pairforge.ingest import run_ingest
from pairforge.inputs import InputShard
from pairforge.judge.stage import JudgeInputs, run_judge
from pairforge.mapping import ShardFn
from pairforge.negatives.examples import run_select, select_inputs
from pairforge.negatives.index import IndexInputs, run_index
from pairforge.negatives.mine import MineInputs, run_mine
from pairforge.plan import RunPlan
from pairforge.pool import PoolPart
from pairforge.stats import StageStats
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


def _setup(config: dict[str, Any]) -> tuple[RunConfig, Workdir, Any]:
    cfg = RunConfig.model_validate(config)
    return cfg, Workdir(cfg.workdir), task_mapper(cfg)


@flow(name="ingest")
def ingest_flow(config: dict[str, Any], shards: list[dict[str, Any]], fresh: bool = False) -> dict[str, Any]:
    """Read, normalise, window and sample: one task per input shard."""
    cfg, workdir, mapper = _setup(config)
    inputs = [InputShard.from_dict(s) for s in shards]
    return run_ingest(cfg, inputs, workdir, fresh=fresh, map_shards=mapper).to_dict()


@flow(name="dedup-passages")
def dedup_passages_flow(config: dict[str, Any], shards: list[str], prior: list[str], fresh: bool = False
                        ) -> dict[str, Any]:  # fmt: skip
    """Near-duplicate passages out, within the run and against the earlier versions' segments."""
    cfg, workdir, mapper = _setup(config)
    inputs = DedupInputs(shards, [Path(p) for p in prior])
    return run_dedup_passages(cfg, inputs, workdir, fresh=fresh, map_shards=mapper).to_dict()


@flow(name="index")
def index_flow(config: dict[str, Any], shards: list[str], carried: list[dict[str, Any]], fresh: bool = False
               ) -> dict[str, Any]:  # fmt: skip
    """The whole pool, its BM25 index (and embeddings): a global step, its BM25 segments one task per batch."""
    cfg, workdir, mapper = _setup(config)
    parts = [PoolPart(c["name"], [Path(p) for p in c["passages"]], Path(c["index"])) for c in carried]
    return run_index(cfg, IndexInputs(shards, parts), workdir, fresh=fresh, map_shards=mapper).to_dict()


@flow(name="generate")
def generate_flow(config: dict[str, Any], shards: list[str], limit: int | None = None, fresh: bool = False
                  ) -> dict[str, Any]:  # fmt: skip
    """Send what the ledger lacks (one task per key partition, under the LLM limit), then build each shard's
    pairs."""
    cfg, workdir, mapper = _setup(config)
    load_api_key(cfg)
    progress = functools.partial(report, "generate", "requests")
    stats = run_generate(cfg, GenerateInputs(shards, limit), workdir, fresh=fresh, map_shards=mapper,
                         progress=progress)  # fmt: skip
    return stats.to_dict()


@flow(name="filter")
def filter_flow(config: dict[str, Any], shards: list[str], fresh: bool = False) -> dict[str, Any]:
    """Quality, copying, evidence, contamination and round-trip filters: one task per shard."""
    cfg, workdir, mapper = _setup(config)
    return run_filter(cfg, FilterInputs(shards), workdir, fresh=fresh, map_shards=mapper).to_dict()


@flow(name="judge")
def judge_flow(config: dict[str, Any], shards: list[str], fresh: bool = False) -> dict[str, Any]:
    """The LLM judge's scores and cut (send under the LLM limit, then one task per shard); off: pairs pass on."""
    cfg, workdir, mapper = _setup(config)
    load_api_key(cfg)
    progress = functools.partial(report, "judge", "requests")
    return run_judge(cfg, JudgeInputs(shards), workdir, fresh=fresh, map_shards=mapper, progress=progress).to_dict()


@flow(name="dedup-pairs")
def dedup_pairs_flow(config: dict[str, Any], shards: list[str], fresh: bool = False) -> dict[str, Any]:
    """Near-duplicate queries of the same passage out: one task per shard."""
    cfg, workdir, mapper = _setup(config)
    return run_dedup_pairs(cfg, DedupPairsInputs(shards), workdir, fresh=fresh, map_shards=mapper).to_dict()


@flow(name="mine")
def mine_flow(config: dict[str, Any], shards: list[str], fresh: bool = False) -> dict[str, Any]:
    """BM25 / dense candidates with scores, stored in full: one task per shard."""
    cfg, workdir, mapper = _setup(config)
    return run_mine(cfg, MineInputs(shards), workdir, fresh=fresh, map_shards=mapper).to_dict()


@flow(name="select")
def select_flow(config: dict[str, Any], shards: list[str], fresh: bool = False) -> dict[str, Any]:
    """Hard negatives chosen from the stored candidates: one task per shard."""
    cfg, workdir, mapper = _setup(config)
    return run_select(cfg, select_inputs(workdir, shards), workdir, fresh=fresh, map_shards=mapper).to_dict()


@flow(name="export")
def export_flow(config: dict[str, Any], funnel: list[dict[str, Any]]) -> dict[str, Any]:
    """Publish the next version of the workdir's run plan (atomic; built on the plan's parent, or a conflict)."""
    cfg, workdir, _ = _setup(config)
    inputs = ExportInputs(RunPlan.load(workdir.plan), [StageStats.from_dict(s) for s in funnel])
    return run_export(cfg, inputs, workdir).to_dict()


def with_runner(stage_flow: Any, config: RunConfig, dask_address: str | None) -> Any:
    """``stage_flow`` running its tasks on the configured runner."""
    return stage_flow.with_options(task_runner=create_task_runner(config.flow, dask_address))


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
