"""Scheduled runs without a prefect.yaml: ``pairforge deploy CONFIG --cron "0 2 * * *"`` serves the pipeline
flow from this process (Prefect's ``Runner``, as ``prefect.serve`` does); each scheduled run is incremental (see
``flows.pipeline``). With ``--train`` the same runner also serves ``train/<name>``, which the server's automation
runs on each version of the config's dataset that a run publishes (the ``pairforge.version.published`` trigger of
``flows.events``).

Schedules need a server whose scheduler creates the runs. With ``PREFECT_API_URL`` set (environment or Prefect
profile) that server is used. Without it a real local ``prefect server start`` (``flows.server.LocalServer``) is
started for as long as this process serves, its PREFECT_HOME (SQLite database, ``server.log``) in
``<workdir>/.prefect-server``, so run history survives restarts and belongs to the data it produced. Prefect's
temporary server would not do: it runs no scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flows.events import build_train_trigger
from flows.pipeline import pipeline
from flows.server import LocalServer
from flows.train import train
from pairforge.config import load_config

SERVER_HOME = ".prefect-server"  # under the config's workdir


def build_deployment(config_path: Path, cron: str, name: str = "nightly") -> Any:
    """The deployment ``serve`` runs: the pipeline flow, a cron schedule (UTC), the config path as parameter."""
    return pipeline.to_deployment(name=name, cron=cron, parameters={"config_path": str(config_path.resolve())})


def build_train_deployment(dataset: str, name: str = "nightly", defaults: dict[str, Any] | None = None) -> Any:
    """The ``train/<name>`` deployment: the train flow, run by the server on each published version of
    ``dataset``; ``defaults`` are its other parameters (``student``, ``max_steps``)."""
    return train.to_deployment(name=name, triggers=[build_train_trigger(dataset)], parameters=defaults or {})


def serve_pipeline(
    config_path: Path,
    cron: str,
    name: str = "nightly",
    *,
    port: int | None = None,
    announce: Callable[[str], None] = print,
    train_defaults: dict[str, Any] | None = None,
) -> None:
    """Serve the deployment until Ctrl-C or SIGTERM, on the server ``PREFECT_API_URL`` names or on a local one
    started here (``port``: default 4200 if free, else any free port); ``announce`` gets one line each for where
    the API, the UI and the server's log are. With ``train_defaults`` (a dict, maybe empty: the train flow's
    parameters besides ``version_path``) ``train/<name>`` is served beside it. At most one run at a time, training
    included: runs share the workdir (and the machine)."""
    config = load_config(config_path)
    deployments = [build_deployment(config_path, cron, name)]  # a bad cron fails here, before any server starts
    if train_defaults is not None:
        deployments.append(build_train_deployment(config.name, name, train_defaults))
    _exit_on_sigterm()  # until the runner installs its own handler, SIGTERM must still stop the server
    served = [f"pipeline/{name}"] + ([f"train/{name}"] if train_defaults is not None else [])
    with prefect_api(Path(config.workdir) / SERVER_HOME, port, announce):
        announce(f"serving pipeline/{name} on cron {cron!r} (UTC); Ctrl-C stops")
        if train_defaults is not None:
            announce(f"serving train/{name} on each published version of {config.name}")
        vanished = _VanishedProcess()
        logging.getLogger("prefect.runner.process_manager").addFilter(vanished)
        try:
            with _flow_runs_in_own_session():
                _serve(deployments)
        finally:
            logging.getLogger("prefect.runner.process_manager").removeFilter(vanished)
            for line in crash_unfinished_runs(served):
                announce(line)


CANCEL_AGAIN_S = 5.0  # Ctrl-C: the serving task is cancelled again this often while the runner still serves


def _serve(deployments: list[Any]) -> None:
    """``prefect.serve`` (one run at a time), with Ctrl-C handled by ``serve_until_interrupted``."""
    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True, limit=1)
    for deployment in deployments:
        runner.add_deployment(deployment)
    asyncio.run(serve_until_interrupted(runner))


async def serve_until_interrupted(runner: Any, again_s: float = CANCEL_AGAIN_S) -> None:
    """``runner.start()`` until SIGINT. asyncio cancels the serving task once on the first Ctrl-C, and a
    cancellation that arrives while Prefect's runner starts a flow-run process can be lost: ``pairforge deploy``
    then served on until a second Ctrl-C (a test saw it keep serving for two minutes). Here SIGINT cancels the
    serving task, and the cancellation is repeated every ``again_s`` seconds while the runner still serves (not
    once it has begun to shut down: ``runner.started`` is false then, and its cleanup stops the run's process)."""
    loop, serving = asyncio.get_running_loop(), asyncio.current_task()
    assert serving is not None
    interrupted = False

    def cancel() -> None:
        nonlocal interrupted
        interrupted = True
        serving.cancel()
        loop.call_later(again_s, cancel_if_lost)

    def cancel_if_lost() -> None:
        if runner.started and not serving.done():
            cancel()

    loop.add_signal_handler(signal.SIGINT, cancel)
    try:
        await runner.start()
    except asyncio.CancelledError:
        if not interrupted:
            raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)


