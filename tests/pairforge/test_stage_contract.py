"""The stage contract (issue 12), stage by stage, on one small real workdir: WuDao documents in two input shards and
a CMRC subset with human questions, every stage run as the pipeline runs it (``flows.stages.run_stage``: inputs from
``stage_inputs``) over a real run plan, the LLM stage against the project's fake OpenAI-compatible server.

For every stage: it writes only its own folder (its inputs, the upstream folders and the corpus, keep their bytes
and times), its shards have the stage's Arrow schema and are named after their input shard, its StageStats add up
and are saved as ``<stage>/stats.json``, a rerun returns the recorded stats without rewriting a file, and
``fresh=True`` rewrites the outputs with the same bytes. A changed filter setting reruns filter and what follows,
and sends no LLM request."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.stages import run_stage as run_wired_stage
from pairforge.config import RunConfig
from pairforge.generation.ledger import Ledger
from pairforge.plan import RunPlan, plan_run
from pairforge.pool import Pool
from pairforge.records import (
    CANDIDATE_SCHEMA,
    DROPPED_SCHEMA,
    EXAMPLE_SCHEMA,
    FILTERED_PAIR_SCHEMA,
    HUMAN_PAIR_SCHEMA,
    JUDGED_PAIR_SCHEMA,
    PAIR_SCHEMA,
    PASSAGE_SCHEMA,
)
from pairforge.stages import STAGE_NAMES
from pairforge.stats import StageStats
from pairforge.store import Store, VersionConflict
from pairforge.testing.fake_llm import FakeLLM
from pairforge.workdir import Workdir

STAGES = STAGE_NAMES[:-1]  # export publishes a version: its own tests below
OUTPUTS = {  # the Workdir folders a stage writes, with their schema
    "ingest": (("ingested", PASSAGE_SCHEMA), ("human_pairs", HUMAN_PAIR_SCHEMA)),
    "dedup-passages": (("passages", PASSAGE_SCHEMA),),
    "index": (),
    "generate": (("generated", PAIR_SCHEMA),),
    "filter": (("filtered", FILTERED_PAIR_SCHEMA), ("dropped", DROPPED_SCHEMA)),
    "judge": (("judged", JUDGED_PAIR_SCHEMA), ("judge_dropped", DROPPED_SCHEMA)),
    "dedup-pairs": (("pairs", JUDGED_PAIR_SCHEMA),),
    "mine": (("candidates", CANDIDATE_SCHEMA),),
    "select": (("examples", EXAMPLE_SCHEMA),),
}
ALSO_WRITES = {"generate": ("cache/ledger",)}  # besides its own folder (the ledger is a cache, not an output)
Snapshot = dict[str, tuple[int, str]]  # relative path → (mtime_ns, sha256)
# Timings, and generate's counts of what this run sent (a rerun's say 0: the ledger had every answer).
TIMINGS = ("seconds", "send_seconds", "sent", "reasked", "tokens_out_sent")


def snapshot(*roots: Path) -> Snapshot:
    found = {}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            found[f"{root.name}/{path.relative_to(root)}"] = (path.stat().st_mtime_ns, _sha(path))
    return found


def _sha(path: Path) -> str:
    """The file's sha256; for a stage's records (``stats.json``, ``_done/``), of its JSON without the timings."""
    if path.suffix == ".json" and (path.name == "stats.json" or path.parent.name == "_done"):
        record = _timeless(json.loads(path.read_text(encoding="utf-8")))
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _timeless(value: object) -> object:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in TIMINGS}
    return value


def same_stats(a: StageStats, b: StageStats) -> bool:
    """Equal but for timings and what this run sent to the LLM (a rerun of generate sends nothing)."""
    return _timeless(a.to_dict()) == _timeless(b.to_dict())


def changed(before: Snapshot, after: Snapshot) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def own(stage: str, path: str) -> bool:
    """Whether ``path`` (``work/...``) is one the stage may write."""
    inside = path.split("/", 1)[1] if path.startswith("work/") else ""
    return inside.startswith((f"{stage}/", ".scratch/", *ALSO_WRITES.get(stage, ())))


def run_stage(name: str, config: RunConfig, plan: RunPlan, *, fresh: bool = False) -> StageStats:
    """One stage over the plan, as ``flows.pipeline.run_stages`` runs it (inputs from ``stage_inputs``)."""
    return run_wired_stage(name, config, plan, Workdir(config.workdir), fresh=fresh)


@dataclass
class Run:
    config: RunConfig
    plan: RunPlan
    llm: FakeLLM
    corpus: Path
    stats: dict[str, StageStats] = field(default_factory=dict)
    before: dict[str, Snapshot] = field(default_factory=dict)
    after: dict[str, Snapshot] = field(default_factory=dict)

    @property
    def workdir(self) -> Workdir:
        return Workdir(self.config.workdir)

    def snapshot(self) -> Snapshot:
        return snapshot(self.corpus, self.workdir.root)

    def rows(self, folder: Path) -> int:
        return sum(pq.read_metadata(f).num_rows for f in folder.glob("*.parquet"))


def write_corpus(shared_data: Path, folder: Path) -> None:
    """The WuDao sample as two input shards, and 12 CMRC paragraphs with a human question each (role train)."""
    folder.mkdir(parents=True)
    lines = (shared_data / "wudao" / "wudao_demo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    for i in range(2):
        (folder / f"wudao-{i}.jsonl").write_text("".join(lines[i::2]), encoding="utf-8")
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    articles = [{**a, "paragraphs": [{**p, "qas": p["qas"][:1]} for p in a["paragraphs"]]} for a in data["data"][:12]]
    (folder / "cmrc.json").write_text(json.dumps({"data": articles}, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("contract")
    corpus = tmp / "corpus"
    write_corpus(shared_data, corpus)
    with FakeLLM() as llm:
        config = RunConfig.model_validate({
            "name": "contract", "workdir": str(tmp / "work"), "store": str(tmp / "store"),
            "corpora": [{"format": "wudao", "path": str(corpus / "wudao-*.jsonl")},
                        {"format": "squad", "path": str(corpus / "cmrc.json"), "role": "train"}],
            "window": {"max_length": 600, "min_length": 64},
            "generate": {"backend": "openai", "model": "test-model",
                         "openai": {"base_url": llm.base_url, "concurrency": 4, "timeout_s": 10}},
            "mine": {"range_max": 20, "num_negatives": 3},
        })  # fmt: skip
        plan = plan_run(config)
        plan.save(Workdir(config.workdir).plan)
        built = Run(config, plan, llm, corpus)
        for stage in STAGES:
            built.before[stage] = built.snapshot()
            built.stats[stage] = run_stage(stage, config, plan)
            built.after[stage] = built.snapshot()
        yield built


def test_the_plan_processes_every_input_shard(run: Run) -> None:
    assert [s.status for s in run.plan.shards] == ["new", "new", "new"] and len(set(run.plan.keys)) == 3
    assert run.llm.received == run.stats["generate"].details["sent"] > 0


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_writes_only_its_own_folder(run: Run, stage: str) -> None:
    touched = changed(run.before[stage], run.after[stage])
    assert touched and all(own(stage, p) for p in touched), sorted(p for p in touched if not own(stage, p))
    assert any(p.startswith(f"work/{stage}/") for p in touched)


@pytest.mark.parametrize("stage", [s for s in STAGES if OUTPUTS[s]])
def test_output_shards_have_the_stage_schema(run: Run, stage: str) -> None:
    for attr, schema in OUTPUTS[stage]:
        files = sorted(getattr(run.workdir, attr).glob("*.parquet"))
        assert {f.name.rsplit("-", 1)[0] for f in files} == set(run.plan.keys), attr  # a shard per input shard
        for f in files:
            assert pq.read_schema(f).remove_metadata().equals(schema), f.name


@pytest.mark.parametrize("stage", STAGES)
def test_stats_are_saved_as_returned(run: Run, stage: str) -> None:
    assert StageStats.load(run.workdir.stats(stage)).to_dict() == run.stats[stage].to_dict()
    assert run.stats[stage].stage == stage and run.stats[stage].seconds > 0


def test_stage_stats_add_up(run: Run) -> None:
    s, w = run.stats, run.workdir
    ingest = s["ingest"]
    d = ingest.details
    assert ingest.input == d["documents"] + d["human_pairs"] + d["quarantined"] and d["quarantined"] == 0
    assert d["windows"] == ingest.output + ingest.dropped.get("sampled_out", 0) and ingest.dropped["sampled_out"] > 0
    assert ingest.output == run.rows(w.ingested) and d["human_pairs"] == run.rows(w.human_pairs) == 12
    for name in ("dedup-passages", "filter", "judge", "dedup-pairs"):
        stats = s[name]
        assert stats.input == stats.output + sum(stats.dropped.values()), name
    assert s["dedup-passages"].input == ingest.output and s["dedup-passages"].output == run.rows(w.passages)
    assert s["index"].input == s["index"].output == s["dedup-passages"].output == Pool(w.pool).size
    generate = s["generate"]
    assert generate.input == generate.details["requests"] == 2 * s["dedup-passages"].output  # qp and sp
    assert generate.details["answered"] == generate.input and generate.details["complete"]
    assert generate.output == run.rows(w.generated) == sum(generate.details["pairs_by_kind"].values())
    assert s["filter"].input == generate.output and s["filter"].output == run.rows(w.filtered)
    assert run.rows(w.dropped) == sum(s["filter"].dropped.values())
    reasons = pa.concat_tables(pq.read_table(f) for f in w.dropped.glob("*.parquet"))["reason"].to_pylist()
    assert {r: reasons.count(r) for r in set(reasons)} == s["filter"].dropped
    assert s["judge"].input == s["judge"].output == s["filter"].output == run.rows(w.judged)  # the judge is off
    assert s["dedup-pairs"].input == s["judge"].output and s["dedup-pairs"].output == run.rows(w.pairs)
    assert s["mine"].input == s["mine"].output == s["dedup-pairs"].output + 12 == run.rows(w.candidates)
    assert s["select"].input == s["select"].output == s["mine"].output == run.rows(w.examples)


@pytest.mark.parametrize("stage", STAGES)
def test_a_rerun_returns_the_recorded_stats_and_rewrites_nothing(run: Run, stage: str) -> None:
    before, sent = run.snapshot(), run.llm.received
    again = run_stage(stage, run.config, run.plan)
    assert same_stats(again, run.stats[stage])
    assert again.details.get("sent", 0) == 0 and run.llm.received == sent
    after = run.snapshot()
    assert {p: v[1] for p, v in after.items()} == {p: v[1] for p, v in before.items()}
    rewritten = {p for p in changed(before, after) if p != f"work/{stage}/stats.json"}  # the stats are saved again
    assert rewritten == set()


@pytest.mark.parametrize("stage", STAGES)
def test_fresh_recomputes_the_same_bytes(run: Run, stage: str) -> None:
    before, sent = run.snapshot(), run.llm.received
    again = run_stage(stage, run.config, run.plan, fresh=True)
    after = run.snapshot()
    assert same_stats(again, run.stats[stage])
    rewritten = {p for p in before if p in after and before[p][0] != after[p][0]}
    outputs = tuple(f"work/{getattr(run.workdir, a).relative_to(run.workdir.root)}/" for a, _ in OUTPUTS[stage])
    assert any(p.startswith(outputs or (f"work/{stage}/",)) for p in rewritten)  # it did the work again
    assert all(own(stage, p) for p in rewritten)
    assert {p: v[1] for p, v in after.items()} == {p: v[1] for p, v in before.items()}  # the same bytes
    assert run.llm.received == sent  # the ledger answers: fresh never pays for a request twice


def test_export_publishes_a_complete_version_and_a_stale_plan_conflicts(run: Run) -> None:
    before = run.snapshot()
    stats = run_stage("export", run.config, run.plan)
    assert changed(before, run.snapshot()) == set()  # export reads the workdir, writes the store
    assert (stats.input, stats.output) == (run.stats["select"].output, run.stats["select"].output)
    manifest = json.loads((Path(stats.details["path"]) / "manifest.json").read_text(encoding="utf-8"))
    assert [s["key"] for s in manifest["segments"]] == run.plan.keys and all(
        s["complete"] for s in manifest["segments"]
    )
    assert sum(manifest["examples"].values()) == stats.output
    with pytest.raises(VersionConflict):  # the same plan again would duplicate v1: refused
        run_stage("export", run.config, run.plan)
    assert Store(run.config.store).versions("contract") == [1]
    assert plan_run(run.config).todo == []  # every shard is covered now


def test_a_changed_filter_setting_reruns_filter_onwards_and_sends_no_request(run: Run, tmp_path: Path) -> None:
    shutil.copytree(run.workdir.root, tmp_path / "work")  # copy2: times kept, so "not rewritten" is visible
    config = run.config.model_copy(
        update={
            "workdir": str(tmp_path / "work"),
            "filter": run.config.filter.model_copy(update={"query_min_chars": 9}),
        }
    )
    workdir = Workdir(config.workdir)
    ledger = Ledger(workdir.ledger)
    answers = ledger.count()
    sent = run.llm.received
    rerun = {}
    for stage in STAGES:
        before = snapshot(workdir.root)
        stats = run_stage(stage, config, run.plan)
        rerun[stage] = bool(changed(before, snapshot(workdir.root)) - {f"work/{stage}/stats.json"})
        if stage in ("ingest", "dedup-passages", "index", "generate"):
            assert same_stats(stats, run.stats[stage]), stage
    assert rerun == {s: s in ("filter", "judge", "dedup-pairs", "mine", "select") for s in STAGES}
    assert run.llm.received == sent and ledger.count() == answers  # no request sent, the answers stay
    ledger.close()
    filtered = StageStats.load(workdir.stats("filter"))
    assert filtered.input == run.stats["filter"].input
    assert filtered.dropped["query_too_short"] > run.stats["filter"].dropped.get("query_too_short", 0)
    assert filtered.output < run.stats["filter"].output
    assert StageStats.load(workdir.stats("select")).output < run.stats["select"].output


def test_a_lost_store_is_republished_from_the_warm_workdir(run: Run, tmp_path: Path) -> None:
    """Issue 13 #9: the store is gone (here: another, empty one), the workdir is warm: every shard is new again,
    no stage redoes any work or sends a request, and export publishes the same examples as v1."""
    config = run.config.model_copy(update={"store": str(tmp_path / "store")})
    plan = plan_run(config)
    assert plan.parent is None and [s.status for s in plan.shards] == ["new"] * 3 and plan.keys == run.plan.keys
    before, sent = run.snapshot(), run.llm.received
    for stage in STAGES:
        run_stage(stage, config, plan)
    rewritten = {p for p in changed(before, run.snapshot()) if not p.endswith("/stats.json")}
    assert rewritten == set() and run.llm.received == sent
    stats = run_stage("export", config, plan)
    assert stats.details["version"] == 1 and stats.output == run.stats["select"].output
    latest = tmp_path / "store" / "contract" / "latest"  # a path a training job can use as it is
    assert latest.is_symlink() and (latest / "manifest.json").is_file() and any((latest / "flagembedding").iterdir())
