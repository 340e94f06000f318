"""The fake LLM in a process of its own, for benchmarks and multi-endpoint runs (a server in the caller's process
would share its interpreter lock with the client it is measured against)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the pairforge package


@contextlib.contextmanager
def spawn_fake_llm(
    *args: str, env: dict[str, str] | None = None, start_s: float = 30.0
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run ``python -m pairforge.testing.fake_llm --port 0 ARGS``; yield (its base URL, the process). On exit
    the process gets SIGTERM, then SIGKILL after ``start_s``. Raises RuntimeError if it prints no URL in time."""
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pairforge.testing.fake_llm", "--port", "0", *args]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True)
    timer = threading.Timer(start_s, process.kill)  # a server that never prints must not hang its caller
    timer.start()
    try:
        line = process.stdout.readline().strip() if process.stdout else ""
        timer.cancel()
        if not line.startswith("http://"):
            raise RuntimeError(f"the fake LLM did not start (exit {process.poll()}): {line!r}")
        yield line, process
    finally:
        timer.cancel()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=start_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()
