"""Flows run under one Prefect test server per session, with PREFECT_HOME in a temporary directory (cached
results would otherwise leak between runs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("prefect-home")
    saved = {
        k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LEVEL")
    }
    os.environ.update(
        PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING"
    )
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def split_wudao(shared_data: Path, folder: Path, parts: int = 2) -> list[Path]:
    """The WuDao sample split into ``parts`` shard files (written to a temporary folder, never the repo)."""
    lines = (shared_data / "wudao" / "wudao_demo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(parts):
        path = folder / f"part-{i}.jsonl"
        path.write_text("".join(lines[i::parts]), encoding="utf-8")
        paths.append(path)
    return paths
