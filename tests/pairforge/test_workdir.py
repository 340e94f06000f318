"""The Workdir: every stage output under its own stage folder, and completion records keyed by task key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pairforge.stages import STAGE_NAMES
from pairforge.stats import StageStats
from pairforge.workdir import Workdir, shard_files, shard_path, task_key


def test_no_stage_output_lies_in_another_stages_folder(tmp_path: Path) -> None:
    workdir = Workdir(tmp_path)
    owner = {}
    for name in dir(Workdir):
        value = getattr(workdir, name)
        if isinstance(value, Path) and value.is_relative_to(tmp_path) and value.parent.parent == tmp_path:
            owner[name] = value.parent.name
    assert set(owner.values()) <= set(STAGE_NAMES) | {"cache"}
    # every stage after ingest reads the folder of the stage before it and writes only its own
    assert owner["ingested"] == "ingest" and owner["passages"] == "dedup-passages"
    assert owner["generated"] == "generate" and owner["filtered"] == "filter" and owner["pairs"] == "dedup-pairs"
    assert owner["judged"] == owner["judge_dropped"] == "judge"
    assert owner["candidates"] == "mine" and owner["examples"] == "select"


def test_completion_records_hold_only_under_the_same_key(tmp_path: Path) -> None:
    workdir = Workdir(tmp_path)
    stats = StageStats("filter", "pairs", 3, 2)
    assert workdir.finished("filter", "abc", "k1") is None
    workdir.mark_done("filter", "abc", "k1", stats)
    assert workdir.finished("filter", "abc", "k1").to_dict() == stats.to_dict()  # type: ignore[union-attr]
    assert workdir.finished("filter", "abc", "k2") is None  # other settings or inputs: not done
    assert workdir.key_of("filter", "abc") == "k1"
    workdir.forget("filter", "abc")
    assert workdir.finished("filter", "abc", "k1") is None
    with pytest.raises(FileNotFoundError, match="run `pairforge filter` first"):
        workdir.key_of("filter", "abc")


def test_a_damaged_record_is_not_a_finished_shard(tmp_path: Path) -> None:
    workdir = Workdir(tmp_path)
    workdir.done("mine", "abc").parent.mkdir(parents=True)
    workdir.done("mine", "abc").write_text("{not json")
    assert workdir.finished("mine", "abc", "k") is None


def test_shard_files_are_named_after_their_input_shard(tmp_path: Path) -> None:
    for part in (1, 0):
        shard_path(tmp_path, "abc", part).write_text("")
    shard_path(tmp_path, "abd", 0).write_text("")
    assert [p.name for p in shard_files(tmp_path, "abc")] == ["abc-00000.parquet", "abc-00001.parquet"]


def test_task_keys_depend_on_every_part_and_not_on_dict_order() -> None:
    assert task_key("s", {"a": 1, "b": 2}) == task_key("s", {"b": 2, "a": 1})
    assert len({task_key("s", 1), task_key("s", 2), task_key("t", 1)}) == 3
