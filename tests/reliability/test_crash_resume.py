"""Crash-resume: the pipeline runs in a subprocess (tests/reliability/crash_driver.py) that SIGKILLs itself during
generation, during mining and in the middle of publishing; each run resumes the one before, as ``pairforge run``
does, each with its own temporary Prefect server over one PREFECT_HOME. The final version must equal that of an
uninterrupted run (passages, LLM answers, pairs, candidates, examples, funnel: nothing missing, nothing twice),
no request whose answer was committed may be sent again, and no partial version may ever be visible in the store."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from pairforge.config import load_config
from pairforge.store import Store
from pairforge.testing.fake_llm import FakeLLM
from pairforge.workdir import Workdir
from tests.flows.conftest import write_pipeline_config
from tests.pairforge.llm.helpers import Prepared, ledger_rows
from tests.reliability.crash_driver import COMMIT_EVERY
from tests.reliability.runs import Driver
from tests.reliability.runs import crash as kill_at

KEY_ENV = "PAIRFORGE_TEST_CRASH_KEY"
SENTINEL = "sk-crash-sentinel-5d81e7"
ENV = {KEY_ENV: SENTINEL}
NAME = "crashtest"
DOCS = 8  # WuDao documents in the corpus (14 passages, 28 requests)
CONCURRENCY = 1  # requests on the wire; the backend keeps twice that many in flight
BEFORE_MINING = ("ingest", "dedup-passages", "index", "generate", "filter", "dedup-pairs")


def write_config(folder: Path, corpus: Path, base_url: str) -> Path:
    openai = {"concurrency": CONCURRENCY, "timeout_s": 60}
    return write_pipeline_config(folder, corpus, base_url, KEY_ENV, name=NAME, openai=openai)


def run(config: Path, home: Path) -> dict[str, Any]:
    """Run to the end; the pipeline's result."""
    return Driver(config, home, env=ENV).result()


def crash(config: Path, home: Path, point: str) -> dict[str, Any]:
    return kill_at(config, home, point, ENV)


def assert_nothing_visible(store_root: Path) -> list[str]:
    """No version, no ``latest``; whatever a killed publish left is a staging folder. Returns those left."""
    assert Store(str(store_root)).versions(NAME) == []
    folder = store_root / NAME
    left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    assert all(name.startswith(".staging-") for name in left), left
    return left


def done_records(work: Path, stages: tuple[str, ...]) -> dict[str, int]:
    """The completion records of the stages' shard and global tasks, with their mtimes: a rerun task rewrites its
    record, a skipped one does not."""
    workdir = Workdir(work)
    return {
        f"{stage}/{p.name}": p.stat().st_mtime_ns
        for stage in stages
        for p in (workdir.stage(stage) / "_done").glob("*")
    }


def rows(version: Path, folder: str, columns: list[str]) -> list[dict[str, Any]]:
    files = sorted((version / folder).glob("*.parquet"))
    assert files, f"{version / folder}: no data"
    return [row for f in files for row in pq.read_table(f, columns=columns).to_pylist()]


