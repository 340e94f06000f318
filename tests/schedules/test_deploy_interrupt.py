"""Ctrl-C on ``pairforge deploy`` while a run is in progress (issue 21, item 5). The terminal sends SIGINT to the
whole foreground process group, the flow-run process included, so it was gone before the runner stopped it: every
Ctrl-C printed an ERROR with a ``ProcessLookupError`` traceback ("Failed to kill process for flow run ..."), and a
run the runner had claimed but not started stayed PENDING on the server. Now the stop is quiet and no run of the
deployment is left PENDING or RUNNING."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

from flows.deploy import serve_until_interrupted
from pairforge.testing.fake_llm import FakeLLM
from tests.flows.conftest import split_wudao, write_pipeline_config
from tests.schedules.conftest import (
    KEY_ENV,
    SENTINEL,
    START_WITHIN_S,
    Deploy,
    api,
    clean_env,
    cmdline,
    free_port,
    start_deploy,
    wait_for_deployment,
)

NAME = "interrupted"
NEVER = "0 0 1 1 *"  # the run is created through the API


def unfinished_runs(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("select name, state_type from flow_run where state_type in ('PENDING', 'RUNNING')")
        return [(str(name), str(state)) for name, state in rows]


def test_ctrl_c_stops_deploy_quietly_and_leaves_no_run_unfinished(tmp_path: Path, shared_data: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    first, _ = split_wudao(shared_data, tmp_path / "parts")
    (corpus / first.name).write_bytes(first.read_bytes())
    with FakeLLM(api_key=SENTINEL, latency_s=5.0) as llm:  # slow answers: the run is mid-way at the Ctrl-C
        config = write_pipeline_config(
            tmp_path, corpus, llm.base_url, KEY_ENV, name=NAME, openai={"concurrency": 1, "timeout_s": 30}
        )
        port = free_port()
        process = start_deploy(config, NEVER, NAME, clean_env(tmp_path), "--port", str(port))
        deploy = Deploy(process, f"http://127.0.0.1:{port}/api", tmp_path / f"deploy-{NAME}.log")
        try:
            deployment = wait_for_deployment(deploy, NAME)
            run = api(deploy, "POST", f"/deployments/{deployment['id']}/create_flow_run", json={})
            deadline = time.monotonic() + START_WITHIN_S
            while not any("prefect.engine" in " ".join(cmdline(p)) for p in deploy.descendants):
                assert time.monotonic() < deadline, f"no flow-run process started:\n{deploy.log_tail()}"
                time.sleep(0.2)
                deploy.watch()
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group (the server has its own)
            code = process.wait(timeout=120)
        finally:
            deploy.stop()
    log = deploy.log.read_text(encoding="utf-8", errors="replace")
    assert code in (0, 130), log[-4000:]
    assert "Failed to kill process" not in log and "ProcessLookupError" not in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    assert unfinished_runs(tmp_path / "work" / ".prefect-server" / "prefect.db") == [], (run["name"], log[-4000:])
    leftovers = [p for p in deploy.descendants if p.is_running()]
    assert not leftovers, [cmdline(p) for p in leftovers]


class LosesFirstCancel:
    """A runner that serves until cancelled, but loses the first cancellation (as Prefect's runner can while it
    starts a flow-run process); ``give_up`` ends it from outside, so a broken handler cannot hang the test."""

    def __init__(self) -> None:
        self.started = False
        self.cancels = 0
        self.give_up = False

    async def start(self) -> None:
        self.started = True
        try:
            while not self.give_up:
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    self.cancels += 1
                    task = asyncio.current_task()
                    if self.cancels > 1 or task is None:
                        raise
                    task.uncancel()  # lost
        finally:
            self.started = False


def test_a_lost_ctrl_c_is_cancelled_again_until_deploy_stops() -> None:
    """One SIGINT whose cancellation the runner loses: the serving task is cancelled again ``again_s`` later, and
    deploy's serving ends quietly (no KeyboardInterrupt, no CancelledError out of it)."""
    runner = LosesFirstCancel()

    async def interrupted_once() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, os.kill, os.getpid(), signal.SIGINT)
        loop.call_later(20, setattr, runner, "give_up", True)
        await serve_until_interrupted(runner, again_s=0.3)

    started = time.monotonic()
    asyncio.run(interrupted_once())
    assert runner.cancels == 2 and not runner.give_up and not runner.started
    assert time.monotonic() - started < 10
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is the default again
