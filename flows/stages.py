"""One Prefect flow per stage. Tasks take a config (as JSON) and a cache key and return JSON summaries;
the data moves as Parquet shards in the workdir, never through Prefect.

Cache keys chain: each stage's key holds its upstream key, so a changed stage reruns everything after it.
Two stages rewrite their input folder in place (dedup of passages, filter and dedup of pairs), so the stage
that writes that folder also keys on the sections of the stages that rewrite it: the cheap writer reruns
(shards and ledger are cached) and the rewriters never see their own earlier output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.concurrency.sync import concurrency

from filters.dedup import run_dedup
from filters.run import run_filter
from flows.progress import report
from flows.runtime import LLM_LEASE_S, LLM_LIMIT, section, stage_key
from pairforge.config import RunConfig
from pairforge.generation.generate import run_generate
from pairforge.ingest import file_sha256, ingest_shard, list_shards, publish_ingest
from pairforge.negatives.mine import run_mine
from pairforge.store import Store

JSON_RESULTS: dict[str, Any] = {"persist_result": True, "result_serializer": "json"}


def by_key(_context: Any, parameters: dict[str, Any]) -> str:
    """Prefect cache key: the ``key`` parameter each task is given."""
    return str(parameters["key"])


def _config(config: dict[str, Any]) -> RunConfig:
    return RunConfig.model_validate(config)


def _retrying(task_: Any, config: RunConfig) -> Any:
    """The task with ``flow.retries`` retries (I/O and LLM tasks)."""
    return task_.with_options(retries=config.flow.retries)


@task(cache_key_fn=by_key, retries=2, retry_delay_seconds=2, **JSON_RESULTS)
def ingest_shard_task(config: dict[str, Any], corpus_index: int, path: str, digest: str, key: str,
                      covered: list[str]) -> dict[str, Any]:  # fmt: skip
    """Read, normalise and window one input shard into ``workdir/.ingest-shards/<key>/``."""
    cfg = _config(config)
    out = Path(cfg.workdir) / ".ingest-shards" / key
    return ingest_shard(cfg, corpus_index, path, out, covered=set(covered), digest=digest)


@task(cache_key_fn=by_key, retries=2, retry_delay_seconds=2, **JSON_RESULTS)
def publish_ingest_task(config: dict[str, Any], results: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Merge the shards, sample short passages, publish ``passages/`` and ``human_pairs/``."""
    return publish_ingest(_config(config), results).to_dict()


@flow(name="ingest")
def ingest_flow(config: dict[str, Any], covered: list[str], digests: list[str] | None = None) -> dict[str, Any]:
    """A task per input shard (cached by shard sha256 and the ingest settings), then one publish task.
    ``digests``: the shards' sha256 in ``list_shards`` order, when the caller has already read them."""
    cfg = _config(config)
    shards = list_shards(cfg)
    digests = digests or [file_sha256(path) for _, path in shards]
    settings = section(cfg, "normalize", "window", "ingest")
    keys = [
        stage_key("ingest-shard", digest, cfg.corpora[i].model_dump(mode="json"), settings, digest in covered)
        for (i, _), digest in zip(shards, digests, strict=True)
    ]
    futures = [
        _retrying(ingest_shard_task, cfg).submit(config, i, path, digest, key, covered)
        for (i, path), digest, key in zip(shards, digests, keys, strict=True)
    ]
    results = [f.result() for f in futures]
    report("ingest", "shards", len(results), len(results))
    key = stage_key("ingest", keys, section(cfg, "dedup"), cfg.workdir)  # dedup rewrites passages/
    return {"key": key, "summary": _retrying(publish_ingest_task, cfg)(config, results, key)}


@task(cache_key_fn=by_key, **JSON_RESULTS)
def dedup_task(config: dict[str, Any], target: str, key: str) -> dict[str, Any]:
    """MinHash dedup of ``passages`` (against every published version too) or ``pairs``, in place."""
    return run_dedup(_config(config), target).to_dict()  # type: ignore[arg-type]


