"""Mining on real CMRC passages: the gold passage and its planted near-twin are never negatives."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from pairforge.cli import app


def test_mine_cli_guards_positives_and_near_duplicates(shared_data: Path, tmp_path: Path) -> None:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]][:150]
    pool = [{"id": p["id"], "text": p["context"]} for p in paragraphs]
    twin = paragraphs[0]["context"]
    pool.append({"id": "TWIN", "text": twin[:-3] + "。"})  # a near-duplicate of the first gold passage
    workdir = tmp_path / "w"
    (workdir / "passages").mkdir(parents=True)
    (workdir / "pairs").mkdir()
    pq.write_table(pa.Table.from_pylist(pool), workdir / "passages" / "passages-00000.parquet")
    pairs = [
        {"id": f"q{i}", "kind": "qp", "query": q["question"], "passage_id": p["id"]}
        for i, p in enumerate(paragraphs[:40])
        for q in p["qas"][:1]
    ]
    pq.write_table(pa.Table.from_pylist(pairs), workdir / "pairs" / "generated-00000.parquet")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"workdir: {workdir}\ncorpora:\n  - {{format: jsonl, path: x}}\n"
        "mine: {range_max: 30, num_negatives: 5, relative_margin: 0.05}\n"
    )
    result = CliRunner().invoke(app, ["mine", str(config), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["queries"] == 40
    assert summary["skipped"].get("positive", 0) >= 30  # BM25 ranks most gold passages in the top 30
    assert summary["positive_score_mean"] > summary["negative_score_mean"]
    examples = pq.read_table(workdir / "examples" / "examples.parquet").to_pylist()
    by_pair = {e["pair_id"]: e for e in examples}
    assert twin[:-3] + "。" not in by_pair["q0"]["neg"]  # the twin of q0's positive is guarded
    for e in examples:
        assert e["pos"][0] not in e["neg"] and len(e["neg"]) <= 5
        assert all(s <= 0.95 * e["pos_scores"][0] + 1e-9 for s in e["neg_scores"])  # relative margin
    candidates = pq.read_table(workdir / "candidates" / "candidates.parquet")
    assert candidates.num_rows == 40 and all(len(ids) == 30 for ids in candidates["ids"].to_pylist())


def test_near_duplicate_guard_without_a_margin(shared_data: Path, tmp_path: Path) -> None:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]][:60]
    twin = paragraphs[0]["context"][:-3] + "。"
    workdir = tmp_path / "w"
    (workdir / "passages").mkdir(parents=True)
    (workdir / "pairs").mkdir()
    pool = [{"id": p["id"], "text": p["context"]} for p in paragraphs] + [{"id": "TWIN", "text": twin}]
    pq.write_table(pa.Table.from_pylist(pool), workdir / "passages" / "passages-00000.parquet")
    pair = {"id": "q0", "kind": "qp", "query": paragraphs[0]["qas"][0]["question"], "passage_id": paragraphs[0]["id"]}
    pq.write_table(pa.Table.from_pylist([pair]), workdir / "pairs" / "generated-00000.parquet")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"workdir: {workdir}\ncorpora:\n  - {{format: jsonl, path: x}}\n"
        "mine: {range_max: 20, num_negatives: 5, relative_margin: null}\n"
    )
    result = CliRunner().invoke(app, ["mine", str(config), "--json"])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["skipped"] == {"positive": 1, "near_duplicate_of_positive": 1}
    assert twin not in pq.read_table(workdir / "examples" / "examples.parquet").to_pylist()[0]["neg"]
