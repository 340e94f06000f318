"""Where and how flows run: Prefect's temporary server for a pairforge run, the LLM concurrency limit, and the task
runner (threads, processes, Dask or Ray: one local cluster for the whole run, or an existing cluster)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pairforge.config import FlowConfig

LLM_LIMIT = "pairforge-llm"  # global concurrency limit around LLM stages
LLM_LEASE_S = 60  # a run killed while it holds the LLM slot blocks others this long on a server that reaps leases
# The temporary server lives for one run and only orchestrates it (flow runs, states, logs, the LLM limit). Its
# event persister and task-run recorder would write every task's events into the same SQLite file from the
# background, and the lock they take sometimes holds a state change for SQLite's whole 60-s busy wait (the
# client times out and resends): 4 of 14 runs of a test stalled that way, none of 9 without them. Nothing reads
# those tables before the server stops; automations (triggers) need a real server too.
QUIET_SERVER = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # its heartbeat logs SQLite lock noise
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
}


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
    server = _server_class(SubprocessASGIServer)()
    server.start(timeout=120)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            reclaim_llm_slots()
            yield
    finally:
        drain_logs()
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _server_class(base: type) -> type:
    """Prefect's temporary server whose uvicorn process ends with this one: it gets a parent-death signal (it
    would outlive a killed ``pairforge run`` by minutes, PPID 1), and a SIGTERM to the run spares it until the run
    has recorded its end (``pairforge.reaper``). Its environment adds ``QUIET_SERVER`` (a setting the user made
    wins); this process's own environment stays as it was."""
    import subprocess

    from pairforge.reaper import parent_death_signal, spare

    class _Server(base):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            original = subprocess.Popen
            preexec = parent_death_signal()

            def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
                kwargs["preexec_fn"] = preexec
                kwargs["env"] = {**QUIET_SERVER, **kwargs.get("env", os.environ)}
                return original(*args, **kwargs)

            # Prefect builds the command; only the Popen call it makes here gains the preexec_fn and the settings.
            subprocess.Popen = popen  # type: ignore[misc,assignment]
            try:
                process: subprocess.Popen[Any] = super()._run_uvicorn_command()
            finally:
                subprocess.Popen = original  # type: ignore[misc]
            spare(process.pid)
            return process

    return _Server


def drain_logs(timeout_s: float = 10) -> None:
    """Send the logs and events still queued before the server they go to stops (else every run ends with
    "Error logging to API")."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout_s)


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


@contextmanager
def dask_cluster(flow: FlowConfig) -> Iterator[str | None]:
    """The Dask scheduler every stage of a run uses: ``flow.dask_address``, or a LocalCluster of ``dask_workers``
    single-threaded worker processes started once for the run, each pinned to one core with ``flow.pin_workers``
    (None when the runner is not Dask). With the Ray runner it joins Ray for the run instead
    (``flows.ray_runtime``)."""
    if flow.task_runner == "ray":
        from flows.ray_runtime import ray_cluster

        with ray_cluster(flow):
            yield None
        return
    if flow.task_runner != "dask":
        yield None
        return
    if flow.dask_address:
        yield flow.dask_address
        return
    from distributed import LocalCluster

    pin = {}
    if flow.pin_workers:  # each worker on its own core, after any preload the Dask config names
        import dask

        pin = {"preload": [*dask.config.get("distributed.worker.preload", []), "pairforge.pinning"]}
    with LocalCluster(
        n_workers=flow.dask_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        **pin,
    ) as cluster:
        yield cluster.scheduler_address


def create_task_runner(flow: FlowConfig, dask_address: str | None = None) -> Any:
    """The configured task runner: threads (default), processes, or Dask at ``dask_address``."""
    if flow.task_runner == "ray":
        from flows.ray_runtime import create_ray_task_runner

        return create_ray_task_runner(flow)
    if flow.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address is None:
            raise ValueError("flow.task_runner is dask but no cluster was started (use flows.runtime.dask_cluster)")
        return DaskTaskRunner(address=dask_address)
    if flow.task_runner == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=flow.dask_workers)
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=max(flow.dask_workers, 2))
