"""Crash-resume: the pipeline runs in a subprocess (tests/reliability/crash_driver.py) that SIGKILLs itself during
generation, during mining and in the middle of publishing; each run resumes the one before, as ``pairforge run``
does, each with its own temporary Prefect server over one PREFECT_HOME. The final version must equal that of an
uninterrupted run (passages, LLM requests, ledger outputs, pairs, examples, funnel: nothing missing, nothing twice),
no completed LLM request may be sent again, and no partial version may ever be visible in the store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from flows.runtime import results_path
from pairforge.store import Store
from pairforge.testing.fake_llm import FakeLLM
from tests.conftest import REPO
from tests.flows.conftest import write_pipeline_config
from tests.reliability.crash_driver import KILLED_AT

KEY_ENV = "PAIRFORGE_TEST_CRASH_KEY"
SENTINEL = "sk-crash-sentinel-5d81e7"
DRIVER = Path(__file__).with_name("crash_driver.py")
NAME = "crashtest"
DOCS = 8  # WuDao documents in the corpus (14 passages, 28 requests)
CHUNK = 4  # requests per ledger commit
RUN_TIMEOUT_S = 120


def write_config(folder: Path, corpus: Path, base_url: str) -> Path:
    openai = {"concurrency": 2, "timeout_s": 60}
    return write_pipeline_config(
        folder, corpus, base_url, KEY_ENV, name=NAME, openai=openai, generate={"chunk_size": CHUNK}
    )


class Driver:
    """One pipeline run in its own session (process group), so the temporary server it starts goes down with it
    even when the run itself was SIGKILLed and could not stop it."""

    def __init__(self, config: Path, home: Path, point: str = "none") -> None:
        self.note = home / f"killed-{point.replace(':', '-')}.json"
        self.log = home / f"run-{point.replace(':', '-')}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # no server, no harness
        env |= {
            KEY_ENV: SENTINEL,
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
                env=env,
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
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the run's temporary server, and the run if it hangs
            self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def run(config: Path, home: Path, point: str = "none") -> dict[str, Any]:
    """Run to the end; the pipeline's result."""
    driver = Driver(config, home, point)
    assert driver.wait() == 0, driver.output()[-6000:]
    return json.loads(driver.output().strip().splitlines()[-1])


def crash(config: Path, home: Path, point: str) -> dict[str, Any]:
    """Run until the hook at ``point`` SIGKILLs it; what the hook saw."""
    driver = Driver(config, home, point)
    assert driver.wait() == -signal.SIGKILL, driver.output()[-6000:]
    assert driver.note.is_file(), driver.output()[-6000:]
    return dict(json.loads(driver.note.read_text(encoding="utf-8")))


def assert_nothing_visible(store_root: Path) -> list[str]:
    """No version, no ``latest``; whatever a killed publish left is a staging folder. Returns those left."""
    assert Store(str(store_root)).versions(NAME) == []
    folder = store_root / NAME
    left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    assert all(name.startswith(".staging-") for name in left), left
    return left


def read_ledger(workdir: Path) -> dict[str, tuple[str, str, float]]:
    """key → (outputs, run_id, created_at) of every ledger row."""
    db = sqlite3.connect(workdir / "ledger.sqlite")
    try:
        return {k: (o, r, c) for k, o, r, c in db.execute("SELECT key, outputs, run_id, created_at FROM requests")}
    finally:
        db.close()


def rows(version: Path, relative: str, columns: list[str]) -> list[dict[str, Any]]:
    return list(pq.read_table(version / relative, columns=columns).to_pylist())