@flow(name="dedup-passages")
def dedup_passages_flow(config: dict[str, Any], upstream: str) -> dict[str, Any]:
    """Near-duplicate passages out, within this run and against all earlier versions."""
    cfg = _config(config)
    versions = Store(cfg.store).versions(cfg.name) if cfg.dedup.against_store else []
    key = stage_key("dedup-passages", upstream, section(cfg, "dedup"), versions)
    return {"key": key, "summary": dedup_task(config, "passages", key)}


def load_api_key(config: RunConfig) -> None:
    """An OpenAI-compatible server's key from a Prefect Secret into the variable the backend reads, unless that
    variable is already set. The key itself never enters a config, a result, a log or an output."""
    o = config.generate.openai
    if config.generate.backend != "openai" or not o.api_key_secret or os.environ.get(o.api_key_env):
        return
    from prefect.blocks.system import Secret

    secret: Any = Secret.load(o.api_key_secret)  # typed as maybe-async; called from sync code it is the block
    os.environ[o.api_key_env] = str(secret.get())


@task(cache_key_fn=by_key, retries=2, retry_delay_seconds=10, **JSON_RESULTS)
def generate_task(config: dict[str, Any], key: str, limit: int | None) -> dict[str, Any]:
    """LLM generation under the global LLM concurrency limit; the ledger makes a retry resend nothing done."""
    cfg = _config(config)
    load_api_key(cfg)
    with concurrency(LLM_LIMIT, occupy=1, strict=False, lease_duration=LLM_LEASE_S):
        summary = run_generate(cfg, limit=limit, progress=lambda d, t: report("generate", "requests", d, t))
    return summary.to_dict()


@flow(name="generate")
def generate_flow(config: dict[str, Any], upstream: str, limit: int | None = None) -> dict[str, Any]:
    """(question, passage) and (sentence, passage) pairs from the LLM."""
    cfg = _config(config)
    key = stage_key("generate", upstream, section(cfg, "generate", "filter", "dedup"), limit)  # filter rewrites pairs/
    return {"key": key, "summary": _retrying(generate_task, cfg)(config, key, limit)}


@task(cache_key_fn=by_key, **JSON_RESULTS)
def filter_task(config: dict[str, Any], key: str) -> dict[str, Any]:
    """Every filter over ``pairs/``, with drop reasons."""
    return run_filter(_config(config)).to_dict()


@flow(name="filter")
def filter_flow(config: dict[str, Any], upstream: str) -> dict[str, Any]:
    """Length, language, quality, copying, round-trip consistency and contamination filters."""
    key = stage_key("filter", upstream, section(_config(config), "filter"))
    return {"key": key, "summary": filter_task(config, key)}


@flow(name="dedup-pairs")
def dedup_pairs_flow(config: dict[str, Any], upstream: str) -> dict[str, Any]:
    """Near-duplicate queries of the same passage out."""
    key = stage_key("dedup-pairs", upstream, section(_config(config), "dedup"))
    return {"key": key, "summary": dedup_task(config, "pairs", key)}


@task(cache_key_fn=by_key, retries=1, **JSON_RESULTS)
def mine_task(config: dict[str, Any], key: str) -> dict[str, Any]:
    """Candidates and selected hard negatives."""
    return run_mine(_config(config)).to_dict()


@flow(name="mine")
def mine_flow(config: dict[str, Any], upstream: str) -> dict[str, Any]:
    """BM25 / dense candidates stored in full, then positive-aware selection."""
    cfg = _config(config)
    key = stage_key("mine", upstream, section(cfg, "mine"))
    return {"key": key, "summary": _retrying(mine_task, cfg)(config, key)}


@task(cache_key_fn=by_key, retries=2, retry_delay_seconds=2, **JSON_RESULTS)
def export_task(config: dict[str, Any], key: str) -> dict[str, Any]:
    """Publish the next version of the dataset (atomic; a crash leaves no visible partial version)."""
    from pairforge.export import run_export

    return run_export(_config(config)).to_dict()


@flow(name="export")
def export_flow(config: dict[str, Any], upstream: str) -> dict[str, Any]:
    """Export formats, manifest and card, published as ``store/<name>/v<N>``."""
    cfg = _config(config)
    key = stage_key("export", upstream, section(cfg, "export", "name", "store"))
    return {"key": key, "summary": _retrying(export_task, cfg)(config, key)}
