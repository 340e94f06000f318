"""The training formats: field names and types per format, one FlagEmbedding file per kind, length buckets,
a fixed number of negative columns for sentence-transformers, uniem triplets, CoSENT scores scaled to [0, 1]."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairforge.config import ExportConfig
from pairforge.export import run_export
from pairforge.export.formats import bucket_edges, flagembedding_row, sentence_transformers_row, uniem_row
from tests.pairforge.export.conftest import Published
from tests.pairforge.export.workdir import NUM_NEGATIVES, build_workdir, make_config

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
    "pos_scores": list,
    "neg_scores": list,
    "prompt": str,
    "type": str,
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def examples_of(published: Published) -> list[dict]:
    return pq.read_table(published.workdir / "examples" / "examples.parquet").to_pylist()


def test_flagembedding_row_fields_and_types() -> None:
    config = ExportConfig(query_instructions={"sp": "检索："}, flagembedding_types={"sp": "symmetric_sts"})
    row = flagembedding_row(EXAMPLE, config)
    assert row == {
        "query": "q",
        "pos": ["p"],
        "neg": ["n1", "n2", "n3"],
        "pos_scores": [9.5],
        "neg_scores": [3.0, 0.0, 1.0],
        "prompt": "检索：",
        "type": "symmetric_sts",
    }
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


def test_flagembedding_one_file_per_kind(published: Published) -> None:
    examples = examples_of(published)
    folder = published.version / "flagembedding"
    assert sorted(p.name for p in folder.glob("*.jsonl")) == ["human.jsonl", "qp.jsonl", "sp.jsonl"]
    for kind in ("qp", "sp", "human"):
        rows = read_jsonl(folder / f"{kind}.jsonl")
        expected = [e for e in examples if e["kind"] == kind and e["neg"]]
        assert [r["query"] for r in rows] == [e["query"] for e in expected]
        for row, example in zip(rows, expected, strict=True):
            assert set(row) == set(FLAG_FIELDS)
            assert all(isinstance(row[k], t) for k, t in FLAG_FIELDS.items())
            assert row["pos"] == example["pos"] and row["neg"] == example["neg"] and len(row["neg"]) >= 1
            assert all(isinstance(s, float) for s in row["pos_scores"] + row["neg_scores"])
            assert len(row["neg_scores"]) == len(row["neg"]) and len(row["pos_scores"]) == len(row["pos"])
            assert row["prompt"] == published.config.export.query_instructions[kind] and row["type"] == "normal"
    assert published.summary.dropped["flagembedding"] == {"no_negatives": 1}  # the planted example


def test_length_buckets_split_each_kind_by_its_longest_text(published: Published) -> None:
    folder = published.version / "flagembedding"
    for kind in ("qp", "sp", "human"):
        whole = read_jsonl(folder / f"{kind}.jsonl")
        bucketed = []
        for path in sorted((folder / "by_length").glob(f"{kind}_len-*.jsonl")):
            lo, hi = path.stem.split("_len-")[1].split("-")
            rows = read_jsonl(path)
            assert rows, f"{path.name}: empty bucket files are not written"
            for row in rows:
                longest = max(len(t) for t in [row["query"], *row["pos"], *row["neg"]])
                assert int(lo) <= longest < float(hi)
            bucketed += rows
        assert Counter(r["query"] for r in bucketed) == Counter(r["query"] for r in whole)
    names = {p.name for p in (folder / "by_length").glob("*.jsonl")}
    assert "qp_len-600-inf.jsonl" in names and "qp_len-300-600.jsonl" in names


def test_sentence_transformers_parquet(published: Published) -> None:
    table = pq.read_table(published.version / "sentence-transformers" / "train.parquet")
    negatives = [f"negative_{i}" for i in range(1, NUM_NEGATIVES + 1)]
    assert table.column_names == ["anchor", "positive", *negatives]
    assert all(field.type == pa.string() for field in table.schema)
    full = [e for e in examples_of(published) if len(e["neg"]) >= NUM_NEGATIVES]
    assert table["anchor"].to_pylist() == [e["query"] for e in full]
    assert table.num_rows == len(examples_of(published)) - 2  # the planted examples with 0 and 2 negatives
    assert published.summary.dropped["sentence_transformers"] == {f"fewer_than_{NUM_NEGATIVES}_negatives": 2}
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(
        "parquet",
        data_files=str(published.version / "sentence-transformers" / "train.parquet"),
        split="train",
        cache_dir=str(published.workdir / "hf-cache"),
    )
    assert loaded.column_names == ["anchor", "positive", *negatives] and len(loaded) == table.num_rows


def test_uniem_triplets(published: Published) -> None:
    rows = read_jsonl(published.version / "uniem" / "train.jsonl")
    assert all(set(r) == {"text", "text_pos", "text_neg"} for r in rows)
    assert rows[0]["text_neg"] == next(e for e in examples_of(published) if e["neg"])["neg"][0]


def test_cosent_scores_are_scaled_to_unit_range(published: Published) -> None:
    rows = read_jsonl(published.version / "cosent" / "train.jsonl")
    assert all(set(r) == {"sentence1", "sentence2", "score"} and 0.0 <= r["score"] <= 1.0 for r in rows)
    by_pair = {(r["sentence1"], r["sentence2"]): r["score"] for r in rows}
    assert by_pair[("一架飞机要起飞了。", "一架飞机正在起飞。")] == 1.0  # STS-B 5 of 5
    assert by_pair[("一个男人在吹一支大笛子。", "一个人在吹长笛。")] == pytest.approx(0.6)  # STS-B 3 of 5
    assert by_pair[("蚂蚁借呗等额还款可以换成先息后本吗", "借呗有先息到期还本吗")] == 0.0  # AFQMC 0
    assert len(rows) == 40  # 20 STS-B + 20 AFQMC; the unlabelled and the held-out pair are left out
    assert published.summary.dropped["cosent"] == {"unlabelled": 1, "held_out": 1}


def test_formats_are_optional(published: Published, tmp_path: Path) -> None:
    off = ExportConfig(flagembedding=False, sentence_transformers=False, uniem=False, cosent=False, card_examples=0)
    config = published.config.model_copy(update={"store": str(tmp_path / "store"), "export": off})
    summary = run_export(config)
    assert {f.split("/")[0] for f in summary.files} == {"data", "index", "plots", "README.md", "manifest.json"}


def test_a_run_without_the_llm_stage(shared_data: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path, str(tmp_path / "store"))
    build_workdir(config, shared_data, n_pool=60, with_llm=False)
    summary = run_export(config)
    assert summary.examples == {"human": 10}
    manifest = json.loads((Path(summary.path) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["generation"] == {"model": None, "models": [], "backend": None, "prompts": [], "sampling": []}
    assert [row["stage"] for row in manifest["funnel"]][:4] == ["read", "window", "dedup passages", "mine"]
    assert "data/pairs.parquet" not in summary.files
    assert "none (no LLM stage)" in (Path(summary.path) / "README.md").read_text(encoding="utf-8")
