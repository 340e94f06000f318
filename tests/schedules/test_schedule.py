"""``pairforge deploy CONFIG --cron "* * * * *"`` as a user runs it, nothing started by hand: the command starts a
real ``prefect server start`` (SQLite, PREFECT_HOME under the workdir in tmp, 127.0.0.1, a free port), whose
scheduler creates a run that the served deployment completes, publishing a dataset version; a second
``pairforge deploy`` with ``PREFECT_API_URL`` set uses that server instead of starting one; SIGTERM stops
both and the server with them. The LLM is a local OpenAI-compatible test server."""

from __future__ import annotations

import contextlib
import json
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
from tests.flows.conftest import split_wudao, write_pipeline_config

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


def start_deploy(config: Path, cron: str, name: str, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    log = (config.parent / f"deploy-{name}.log").open("wb")
    command = [sys.executable, "-m", "pairforge.cli", "deploy", str(config), "--cron", cron, "--name", name, *extra]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def api(deploy: Deploy, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{deploy.api_url}{path}", timeout=10.0, **kwargs)
    response.raise_for_status()
    return response.json()


def wait_for_deployment(deploy: Deploy, name: str) -> dict[str, Any]:
    """The deployment ``pipeline/<name>`` once the served process has registered it and its runner polls for
    runs (the server marks a polled deployment READY); a bounded wait."""
    deadline = time.monotonic() + START_WITHIN_S
    while time.monotonic() < deadline:
        deploy.watch()
        if deploy.process.poll() is not None:
            pytest.fail(f"pairforge deploy exited with {deploy.process.returncode}:\n{deploy.log_tail()}")
        try:
            deployment: dict[str, Any] = api(deploy, "GET", f"/deployments/name/pipeline/{name}")
        except httpx.HTTPError:  # the server is not up yet, or the deployment not registered
            deployment = {}
        if deployment.get("status") == "READY":
            return deployment
        time.sleep(1.0)
    pytest.fail(f"deployment pipeline/{name} not served after {START_WITHIN_S} s:\n{deploy.log_tail()}")


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(api_key=SENTINEL) as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, llm: FakeLLM) -> Iterator[Deploy]:
    """``pairforge deploy`` with no PREFECT_API_URL: it starts the server itself (on a free port we pick)."""
    folder = tmp_path_factory.mktemp("scheduled")
    corpus = folder / "corpus"
    corpus.mkdir()
    first, _ = split_wudao(shared_data, folder / "parts")
    (corpus / first.name).write_bytes(first.read_bytes())  # one small WuDao shard (10 documents)
    openai = {"concurrency": 4, "timeout_s": 5}
    config = write_pipeline_config(folder, corpus, llm.base_url, KEY_ENV, name="scheduled", openai=openai)
    port = free_port()
    process = start_deploy(config, "* * * * *", "every-minute", clean_env(folder), "--port", str(port))
    deploy = Deploy(process, f"http://127.0.0.1:{port}/api", config.parent / "deploy-every-minute.log")
    try:
        yield deploy
    finally:
        deploy.stop()


def test_cron_deployment_runs_and_publishes_on_the_server_deploy_started(
    served: Deploy, llm: FakeLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment = wait_for_deployment(served, "every-minute")
    registered = time.monotonic()
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["* * * * *"]
    assert all(s["active"] for s in deployment["schedules"])

    run = wait_for_completed_run(served, deployment["id"], registered)
    done = time.monotonic()
    summary = (
        f"pairforge deploy served the deployment {registered - served.started:.0f} s after it was started"
        f" (server start included); the first run completed {done - registered:.0f} s later"
    )
    with capsys.disabled():  # shown even when the test passes: the closing note quotes it
        print(timeline(served, deployment["id"], run, summary))
    assert run["auto_scheduled"], "the run was created by the server's scheduler, not by hand"
    assert llm.received > 0, "the scheduled run sent its requests to the LLM server"
    work = Path(run["parameters"]["config_path"]).parent
    manifest = json.loads((work / "store" / "scheduled" / "v1" / "manifest.json").read_text(encoding="utf-8"))
    exported = [row["out"] for row in manifest["funnel"] if row["stage"].startswith("export")]
    assert exported and all(exported), f"the scheduled run published a version with examples: {exported}"
    server_home = work / "work" / ".prefect-server"
    assert (server_home / "prefect.db").is_file()  # the SQLite database deploy chose
    assert not [f.name for f in server_home.iterdir() if f.is_file() and SENTINEL.encode() in f.read_bytes()]
    log = served.log.read_text(encoding="utf-8", errors="replace")
    assert f"Prefect API: {served.api_url}" in log and "Prefect UI:" in log
    assert SENTINEL not in log


def wait_for_completed_run(deploy: Deploy, deployment_id: str, since: float) -> dict[str, Any]:
    """The first run of the deployment to complete, within ``RUN_WITHIN_S`` of ``since``; fails at once if
    a run fails or crashes."""
    query = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    while time.monotonic() < since + RUN_WITHIN_S:
        deploy.watch()
        if deploy.process.poll() is not None:
            pytest.fail(f"pairforge deploy exited with {deploy.process.returncode}:\n{deploy.log_tail()}")
        for run in api(deploy, "POST", "/flow_runs/filter", json=query):
            if run["state_type"] == "COMPLETED":
                return run  # type: ignore[no-any-return]
            if run["state_type"] in ("FAILED", "CRASHED"):
                pytest.fail(f"flow run {run['name']} {run['state_name']}:\n{deploy.log_tail()}")
        time.sleep(2.0)
    pytest.fail(f"no completed flow run within {RUN_WITHIN_S} s:\n{deploy.log_tail()}")


def timeline(deploy: Deploy, deployment_id: str, completed: dict[str, Any], summary: str) -> str:
    """The deployment's runs as the server records them (scheduled time, start, end, state; the first run the
    scheduler created ahead), and the completed run's state history."""
    query = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    runs = api(deploy, "POST", "/flow_runs/filter", json=query)
    upcoming = [run for run in runs if run["state_type"] == "SCHEDULED"]
    lines = [f"flow-run timeline (server API, UTC); {summary}:"]
    for run in [run for run in runs if run["state_type"] != "SCHEDULED"] + upcoming[:1]:
        lines.append(
            f"  {run['name']:<24} scheduled for {_t(run['expected_start_time'])}  start {_t(run['start_time'])}"
            f"  end {_t(run['end_time'])}  state {run['state_name']}  auto_scheduled {run['auto_scheduled']}"
        )
    lines.append(f"  ... and {len(upcoming) - 1} more runs the scheduler has created ahead")
    states = api(deploy, "GET", "/flow_run_states/", params={"flow_run_id": completed["id"]})
    history = " -> ".join(f"{s['name']} {_t(s['timestamp'])}" for s in sorted(states, key=lambda s: s["timestamp"]))
    lines.append(f"  {completed['name']} state history (time each state was entered): {history}")
    return "\n" + "\n".join(lines)


def _t(stamp: str | None) -> str:
    return "-" if stamp is None else stamp.replace("T", " ")[:19]


def test_deploy_uses_the_server_prefect_api_url_names(
    served: Deploy, tmp_path: Path, shared_data: Path, llm: FakeLLM
) -> None:
    wait_for_deployment(served, "every-minute")
    corpus = tmp_path / "corpus"
    split_wudao(shared_data, corpus, parts=2)
    config = write_pipeline_config(tmp_path, corpus, llm.base_url, KEY_ENV, name="other", openai={})
    env = clean_env(tmp_path, PREFECT_API_URL=served.api_url)
    other = Deploy(start_deploy(config, "0 2 * * *", "nightly-other", env), served.api_url, tmp_path / "x")
    other.log = config.parent / "deploy-nightly-other.log"
    try:
        deployment = wait_for_deployment(other, "nightly-other")
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 2 * * *"]
        assert f"Prefect API: {served.api_url} (PREFECT_API_URL)" in other.log.read_text(encoding="utf-8")
        assert not (tmp_path / "work" / ".prefect-server").exists(), "no server of its own"
        assert not [p for p in other.descendants if "server" in cmdline(p)], "no server process either"
    finally:
        code = other.stop()
    assert code == 0, other.log_tail()
    assert not deployment["paused"]
    assert api(served, "GET", f"/deployments/{deployment['id']}")["paused"], "stopping it pauses its deployment"


def test_sigterm_stops_deploy_and_the_server_it_started(served: Deploy) -> None:
    wait_for_deployment(served, "every-minute")
    servers = [p for p in served.descendants if cmdline(p)[2:5] == ["prefect", "server", "start"]]
    assert len(servers) == 1, [cmdline(p) for p in served.descendants]
    assert served.stop() == 0, served.log_tail()
    assert not servers[0].is_running()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{served.api_url}/health", timeout=2.0)