def unique_sorted(table: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rows sorted by ``key``, which must be unique (nothing twice)."""
    ids = [row[key] for row in table]
    assert len(ids) == len(set(ids)), f"{key} repeated"
    return sorted(table, key=lambda row: row[key])


def prompt_of(config: Path) -> dict[str, str]:
    """Ledger key → the fake LLM's digest of its prompt, for every planned request of the config's workdir."""
    cfg = load_config(config)
    workdir = Workdir(cfg.workdir)
    shards = sorted({p.name.split("-")[0] for p in workdir.passages.glob("*.parquet")})
    planned = Prepared(cfg, workdir, shards).planned()
    return {p.key: FakeLLM.digest(p.chat_request().messages[-1]["content"]) for p in planned}


def kill_and_resume(config: Path, home: Path, llm: FakeLLM) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    """Kill during generation, mining and publishing, then run to the end, checking the store and the LLM server
    after each kill; the final result and the ledger rows committed before the first kill."""
    work, store = Path(yaml.safe_load(config.read_text())["workdir"]), config.parent / "store"
    seen = crash(config, home, "generate:2")  # killed right after the second ledger commit
    before_kill = ledger_rows(Workdir(work).ledger)
    assert seen["ledger_rows"] == len(before_kill) == 2 * COMMIT_EVERY
    # Continuous submission: requests beyond the committed ones may have been in flight when the process died.
    assert 2 * COMMIT_EVERY <= llm.received <= 2 * COMMIT_EVERY + 2 * CONCURRENCY
    assert_nothing_visible(store)

    seen = crash(config, home, "mine")  # the rest generated; killed with candidates written but not recorded
    assert seen["candidates"] and not seen["recorded"]
    assert not list(Workdir(work).examples.glob("*.parquet"))
    assert_nothing_visible(store)
    sent, done = llm.received, done_records(work, BEFORE_MINING)
    assert len(ledger_rows(Workdir(work).ledger)) == len(llm.prompts())  # every request answered once, kept

    seen = crash(config, home, "publish:2")  # mining again, then killed two files into the version
    staging = Path(seen["staging"])
    assert assert_nothing_visible(store) == [staging.name]
    assert {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()} == set(seen["files"])
    assert llm.received == sent  # generation had finished: nothing sent again
    assert done_records(work, BEFORE_MINING) == done  # nor any stage before mining rerun
    assert Workdir(work).done("mine", seen_shard(work)).is_file()
    done = done_records(work, (*BEFORE_MINING, "mine", "select"))

    result = run(config, home)  # resumes at export only
    assert llm.received == sent and done_records(work, (*BEFORE_MINING, "mine", "select")) == done
    return result, before_kill


def seen_shard(work: Path) -> str:
    (shard,) = {p.name.split("-")[0] for p in Workdir(work).candidates.glob("*.parquet")}
    return shard


def funnel(version: Path) -> dict[str, tuple[Any, ...]]:
    """What each stage took in, let out and dropped (timings and per-run send counts left out)."""
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    return {s["stage"]: (s["unit"], s["in"], s["out"], s["dropped"]) for s in manifest["funnel"]}


def assert_same_version(ours: Path, theirs: Path) -> None:
    """The same passages, pairs, candidates, examples and funnel, each id once; every file in the manifest."""
    for folder, key, columns in [
        ("data/passages", "id", ["id", "text", "doc_id"]),
        ("data/pairs", "id", ["id", "kind", "query", "passage_id", "request_key", "sample"]),
        ("data/candidates", "pair_id", ["pair_id", "query", "bm25_ids", "bm25_scores"]),
        ("data/examples", "pair_id", ["pair_id", "kind", "query", "pos", "neg", "negative_ids"]),
    ]:
        assert unique_sorted(rows(ours, folder, columns), key) == unique_sorted(rows(theirs, folder, columns), key)
    manifests = [json.loads((v / "manifest.json").read_text(encoding="utf-8")) for v in (ours, theirs)]
    assert funnel(ours) == funnel(theirs) and manifests[0]["examples"] == manifests[1]["examples"]
    assert [s["complete"] for s in manifests[0]["segments"]] == [True]
    listed = {f["path"] for f in manifests[0]["files"]}
    assert listed == {p.relative_to(ours).as_posix() for p in ours.rglob("*") if p.is_file()} - {"manifest.json"}


def test_killed_runs_resume_to_the_uninterrupted_version(shared_data: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = (shared_data / "wudao" / "wudao_demo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (corpus / "part-0.jsonl").write_text("".join(lines[:DOCS]), encoding="utf-8")
    a, b = tmp_path / "a", tmp_path / "b"
    with FakeLLM(api_key=SENTINEL) as llm_a, FakeLLM(api_key=SENTINEL) as llm_b:
        reference = Driver(write_config(a, corpus, llm_a.base_url), a / "home", env=ENV)  # uninterrupted, beside B's
        try:
            config_b = write_config(b, corpus, llm_b.base_url)
            result, before_kill = kill_and_resume(config_b, b / "home", llm_b)
            expected = reference.result()
        finally:
            reference.kill()
        assert llm_b.unauthorised == llm_a.unauthorised == 0
        assert set(llm_a.attempts.values()) == {1} and llm_b.prompts() == llm_a.prompts()  # both asked the same
        # No request whose answer was committed was sent again; one lost in flight at the kill was, once.
        prompts = prompt_of(config_b)
        committed = {prompts[k] for k in before_kill}
        assert all(llm_b.attempts[p] == 1 for p in committed)
        assert set(llm_b.attempts.values()) <= {1, 2} and llm_b.received == sum(llm_b.attempts.values())

    # The rows committed before the kill were kept as they were; both ledgers hold the same outputs.
    ledger = ledger_rows(Workdir(b / "work").ledger)
    assert {k: ledger[k] for k in before_kill} == before_kill and set(ledger) == set(prompts)
    assert {k: v[0] for k, v in ledger.items()} == {
        k: v[0] for k, v in ledger_rows(Workdir(a / "work").ledger).items()
    }

    # One version, complete, equal to the uninterrupted run's; the killed publish left no version-named debris.
    store = b / "store" / NAME
    assert result["version"] == expected["version"] == 1 and Store(str(store.parent)).versions(NAME) == [1]
    assert os.readlink(store / "latest") == "v1"
    assert all(p.name.startswith(".staging-") for p in store.iterdir() if p.name not in ("v1", "latest"))
    assert_same_version(Path(result["path"]), Path(expected["path"]))
    pairs = rows(Path(result["path"]), "data/pairs", ["request_key"])
    assert {p["request_key"] for p in pairs} <= set(ledger)

    # The stage cache lives in the workdir (deleting it deletes the cache), not in Prefect's result storage.
    recorded = {stage.split("/")[0] for stage in done_records(b / "work", (*BEFORE_MINING, "mine", "select"))}
    assert recorded == {*BEFORE_MINING, "mine", "select"}
    default = b / "home" / "default-results"
    assert not default.exists() or not any(default.iterdir())
