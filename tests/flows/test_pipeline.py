"""The pipeline flow end to end against the project's fake LLM (faults switched at run time): versions, resume,
increments, coverage, the Dask runner, and issue 13's defects, each a test. The real vLLM engine has its own tests.

Runs are shared between assertions to keep the module to a few minutes: a one-shard corpus and a two-shard one,
cut from the WuDao sample. Figures the issue asks for are printed (``pytest -s``) and, with PAIRFORGE_FIGURES set,
appended to that file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from flows.pipeline import run_pipeline
from flows.progress import listen
from pairforge.cli import app, describe_incomplete
from pairforge.stages import STAGE_NAMES
from pairforge.testing.fake_llm import FakeLLM
from pairforge.workdir import Workdir, shard_files
from tests.conftest import REPO
from tests.figures import figure
from tests.flows.conftest import split_wudao, write_pipeline_config
from tests.flows.dask_probe import ENV as TASK_LOG_ENV
from tests.flows.dask_probe import read_task_log

KEY_ENV = "PAIRFORGE_TEST_FLOW_KEY"
SENTINEL = "sk-flow-sentinel-3f9c1d"
NAME = "flowtest"
WORK_STAGES = STAGE_NAMES[:-1]  # export writes the store, not the workdir
# The shipped configs' evidence-first prompts (their schemas hold patterns) for the shared reference run, so the
# fake LLM's answers to both kinds are checked end to end.
EVIDENCE_FIRST = {"prompt_versions": {"qp": "v2", "sp": "v2"}}


# ---------------------------------------------------------------------------------------------------------- tools
@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def llm(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    """The fake LLM every run of the module talks to; the key it demands is the sentinel the database test seeks."""
    monkeypatch_module.setenv(KEY_ENV, SENTINEL)
    with FakeLLM(api_key=SENTINEL) as server:
        yield server


@pytest.fixture(autouse=True)
def healthy(llm: FakeLLM) -> Iterator[None]:
    """Every test starts and ends with a healthy server, whatever faults it switched on."""
    llm.set_faults(rates={}, plans=[])
    yield
    llm.set_faults(rates={}, plans=[])


@pytest.fixture(scope="module")
def parts(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The WuDao sample in four shard files of five documents each."""
    return split_wudao(shared_data, tmp_path_factory.mktemp("parts"), parts=4)


def corpus_of(folder: Path, *files: Path) -> Path:
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copy(file, corpus)
    return corpus


def write_config(folder: Path, corpus: Path, base_url: str, *, flow: dict[str, Any] | None = None,
                 **sections: dict[str, Any]) -> Path:  # fmt: skip
    """``folder/run.yaml``; no retries, so every failed request is one request and the counts are exact."""
    openai = {"concurrency": 4, "timeout_s": 5, "max_retries": 0}
    flow = {"task_runner": "thread", **(flow or {})}
    return write_pipeline_config(folder, corpus, base_url, KEY_ENV, name=NAME, openai=openai, flow=flow, **sections)


def variant(config: Path, name: str, **changes: dict[str, Any]) -> Path:
    """A copy of ``config`` beside it (same workdir and store) with some sections updated."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    path = config.with_name(f"{name}.yaml")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@dataclass
class Sent:
    """Requests the fake LLM received during a block, and how often each distinct prompt came."""

    requests: int = 0
    prompts: Counter[str] | None = None
    faults: Counter[str] | None = None


class counting:  # used as `with counting(llm) as sent:`
    def __init__(self, llm: FakeLLM) -> None:
        self.llm, self.sent = llm, Sent()

    def __enter__(self) -> Sent:
        self.received, self.attempts, self.faults = self.llm.received, self.llm.attempts, self.llm.faults
        return self.sent

    def __exit__(self, *exc: object) -> None:
        self.sent.requests = self.llm.received - self.received
        self.sent.prompts = self.llm.attempts - self.attempts
        self.sent.faults = self.llm.faults - self.faults


def stage_outputs(workdir: Path) -> dict[str, int]:
    """Every file a stage wrote (its shards, indexes, completion records), by path, with its mtime; ``stats.json``
    is left out, since every stage rewrites it as the report of its last run."""
    found = {}
    for stage in WORK_STAGES:
        for path in sorted((workdir / stage).rglob("*")):
            if path.is_file() and path.name != "stats.json":
                found[str(path.relative_to(workdir))] = path.stat().st_mtime_ns
    return found


def manifest(version: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    return data


def rows(version: Path, folder: str, files: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of a version's ``data/<folder>`` (or of the given files), sorted, as plain values."""
    paths = (
        [version / f for f in files] if files is not None else sorted((version / "data" / folder).glob("*.parquet"))
    )
    found = [row for path in paths for row in pq.read_table(path).to_pylist()]
    return sorted(found, key=lambda r: json.dumps(r, sort_keys=True, ensure_ascii=False, default=str))


def segment_files(segment: dict[str, Any], folder: str) -> list[str]:
    return [f for f in segment["files"] if f.startswith(f"data/{folder}/")]


def version_content(version: Path) -> dict[str, list[dict[str, Any]]]:
    return {folder: rows(version, folder) for folder in ("examples", "pairs", "passages")}


