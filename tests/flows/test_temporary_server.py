"""The temporary server a `pairforge run` starts gets ``QUIET_SERVER`` (no background event writers locking its
SQLite file), a setting the user exported wins, and the run's own environment is left as it was (a real server
started later from the same process keeps every service)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flows.runtime import QUIET_SERVER

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json, os, psutil
from flows.runtime import QUIET_SERVER, temporary_server
with temporary_server():
    servers = [p for p in psutil.Process().children(recursive=True) if "uvicorn" in " ".join(p.cmdline())]
    print(json.dumps({
        "servers": len(servers),
        "server": {k: servers[0].environ().get(k) for k in QUIET_SERVER},
        "own": {k: os.environ.get(k) for k in QUIET_SERVER},
    }))
"""


def test_the_temporary_server_runs_without_background_event_writers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path), PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED="true")
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["servers"] == 1
    server = {k: v.lower() for k, v in seen["server"].items()}  # Prefect passes the user's setting on as "True"
    assert server == {**QUIET_SERVER, "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true"}  # the user's wins
    assert seen["own"] == {k: None for k in QUIET_SERVER} | {"PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true"}
