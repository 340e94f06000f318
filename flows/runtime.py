"""Where and how flows run: Prefect settings for a pairforge run, its temporary server, the task runner,
and the cache keys that let a rerun skip finished work."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pairforge.config import FlowConfig, RunConfig

LLM_LIMIT = "pairforge-llm"  # global concurrency limit around LLM stages
LLM_LEASE_S = 60  # a run killed while it holds the LLM slot blocks others this long on a server that reaps leases


def stage_key(stage: str, *parts: Any) -> str:
    """A cache key: sha256 of the stage name and JSON of what its output depends on (upstream keys, the
    stage's config section, input shard fingerprints)."""
    canonical = json.dumps([stage, *parts], sort_keys=True, default=str, ensure_ascii=False)
    return f"{stage}-{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


def section(config: RunConfig, *names: str) -> dict[str, Any]:
    """The named config sections as JSON, for a cache key."""
    dump = config.model_dump(mode="json")
    return {name: dump[name] for name in names}


@contextmanager
def temporary_server() -> Iterator[None]:
    """Prefect's temporary local server (embedded SQLite) for this process and its Dask workers, unless
    ``PREFECT_API_URL`` names one: started once here, its URL exported so worker processes share it
    (otherwise each would start its own). LLM slots a killed run left held are given back on it first."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:  # a server is configured (or a test harness started one): share it with Dask workers
        saved = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = configured
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("PREFECT_API_URL", None)
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # its heartbeat logs SQLite lock noise
    server = SubprocessASGIServer()
    server.start(timeout=120)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            reclaim_llm_slots()
            yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def results_path(workdir: Path) -> Path:
    """Where task results and cache records of a workdir go: deleting the workdir deletes its cache."""
    return workdir / ".prefect-results"


@contextmanager
def result_settings(workdir: Path, *, fresh: bool = False) -> Iterator[None]:
    """Task results (JSON) and cache records go to ``workdir/.prefect-results``, so a deleted workdir takes
    its cache with it; ``fresh`` recomputes every task. Set in the environment too, for Dask workers."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, PREFECT_TASKS_REFRESH_CACHE, temporary_settings

    results = results_path(workdir)
    results.mkdir(parents=True, exist_ok=True)
    env = {"PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(results), "PREFECT_TASKS_REFRESH_CACHE": str(fresh).lower()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with temporary_settings(
            updates={PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(results), PREFECT_TASKS_REFRESH_CACHE: fresh}
        ):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def reclaim_llm_slots() -> None:
    """Give back every slot the LLM limit counts as held. Only right on a temporary server this process has just
    started: it keeps leases in memory and runs no lease reaper, so a slot the database (shared by every run under
    one PREFECT_HOME) still counts was taken by a run that died holding it (SIGKILL, OOM, power cut) and would block
    the LLM stage of every later run for ever."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            held = client.read_global_concurrency_limit_by_name(LLM_LIMIT).active_slots
        except ObjectNotFound:
            return
        if held:
            client.update_global_concurrency_limit(LLM_LIMIT, GlobalConcurrencyLimitUpdate(active_slots=0))


def ensure_llm_limit(limit: int) -> None:
    """Create (or resize) the global concurrency limit the LLM stage takes a slot of."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(LLM_LIMIT, limit)


def create_task_runner(flow: FlowConfig) -> Any:
    """The configured task runner: threads (default), processes, or Dask (an existing cluster's address, or
    a LocalCluster of ``dask_workers`` single-threaded worker processes)."""
    if flow.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if flow.dask_address:
            return DaskTaskRunner(address=flow.dask_address)
        kwargs = {"n_workers": flow.dask_workers, "threads_per_worker": 1, "processes": True}
        return DaskTaskRunner(cluster_kwargs=kwargs | {"dashboard_address": None})
    if flow.task_runner == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=flow.dask_workers)
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=max(flow.dask_workers, 2))