def unique_sorted(table: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rows sorted by ``key``, which must be unique (nothing twice)."""
    ids = [row[key] for row in table]
    assert len(ids) == len(set(ids)), f"{key} repeated"
    return sorted(table, key=lambda row: row[key])


def summary_mtimes(workdir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in workdir.glob("*_summary.json")}


def kill_and_resume(config: Path, home: Path, llm: FakeLLM) -> tuple[dict[str, Any], dict[str, Any]]:
    """Kill during generation, mining and publishing, then run to the end, checking the store and the LLM server
    after each kill; the final result and the ledger rows committed before the first kill."""
    work, store = Path(yaml.safe_load(config.read_text())["workdir"]), config.parent / "store"
    seen = crash(config, home, "generate:2")  # killed right after the second ledger commit
    before_kill = read_ledger(work)
    assert seen["ledger_rows"] == len(before_kill) == 2 * CHUNK
    assert llm.received == 2 * CHUNK  # the kill falls between two chunks: no request was in flight
    assert_nothing_visible(store)

    seen = crash(config, home, "mine")  # the rest generated; killed between candidates and examples
    assert seen["candidates"] and not (work / "examples" / "examples.parquet").exists()
    assert_nothing_visible(store)
    sent, done = llm.received, summary_mtimes(work)

    seen = crash(config, home, "publish:2")  # mining again, then killed two files into the version
    staging = Path(seen["staging"])
    assert assert_nothing_visible(store) == [staging.name]
    assert {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()} == set(seen["files"])
    assert llm.received == sent  # generation had finished: nothing sent again
    assert {k: v for k, v in summary_mtimes(work).items() if k in done} == done  # nor any stage before mining rerun
    done = summary_mtimes(work)

    result = run(config, home)  # resumes at export only
    assert llm.received == sent and summary_mtimes(work) == done
    return result, before_kill


def assert_same_version(ours: Path, theirs: Path) -> None:
    """The same passages, pairs, candidates, examples and funnel, each id once; every file in the manifest."""
    for relative, key, columns in [
        ("data/passages/passages.parquet", "id", ["id", "text", "doc_id"]),
        ("data/pairs.parquet", "id", ["id", "kind", "query", "passage_id", "request_key", "sample"]),
        ("data/candidates.parquet", "pair_id", ["pair_id", "query", "bm25_ids", "bm25_scores"]),
        ("data/examples.parquet", "pair_id", ["pair_id", "kind", "query", "pos", "neg", "negative_ids"]),
    ]:
        assert unique_sorted(rows(ours, relative, columns), key) == unique_sorted(rows(theirs, relative, columns), key)
    manifests = [json.loads((v / "manifest.json").read_text(encoding="utf-8")) for v in (ours, theirs)]
    assert manifests[0]["funnel"] == manifests[1]["funnel"] and manifests[0]["examples"] == manifests[1]["examples"]
    listed = {f["path"] for f in manifests[0]["files"]}
    assert listed == {p.relative_to(ours).as_posix() for p in ours.rglob("*") if p.is_file()} - {"manifest.json"}


def test_killed_runs_resume_to_the_uninterrupted_version(shared_data: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = (shared_data / "wudao" / "wudao_demo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (corpus / "part-0.jsonl").write_text("".join(lines[:DOCS]), encoding="utf-8")
    a, b = tmp_path / "a", tmp_path / "b"
    with FakeLLM(api_key=SENTINEL) as llm_a, FakeLLM(api_key=SENTINEL) as llm_b:
        reference = Driver(write_config(a, corpus, llm_a.base_url), a / "home")  # uninterrupted, beside B's runs
        try:
            result, before_kill = kill_and_resume(write_config(b, corpus, llm_b.base_url), b / "home", llm_b)
        finally:
            finished = reference.wait()
        assert finished == 0, reference.output()[-6000:]
        expected = json.loads(reference.output().strip().splitlines()[-1])
        # Each request was sent once in both sequences, and both asked the same.
        assert llm_b.unauthorised == llm_a.unauthorised == 0
        assert set(llm_b.attempts.values()) == set(llm_a.attempts.values()) == {1}
        assert llm_b.prompts() == llm_a.prompts() and len(llm_b.prompts()) == llm_b.received

    # The rows committed before the kill were kept as they were; both ledgers hold the same outputs.
    ledger = read_ledger(b / "work")
    assert {k: ledger[k] for k in before_kill} == before_kill and len(ledger) == llm_b.received
    assert {k: v[0] for k, v in ledger.items()} == {k: v[0] for k, v in read_ledger(a / "work").items()}

    # One version, complete, equal to the uninterrupted run's; the killed publish left no version-named debris.
    store = b / "store" / NAME
    assert result["version"] == expected["version"] == 1 and Store(str(store.parent)).versions(NAME) == [1]
    assert (store / "latest").read_text() == "v1\n"
    assert all(p.name.startswith(".staging-") for p in store.iterdir() if p.name not in ("v1", "latest"))
    assert_same_version(Path(result["path"]), Path(expected["path"]))
    pairs = rows(Path(result["path"]), "data/pairs.parquet", ["request_key"])
    assert pairs and {p["request_key"] for p in pairs} <= set(ledger)

    # The stage cache lives in the workdir (deleting it deletes the cache), not in Prefect's default storage.
    cached = {p.name.rsplit("-", 1)[0] for p in results_path(b / "work").iterdir()}
    assert {"ingest", "generate", "mine", "export"} <= cached
    default = b / "home" / "default-results"
    assert not default.exists() or not any(default.iterdir())
