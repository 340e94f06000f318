"""A real local Prefect server (``prefect server start``, SQLite) as a managed subprocess: the server that
``pairforge deploy`` starts when no ``PREFECT_API_URL`` is set. Prefect's temporary server cannot take its place:
it is ephemeral (``PREFECT__SERVER_EPHEMERAL=1``) and runs no scheduler, so a cron deployment on it never fires.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from pairforge.reaper import parent_death_signal

HOST = "127.0.0.1"  # loopback only
DEFAULT_PORT = 4200  # Prefect's own default, so the UI is where Prefect users look for it


class ServerError(RuntimeError):
    """The server did not come up (its log's last lines are in the message)."""


class LocalServer:
    """``prefect server start --host 127.0.0.1 --port PORT`` with its own PREFECT_HOME (``home``): the SQLite
    database (``home/prefect.db``) and the server's log (``home/server.log``) live there. Use as a context manager:
    started and health-checked on entry, stopped (SIGTERM, then SIGKILL) on exit. On Linux the server also gets
    SIGTERM when the process that started it dies, so a killed ``pairforge deploy`` leaves no server behind."""

    def __init__(self, home: Path, port: int | None = None, *, startup_timeout_s: float = 120.0) -> None:
        self.home = Path(home).resolve()
        self.port = port if port is not None else pick_port()
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait (bounded) until ``/api/health`` answers; ``ServerError`` if it exits first."""
        self.home.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(self.port)]
        # Its own session: a Ctrl-C in the terminal reaches `pairforge deploy` only, which pauses its schedule
        # on this server before stopping it.
        self._process = subprocess.Popen(
            command,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=parent_death_signal(),
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout_s``) and close its log; a no-op when not running."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{self.home / 'prefect.db'}",
            PREFECT_API_SERVICES_SCHEDULER_ENABLED="true",  # the point of this server
            PREFECT_SERVER_ANALYTICS_ENABLED="false",  # its heartbeat only adds SQLite lock noise to the log
            PREFECT_SERVER_MEMO_STORE_PATH=str(self.home / "memo_store.toml"),
        )
        return env

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ServerError(f"prefect server exited with code {self._process.returncode}:\n{self._log_tail()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise ServerError(f"prefect server not healthy after {self.startup_timeout_s:.0f} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        if self._log is not None:
            self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) + f"\n(full log: {self.log_path})"


def pick_port(preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` if it is free on the loopback, else a free port the OS picks."""
    for candidate in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise ServerError("no free port on 127.0.0.1")
