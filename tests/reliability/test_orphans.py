"""Every process a run starts ends with it (``pairforge.reaper``): SIGTERM or SIGKILL of the run's main process only
(never its group) leaves none of its descendants alive. The descendants are recorded (pid and start time, so a
reused pid is not mistaken for a survivor) before the kill.

The small tests put a plain ``sleep`` under a guarded process; the vLLM test is the issue's case: ``pairforge run``
on the tiny model, killed mid-generation with its Prefect server, EngineCore, Worker and resource_tracker up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import REPO
from tests.pairforge.llm.helpers import cmrc_config

GONE_WITHIN_S = 30.0  # the bound
RUN_TIMEOUT_S = 600  # engine start-up on a loaded machine


def record_descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def survivors(processes: list[psutil.Process], within_s: float = GONE_WITHIN_S) -> list[str]:
    """Those of ``processes`` (same pid and start time) still alive ``within_s`` from now; zombies count as gone."""
    deadline = time.monotonic() + within_s
    while True:
        alive = []
        for p in processes:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            except psutil.Error:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


def kill_all(processes: list[psutil.Process]) -> None:
    """Clean up after a failing test."""
    for p in processes:
        try:
            p.kill()
        except psutil.Error:
            continue


GUARDED = textwrap.dedent("""
    import subprocess, sys, time
    from pairforge.reaper import guard_processes
    with guard_processes():
        child = subprocess.Popen(["sleep", "300"])
        grandparent = subprocess.Popen([sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '300'])"])
        print("ready", flush=True)
        time.sleep(300)
""")


def start_guarded() -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    """A process in ``guard_processes`` with a child, and a child with a child of its own; its descendants once all
    are up (the reaper among them)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", GUARDED],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 20
    while len(found := record_descendants(proc.pid)) < 4:  # the reaper, sleep, python and its sleep
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    time.sleep(1.0)  # the reaper has polled them at least once
    return proc, found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_a_killed_guarded_process_takes_its_descendants_along(signum: int) -> None:
    proc, descendants = start_guarded()
    try:
        assert sum(p.name() == "sleep" for p in descendants) == 2, descendants
        proc.send_signal(signum)  # the process only, not its group
        code = proc.wait(timeout=GONE_WITHIN_S)
        assert survivors(descendants) == []
        assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signum)
    finally:
        kill_all(descendants)
        proc.kill()
        proc.wait()


def test_a_guarded_block_that_ends_leaves_no_reaper() -> None:
    code = "from pairforge.reaper import guard_processes\nwith guard_processes():\n    print('in', flush=True)\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "in\n", done.stderr
    reapers = [p for p in psutil.process_iter(["cmdline"]) if "pairforge.reaper" in " ".join(p.info["cmdline"] or [])]
    assert not [p for p in reapers if p.ppid() == os.getpid()]


def engine_up(pid: int) -> list[psutil.Process] | None:
    """The run's descendants once its vLLM engine core runs (None before)."""
    found = record_descendants(pid)
    for p in found:
        try:
            if "EngineCore" in " ".join(p.cmdline()) + p.name():
                return found
        except psutil.Error:
            continue
    return None


@pytest.mark.vllm
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_vllm_run_leaves_no_process_behind(
    signum: int, tiny_model_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("vllm")
    generate = {
        "backend": "vllm",
        "model": str(tiny_model_dir),
        "kinds": ["qp"],
        "sampling": {"max_tokens": 64},
        "vllm": {"max_model_len": 4096, "enforce_eager": True, "kv_cache_gib": 1},
    }
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cmrc_config(shared_data, tmp_path / "w", generate=generate)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # its own temporary server
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(REPO), "VLLM_CPU_KVCACHE_SPACE": "1"}
    with (tmp_path / "run.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pairforge.cli", "run", str(config)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so that a failing test can still kill the group
        )
    descendants: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while (found := engine_up(proc.pid)) is None:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the engine did not start in time"
            time.sleep(0.5)
        time.sleep(3.0)  # its workers start too
        descendants = record_descendants(proc.pid)
        assert len(descendants) >= len(found) >= 3, descendants  # reaper, Prefect server, engine core at least
        proc.send_signal(signum)  # the main process only
        assert survivors(descendants) == [], (tmp_path / "run.log").read_text()[-4000:]
        assert proc.wait(timeout=GONE_WITHIN_S) == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signum)
    finally:
        kill_all(descendants)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
