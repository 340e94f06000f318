"""A JSON-array dump with broken records (issue 21 item 7): the records after a broken one are read, the broken
one is quarantined and counted, and a shard whose reading stopped (records lost) is never complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pairforge.config import RunConfig, WudaoCorpus
from pairforge.corpora import read_shard
from pairforge.ingest import run_ingest
from pairforge.records import Document, Rejected

TEXT = "长江是中国第一长河。它发源于青藏高原，流经十一个省级行政区，最后注入东海。"


def record(i: int) -> str:
    return json.dumps({"id": f"r{i}", "title": "标题", "content": f"第{i}篇。{TEXT}"}, ensure_ascii=False)


BROKEN = {
    "syntax": '{"id": "bad", "content": "x" "y"}',  # balanced, but no comma between two strings
    "unclosed_string": '{"id": "bad", "content": "never closed}',
    "unclosed_object": '{"id": "bad", "content": "x"',
    "bare_word": '{"id": bad, "content": "x"}',
}


def dump(records: list[str], *, wrapped: bool = False, cut: bool = False) -> str:
    body = "[\n" + ",\n".join(records) + ("" if cut else "\n]")
    return '{"RECORDS": ' + body + ("" if cut else "}") if wrapped else body


def read(path: Path) -> tuple[list[str], list[Rejected]]:
    records = list(read_shard(str(path), WudaoCorpus(format="wudao", path="")))
    docs = [r.id.split(":")[1] for r in records if isinstance(r, Document)]
    return docs, [r for r in records if isinstance(r, Rejected)]


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_records_after_a_broken_one_are_recovered(tmp_path: Path, kind: str, wrapped: bool) -> None:
    path = tmp_path / "dump.json"
    path.write_text(dump([record(1), record(2), BROKEN[kind], record(4), record(5)], wrapped=wrapped), "utf-8")
    docs, rejected = read(path)
    assert docs == ["r1", "r2", "r4", "r5"]
    assert [(r.reason, r.record) for r in rejected] == [("invalid_json", 3)]
    assert "bad" in rejected[0].raw


def test_two_broken_records_cost_two_records(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    records = [record(1), BROKEN["unclosed_string"], record(3), BROKEN["syntax"], record(5)]
    path.write_text(dump(records), "utf-8")
    docs, rejected = read(path)
    assert docs == ["r1", "r3", "r5"] and [r.record for r in rejected] == [2, 4]


def config(tmp_path: Path, text: str) -> RunConfig:
    path = tmp_path / "dump.json"
    path.write_text(text, "utf-8")
    return RunConfig.model_validate(
        {
            "workdir": str(tmp_path / "work"),
            "corpora": [{"format": "wudao", "path": str(path)}],
            "window": {"max_length": 512, "min_length": 16, "long_short_ratio": None},
        }
    )


def test_a_broken_record_is_counted_and_the_shard_stays_complete(tmp_path: Path) -> None:
    stats = run_ingest(config(tmp_path, dump([record(1), BROKEN["syntax"], record(3)])))
    assert stats.details["documents"] == 2 and stats.dropped["invalid_json"] == 1
    assert stats.details["complete"] and stats.details["stopped_reading"] == 0


def test_a_cut_dump_is_never_complete(tmp_path: Path) -> None:
    text = dump([record(1), record(2), record(3)], cut=True)[:-20]  # the file ends inside record 3
    stats = run_ingest(config(tmp_path, text))
    assert stats.details["documents"] == 2 and stats.details["stopped_reading"] == 1
    assert not stats.details["complete"] and not any(i["complete"] for i in stats.details["inputs"])
