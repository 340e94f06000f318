"""Pipeline runs in subprocesses (``tests/reliability/crash_driver.py``), each in its own session so the temporary
Prefect server it starts goes down with it, even when the run was SIGKILLed and could not stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.reliability.crash_driver import KILLED_AT

DRIVER = Path(__file__).with_name("crash_driver.py")
RUN_TIMEOUT_S = 420  # a run takes about a minute on a quiet machine; far more on a loaded one


class Driver:
    """One pipeline run of ``config``: ``point`` arms the driver's hook (a kill, or a meeting with another run),
    ``env`` adds variables (an API key); PREFECT_HOME is ``home``."""

    def __init__(self, config: Path, home: Path, point: str = "none", env: dict[str, str] | None = None) -> None:
        tag = point.split("/")[0].replace(":", "-")
        self.note = home / f"killed-{tag}.json"
        self.log = home / f"run-{tag}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # no server, no harness
        environment |= {
            **(env or {}),
            KILLED_AT: str(self.note),
            "PREFECT_HOME": str(home),  # shared by the runs of one sequence, as ~/.prefect is between real runs
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "default-results"),  # must stay unused
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",  # nobody reads the run logs on that server
        }
        home.mkdir(parents=True, exist_ok=True)
        with self.log.open("w", encoding="utf-8") as log:  # a file, not a pipe: an orphaned server would hold it
            self.proc = subprocess.Popen(
                [sys.executable, str(DRIVER), str(config), point],
                cwd=REPO,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self) -> int:
        """The exit status (negative: the signal that ended it); a run that hangs fails the test."""
        try:
            return self.proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not end within {RUN_TIMEOUT_S}s:\n{self.output()[-6000:]}")
        finally:
            self.kill()

    def kill(self) -> None:
        """The run's process group: its temporary server, and the run itself if it still runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def result(self) -> dict[str, Any]:
        """Wait for a successful end; the pipeline's result."""
        assert self.wait() == 0, self.output()[-6000:]
        return dict(json.loads(self.output().strip().splitlines()[-1]))


def crash(config: Path, home: Path, point: str, env: dict[str, str]) -> dict[str, Any]:
    """Run until the hook at ``point`` SIGKILLs it; what the hook saw."""
    driver = Driver(config, home, point, env)
    assert driver.wait() == -signal.SIGKILL, driver.output()[-6000:]
    assert driver.note.is_file(), driver.output()[-6000:]
    return dict(json.loads(driver.note.read_text(encoding="utf-8")))
