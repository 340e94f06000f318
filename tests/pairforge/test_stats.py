"""StageStats: the JSON form round-trips, shard stats add up, flags hold only if they hold for every shard."""

from __future__ import annotations

from pathlib import Path

from pairforge.stats import StageStats, add_details, combine


def test_json_round_trip_and_zero_drops_left_out(tmp_path: Path) -> None:
    stats = StageStats("filter", "pairs", input=10, output=7, details={"k": 1}, seconds=1.23456)
    stats.drop("copied_from_passage", 2)
    stats.drop("too_short", 1)
    stats.drop("never", 0)
    data = stats.to_dict()
    assert data == {"stage": "filter", "unit": "pairs", "in": 10, "out": 7, "details": {"k": 1}, "seconds": 1.235,
                    "dropped": {"copied_from_passage": 2, "too_short": 1}}  # fmt: skip
    stats.save(tmp_path / "s" / "stats.json")
    assert StageStats.load(tmp_path / "s" / "stats.json").to_dict() == data


def test_shards_add_up() -> None:
    a = StageStats("generate", "requests", 4, 6, {"x": 1}, {"tokens": 10, "by_kind": {"qp": 3}, "complete": True})
    b = StageStats("generate", "requests", 2, 1, {"x": 2, "y": 1}, {"tokens": 5, "by_kind": {"qp": 1, "sp": 1},
                                                                     "complete": False})  # fmt: skip
    total = combine("generate", "requests", [a, b], seconds=3.0)
    assert (total.input, total.output, total.dropped, total.seconds) == (6, 7, {"x": 3, "y": 1}, 3.0)
    assert total.details == {"tokens": 15, "by_kind": {"qp": 4, "sp": 1}, "complete": False}


def test_details_merge_lists_and_keep_the_first_of_other_values() -> None:
    merged = add_details({"inputs": [1], "model": "a"}, {"inputs": [2], "model": "b"})
    assert merged == {"inputs": [1, 2], "model": "a"}
