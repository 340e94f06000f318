"""Per-kind training rows read from a published version (and from human pairs)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairforge.records import HumanPair
from pairforge.store import layout
from pairforge.train.datasets import SCORED, read_human_pairs, read_versions, resolve_version


def examples(version: Path) -> list[dict]:
    return [row for f in sorted((version / layout.EXAMPLES).glob("*.parquet")) for row in pq.read_table(f).to_pylist()]


def listed(version: Path, path: Path) -> None:
    """Record ``path`` in the version's manifest with its present size and sha256 (adding it if unlisted)."""
    manifest_path = version / layout.MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    relative = path.relative_to(version).as_posix()
    data = path.read_bytes()
    entry = {"path": relative, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest["files"] = [f for f in manifest["files"] if f["path"] != relative] + [entry]
    manifest_path.chmod(0o644)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")


def test_one_dataset_per_kind_with_the_mined_negatives(version: Path) -> None:
    data = read_versions([str(version)], num_negatives=2)
    rows = examples(version)
    for kind in ("qp", "sp", "human"):
        mine = [e for e in rows if e["kind"] == kind]
        kept = [e for e in mine if len(e["neg"]) >= 2]
        columns = data.rows[kind]
        assert list(columns) == ["anchor", "positive", "negative_1", "negative_2"]
        assert columns["anchor"] == [e["query"] for e in kept]
        assert columns["positive"] == [e["pos"][0] for e in kept]
        assert columns["negative_1"] == [e["neg"][0] for e in kept]  # the hardest first, as mined
        assert data.dropped.get(kind, {}).get("fewer_than_2_negatives", 0) == len(mine) - len(kept)


def test_scored_pairs_come_from_the_cosent_file(version: Path) -> None:
    data = read_versions([str(version)], num_negatives=1)
    files = sorted((version / "cosent").glob("*.parquet"))
    lines = [row for f in files for row in pq.read_table(f).to_pylist()]
    scored = data.rows[SCORED]
    assert list(scored) == ["sentence1", "sentence2", "score"]
    unique = {(x["sentence1"], x["sentence2"]) for x in lines}
    assert len(scored["score"]) == len(unique) and len(unique) > 20
    assert all(0.0 <= s <= 1.0 for s in scored["score"]) and max(scored["score"]) > 0.5


def test_query_instructions_come_from_the_manifest(version: Path) -> None:
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    data = read_versions([str(version)], num_negatives=1)
    assert data.prompts == manifest["config"]["export"]["query_instructions"] and data.prompts["qp"]


def test_latest_resolves_and_a_row_in_two_versions_counts_once(version: Path) -> None:
    latest = version.parent / "latest"
    assert resolve_version(str(latest)) == str(version)
    once = read_versions([str(version)], num_negatives=1)
    twice = read_versions([str(version), str(latest)], num_negatives=1)
    assert twice.counts() == once.counts()
    assert twice.dropped["qp"]["duplicate"] == once.counts()["qp"]
    assert twice.sources == [str(version), str(version)]


def test_not_a_version_is_an_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no manifest.json here"):
        resolve_version(str(tmp_path))
    (tmp_path / "latest").write_text("not-a-version\n")
    with pytest.raises(ValueError, match=r"latest.*not a version folder"):
        resolve_version(str(tmp_path / "latest"))


def test_a_broken_cosent_file_is_an_error_naming_it(version: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "v1"
    shutil.copytree(version, copy)
    broken = sorted((copy / "cosent").glob("*.parquet"))[0]
    broken.chmod(0o644)
    pq.write_table(pa.table({"sentence1": ["a"], "text": ["b"]}), broken)
    with pytest.raises(ValueError, match=rf"cosent/{broken.name}: damaged"):  # not the file the manifest lists
        read_versions([str(copy)], num_negatives=1)
    listed(copy, broken)  # as if the version had been published so
    with pytest.raises(ValueError, match=rf"cosent/{broken.name}: not a \(sentence1, sentence2, score\) file"):
        read_versions([str(copy)], num_negatives=1)


def test_cosent_jsonl_of_an_earlier_layout_is_refused(version: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "v1"
    shutil.copytree(version, copy)
    (copy / "cosent" / "train-old.jsonl").write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n')
    listed(copy, copy / "cosent" / "train-old.jsonl")  # an earlier pairforge's manifest lists its JSONL
    with pytest.raises(ValueError, match=r"cosent/ holds JSONL from an earlier pairforge"):
        read_versions([str(copy)], num_negatives=1)


def test_human_pairs_positives_scored_and_eval_held_out() -> None:
    pairs = [
        HumanPair("a", "m3e", "positive", "问题一", "答案一", ["负例一"]),
        HumanPair("b", "simclue", "positive", "问题二", "答案二"),  # no negative: left out at n=1
        HumanPair("c", "cmrc2018", "positive", "问题三", "答案三", ["负例三"], role="eval"),
        HumanPair("d", "sts-b", "scored", "一个人在唱歌。", "一个人在跳舞。", label=4.0),
        HumanPair("e", "afqmc", "scored", "花呗怎么还款", "花呗如何还钱", label=1.0),
        HumanPair("f", "afqmc", "scored", "花呗", "借呗", label=None),
    ]
    data = read_human_pairs(pairs, num_negatives=1)
    assert data.rows["human"] == {"anchor": ["问题一"], "positive": ["答案一"], "negative_1": ["负例一"]}
    assert data.rows[SCORED]["score"] == [0.8, 1.0]  # STS-B's 0..5 divided by 5; 0/1 as it is
    assert data.dropped == {
        "human": {"fewer_than_1_negatives": 1, "eval_role": 1},
        SCORED: {"unlabelled": 1},
    }


def test_a_deleted_example_file_is_an_error_naming_it(version: Path, tmp_path: Path) -> None:
    """Not a smaller dataset: the manifest says which files the version has."""
    copy = tmp_path / "v1"
    shutil.copytree(version, copy)
    gone = sorted((copy / layout.EXAMPLES).glob("*.parquet"))[0]
    gone.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{copy}/{layout.EXAMPLES}/{gone.name}: missing"):
        read_versions([str(copy)], num_negatives=1)


def test_a_truncated_or_edited_example_file_is_an_error_naming_it(version: Path, tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(version, copy)
    damaged = sorted((copy / layout.EXAMPLES).glob("*.parquet"))[-1]
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with pytest.raises(ValueError, match=rf"{layout.EXAMPLES}/{damaged.name}: damaged: 1,000 bytes"):
        read_versions([str(copy)], num_negatives=1)
    listed(copy, damaged)  # the manifest edited to match: pyarrow's error, with the file's name
    with pytest.raises(ValueError, match=rf"{layout.EXAMPLES}/{damaged.name}: not a readable Parquet file"):
        read_versions([str(copy)], num_negatives=1)