@contextmanager
def prefect_api(home: Path, port: int | None, announce: Callable[[str], None]) -> Iterator[str]:
    """The API URL to use: ``PREFECT_API_URL`` when set, else a ``LocalServer`` in ``home`` (stopped on exit),
    its URL exported for this process and the flow-run processes it starts."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        announce(f"Prefect API: {configured} (PREFECT_API_URL)")
        yield configured
        return
    with LocalServer(home, port) as server:
        announce(f"Prefect API: {server.api_url}")
        announce(f"Prefect UI:  {server.ui_url}")
        announce(f"server log:  {server.log_path} (database {home / 'prefect.db'})")
        os.environ["PREFECT_API_URL"] = server.api_url
        try:
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                yield server.api_url
        finally:
            os.environ.pop("PREFECT_API_URL", None)


def crash_unfinished_runs(deployments: list[str]) -> list[str]:
    """Mark Crashed every run of ``deployments`` (``flow/name``) still PENDING or RUNNING once this process stops
    serving them: their process is gone (the runner stopped it, or a Ctrl-C in the terminal reached it first), and
    a run the runner had claimed but not started would otherwise stay PENDING on the server for good. One line per
    run marked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    lines = []
    with get_client(sync_client=True) as client:
        ids = []
        for deployment in deployments:
            with contextlib.suppress(ObjectNotFound):  # stopped before it was registered
                ids.append(client.read_deployment_by_name(deployment).id)
        if not ids:
            return []
        unfinished = FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING])
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=unfinished)),
        )
        for run in runs:
            message = "pairforge deploy stopped serving before this run ended"
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            lines.append(f"flow run {run.name} ({run.id}) was {run.state_name}: marked Crashed ({message})")
    return lines


@contextmanager
def _flow_runs_in_own_session() -> Iterator[None]:
    """Flow-run processes the runner starts get a session of their own, so a Ctrl-C in the terminal reaches
    ``pairforge deploy`` only (the terminal signals its whole foreground process group): the runner then stops the
    run it executes with SIGTERM, which Prefect records as Crashed, instead of the run dying of a KeyboardInterrupt
    mid-import (a traceback in the log) and the runner failing to kill a process that is gone. The module-level
    ``run_process`` of the runner's process starters is their documented patch point."""
    import prefect.runner._starter_engine as starter
    import prefect.runner.runner as runner

    modules: list[Any] = [runner, starter]
    originals = [module.run_process for module in modules]
    process_started_by = originals[1]

    async def run_process(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("start_new_session", True)
        return await process_started_by(*args, **kwargs)

    for module in modules:
        module.run_process = run_process
    try:
        yield
    finally:
        for module, original in zip(modules, originals, strict=True):
            module.run_process = original


class _VanishedProcess(logging.Filter):
    """Drops the ERROR and traceback Prefect's runner logs when a flow-run process it stops at shutdown has already
    ended: on Ctrl-C the task group that started the process stops it first (and a terminal's SIGINT used to reach
    it too), so the process manager's own SIGTERM finds no process (``ProcessLookupError``, or a RuntimeError
    saying "The process was not found"). What it meant to do is done; the run's state is settled afterwards
    (``crash_unfinished_runs``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        gone = isinstance(error, ProcessLookupError) or (
            isinstance(error, RuntimeError) and "The process was not found" in str(error)
        )
        return not (gone and record.getMessage().startswith("Failed to kill process"))


def _exit_on_sigterm() -> None:
    """SIGTERM exits cleanly (code 0, as Prefect's runner does once it serves), through every ``finally``."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
