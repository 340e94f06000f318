"""Flows run under one Prefect test server per session, with PREFECT_HOME in a temporary directory (cached
results would otherwise leak between runs)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flows.runtime import QUIET_SERVER


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("prefect-home")
    session = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    saved = {k: os.environ.get(k) for k in {**session, **QUIET_SERVER}}
    os.environ.update(session)
    from prefect.testing.utilities import prefect_test_harness

    with contextlib.ExitStack() as stack:
        # The server gets the settings `pairforge run` gives its temporary server (no background writers locking
        # SQLite); only its start sees them, so a real server a later test starts keeps its event services.
        os.environ.update(QUIET_SERVER)
        try:
            # The server migrates a fresh SQLite database first: minutes on a busy 2-core machine.
            stack.enter_context(prefect_test_harness(server_startup_timeout=600))
        finally:
            _restore({k: saved[k] for k in QUIET_SERVER if k not in session})
        yield
    _restore(saved)


def _restore(saved: dict[str, str | None]) -> None:
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


def write_pipeline_config(
    folder: Path, corpus: Path, base_url: str, key_env: str, *, name: str, openai: dict, **sections: dict
) -> Path:
    """``folder/run.yaml``: the pipeline on ``corpus/*.jsonl`` (WuDao) with an OpenAI-compatible test server at
    ``base_url``, filters relaxed for its templated answers; ``openai`` and ``sections`` add to the defaults."""
    config = {
        "name": name,
        "workdir": str(folder / "work"),
        "store": str(folder / "store"),
        "corpora": [{"format": "wudao", "path": str(corpus / "*.jsonl")}],
        "window": {"max_length": 600, "min_length": 64},
        "generate": {
            "backend": "openai",
            "model": "test-model",
            "kinds": ["qp", "sp"],
            "openai": {"base_url": base_url, "api_key_env": key_env, **openai},
        },
        "filter": {"max_copy_chars": 40, "max_copy_share": 1.0, "consistency_top_k": None},
        "mine": {"range_max": 20, "num_negatives": 3},
        "flow": {"task_runner": "thread"},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path
