"""Publishing: the manifest's hashes match the files, its segments and lineage match the run, nothing secret is
stored, a failed export leaves nothing visible, memory:// works, a later run's version is a complete dataset built
on its parent (shared files, dedup and negatives over the whole pool), coverage is exact, conflicts and empty runs
publish nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest
import rjieba

from pairforge.analysis import terms
from pairforge.export import ExportInputs, NothingToPublish, publish, run_export
from pairforge.export.publish import why_empty
from pairforge.human_counts import HUMAN_ROW
from pairforge.negatives import bm25, bm25_segment, index
from pairforge.negatives.reselect import run_reselect
from pairforge.plan import RunPlan, plan_run
from pairforge.stages import STAGE_NAMES
from pairforge.stats import StageStats
from pairforge.store import Store, VersionConflict, layout
from prompts import load_prompt
from tests.pairforge.export.conftest import Published
from tests.pairforge.export.conftest import publish as export_built
from tests.pairforge.export.workdir import COPIES, MODEL, SCORED, Built, build_workdir, make_config, write_inputs


def manifest_of(version: str | Path) -> dict:
    fs, root = fsspec.core.url_to_fs(str(version))
    return json.loads(fs.cat(f"{root}/manifest.json"))


def rehash(version: str | Path) -> dict[str, tuple[int, str]]:
    """Every file of a version but the manifest: (bytes, sha256), computed from what is stored."""
    fs, root = fsspec.core.url_to_fs(str(version))
    root = root.rstrip("/")
    found = {}
    for path in fs.find(root):
        relative = path[len(root) :].lstrip("/")
        if relative != "manifest.json":
            data = fs.cat(path)
            found[relative] = (len(data), hashlib.sha256(data).hexdigest())
    return found


def elsewhere(published: Published, store: str) -> Built:
    """The published run, exported to another store."""
    built = published.built
    return Built(built.config.model_copy(update={"store": store}), built.plan, built.funnel)


def pair_ids(version: str | Path) -> set[str]:
    return {
        i for f in Path(version).glob(f"{layout.EXAMPLES}/*.parquet") for i in pq.read_table(f)["pair_id"].to_pylist()
    }


def test_manifest_hashes_every_file(published: Published) -> None:
    recorded = {f["path"]: (f["bytes"], f["sha256"]) for f in published.manifest["files"]}
    assert recorded == rehash(published.version)
    pool = published.built.pool_key
    assert {"README.md", f"data/examples/{pool}-00000.parquet", f"index/passages/{pool}/meta.json",
            "plots/query_length.png", "delta/added.parquet"} <= set(recorded)  # fmt: skip


def test_manifest_segments_and_lineage(published: Published) -> None:
    manifest = published.manifest
    config, plan = published.config, published.built.plan
    assert (manifest["dataset"], manifest["version"], manifest["parent"]) == ("cmrc-test", 1, None)
    assert [s["key"] for s in manifest["segments"]] == plan.keys  # one segment per input shard
    for segment, shard in zip(manifest["segments"], plan.shards, strict=True):
        assert segment["input"] == {k: shard.shard.to_dict()[k] for k in ("path", "source", "sha256", "bytes")}
        assert (segment["fingerprint"], segment["settings"]) == (shard.fingerprint, shard.settings)
        assert (segment["complete"], segment["incomplete"], segment["version"]) == (True, {}, 1)
        assert segment["examples"] == dict(Counter(e["kind"] for e in published.examples(segment["key"])))
        assert all((published.version / f).is_file() for f in segment["files"])
    assert manifest["config_fingerprint"] == config.fingerprint()
    assert manifest["config"] == config.redacted()
    assert manifest["generation"]["prompts"] == [
        {"id": "qp/v1.zh", "sha256": load_prompt("qp").sha256},
        {"id": "sp/v1.zh", "sha256": load_prompt("sp").sha256},
    ]
    assert (manifest["generation"]["model"], manifest["generation"]["backend"]) == (MODEL, "vllm")
    assert manifest["generation"]["sampling"] == [config.generate.sampling.model_dump()]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    if head.returncode == 0:
        assert manifest["code_version"]["git_sha"] == head.stdout.strip()
    assert manifest["code_version"]["package"]
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    kinds = Counter(e["kind"] for e in published.examples())
    assert manifest["examples"] == dict(sorted(kinds.items())) and kinds["human"] == 10  # eval questions: none
    assert published.stats.output == sum(kinds.values()) == published.stats.input  # all new in v1


def test_manifest_funnel_is_the_stage_stats(published: Published) -> None:
    funnel = published.manifest["funnel"]
    assert [row["stage"] for row in funnel] == [*STAGE_NAMES[:-1], HUMAN_ROW, "export"]
    by_stage = {row["stage"]: row for row in funnel}
    humans = by_stage[HUMAN_ROW]  # ten training questions kept, the eval file's two held out
    assert (humans["in"], humans["out"], humans["dropped"]) == (12, 10, {"held_out_eval": 2})
    assert humans["details"]["scored_pairs"] == 2 * SCORED + 1  # STS-B's unlabelled row too: cosent counts it
    for stats in published.built.funnel:
        assert by_stage[stats.stage] == stats.to_dict()
    assert by_stage["filter"]["in"] == by_stage["generate"]["out"]
    assert by_stage["filter"]["in"] == by_stage["filter"]["out"] + sum(by_stage["filter"]["dropped"].values())
    export = by_stage["export"]
    assert export["out"] == sum(published.manifest["examples"].values())
    formats = published.manifest["formats"]  # rows per data and format file of the version
    assert export["details"]["formats"].items() <= formats.items()
    for relative, n in formats.items():
        path = published.version / relative
        rows = (
            pq.read_metadata(path).num_rows if path.suffix == ".parquet" else len(path.read_text("utf-8").splitlines())
        )
        assert rows == n, relative


def test_no_secrets_in_the_manifest(published: Published, tmp_path: Path) -> None:
    openai = published.config.generate.openai.model_copy(
        update={"api_key_env": "sk-live-0123456789abcdef", "base_url": "https://alice:s3cret@llm.example/v1"}
    )
    generate = published.config.generate.model_copy(update={"openai": openai})
    built = elsewhere(published, str(tmp_path / "store"))
    built = Built(built.config.model_copy(update={"generate": generate}), built.plan, built.funnel)
    _, version = export_built(built)
    text = (version / "manifest.json").read_text(encoding="utf-8")
    assert "sk-live-0123456789abcdef" not in text and "s3cret" not in text and "alice" not in text
    assert "sk-live" not in (version / "README.md").read_text(encoding="utf-8")
    openai_out = manifest_of(version)["config"]["generate"]["openai"]
    assert openai_out["base_url"] == "https://***@llm.example/v1"
    assert openai_out["api_key_env"] == "<redacted: not a variable name>"


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_a_failed_export_leaves_nothing_visible(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    url = str(tmp_path / "store") if kind == "local" else f"memory://fail-{uuid.uuid4().hex[:8]}"
    written: list[str] = []

    def crash(*_args: object, **_kwargs: object) -> str:
        written.extend(store.fs.find(store.root))  # data and formats are already in the staging folder
        raise RuntimeError("killed while writing the card")

    store = Store(url)
    monkeypatch.setattr(publish, "render_card", crash)
    with pytest.raises(RuntimeError, match="killed"):
        export_built(elsewhere(published, url))
    assert any("/.staging-" in p and f"/{layout.EXAMPLES}/" in p for p in written)
    assert store.versions("cmrc-test") == []
    assert [p for p in store.fs.find(store.root) if "cmrc-test" in p] == []  # no staging dir, no latest, no lock


def test_memory_store_end_to_end(published: Published) -> None:
    url = f"memory://store-{uuid.uuid4().hex[:8]}"
    built = elsewhere(published, url)
    stats, _ = export_built(built)
    version = stats.details["path"]
    assert version == f"memory:///{url.split('://')[1]}/cmrc-test/v1"
    recorded = {f["path"]: (f["bytes"], f["sha256"]) for f in manifest_of(version)["files"]}
    assert recorded == rehash(version) and f"index/passages/{built.pool_key}/signatures.u32" in recorded
    assert Store(url).fs.cat(f"{url.split('://')[1]}/cmrc-test/latest") == b"v1\n"  # latest, on an object store
    again = plan_run(built.config)  # coverage is read back from the remote manifest
    assert again.parent == 1 and again.todo == [] and len(again.carried) == len(built.plan.keys)


def test_a_later_run_is_a_complete_version_built_on_its_parent(
    published: Published, shared_data: Path, tmp_path: Path
) -> None:
    store_url = str(tmp_path / "store")
    first_stats, first = export_built(elsewhere(published, store_url))
    v1_ids, before = pair_ids(first), rehash(first)
    v1_passages = {i for f in first.glob(f"{layout.PASSAGES}/*.parquet") for i in pq.read_table(f)["id"].to_pylist()}

    # the next (incremental) run: paragraphs 100..160 (20 of them, the near-copies' originals and v1's evaluation
    # paragraphs among them, are in v1), the same scored pair files (covered)
    inputs = write_inputs(tmp_path / "inputs", shared_data, start=100, n_pool=60)
    config = make_config(tmp_path / "second", store_url, inputs, export=published.config.export.model_dump())
    built = build_workdir(config, shared_data)
    plan = built.plan
    assert plan.parent == 1 and [s.status for s in plan.shards] == ["new", "new", "covered", "covered"]
    assert len(plan.carried) == len(published.built.plan.keys) and len(plan.keys) == 2
    dedup = next(s for s in built.funnel if s.stage == "dedup-passages")
    assert dedup.dropped == {"seen_in_earlier_version": 20 + COPIES + 2}  # deduplicated against v1
    pool = next(s for s in built.funnel if s.stage == "index")
    assert pool.details["carried"] == len(v1_passages) and pool.output == len(v1_passages) + dedup.output
    stats, second = export_built(built)
    assert (stats.details["version"], stats.details["parent"]) == (2, 1)
    manifest = manifest_of(second)
    assert [s["version"] for s in manifest["segments"]] == [1, 1, 1, 1, 2, 2]  # the parent's, then this run's
    assert {s["key"] for s in manifest["segments"]} == set(published.built.plan.keys) | set(plan.keys)
    # a complete dataset: v1's examples (shared, not copied) and the new ones
    v2_ids = pair_ids(second)
    assert v1_ids < v2_ids and stats.output == len(v2_ids) == first_stats.output + stats.input
    assert manifest["delta"] == {"parent": 1, "added": len(v2_ids - v1_ids), "removed": 0}
    for f in first.glob(f"{layout.EXAMPLES}/*.parquet"):
        assert (second / layout.EXAMPLES / f.name).stat().st_ino == f.stat().st_ino  # hard links
    # negatives are mined over the whole pool: v1's passages too
    files = [
        f for f in (second / layout.EXAMPLES).glob("*.parquet") if not (first / layout.EXAMPLES / f.name).exists()
    ]
    new = [row for f in files for row in pq.read_table(f).to_pylist()]
    assert new and sum(pid in v1_passages for e in new for pid in e["negative_ids"]) > 0
    assert rehash(first) == before  # v1 is never rewritten
    assert plan_run(config).todo == []  # nothing new now


def test_a_shard_cut_by_limit_is_not_covered(shared_data: Path, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "inputs", shared_data, n_pool=30)
    config = make_config(tmp_path, str(tmp_path / "store"), inputs)
    built = build_workdir(config, shared_data, limit=10, plant=False)
    _, version = export_built(built)
    segments = {s["key"]: s for s in manifest_of(version)["segments"]}
    pool, evals = segments[built.plan.keys[0]], segments[built.plan.keys[1]]
    assert (pool["complete"], pool["incomplete"]) == (False, {"passages_left_by_limit": 30 - 10})  # copies out
    assert evals["incomplete"] == {"passages_left_by_limit": 2}  # the budget ran out before this shard
    again = plan_run(config)
    assert [s.status for s in again.shards] == ["incomplete", "incomplete", "covered", "covered"]
    assert "passages_left_by_limit 20" in again.shards[0].reason
    assert again.keys == built.plan.keys[:2] and len(again.carried) == 2


def test_a_concurrent_publisher_is_a_conflict_and_nothing_of_ours_appears(
    published: Published, tmp_path: Path
) -> None:
    built = elsewhere(published, str(tmp_path / "store"))
    export_built(built)  # another run published v1 while this one worked on the same plan (parent: none)
    store = Store(built.config.store)
    with pytest.raises(VersionConflict, match="built on no version, but v1 is the latest now"):
        export_built(built)
    assert store.versions("cmrc-test") == [1]
    assert [p for p in store.fs.ls(f"{store.root}/cmrc-test", detail=False) if ".staging" in p] == []
    replanned = plan_run(built.config, fresh=True)  # the pipeline plans again on the new latest and redoes it
    assert replanned.parent == 1 and replanned.carried == []
    stats = run_export(built.config, ExportInputs(replanned, built.funnel), built.workdir)
    assert (stats.details["version"], stats.details["parent"]) == (2, 1) and store.versions("cmrc-test") == [1, 2]


def test_nothing_to_publish_is_no_version(published: Published, tmp_path: Path) -> None:
    built = elsewhere(published, str(tmp_path / "store"))
    pairs_only = [s for s in built.plan.shards if s.shard.source in ("sts-b", "afqmc")]  # no example comes of them
    plan = RunPlan("cmrc-test", None, pairs_only, [])
    funnel = [
        StageStats("generate", "requests → pairs", 8, 6),
        StageStats("filter", "pairs", 6, 0, {"copied_from_passage": 5, "refusal": 1}),
    ]
    with pytest.raises(NothingToPublish) as info:
        run_export(built.config, ExportInputs(plan, funnel), built.workdir)
    assert str(info.value) == "nothing to publish: 0 pairs survived filter (copied_from_passage 5, refusal 1)"
    assert Store(built.config.store).versions("cmrc-test") == []


@pytest.mark.parametrize(
    ("funnel", "why"),
    [
        ([StageStats("ingest", "records → passages", 3, 0, {"invalid_json": 3})],
         "0 passages survived ingest (invalid_json 3)"),
        ([StageStats("ingest", "records → passages", 3, 3), StageStats("generate", "requests → pairs", 6, 0,
                                                                       {"backend_http_500": 4, "schema": 2})],
         "0 pairs survived generate (backend_http_500 4, schema 2)"),
        ([StageStats("ingest", "records → passages", 0, 0)], "no input produced an example"),
    ],
)  # fmt: skip
def test_why_empty_names_the_first_stage_that_let_nothing_through(funnel: list[StageStats], why: str) -> None:
    assert why_empty(funnel) == why


def test_reselect_reads_a_published_version_without_tokenising(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("reselect must not tokenise or index again")

    monkeypatch.setattr(index, "build_bm25_index", forbidden)
    monkeypatch.setattr(bm25.BM25Index, "open", forbidden)
    monkeypatch.setattr(bm25, "analyze_arrays", forbidden)
    monkeypatch.setattr(bm25_segment, "analyze_arrays", forbidden)
    monkeypatch.setattr(terms, "analyze_arrays", forbidden)
    monkeypatch.setattr(rjieba, "cut", forbidden)
    config = published.config.model_copy(update={"workdir": str(tmp_path / "reselect")})
    stats = run_reselect(config, published.version)
    candidates = sum(pq.read_metadata(f).num_rows for f in published.version.glob(f"{layout.CANDIDATES}/*.parquet"))
    assert stats.input == stats.output == candidates == sum(published.manifest["examples"].values())
    from pairforge.workdir import Workdir, shard_files

    out = Workdir(tmp_path / "reselect")
    for segment in published.segments():
        again = [r for f in shard_files(out.examples, segment) for r in pq.read_table(f).to_pylist()]
        stored = published.examples(segment)
        if segment == published.built.pool_key:  # the same selection, but for the two planted examples
            again, stored = [again[0], *again[3:]], [stored[0], *stored[3:]]
        assert again == stored
