"""Issue 21 #1, end to end: a file of a published version truncated by hand, then `pairforge run` over a corpus with
one more shard. The run must not carry the damaged file into the next version with its parent's hash: it exits 4
naming the file and the version, publishes nothing, and `versions verify` names the file too (exit 1)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.store import Store
from pairforge.testing.fake_llm import FakeLLM
from tests.flows.conftest import split_wudao, write_pipeline_config

KEY_ENV = "PAIRFORGE_TEST_INTEGRITY_KEY"
NAME = "integrity"


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    monkeypatch.setenv(KEY_ENV, "sk-integrity-test")
    with FakeLLM(api_key="sk-integrity-test") as server:
        yield server


def test_a_run_refuses_to_carry_a_truncated_file(llm: FakeLLM, shared_data: Path, tmp_path: Path) -> None:
    parts = split_wudao(shared_data, tmp_path / "parts", parts=4)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(parts[0], corpus)
    openai = {"concurrency": 4, "timeout_s": 5, "max_retries": 0}
    config = str(write_pipeline_config(tmp_path, corpus, llm.base_url, KEY_ENV, name=NAME, openai=openai))
    runner = CliRunner()
    first = runner.invoke(app, ["run", config])
    assert first.exit_code == 0, first.output
    v1 = tmp_path / "store" / NAME / "v1"
    victim = next((v1 / "flagembedding").glob("qp-*.jsonl"))
    victim.chmod(0o644)
    os.truncate(victim, 1000)

    shutil.copy(parts[1], corpus)  # a new shard: the run carries v1's segment
    second = runner.invoke(app, ["run", config])
    assert second.exit_code == 4, second.output
    assert f"{v1}/flagembedding/{victim.name}: 1,000 bytes, the manifest records" in " ".join(second.output.split())
    assert Store(str(tmp_path / "store")).versions(NAME) == [1]  # nothing published with the old hash
    verify = runner.invoke(app, ["versions", "verify", NAME, "--store", str(tmp_path / "store")])
    assert verify.exit_code == 1 and f"flagembedding/{victim.name}: 1,000 bytes" in verify.stdout
