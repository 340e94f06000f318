"""The training formats: field names and types per format, one FlagEmbedding file per kind and segment, length
buckets, a fixed number of negative columns for sentence-transformers, uniem triplets, CoSENT scores scaled to
[0, 1]."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairforge.config import ExportConfig
from pairforge.export.cosent import write_cosent
from pairforge.export.formats import (
    FormatCounts,
    bucket_edges,
    flagembedding_row,
    sentence_transformers_row,
    uniem_row,
)
from pairforge.export.writer import VersionWriter
from pairforge.records import HUMAN_PAIR_SCHEMA
from pairforge.shards import ShardWriter
from tests.pairforge.export.conftest import Published, publish
from tests.pairforge.export.workdir import NUM_NEGATIVES, SCORED, Built, build_workdir, make_config, write_inputs

EXAMPLE = {
    "kind": "sp",
    "query": "q",
    "pos": ["p"],
    "neg": ["n1", "n2", "n3"],
    "pos_scores": [9.5],
    "neg_scores": [3.0, None, 1.0],
}
FLAG_FIELDS = {
    "query": str,
    "pos": list,
    "neg": list,
    "prompt": str,
    "type": str,
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_flagembedding_row_fields_and_types() -> None:
    config = ExportConfig(query_instructions={"sp": "检索："}, flagembedding_types={"sp": "symmetric_sts"})
    row = flagembedding_row(EXAMPLE, config)  # the mined BM25 scores are no teacher: no score fields
    assert row == {"query": "q", "pos": ["p"], "neg": ["n1", "n2", "n3"], "prompt": "检索：", "type": "symmetric_sts"}
    taught = flagembedding_row(EXAMPLE, config, ([0.5], [0.1, 0.2, 0.3]))
    assert (taught["pos_scores"], taught["neg_scores"]) == ([0.5], [0.1, 0.2, 0.3])
    assert flagembedding_row({**EXAMPLE, "kind": "qp"}, config)["prompt"] == ""  # no instruction configured


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (2, {"anchor": "q", "positive": "p", "negative_1": "n1", "negative_2": "n2"}),
        (3, {"anchor": "q", "positive": "p", "negative_1": "n1", "negative_2": "n2", "negative_3": "n3"}),
        (4, None),  # fewer negatives than columns: left out
    ],
)
def test_sentence_transformers_row(n: int, expected: dict | None) -> None:
    assert sentence_transformers_row(EXAMPLE, n) == expected


def test_uniem_row_takes_the_first_negative() -> None:
    assert uniem_row(EXAMPLE) == {"text": "q", "text_pos": "p", "text_neg": "n1"}
    assert uniem_row({**EXAMPLE, "neg": []}) is None


@pytest.mark.parametrize(
    ("edges", "ranges"),
    [
        ([500, 1000], [(0, 500), (500, 1000), (1000, math.inf)]),
        ([1000, 0, 500, 500], [(0, 500), (500, 1000), (1000, math.inf)]),
        ([], [(0, math.inf)]),
    ],
)
def test_bucket_edges_as_flagembedding_splits(edges: list[int], ranges: list[tuple]) -> None:
    assert bucket_edges(edges) == ranges


def test_negative_bucket_edge_is_an_error() -> None:
    with pytest.raises(ValueError, match="length_buckets"):
        bucket_edges([-1, 10])


def test_flagembedding_one_file_per_kind_and_segment(published: Published) -> None:
    folder = published.version / "flagembedding"
    pool = published.built.pool_key
    names = sorted(p.name for p in folder.glob("*.jsonl"))
    assert {f"human-{pool}.jsonl", f"qp-{pool}.jsonl", f"sp-{pool}.jsonl"} <= set(names)
    for segment in published.segments():
        examples = published.examples(segment)
        for kind in ("qp", "sp", "human"):
            expected = [e for e in examples if e["kind"] == kind and e["neg"]]
            path = folder / f"{kind}-{segment}.jsonl"
            assert path.is_file() == bool(expected), path.name  # no empty files
            rows = read_jsonl(path) if expected else []
            assert [r["query"] for r in rows] == [e["query"] for e in expected]
            for row, example in zip(rows, expected, strict=True):
                assert set(row) == set(FLAG_FIELDS)
                assert all(isinstance(row[k], t) for k, t in FLAG_FIELDS.items())
                assert row["pos"] == example["pos"] and row["neg"] == example["neg"] and len(row["neg"]) >= 1
                assert row["prompt"] == published.config.export.query_instructions[kind] and row["type"] == "normal"
            if expected:
                assert published.rows(f"flagembedding/{kind}-{segment}.jsonl") == len(rows)
    assert published.stats.details["format_drops"]["flagembedding"] == {"no_negatives": 1}  # the planted example
    assert published.manifest["dropped"]["flagembedding"] == {"no_negatives": 1}


def test_length_buckets_split_each_kind_by_query_plus_positive(published: Published) -> None:
    folder = published.version / "flagembedding"
    for whole_file in folder.glob("*.jsonl"):
        kind, segment = whole_file.stem.split("-", 1)
        bucketed = []
        for path in sorted((folder / "by_length").glob(f"{kind}_len-*-{segment}.jsonl")):
            lo, hi = path.stem.split("_len-")[1].removesuffix(f"-{segment}").split("-")
            rows = read_jsonl(path)
            assert rows, f"{path.name}: empty bucket files are not written"
            for row in rows:
                length = len(row["query"]) + len(row["pos"][0])  # not the long mined negatives
                assert int(lo) <= length < float(hi)
            bucketed += rows
        assert Counter(r["query"] for r in bucketed) == Counter(r["query"] for r in read_jsonl(whole_file))
    pool = published.built.pool_key
    names = {p.name for p in (folder / "by_length").glob("*.jsonl")}
    assert f"qp_len-600-inf-{pool}.jsonl" in names and f"qp_len-300-600-{pool}.jsonl" in names


def test_sentence_transformers_parquet(published: Published) -> None:
    negatives = [f"negative_{i}" for i in range(1, NUM_NEGATIVES + 1)]
    total = 0
    for segment in published.segments():
        examples = published.examples(segment)
        full = [e for e in examples if len(e["neg"]) >= NUM_NEGATIVES]
        path = published.version / "sentence-transformers" / f"train-{segment}.parquet"
        assert path.is_file() == bool(full)
        if not full:
            continue
        table = pq.read_table(path)
        assert table.column_names == ["anchor", "positive", *negatives]
        assert all(field.type == pa.string() for field in table.schema)
        assert table["anchor"].to_pylist() == [e["query"] for e in full]
        if segment == published.built.pool_key:
            assert table.num_rows == len(examples) - 2  # the planted examples with 0 and 2 negatives
        total += table.num_rows
    assert published.stats.details["format_drops"]["sentence_transformers"] == {
        f"fewer_than_{NUM_NEGATIVES}_negatives": 2
    }
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(
        "parquet",
        data_files=str(published.version / "sentence-transformers" / "*.parquet"),
        split="train",
        cache_dir=str(published.built.workdir.root / "hf-cache"),
    )
    assert loaded.column_names == ["anchor", "positive", *negatives] and len(loaded) == total


def test_uniem_triplets(published: Published) -> None:
    pool = published.built.pool_key
    rows = read_jsonl(published.version / "uniem" / f"train-{pool}.jsonl")
    assert all(set(r) == {"text", "text_pos", "text_neg"} for r in rows)
    with_negatives = [e for e in published.examples(pool) if e["neg"]]
    assert [r["text_neg"] for r in rows] == [e["neg"][0] for e in with_negatives]


def test_cosent_scores_are_scaled_to_unit_range(published: Published) -> None:
    files = sorted((published.version / "cosent").glob("train-*.parquet"))
    assert len(files) == 2  # one per scored pair file (segment): STS-B and AFQMC
    assert all(pq.read_schema(f).types == [pa.string(), pa.string(), pa.float64()] for f in files)
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert all(set(r) == {"sentence1", "sentence2", "score"} and 0.0 <= r["score"] <= 1.0 for r in rows)
    by_pair = {(r["sentence1"], r["sentence2"]): r["score"] for r in rows}
    assert by_pair[("一架飞机要起飞了。", "一架飞机正在起飞。")] == 1.0  # STS-B 5 of 5
    assert by_pair[("一个男人在吹一支大笛子。", "一个人在吹长笛。")] == pytest.approx(0.6)  # STS-B 3 of 5
    assert by_pair[("蚂蚁借呗等额还款可以换成先息后本吗", "借呗有先息到期还本吗")] == 0.0  # AFQMC 0
    assert len(rows) == 2 * SCORED  # 20 STS-B + 20 AFQMC; the unlabelled row is left out
    assert published.stats.details["format_drops"]["cosent"] == {"unlabelled": 1}


def test_cosent_leaves_out_held_out_and_unlabelled_pairs(tmp_path: Path) -> None:
    """No reader yields graded pairs marked for evaluation today, so the held-out rule is checked on a shard."""
    rows = [
        {"id": "a", "source": "afqmc", "kind": "scored", "text1": "花呗怎么还款", "text2": "花呗如何还钱",
         "negatives": [], "label": 1.0, "role": "train", "answers": []},
        {"id": "b", "source": "afqmc", "kind": "scored", "text1": "借呗能提额吗", "text2": "借呗怎么提额",
         "negatives": [], "label": 1.0, "role": "eval", "answers": []},
        {"id": "c", "source": "afqmc", "kind": "scored", "text1": "花呗账单", "text2": "借呗账单",
         "negatives": [], "label": None, "role": "train", "answers": []},
        {"id": "d", "source": "cmrc", "kind": "positive", "text1": "问题", "text2": "段落",
         "negatives": [], "label": None, "role": "train", "answers": []},
    ]  # fmt: skip
    writer = ShardWriter(tmp_path / "human", "seg", HUMAN_PAIR_SCHEMA)
    writer.add_table(pa.Table.from_pylist(rows, schema=HUMAN_PAIR_SCHEMA))
    files = writer.close()
    out, counts = VersionWriter(fsspec.filesystem("file"), str(tmp_path / "v")), FormatCounts()
    write_cosent(files, "seg", out, counts)
    assert pq.read_table(tmp_path / "v" / "cosent" / "train-seg.parquet").to_pylist() == [
        {"sentence1": "花呗怎么还款", "sentence2": "花呗如何还钱", "score": 1.0}
    ]
    assert counts.dropped == {"cosent": {"held_out": 1, "unlabelled": 1}} and counts.rows == {
        "cosent/train-seg.parquet": 1
    }


def test_formats_are_optional(published: Published, tmp_path: Path) -> None:
    off = ExportConfig(flagembedding=False, sentence_transformers=False, uniem=False, cosent=False, card_examples=0)
    config = published.config.model_copy(update={"store": str(tmp_path / "store"), "export": off})
    built = published.built
    _, version = publish(Built(config, built.plan, built.funnel))
    files = [f["path"] for f in json.loads((version / "manifest.json").read_text(encoding="utf-8"))["files"]]
    assert {f.split("/")[0] for f in files} == {"data", "index", "plots", "delta", "README.md"}
    assert sorted(p.name for p in version.iterdir()) == ["README.md", "data", "delta", "index", "manifest.json",
                                                         "plots"]  # fmt: skip


def test_a_run_without_the_llm_stage(shared_data: Path, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "inputs", shared_data, n_pool=60)
    config = make_config(tmp_path, str(tmp_path / "store"), inputs)
    built = build_workdir(config, shared_data, with_llm=False, plant=False)
    stats, version = publish(built)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["examples"] == {"human": 10}
    assert manifest["generation"] == {"model": None, "models": [], "backend": None, "prompts": [], "sampling": []}
    assert [row["stage"] for row in manifest["funnel"]] == ["ingest", "dedup-passages", "index", "mine", "select",
                                                            "human-pairs", "export"]  # fmt: skip
    assert not [f for f in manifest["files"] if f["path"].startswith("data/pairs/")]
    # no shard is covered without generation: the next run with an LLM does them again
    assert all(s["incomplete"] == {"not_generated": 1} and not s["complete"] for s in manifest["segments"])
    assert stats.output == 10
    assert "none (no LLM stage)" in (version / "README.md").read_text(encoding="utf-8")
