"""Scheduled runs without a prefect.yaml: ``pairforge deploy CONFIG --cron "0 2 * * *"`` serves the pipeline
flow from this process (``prefect.serve``); each scheduled run is incremental (see ``flows.pipeline``). With
``--train`` the same ``serve`` also serves ``train/<name>``, which the server's automation runs on each version of
the config's dataset that a run publishes (the ``pairforge.version.published`` trigger of ``flows.events``).

Schedules need a server whose scheduler creates the runs. With ``PREFECT_API_URL`` set (environment or Prefect
profile) that server is used. Without it a real local ``prefect server start`` (``flows.server.LocalServer``) is
started for as long as this process serves, its PREFECT_HOME (SQLite database, ``server.log``) in
``<workdir>/.prefect-server``, so run history survives restarts and belongs to the data it produced. Prefect's
temporary server would not do: it runs no scheduler.
"""

from __future__ import annotations

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
    from prefect import serve

    config = load_config(config_path)
    deployments = [build_deployment(config_path, cron, name)]  # a bad cron fails here, before any server starts
    if train_defaults is not None:
        deployments.append(build_train_deployment(config.name, name, train_defaults))
    _exit_on_sigterm()  # until the runner installs its own handler, SIGTERM must still stop the server
    with prefect_api(Path(config.workdir) / SERVER_HOME, port, announce):
        announce(f"serving pipeline/{name} on cron {cron!r} (UTC); Ctrl-C stops")
        if train_defaults is not None:
            announce(f"serving train/{name} on each published version of {config.name}")
        serve(*deployments, limit=1, print_starting_message=False)


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


def _exit_on_sigterm() -> None:
    """SIGTERM exits cleanly (code 0, as Prefect's runner does once it serves), through every ``finally``."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
