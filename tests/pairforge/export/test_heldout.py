"""The held-out split (``mine.heldout_share``): a real export of the CMRC workdir writes BEIR files of passages and
questions that no training file holds (examples, negatives, every training format); the split is chosen by a
seeded hash, and the BEIR loader the gate uses reads it back and names a bad line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pairforge.evaluate.beir import load_beir
from pairforge.negatives.heldout import drop_heldout_candidates, is_heldout, split_heldout
from pairforge.store import layout


def training_texts(version: Path) -> set[str]:
    """Every string in the version's training files: the examples and each format file (JSONL, Parquet, TSV)."""
    texts: set[str] = set()
    for path in sorted(p for p in version.rglob("*") if p.is_file()):
        relative = path.relative_to(version).as_posix()
        if relative.startswith(("heldout/", f"{layout.HELDOUT}/", "data/passages/", "data/pairs/", "index/")):
            continue  # the split itself; the pool and the pair records are not training files
        if relative.startswith("data/human_pairs/"):
            continue  # the records human pairs came from (the examples and formats hold what is trained on)
        if relative.startswith(("data/candidates/", "delta/")) or path.suffix in (".png", ".md"):
            continue
        if path.suffix == ".parquet":
            for row in pq.read_table(path).to_pylist():
                texts.update(_strings(row))
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                texts.update(_strings(json.loads(line)))
        elif path.suffix in (".tsv", ".txt"):
            texts.update(f for line in path.read_text(encoding="utf-8").splitlines() for f in line.split("\t"))
    return texts


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_no_heldout_passage_or_query_is_in_the_training_files(shared_data: Path, tmp_path: Path) -> None:
    from tests.pairforge.export.conftest import publish
    from tests.pairforge.export.workdir import build_workdir, make_config, write_inputs

    inputs = write_inputs(tmp_path / "inputs", shared_data)
    config = make_config(tmp_path, str(tmp_path / "store"), inputs, mine={"heldout_share": 0.25})
    _, version = publish(build_workdir(config, shared_data))
    manifest = json.loads((version / layout.MANIFEST).read_text(encoding="utf-8"))
    listed = {f["path"] for f in manifest["files"]}
    assert {"heldout/corpus.jsonl", "heldout/queries.jsonl", "heldout/qrels/test.tsv"} <= listed
    split = load_beir(str(version / "heldout"))
    record = manifest["heldout"]
    assert len(split.queries) == record["queries"] > 10 and len(split.passages) == record["corpus"]
    gold = {split.passages[g] for g in split.gold}
    assert len(gold) > 5
    texts = training_texts(version)
    assert not gold & texts  # no held-out passage is a positive or a negative of any training row
    assert not set(split.queries) & texts  # no held-out question is trained on
    heldout_rows = [
        r for f in sorted((version / layout.HELDOUT).glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]
    assert {r["kind"] for r in heldout_rows} >= {"qp", "sp"}
    share = len({r["positive_id"] for r in heldout_rows}) / 120
    assert 0.1 < share < 0.4  # about a quarter of the pool's passages


def test_the_split_is_a_seeded_share_of_passages() -> None:
    ids = [f"passage-{i}" for i in range(4000)]
    for share in (0.1, 0.5):
        held = [p for p in ids if is_heldout(p, share, 0)]
        assert abs(len(held) / len(ids) - share) < 0.03
        assert held == [p for p in ids if is_heldout(p, share, 0)]  # stable: every version agrees
        assert set(held) != {p for p in ids if is_heldout(p, share, 1)}  # another seed, another split
    assert not any(is_heldout(p, 0.0, 0) for p in ids)
    assert not is_heldout(None, 0.9, 0)  # a positive outside the pool (a human pair's text) is never held out


def test_held_out_passages_are_no_negatives_and_their_examples_leave_training() -> None:
    held = next(f"p{i}" for i in range(100) if is_heldout(f"p{i}", 0.5, 0))
    kept = next(f"p{i}" for i in range(100) if not is_heldout(f"p{i}", 0.5, 0))
    row = {"bm25_ids": [held, kept], "bm25_scores": [2.0, 1.0], "dense_ids": None, "dense_scores": None}
    assert drop_heldout_candidates(row, 0.5, 0) == {
        "bm25_ids": [kept], "bm25_scores": [1.0], "dense_ids": None, "dense_scores": None
    }  # fmt: skip
    train, heldout = split_heldout([{"positive_id": held}, {"positive_id": kept}, {"positive_id": None}], 0.5, 0)
    assert heldout == [{"positive_id": held}] and train == [{"positive_id": kept}, {"positive_id": None}]


@pytest.mark.parametrize(
    ("file", "text", "error"),
    [
        ("corpus.jsonl", '{"_id": "d1", "text": "甲"}\nnot json\n', "corpus.jsonl:2: not JSON"),
        ("queries.jsonl", '{"_id": "q1"}\n', "queries.jsonl:1: a row needs string `_id` and `text`"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\tnope\t1\n", "test.tsv:2: not a (query-id, corpus-id"),
    ],
)
def test_a_bad_beir_line_is_named(tmp_path: Path, file: str, text: str, error: str) -> None:
    good = {
        "corpus.jsonl": '{"_id": "d1", "text": "甲"}\n{"_id": "d2", "text": "乙"}\n',
        "queries.jsonl": '{"_id": "q1", "text": "问"}\n',
        "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td2\t1\n",
    }
    (tmp_path / "qrels").mkdir()
    for name, content in good.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    loaded = load_beir(str(tmp_path))
    assert (loaded.passages, loaded.queries, loaded.gold) == (["甲", "乙"], ["问"], [1])
    (tmp_path / file).write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=error.replace("(", r"\(")):
        load_beir(str(tmp_path))
