"""``pairforge deploy CONFIG --cron "* * * * *"`` as a user runs it, nothing started by hand: the command starts a
real ``prefect server start`` (SQLite, PREFECT_HOME under the workdir in tmp, 127.0.0.1, a free port), whose
scheduler creates a run that the served deployment completes, publishing a dataset version; a second
``pairforge deploy`` with ``PREFECT_API_URL`` set uses that server instead of starting one; SIGTERM stops
both and the server with them. The LLM is a local OpenAI-compatible test server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pairforge.testing.fake_llm import FakeLLM
from tests.flows.conftest import split_wudao, write_pipeline_config
from tests.schedules.conftest import (
    KEY_ENV,
    SENTINEL,
    Deploy,
    api,
    clean_env,
    clock,
    cmdline,
    free_port,
    start_deploy,
    wait_for_completed_run,
    wait_for_deployment,
)


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


def timeline(deploy: Deploy, deployment_id: str, completed: dict[str, Any], summary: str) -> str:
    """The deployment's runs as the server records them (scheduled time, start, end, state; the first run the
    scheduler created ahead), and the completed run's state history."""
    query = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    runs = api(deploy, "POST", "/flow_runs/filter", json=query)
    upcoming = [run for run in runs if run["state_type"] == "SCHEDULED"]
    lines = [f"flow-run timeline (server API, UTC); {summary}:"]
    for run in [run for run in runs if run["state_type"] != "SCHEDULED"] + upcoming[:1]:
        lines.append(
            f"  {run['name']:<24} scheduled for {clock(run['expected_start_time'])}  start {clock(run['start_time'])}"
            f"  end {clock(run['end_time'])}  state {run['state_name']}  auto_scheduled {run['auto_scheduled']}"
        )
    lines.append(f"  ... and {len(upcoming) - 1} more runs the scheduler has created ahead")
    states = api(deploy, "GET", "/flow_run_states/", params={"flow_run_id": completed["id"]})
    history = " -> ".join(f"{s['name']} {clock(s['timestamp'])}" for s in sorted(states, key=lambda s: s["timestamp"]))
    lines.append(f"  {completed['name']} state history (time each state was entered): {history}")
    return "\n" + "\n".join(lines)


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
