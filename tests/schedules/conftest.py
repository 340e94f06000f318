"""Schedule tests run real processes: ``pairforge deploy`` and the ``prefect server start`` it manages. They
live outside tests/flows on purpose: that folder's session fixture starts Prefect's temporary test server and
points PREFECT_HOME at its own folder, neither of which these tests want (every process here gets a clean
environment, and the server here must be a real, scheduling one)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from pairforge.testing.fake_llm import FakeLLM

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "PAIRFORGE_TEST_SCHEDULE_KEY"
SENTINEL = "sk-schedule-sentinel-5e0a7b"
RUN_WITHIN_S = 120  # a cron run must be created and completed this soon after the deployment is registered
START_WITHIN_S = 180  # server start (migrations on a fresh SQLite database) and registration, on a loaded machine


@dataclass
class Deploy:
    """A ``pairforge deploy`` process, the server it talks to, and every process it started (seen so far)."""

    process: subprocess.Popen[bytes]
    api_url: str
    log: Path
    descendants: set[psutil.Process] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)  # the same moment on the wall clock (server timestamps)

    def watch(self) -> None:
        """Remember its child processes (the server, flow runs), so they can be stopped even if it dies."""
        with contextlib.suppress(psutil.NoSuchProcess):
            self.descendants.update(psutil.Process(self.process.pid).children(recursive=True))

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, as a service manager would; then make sure nothing it started is left (SIGKILL)."""
        self.watch()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        _, alive = psutil.wait_procs(list(self.descendants), timeout=20)
        for leftover in alive:
            leftover.kill()
        return self.process.returncode


def cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # exited meanwhile
        return []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no Prefect setting from this test session (a harness may have set
    some), a client PREFECT_HOME of its own, the API key variable, this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp / "client-prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        **{KEY_ENV: SENTINEL},
        **extra,
    )
    return env


def start_deploy(
    config: Path, cron: str, name: str, env: dict[str, str], *extra: str, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """``pairforge deploy CONFIG --cron CRON --name NAME [extra]`` in ``cwd``, its output in
    ``CONFIG_FOLDER/deploy-NAME.log``."""
    log = (config.parent / f"deploy-{name}.log").open("wb")
    command = [sys.executable, "-m", "pairforge.cli", "deploy", str(config), "--cron", cron, "--name", name, *extra]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def api(deploy: Deploy, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{deploy.api_url}{path}", timeout=10.0, **kwargs)
    response.raise_for_status()
    return response.json()


def wait_for_deployment(deploy: Deploy, name: str, flow: str = "pipeline") -> dict[str, Any]:
    """The deployment ``<flow>/<name>`` once the served process has registered it and its runner polls for
    runs (the server marks a polled deployment READY); a bounded wait."""
    deadline = time.monotonic() + START_WITHIN_S
    while time.monotonic() < deadline:
        deploy.watch()
        if deploy.process.poll() is not None:
            pytest.fail(f"pairforge deploy exited with {deploy.process.returncode}:\n{deploy.log_tail()}")
        try:
            deployment: dict[str, Any] = api(deploy, "GET", f"/deployments/name/{flow}/{name}")
        except httpx.HTTPError:  # the server is not up yet, or the deployment not registered
            deployment = {}
        if deployment.get("status") == "READY":
            return deployment
        time.sleep(1.0)
    pytest.fail(f"deployment {flow}/{name} not served after {START_WITHIN_S} s:\n{deploy.log_tail()}")


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(api_key=SENTINEL) as server:
        yield server


def wait_for_completed_run(
    deploy: Deploy, deployment_id: str, since: float, within: float = RUN_WITHIN_S
) -> dict[str, Any]:
    """The first run of the deployment to complete, within ``within`` seconds of ``since``; fails at once if
    a run fails or crashes."""
    query = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    while time.monotonic() < since + within:
        deploy.watch()
        if deploy.process.poll() is not None:
            pytest.fail(f"pairforge deploy exited with {deploy.process.returncode}:\n{deploy.log_tail()}")
        for run in api(deploy, "POST", "/flow_runs/filter", json=query):
            if run["state_type"] == "COMPLETED":
                return run  # type: ignore[no-any-return]
            if run["state_type"] in ("FAILED", "CRASHED"):
                pytest.fail(f"flow run {run['name']} {run['state_name']}:\n{deploy.log_tail()}")
        time.sleep(2.0)
    pytest.fail(f"no completed flow run within {within:.0f} s:\n{deploy.log_tail()}")


def clock(stamp: str | None) -> str:
    """A server timestamp as ``YYYY-MM-DD HH:MM:SS`` (``-`` for none)."""
    return "-" if stamp is None else stamp.replace("T", " ")[:19]
