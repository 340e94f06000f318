"""The filter stage on real CMRC passages: per-pair reasons, contamination, and the BM25 round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from filters.run import run_filter
from pairforge.config import RunConfig


def test_filter_stage(shared_data: Path, tmp_path: Path) -> None:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]][:200]
    workdir = tmp_path / "w"
    (workdir / "passages").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([{"id": p["id"], "text": p["context"]} for p in paragraphs]),
        workdir / "passages" / "passages-00000.parquet",
    )
    trial = json.loads((shared_data / "cmrc2018" / "cmrc2018_trial.squad.json").read_text(encoding="utf-8"))
    leaked = trial["data"][0]["paragraphs"][0]["qas"][0]["question"]

    def pair(i: int, query: str, passage: int) -> dict:
        return {
            "id": f"q{i}",
            "query": query,
            "passage_id": paragraphs[passage]["id"],
            "positive": paragraphs[passage]["context"],
        }

    pairs = [pair(i, p["qas"][0]["question"], i) for i, p in enumerate(paragraphs[:20])]  # real questions
    pairs.append(pair(100, paragraphs[1]["qas"][0]["question"], 7))  # a question asked of the wrong passage
    pairs.append(pair(101, leaked, 3))  # an evaluation question
    pairs.append(pair(102, "好", 4))  # too short
    (workdir / "pairs").mkdir()
    pq.write_table(pa.Table.from_pylist(pairs), workdir / "pairs" / "generated-00000.parquet")
    config = RunConfig.model_validate(
        {
            "workdir": str(workdir),
            "corpora": [{"format": "jsonl", "path": "x"}],
            "filter": {
                "consistency_top_k": 5,
                "contamination": [
                    {"format": "squad", "path": str(shared_data / "cmrc2018" / "cmrc2018_trial.squad.json")}
                ],
            },
        }
    )
    summary = run_filter(config)
    dropped = {r["id"]: r["reason"] for r in pq.read_table(workdir / "filtered" / "dropped.parquet").to_pylist()}
    assert dropped["q100"] == "not_retrievable"
    assert dropped["q101"] == "contaminated"
    assert dropped["q102"] == "query_too_short"
    assert summary.input == 23 and summary.kept + sum(summary.dropped.values()) == 23
    kept = pq.read_table(workdir / "pairs").to_pylist()
    assert len(kept) >= 17  # real questions almost always find their passage in BM25's top 5
    assert all(1 <= r["consistency_rank"] <= 5 and r["consistency_score"] > 0 for r in kept)
