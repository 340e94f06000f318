"""The filter stage on real CMRC passages: per-pair reasons, contamination, and the round trip over the pool's
BM25 index (the index stage's), every kept pair with its rank and score, the dropped ones with their reason."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filters.base import Pair, PairFilter
from filters.chain import build_filters
from pairforge.config import RunConfig
from pairforge.filter import run_filter
from pairforge.mapping import ShardInputs
from pairforge.negatives.index import IndexInputs, run_index
from pairforge.records import DROPPED_SCHEMA, FILTERED_PAIR_SCHEMA
from pairforge.shards import read_shard_table
from pairforge.workdir import Workdir, shard_files
from tests.pairforge.stage_outputs import pair_row, passage_row, write_deduplicated, write_generated

SHARD = "cmrc0000aaaabbbb"


@pytest.fixture(scope="module")
def filtered(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Workdir, object]:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]][:200]
    trial = json.loads((shared_data / "cmrc2018" / "cmrc2018_trial.squad.json").read_text(encoding="utf-8"))
    leaked = trial["data"][0]["paragraphs"][0]["qas"][0]["question"]
    workdir = Workdir(tmp_path_factory.mktemp("filter") / "w")
    config = RunConfig.model_validate(
        {
            "workdir": str(workdir.root),
            "corpora": [{"format": "jsonl", "path": "x"}],
            "filter": {
                "consistency_top_k": 5,
                "contamination": [
                    {"format": "squad", "path": str(shared_data / "cmrc2018" / "cmrc2018_trial.squad.json")}
                ],
            },
        }
    )
    write_deduplicated(config, workdir, SHARD, [passage_row(p["id"], p["context"]) for p in paragraphs])
    run_index(config, IndexInputs([SHARD]), workdir)

    def pair(i: int, query: str, passage: int, evidence: str | None = None) -> dict:
        p = paragraphs[passage]
        return pair_row(f"q{i}", query, p["id"], p["context"], evidence or p["qas"][0]["answers"][0]["text"])

    pairs = [pair(i, p["qas"][0]["question"], i) for i, p in enumerate(paragraphs[:20])]  # real questions
    pairs.append(pair(100, paragraphs[1]["qas"][0]["question"], 7))  # a question asked of the wrong passage
    pairs.append(pair(101, leaked, 3))  # an evaluation question
    pairs.append(pair(102, "好", 4))  # too short
    pairs.append(pair(103, paragraphs[5]["qas"][0]["question"], 5, evidence="文中没有这句话"))  # invented evidence
    write_generated(workdir, SHARD, pairs)
    return config, workdir, run_filter(config, ShardInputs([SHARD]), workdir, build_filters=build_filters)


def test_filter_stage_reasons_and_counts(filtered: tuple) -> None:
    _, workdir, stats = filtered
    dropped = {r["id"]: r["reason"] for r in read_shard_table(workdir.dropped, SHARD).to_pylist()}
    assert dropped["q100"] == "not_retrievable"
    assert dropped["q101"] == "contaminated"
    assert dropped["q102"] == "query_too_short"
    assert dropped["q103"] == "evidence_not_found"
    assert stats.input == 24 and stats.output + sum(stats.dropped.values()) == 24
    assert stats.dropped == dict(sorted((r, list(dropped.values()).count(r)) for r in set(dropped.values())))
    kept = read_shard_table(workdir.filtered, SHARD).to_pylist()
    assert len(kept) == stats.output >= 17  # real questions almost always find their passage in BM25's top 5
    assert all(1 <= r["consistency_rank"] <= 5 and r["consistency_score"] > 0 for r in kept)
    assert {r["id"] for r in kept}.isdisjoint(dropped)
    for f in shard_files(workdir.filtered, SHARD):
        assert pq.read_schema(f).remove_metadata().equals(FILTERED_PAIR_SCHEMA)
    for f in shard_files(workdir.dropped, SHARD):
        assert pq.read_schema(f).remove_metadata().equals(DROPPED_SCHEMA)


def test_a_fresh_rerun_gives_the_same_pairs_and_one_rank_column(filtered: tuple) -> None:
    config, workdir, stats = filtered
    before = {f.name: f.read_bytes() for f in workdir.filtered.glob("*.parquet")}
    again = run_filter(config, ShardInputs([SHARD]), workdir, build_filters=build_filters, fresh=True)
    assert again.to_dict() | {"seconds": 0} == stats.to_dict() | {"seconds": 0}
    assert {f.name: f.read_bytes() for f in workdir.filtered.glob("*.parquet")} == before  # no column added twice


def test_a_filter_giving_an_undeclared_reason_is_an_error() -> None:
    class Sloppy(PairFilter):
        reasons = ("too_long",)

        def check(self, pairs: Sequence[Pair]) -> list[str | None]:
            return ["too_long" if len(p["query"]) > 3 else "bad_luck" for p in pairs]

    pairs = [{"query": "长江有多长"}, {"query": "长江"}]
    with pytest.raises(ValueError, match="Sloppy gave an undeclared drop reason 'bad_luck'"):
        Sloppy().apply(pairs, [None, None])
    declared = Sloppy()
    why: list[str | None] = [None, "query_too_short"]  # an earlier filter's verdict stands
    declared.apply(pairs, why)
    assert why == ["too_long", "query_too_short"] and declared.dropped == {"too_long": 1}


def test_restatements_keep_the_evidence_they_restate(tmp_path: Path) -> None:
    """A restatement of the target's neighbour is kept with the neighbour's offsets (in filter/pairs and in the
    long-text count, past ``window.long_chars`` here), an invented number is dropped as unsupported."""
    head = "赵州桥位于河北省赵县城南的洨河之上。" + "这座桥经历了多次地震和洪水的考验。" * 5
    neighbour = "它建于隋朝大业年间，由匠师李春设计建造。"
    passage = head + neighbour + "桥长五十多米，只有一个大拱。"
    workdir = Workdir(tmp_path / "w")
    config = RunConfig.model_validate(
        {
            "workdir": str(workdir.root),
            "corpora": [{"format": "jsonl", "path": "x"}],
            "window": {"long_chars": len(head)},
            "filter": {"consistency_top_k": None},
        }
    )
    first = "赵州桥位于河北省赵县城南的洨河之上。"
    pairs = [
        pair_row("s1", "赵州桥是隋朝匠师李春设计建造的。", "p", passage, first, kind="sp", evidence_method="target"),
        pair_row("s2", "赵州桥坐落在河北赵县的洨河上。", "p", passage, first, kind="sp", evidence_method="target"),
        pair_row("s3", "赵州桥建于2021年，由李春设计。", "p", passage, first, kind="sp", evidence_method="target"),
    ]
    write_generated(workdir, SHARD, pairs)
    stats = run_filter(config, ShardInputs([SHARD]), workdir, build_filters=build_filters)
    kept = {r["id"]: r for r in read_shard_table(workdir.filtered, SHARD).to_pylist()}
    assert set(kept) == {"s1", "s2"} and stats.dropped == {"unsupported": 1}
    start = passage.index(neighbour)
    assert (kept["s1"]["evidence_start"], kept["s1"]["evidence_end"]) == (start, start + len(neighbour))
    assert kept["s1"]["evidence"] == neighbour and kept["s1"]["evidence_method"] == "located"
    assert (kept["s2"]["evidence_start"], kept["s2"]["evidence_method"]) == (0, "target")
    assert stats.details == {"evidence_relocated": 1, "long_passage_pairs": 2, "evidence_past_long": 1}