def run_cli(config: Path, *args: str) -> Result:
    result = cli("run", str(config), *args)
    print(result.output[-3000:])
    return result


def last_line(text: str, start: str) -> str:
    return next(line for line in reversed(text.splitlines()) if line.startswith(start))


# ----------------------------------------------------------------------------------------------- shared runs
@pytest.fixture(scope="module")
def reference(parts: list[Path], llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted run over a two-shard corpus on the thread runner: what the Dask run and the recovered
    outage are compared with."""
    folder = tmp_path_factory.mktemp("reference")
    config = write_config(folder, corpus_of(folder, parts[0], parts[1]), llm.base_url, generate=EVIDENCE_FIRST)
    with counting(llm) as sent:
        result = run_pipeline(config)
    assert result["version"] == 1 and sent.requests == result["funnel"]["generate"]["in"] > 0
    # Issue 20: the fake LLM follows every schema's pattern, so both kinds reach the version.
    kinds = Counter(r["kind"] for r in rows(Path(result["path"]), "pairs"))
    assert kinds["qp"] > 0 and kinds["sp"] > 0, kinds
    assert result["funnel"]["generate"]["dropped"] == {}, result["funnel"]["generate"]
    return {"config": config, "result": result, "sent": sent, "folder": folder}


# ------------------------------------------------------------------------------------------ the pipeline itself
def test_pipeline_publishes_resumes_and_increments(
    parts: list[Path], tmp_path: Path, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.pipeline

    corpus = corpus_of(tmp_path, parts[0])
    config = write_config(tmp_path, corpus, llm.base_url)
    work, store = tmp_path / "work", tmp_path / "store"
    store.write_text("not a folder")  # export fails: the run stops after select

    with counting(llm) as first:
        failed = run_cli(config)
    assert failed.exit_code == 4, failed.output
    assert "stage export failed: " in last_line(failed.output, "error:")  # one sentence naming the stage
    assert first.requests > 0 and Workdir(work).finished_any("select", _only_key(work)) is not None
    outputs = stage_outputs(work)

    store.unlink()
    bars: list[str] = []  # the CLI's progress bars, in the order they appear
    stop = listen(lambda stage, *_: bars.append(stage) if stage not in bars else None)
    with counting(llm) as resumed:
        try:
            result = run_pipeline(config)  # resumes: no finished shard task runs again, no request is resent
        finally:
            stop()
    assert resumed.requests == 0
    assert bars[0] == "pipeline" and {"ingest", "index", "export"} <= set(bars), bars  # index, export: a bar each
    assert result["incomplete"] == {} and describe_incomplete(result) is None
    assert stage_outputs(work) == outputs
    assert result["version"] == 1 and Path(result["path"]) == store / NAME / "v1"
    assert result["funnel"]["generate"]["out"] > 0 and result["funnel"]["select"]["out"] > 0
    assert Path(result["report"]).is_file()
    v1 = manifest(store / NAME / "v1")
    assert [s["input"]["path"] for s in v1["segments"]] == [str(corpus / parts[0].name)]
    assert v1["segments"][0]["complete"] and SENTINEL not in json.dumps(v1)

    def no_server(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing new must not start a Prefect server or a flow")

    with monkeypatch.context() as mp, counting(llm) as nothing:
        mp.setattr(flows.pipeline, "temporary_server", no_server)
        mp.setattr(flows.pipeline, "pipeline", no_server)
        again = run_pipeline(config)
    assert again["version"] == 1 and again["new_shards"] == 0 and nothing.requests == 0

    shutil.copy(parts[1], corpus)  # the nightly case: a new shard arrives
    with counting(llm) as increment:
        third = run_pipeline(config)
    check_complete_v2(store, third, increment)

    shutil.rmtree(store)  # issue 13 #9: the store is lost, the workdir kept
    with counting(llm) as republish:
        fourth = run_pipeline(config)
    assert fourth["version"] == 1 and republish.requests == 0
    republished = manifest(store / NAME / "v1")
    assert republished["parent"] is None and all(s["complete"] for s in republished["segments"])
    # The same pairs; the first shard's now mined over both shards' passages (in v2 it kept v1's negatives).
    assert {r["pair_id"] for r in rows(store / NAME / "v1", "examples")} == third["pair_ids"]


def test_run_honours_dedup_against_as_the_dedup_command_does(
    reference: dict[str, Any], parts: list[Path], llm: FakeLLM, tmp_path: Path
) -> None:
    """Issue 22: another dataset whose ``dedup.against`` names the reference version's MinHash index: ``pairforge
    run`` drops the passages that index holds (shard 0's, also in the reference) exactly as ``pairforge dedup``
    drops them, and its version holds none of the reference's documents."""
    reference_version = Path(reference["result"]["path"])
    corpus = corpus_of(tmp_path, parts[0], parts[2])  # part 0 is in the reference version, part 2 is not
    against = {"against": [str(reference_version / "index" / "passages")]}
    ran = run_pipeline(write_config(tmp_path / "run", corpus, llm.base_url, dedup=against))
    staged = write_config(tmp_path / "staged", corpus, llm.base_url, dedup=against)
    assert cli("ingest", str(staged)).exit_code == 0
    deduped = cli("dedup", str(staged), "--json")
    assert deduped.exit_code == 0, deduped.output
    by_command = json.loads(deduped.stdout.strip().splitlines()[-1])
    by_run = ran["funnel"]["dedup-passages"]
    assert by_run["dropped"] == by_command["dropped"] and by_run["out"] == by_command["out"]
    assert by_run["dropped"]["seen_in_earlier_version"] > 0
    seen = {r["doc_id"] for r in rows(reference_version, "passages")}
    published = {r["doc_id"] for r in rows(Path(ran["path"]), "passages")}
    assert published and not published & seen


def _only_key(work: Path) -> str:
    (done,) = (work / "ingest" / "_done").glob("*.json")
    return done.stem


def check_complete_v2(store: Path, result: dict[str, Any], sent: Sent) -> None:
    """Issue 13 #5: v2 is a complete dataset sharing v1's segment, its new pairs mined over the whole pool, and
    ``latest`` a path a trainer can use. ``result`` gains the version's pair ids."""
    v1_dir, v2_dir = store / NAME / "v1", store / NAME / "v2"
    assert result["version"] == 2 and result["new_shards"] == 1 and sent.requests > 0
    m1, m2 = manifest(v1_dir), manifest(v2_dir)
    assert m2["parent"] == 1 and [s["version"] for s in m2["segments"]] == [1, 2]
    old, new = m2["segments"]
    assert old == m1["segments"][0]  # carried as it was
    for relative in old["files"]:  # shared with v1, not copied
        assert os.stat(v1_dir / relative).st_ino == os.stat(v2_dir / relative).st_ino, relative
    ids1 = {r["pair_id"] for r in rows(v1_dir, "examples")}
    examples = rows(v2_dir, "examples")
    ids2 = {r["pair_id"] for r in examples}
    added = ids2 - ids1
    assert ids1 < ids2 and len(added) == sum(new["examples"].values()) > 0
    assert sum(m2["examples"].values()) == len(examples) == len(ids1) + len(added)

    old_texts = {r["text"] for r in rows(v1_dir, "passages")}
    new_texts = {r["text"] for r in rows(v2_dir, "passages", segment_files(new, "passages"))}
    negatives = [n for r in rows(v2_dir, "examples", segment_files(new, "examples")) for n in r["neg"]]
    assert negatives and set(negatives) <= old_texts | new_texts  # the pool is both segments' passages
    assert set(negatives) & old_texts, "no hard negative of the new pairs came from v1's passages"

    diff = cli("versions", "diff", NAME, "1", "2", "--store", str(store))
    assert diff.exit_code == 0, diff.output
    assert f"examples added {len(added):,}, removed 0" in diff.output
    figure("versions diff v1 → v2 (a new shard; v2 is complete)", diff.output)

    latest = store / NAME / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "v2"
    trainer_files = sorted((latest / "flagembedding").glob("*.jsonl"))
    lines = [json.loads(line) for f in trainer_files for line in f.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(examples) and all(line["query"] and line["pos"] and line["neg"] for line in lines)
    result["pair_ids"] = ids2


# ---------------------------------------------------------------------------------------------- the Dask runner
def test_every_stage_on_dask_gives_the_thread_runners_bytes(
    reference: dict[str, Any], llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: the whole pipeline on a 2-worker LocalCluster (127.0.0.1) writes, stage by stage, the same bytes
    as the thread runner, and every stage's shard tasks ran in the worker processes. Issue 23: the workers are
    pinned (``flow.pin_workers``), each to its own core, and the index's BM25 segments are shard tasks too."""
    import dask

    config = write_config(tmp_path, reference["folder"] / "corpus", llm.base_url,
                          flow={"task_runner": "dask", "dask_workers": 2, "pin_workers": True},
                          generate=EVIDENCE_FIRST)  # fmt: skip
    task_log = tmp_path / "task-log"
    task_log.mkdir()
    monkeypatch.setenv(TASK_LOG_ENV, str(task_log))
    probe = str(Path(__file__).with_name("dask_probe.py"))
    with dask.config.set({"distributed.worker.preload": [probe]}):
        result = run_pipeline(config)
    assert result["version"] == 1

    thread_work, dask_work = Path(reference["config"]).parent / "work", tmp_path / "work"
    assert stage_bytes(dask_work) == stage_bytes(thread_work)
    keys = done_keys(dask_work), done_keys(thread_work)
    for k in keys:  # select's keys name the candidates' folder (reselect reads another's), so differ by workdir
        k.pop("select")
    assert keys[0] == keys[1]
    thread_version, dask_version = Path(reference["result"]["path"]), Path(result["path"])
    assert version_bytes(dask_version) == version_bytes(thread_version)

    ran = read_task_log(task_log)
    assert len(ran) == 2 and os.getpid() not in ran, ran  # both workers, never this process
    by_stage = Counter(name.split(":")[0] for names in ran.values() for name in names)
    shards = len(done_keys(thread_work)["ingest"])
    expected = {
        "ingest": shards,
        "dedup-passages.sign": shards,
        "dedup-passages": shards,
        "index.segments": 1,  # the pool fits one BM25 batch
        "generate.send": 1,
        "generate": shards,
        "filter": shards,
        "judge": shards,  # off: it passes the pairs on
        "dedup-pairs": shards,
        "mine": shards,
        "select": shards,
    }
    assert dict(by_stage) == expected
    pins = [(task_log / f"{pid}.cores").read_text().split() for pid in ran]
    if len(os.sched_getaffinity(0)) >= 2:  # one core each, not the same one
        assert all(len(p) == 1 for p in pins) and pins[0] != pins[1], pins
    figure("Dask: shard tasks per worker process", "\n".join(
        f"pid {pid}: {', '.join(sorted(names))}" for pid, names in sorted(ran.items())))  # fmt: skip


# ----------------------------------------------------------------------------------------------- the Ray runner
def test_every_stage_on_ray_gives_the_thread_runners_version(
    reference: dict[str, Any], llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: the whole pipeline on prefect-ray's runner over a local Ray (127.0.0.1, 2 CPUs) publishes a version
    byte-identical to the thread runner's, and the shard tasks ran in Ray's worker processes. Ray is joined here
    (with the task recorder in its workers) and the run reuses it, as it would a cluster at ``ray_address``."""
    pytest.importorskip("prefect_ray")  # the `ray` extra
    import ray

    from pairforge.ray_cluster import joined_ray

    config = write_config(tmp_path, reference["folder"] / "corpus", llm.base_url,
                          flow={"task_runner": "ray", "ray_cpus": 2}, generate=EVIDENCE_FIRST)  # fmt: skip
    task_log = tmp_path / "task-log"
    task_log.mkdir()
    monkeypatch.setenv(TASK_LOG_ENV, str(task_log))  # the workers inherit the environment Ray starts with
    # Ray's workers are fresh interpreters: the repository on their path lets them import the recorder's module
    hook = {"worker_process_setup_hook": "tests.flows.dask_probe.ray_setup", "env_vars": {"PYTHONPATH": str(REPO)}}
    with joined_ray(None, 2, runtime_env=hook):
        addresses = {node["NodeManagerAddress"] for node in ray.nodes()}
        result = run_pipeline(config)
        assert ray.is_initialized()  # the run left the Ray it found running
    assert not ray.is_initialized()
    assert addresses == {"127.0.0.1"} and result["version"] == 1

    thread_work, ray_work = Path(reference["config"]).parent / "work", tmp_path / "work"
    assert stage_bytes(ray_work) == stage_bytes(thread_work)
    thread_version, ray_version = Path(reference["result"]["path"]), Path(result["path"])
    assert version_bytes(ray_version) == version_bytes(thread_version)
    hashes = [[f for f in manifest(v)["files"] if f["path"] != "README.md"] for v in (ray_version, thread_version)]
    assert hashes[0] == hashes[1]  # the manifest's file hashes (the card holds the creation time)

    ran = read_task_log(task_log)
    assert ran and os.getpid() not in ran, ran  # Ray's workers, never this process
    by_stage = Counter(name.split(":")[0] for names in ran.values() for name in names)
    shards = len(done_keys(thread_work)["ingest"])
    assert by_stage["ingest"] == by_stage["mine"] == by_stage["select"] == shards, by_stage


def stage_bytes(workdir: Path) -> dict[str, str]:
    """sha256 of every stage output file, by path (not the timing records: ``stats.json``, ``_done``)."""
    found = {}
    for stage in WORK_STAGES:
        for path in sorted((workdir / stage).rglob("*")):
            if path.is_file() and path.name != "stats.json" and path.parent.name != "_done":
                found[str(path.relative_to(workdir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    assert any(k.startswith("select/examples/") for k in found)
    return found


def done_keys(workdir: Path) -> dict[str, dict[str, str]]:
    """The task key each shard's output was made under, by stage (equal keys: equal inputs and settings)."""
    return {
        stage: {
            p.stem: json.loads(p.read_text(encoding="utf-8"))["key"] for p in (workdir / stage / "_done").glob("*")
        }
        for stage in WORK_STAGES
        if (workdir / stage / "_done").is_dir()
    }


def version_bytes(version: Path) -> dict[str, str]:
    """sha256 of every file of a version but its manifest and card (they hold the creation time)."""
    return {
        str(p.relative_to(version)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(version.rglob("*"))
        if p.is_file() and p.name not in ("manifest.json", "README.md")
    }


# -------------------------------------------------------------------------------- issue 13 #1 and #4: outages
def test_outage_is_never_cached_as_done(
    reference: dict[str, Any], parts: list[Path], tmp_path: Path, llm: FakeLLM
) -> None:
    """An outage publishes nothing (exit 3, the reason in one line); a partial recovery publishes v1 with the
    shards incomplete and why; the healthy rerun sends exactly the still-missing requests, and its v2 equals the
    uninterrupted run's version."""
    config = write_config(tmp_path, corpus_of(tmp_path, parts[0], parts[1]), llm.base_url, generate=EVIDENCE_FIRST)
    store = tmp_path / "store"
    planned = reference["sent"].requests
    table = ["step                      faults     sent  failed  result"]

    llm.set_faults(rates={"http_500": 1.0})
    with counting(llm) as outage:
        down = run_cli(config)
    assert down.exit_code == 3, down.output
    reason = last_line(down.output, "nothing to publish:")
    assert reason == f"nothing to publish: 0 pairs survived generate (backend_http_500 {planned:,})"
    assert outage.requests == planned == outage.faults["http_500"] and set(outage.prompts.values()) == {1}
    assert not (store / NAME).exists() or not list((store / NAME).glob("v*"))
    table.append(f"1 outage                  500 100%  {outage.requests:>4}  {outage.faults['http_500']:>6}  "
                 f"exit 3, no version: {reason}")  # fmt: skip

    llm.set_faults(rates={"http_500": 0.5})
    with counting(llm) as partial:
        v1 = run_pipeline(config)
    failed = partial.faults["http_500"]
    assert partial.requests == planned and set(partial.prompts) == set(outage.prompts)  # exactly the failed ones
    assert set(partial.prompts.values()) == {1} and 0 < failed < planned
    m1 = manifest(store / NAME / "v1")
    assert v1["version"] == 1 and sum(m1["examples"].values()) > 0
    assert sum(s["incomplete"].get("unanswered", 0) for s in m1["segments"]) == failed
    assert sum(why.get("unanswered", 0) for why in v1["incomplete"].values()) == failed  # the CLI says so:
    assert (describe_incomplete(v1) or "").startswith(f"incomplete: v1 does not cover {len(v1['incomplete'])} input")
    assert all(not s["complete"] for s in m1["segments"] if s["incomplete"])
    why = json.loads(cli("run", str(config), "--dry-run", "--json").stdout.strip().splitlines()[-1])["why"]
    assert all(w.startswith("incomplete: not complete in v1: unanswered ") for w in why.values()), why
    table.append(
        f"2 partial recovery        500 50%   {partial.requests:>4}  {failed:>6}  v1, segments "
        + "; ".join(f"{s['key']} complete={s['complete']} {s['incomplete']}" for s in m1["segments"])
    )

    llm.set_faults(rates={})
    with counting(llm) as recovery:
        v2 = run_pipeline(config)
    assert recovery.requests == failed and set(recovery.prompts.values()) == {1}
    assert set(recovery.prompts) <= set(outage.prompts)
    m2 = manifest(store / NAME / "v2")
    assert v2["version"] == 2 and all(s["complete"] for s in m2["segments"])
    assert version_content(store / NAME / "v2") == version_content(Path(reference["result"]["path"]))
    table.append(
        f"3 healthy                 none      {recovery.requests:>4}  {0:>6}  v2, complete, "
        f"{sum(m2['examples'].values())} examples = the uninterrupted run's "
        f"({sum(reference['result']['examples'].values())}; examples, pairs, passages equal)"
    )
    table.append(
        f"uninterrupted run: {planned} requests; outage sequence in all: "
        f"{outage.requests + partial.requests + recovery.requests}"
    )
    figure("outage → partial recovery → recovery (requests to the fake LLM)", "\n".join(table))


# ------------------------------------------------------------------------- issue 13 #2, #3, #4: settings and limit
@pytest.fixture(scope="module")
def settings_base(parts: list[Path], llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A one-shard corpus run first with ``--limit 5`` (v1, the shard not covered), then whole (v2): the base the
    settings tests change."""
    folder = tmp_path_factory.mktemp("settings")
    config = write_config(folder, corpus_of(folder, parts[2]), llm.base_url)
    with counting(llm) as limited_sent:
        limited = run_cli(config, "--limit", "5", "--json")
    assert limited.exit_code == 0, limited.output
    dry = cli("run", str(config), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    with counting(llm) as whole_sent:
        whole = run_pipeline(config)
    return {
        "config": config, "store": folder / "store", "work": folder / "work", "limited": limited,
        "limited_sent": limited_sent, "dry": dry, "whole": whole, "whole_sent": whole_sent,
    }  # fmt: skip


def test_limit_leaves_the_rest_of_the_corpus_uncovered(settings_base: dict[str, Any]) -> None:
    """Issue 13 #3: a run cut by ``--limit`` publishes a version that does not cover the shard; the dry run says
    why it runs again; the next run covers it, sending only the requests the limit left out."""
    store, sent = settings_base["store"], settings_base["limited_sent"]
    assert sent.requests == 10  # 5 passages, qp and sp
    (segment,) = manifest(store / NAME / "v1")["segments"]
    left = segment["incomplete"]["passages_left_by_limit"]
    assert not segment["complete"] and left > 0
    dry = settings_base["dry"]
    plan = json.loads(dry.stdout.strip().splitlines()[-1])
    assert list(plan["why"].values()) == [f"incomplete: not complete in v1: passages_left_by_limit {left}"]
    assert f"incomplete: not complete in v1: passages_left_by_limit {left}" in dry.output
    whole = settings_base["whole"]
    (covered,) = manifest(store / NAME / "v2")["segments"]
    assert whole["version"] == 2 and covered["complete"]
    assert settings_base["whole_sent"].requests == 2 * left  # the rest, nothing twice
    figure("run --limit 5, then run --dry-run", dry.output)


def test_filter_change_is_a_new_version_without_llm_requests(settings_base: dict[str, Any], llm: FakeLLM) -> None:
    """Issue 13 #2: ``filter.query_min_chars`` 4 → 12 gives a new version; generation is not redone."""
    config, store, work = settings_base["config"], settings_base["store"], settings_base["work"]
    before = max(int(p.name[1:]) for p in (store / NAME).glob("v*"))
    changed = variant(config, "filter-12", filter={"query_min_chars": 12})
    generated = {k: v for k, v in stage_outputs(work).items() if k.startswith("generate/")}
    dry = cli("run", str(changed), "--dry-run")
    assert "changed: settings changed: filter" in dry.output, dry.output
    with counting(llm) as sent:
        result = cli("run", str(changed), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert sent.requests == 0 and summary["version"] == before + 1
    assert {k: v for k, v in stage_outputs(work).items() if k.startswith("generate/")} == generated
    filtered = summary["funnel"]["filter"]
    assert filtered["dropped"].get("query_too_short", 0) > 0
    assert manifest(store / NAME / f"v{before + 1}")["parent"] == before
    figure("filter.query_min_chars 4 → 12: a new version, 0 LLM requests",
           f"dry run: {last_line(dry.output, '  ')}\nrequests sent: {sent.requests}\n"
           f"version: v{summary['version']} (parent v{before}), examples {summary['examples']}\n"
           f"filter: in {filtered['in']}, out {filtered['out']}, dropped {filtered['dropped']}\n"
           + funnel_table(result.output))  # fmt: skip


def test_the_judge_in_the_pipeline_and_a_changed_cut_without_requests(
    settings_base: dict[str, Any], llm: FakeLLM
) -> None:
    """Issue 20 #2: the judge turned on gives a new version whose only requests are the judge's, one per kept pair,
    with the scores on the version's pairs; a changed cut gives another version with no request sent and neither
    generate nor filter rerun. (The fake LLM fills the judge's enums with their first value: every score is 1.)"""
    config, store, work = settings_base["config"], settings_base["store"], settings_base["work"]
    before = max(int(p.name[1:]) for p in (store / NAME).glob("v*"))
    judged = variant(config, "judge-on", judge={"enabled": True, "min_score": None})
    with counting(llm) as sent:
        first = run_pipeline(judged)
    judge = first["funnel"]["judge"]
    assert first["version"] == before + 1 and sent.requests == judge["in"] == judge["out"] > 0
    pairs = rows(Path(first["path"]), "pairs")
    scores = {(p["judge_relevance"], p["judge_faithfulness"], p["judge_clarity"]) for p in pairs}
    assert pairs and scores == {(1, 1, 1)}
    upstream = {k: v for k, v in stage_outputs(work).items() if k.startswith(("generate/", "filter/"))}
    recut = variant(config, "judge-cut", judge={"enabled": True, "min_score": None, "min_scores": {"clarity": 1}})
    assert "changed: settings changed: judge" in cli("run", str(recut), "--dry-run").output
    with counting(llm) as resent:
        second = run_pipeline(recut)
    assert second["version"] == before + 2 and resent.requests == 0
    assert {k: v for k, v in stage_outputs(work).items() if k.startswith(("generate/", "filter/"))} == upstream
    assert second["funnel"]["judge"] == judge


def funnel_table(output: str) -> str:
    """The funnel table ``pairforge run`` prints last (from its title on, without the JSON line)."""
    lines = output.splitlines()
    start = max(i for i, line in enumerate(lines) if line.strip().startswith(f"{NAME} v"))
    return "\n".join(line for line in lines[start:] if not line.startswith("{"))


def test_counts_change_reuses_every_unchanged_answer(settings_base: dict[str, Any], llm: FakeLLM) -> None:
    """Issue 13 #2: ``generate.counts.qp`` 3 → 2 changes the qp requests only: a new version, the qp requests sent
    again and every sp answer taken from the ledger."""
    config, store = settings_base["config"], settings_base["store"]
    before = max(int(p.name[1:]) for p in (store / NAME).glob("v*"))
    changed = variant(config, "counts-2", generate={"counts": {"qp": 2, "sp": 1}})
    with counting(llm) as sent:
        result = run_pipeline(changed)
    passages = result["funnel"]["dedup-passages"]["out"]
    assert result["version"] == before + 1 and sent.requests == passages > 0  # one qp request per passage
    assert set(sent.prompts.values()) == {1}
    generate = result["funnel"]["generate"]
    assert generate["in"] == 2 * passages and generate["dropped"] == {}


def test_an_empty_result_is_never_a_version(settings_base: dict[str, Any], llm: FakeLLM) -> None:
    """Issue 13 #4: filters that let nothing through publish nothing: exit 3 and the reason in one line."""
    config, store = settings_base["config"], settings_base["store"]
    versions = sorted((store / NAME).glob("v*"))
    strict = variant(config, "strict", filter={"query_min_chars": 60, "query_max_chars": 64})
    with counting(llm) as sent:
        result = run_cli(strict)
    assert result.exit_code == 3, result.output
    reason = last_line(result.output, "nothing to publish:")
    assert reason.startswith("nothing to publish: 0 pairs survived filter (query_too_short ") and reason.endswith(")")
    assert sorted((store / NAME).glob("v*")) == versions and sent.requests == 0
    figure("filters that keep nothing", reason)


def test_fresh_recomputes_every_stage(settings_base: dict[str, Any], llm: FakeLLM) -> None:
    """Issue 13 #2: ``--fresh`` reruns every stage of every shard (the ledger, a cache of paid answers, stays)."""
    config, store, work = settings_base["config"], settings_base["store"], settings_base["work"]
    before = max(int(p.name[1:]) for p in (store / NAME).glob("v*"))
    outputs = stage_outputs(work)
    with counting(llm) as sent:
        result = run_cli(config, "--fresh", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["version"] == before + 1 and sent.requests == 0
    now = stage_outputs(work)
    done = [k for k in outputs if "/_done/" in k]
    assert {k.split("/")[0] for k in done} == set(WORK_STAGES)
    assert all(now[k] > outputs[k] for k in done)  # every stage's every shard (and global step) was redone


def test_a_stage_crash_is_a_sentence_naming_the_stage(settings_base: dict[str, Any], llm: FakeLLM) -> None:
    """An Arrow error inside a stage ends ``pairforge run`` with exit 4 and one sentence naming the stage."""
    config, work = settings_base["config"], settings_base["work"]
    (victim,) = shard_files(work / "generate" / "pairs", _only_key(work))
    original = victim.read_bytes()
    try:
        victim.write_bytes(b"PAR1 this is not a parquet file")  # what filter reads next
        changed = variant(config, "filter-5", filter={"query_min_chars": 5})
        result = run_cli(changed)
    finally:
        victim.write_bytes(original)
    assert result.exit_code == 4, result.output
    line = last_line(result.output, "error:")
    assert line.startswith("error: stage filter failed: ArrowInvalid: "), line
    assert "Traceback" not in result.output
    figure("a damaged stage output on the CLI path", line)


def test_only_the_pipeline_flow_run_sends_heartbeats(settings_base: dict[str, Any]) -> None:
    """The stage flows, subflows of the pipeline's flow run, send no heartbeat of their own: Prefect waits up to a
    second for a flow's heartbeat thread when the flow ends, ten stages per run. The pipeline's flow run still sends
    its own (what a server's zombie-run automation watches)."""
    from prefect.events.worker import EventsWorker
    from prefect.testing.fixtures import AssertingEventsClient

    EventsWorker.set_client_override(AssertingEventsClient)  # Prefect's recording events client
    try:
        result = run_cli(settings_base["config"], "--fresh")  # every stage flow runs again
        EventsWorker.instance().drain()
        assert AssertingEventsClient.last is not None
        events = list(AssertingEventsClient.last.events)
    finally:
        EventsWorker.set_client_override(None)
    assert result.exit_code == 0, result.output
    beating = {r.get("prefect.resource.name") for e in events if e.event == "prefect.flow-run.heartbeat"
               for r in e.related if r.role == "flow"}  # fmt: skip
    assert beating == {"pipeline"}, beating


def test_a_run_without_the_key_fails_naming_the_variable(
    parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21, item 13: a process that sends requests without the key (a Dask worker started as the README showed)
    used to send "EMPTY", get 401 for every request and publish nothing. The endpoint here is never contacted: the
    backend refuses to start before the first request."""
    monkeypatch.delenv(KEY_ENV)
    config = write_config(tmp_path, corpus_of(tmp_path, parts[0]), "http://10.0.0.1:8000/v1")
    result = run_cli(config)
    assert result.exit_code == 4, result.output
    line = last_line(result.output, "error:")
    assert line.startswith(f"error: stage generate failed: MissingApiKey: generate.openai.api_key_env names {KEY_ENV}")
    assert "not set in this process" in line and "Traceback" not in result.output
    assert not (tmp_path / "store" / NAME).exists()


# ----------------------------------------------------------------------------------------- issue 13 #6: locations
@pytest.mark.parametrize("store", ["work", "work/store", "."])
def test_store_and_workdir_must_not_contain_each_other(tmp_path: Path, store: str) -> None:
    config = write_config(tmp_path, tmp_path / "corpus", "http://127.0.0.1:9/v1")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["store"] = str(tmp_path / store)
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = cli("run", str(config))
    assert result.exit_code == 2 and "must not contain each other" in result.output, result.output
    assert not (tmp_path / "work").exists()


# ------------------------------------------------------------------------------------------ plan, deploy, secrets
def test_dry_run_says_why_each_shard_runs(parts: list[Path], tmp_path: Path) -> None:
    corpus = corpus_of(tmp_path, parts[0], parts[1])
    config = write_config(tmp_path, corpus, "http://127.0.0.1:9/v1")
    result = cli("run", str(config), "--dry-run", "--limit", "5", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout.strip().splitlines()[-1])
    assert plan["shards"] == 2 and plan["to_process"] == 2 and plan["parent"] is None
    assert plan["why"] == {str(corpus / p.name): "new: not in the latest version" for p in parts[:2]}
    assert plan["llm_requests_estimate"] == 10 and plan["stages"] == list(STAGE_NAMES)
    assert not (tmp_path / "work").exists()


def test_deploy_builds_a_cron_deployment_of_the_pipeline(tmp_path: Path) -> None:
    from flows.deploy import build_deployment

    config = tmp_path / "run.yaml"
    config.write_text("corpora: [{format: jsonl, path: x}]\n")
    deployment = build_deployment(config, "0 2 * * *")
    assert deployment.name == "nightly" and deployment.parameters == {"config_path": str(config.resolve())}
    assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
    project = yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text())
    names = {d["name"]: d for d in project["deployments"]}
    assert set(names) == {"nightly", "adhoc", "on-publish"} and names["nightly"]["schedules"][0]["cron"] == "0 2 * * *"
    assert all(names[n]["entrypoint"] == "flows/pipeline.py:pipeline" for n in ("nightly", "adhoc"))
    assert names["on-publish"]["entrypoint"] == "flows/train.py:train"  # tests/flows/test_events.py: its trigger


def test_api_key_comes_from_a_prefect_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    from flows.stages import load_api_key
    from pairforge.config import load_config

    Secret(value="sk-secret-sentinel-77").save("pairforge-test-key", overwrite=True)
    config = write_config(tmp_path, tmp_path, "http://127.0.0.1:9/v1")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["generate"]["openai"]["api_key_secret"] = "pairforge-test-key"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.delenv(KEY_ENV, raising=False)
    load_api_key(load_config(config))
    assert os.environ[KEY_ENV] == "sk-secret-sentinel-77"
    monkeypatch.setenv(KEY_ENV, "from-the-environment")  # the environment wins over the secret
    load_api_key(load_config(config))
    assert os.environ[KEY_ENV] == "from-the-environment"


@pytest.mark.parametrize(
    "pasted",
    [
        "sk_live_4f9c1d2e3b4a5968778695a4b3c2d1e0",  # a key with two underscores
        "Kd8s7FgH2jK3lM4nP5qR6sT7",  # 24 characters of mixed case and digits (Baidu Qianfan's shape)
        "AKIAIOSFODNN7EXAMPLE",  # upper case and digits
    ],
)
def test_a_key_pasted_into_api_key_env_is_refused(tmp_path: Path, pasted: str) -> None:
    """Validation is what keeps a pasted key out of the flows' parameters (redaction can only hide what is not a
    variable name): each of these shapes passed it once, and would have reached Prefect's database."""
    config = write_config(tmp_path, tmp_path, "http://127.0.0.1:9/v1")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["generate"]["openai"]["api_key_env"] = pasted
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = cli("run", str(config))
    assert result.exit_code == 2 and "api_key_env" in result.output and pasted not in result.output


def test_prefect_database_never_holds_the_key(reference: dict[str, Any]) -> None:
    """Every run of this module sent the sentinel key to the fake LLM; flows receive the redacted config, so the
    key is in no file of the Prefect server's database (nor the workdir or the version)."""
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    from flows.runtime import drain_logs

    drain_logs()
    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    assert url and url.startswith("sqlite+aiosqlite:///"), url
    database = Path(url.removeprefix("sqlite+aiosqlite:///"))
    files = [p for p in database.parent.iterdir() if p.is_file()]
    assert database in files and database.stat().st_size > 0
    leaks = [p.name for p in files if SENTINEL.encode() in p.read_bytes()]
    leaks += [
        str(p) for p in Path(reference["folder"]).rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()
    ]
    assert not leaks
    assert _flow_runs_recorded(database) > 0  # the database searched is the one the runs wrote to


def _flow_runs_recorded(database: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        (count,) = db.execute("select count(*) from flow_run").fetchone()
    return int(count)


def test_a_run_says_what_it_did(reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21, item 14: a deployed or scheduled run said nothing of what it did; a nothing-new run looked exactly
    like a publishing one in the Prefect UI. Now the Completed state's message, the run's log and its
    ``pairforge-outcome`` artifact say "published <name> vN" or "nothing new"."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, FlowFilter, FlowRunFilter, LogFilter

    from flows.pipeline import pipeline
    from flows.runtime import drain_logs

    config = str(Path(reference["config"]).resolve())
    monkeypatch.setattr(logging.getLogger("prefect.flow_runs"), "level", logging.INFO)  # the session says WARNING
    state = pipeline(config, return_state=True)  # what a scheduled run finds: every shard covered
    assert state.is_completed() and state.result()["new_shards"] == 0
    assert state.message.startswith(f"nothing new: {NAME} v1 already covers every input shard"), state.message
    drain_logs()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name={"any_": ["pipeline"]}))
        ours = sorted((r for r in runs if r.parameters.get("config_path") == config), key=lambda r: r.created)
        messages = [r.state.message for r in ours if r.state]
        examples = reference["result"]["examples"]  # per kind
        assert sum(examples.values()) > 0
        assert messages[0].startswith(f"published {NAME} v1: {sum(examples.values()):,} examples (")
        assert all(f"{kind} {n:,}" in messages[0] for kind, n in examples.items())
        assert messages[0].endswith(f") at {reference['result']['path']}")
        assert messages[-1] == state.message
        for run in (ours[0], ours[-1]):
            (artifact,) = client.read_artifacts(
                artifact_filter=ArtifactFilter(key={"any_": ["pairforge-outcome"]}),
                flow_run_filter=FlowRunFilter(id={"any_": [run.id]}),
            )
            assert artifact.data == f"**{run.state.message}**\n"
        logs = client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [ours[-1].id]}))
        assert state.message in [log.message for log in logs]
