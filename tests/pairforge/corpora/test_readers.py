"""Readers on the real files in ../shared/data; expected counts are the ones its README lists."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from pairforge.config import (
    JsonlCorpus,
    M3eCorpus,
    PairsTsvCorpus,
    ParquetCorpus,
    SimclueCorpus,
    SquadCorpus,
    WudaoCorpus,
)
from pairforge.corpora import read_shard
from pairforge.records import Document, HumanPair, Rejected
from tests.squad_counts import squad_counts


def kinds(records: list) -> Counter[str]:
    return Counter(type(r).__name__ for r in records)


def read(path: Path, corpus) -> list:
    return list(read_shard(str(path), corpus))


@pytest.mark.parametrize(("name", "count"), [("wudao_demo.jsonl", 20), ("wudao_records_jinrong.json", 21)])
def test_wudao_both_layouts(shared_data: Path, name: str, count: int) -> None:
    records = read(shared_data / "wudao" / name, WudaoCorpus(format="wudao", path=""))
    assert kinds(records) == {"Document": count}
    assert all(r.text and r.source == "wudao" for r in records)
    assert len({r.id for r in records}) == count


@pytest.mark.parametrize(
    ("name", "records_", "pairs", "scored"),
    [
        ("bge_finetune_data.jsonl", 2701, None, 0),
        ("snli_zh_50.jsonl", 53, 53, 53),
        ("uniem_riddle.jsonl", 1000, 1000, 0),
    ],
)
def test_m3e_pair_files(shared_data: Path, name: str, records_: int, pairs: int | None, scored: int) -> None:
    records = read(shared_data / "m3e_style" / name, M3eCorpus(format="m3e", path=""))
    assert not [r for r in records if isinstance(r, Rejected)]
    hp = [r for r in records if isinstance(r, HumanPair)]
    assert len({p.id.split("#")[0] for p in hp}) == records_
    if pairs is not None:
        assert len(hp) == pairs
    assert sum(p.kind == "scored" for p in hp) == scored


def test_m3e_flag_embedding_layout_keeps_negatives(shared_data: Path) -> None:
    first = next(
        iter(read_shard(str(shared_data / "m3e_style" / "bge_finetune_data.jsonl"), M3eCorpus(format="m3e", path="")))
    )
    assert isinstance(first, HumanPair)
    assert first.text1 == "一架飞机要起飞了。" and first.text2 == "一架飞机正在起飞。" and len(first.negatives) >= 3


@pytest.mark.parametrize(
    ("name", "count", "kind"),
    [
        ("train_pair_1w.json", 10000, "scored"),
        ("train_pair_postive_1w.json", 10000, "positive"),
        ("train_rank_1w.json", 10000, "positive"),
        ("test_public.json", 28031, "scored"),
    ],
)
def test_simclue_pair_files(shared_data: Path, name: str, count: int, kind: str) -> None:
    records = read(shared_data / "simclue" / name, SimclueCorpus(format="simclue", path=""))
    assert kinds(records) == {"HumanPair": count}
    assert {r.kind for r in records} == {kind}
    if kind == "scored":
        assert {r.label for r in records} <= {0.0, 1.0}
    if name.startswith("train_rank"):
        assert all(len(r.negatives) == 1 for r in records)


def test_simclue_sentence_corpus(shared_data: Path) -> None:
    records = read(shared_data / "simclue" / "corpus_1w.txt", SimclueCorpus(format="simclue", path=""))
    assert kinds(records) == {"Document": 10000}


@pytest.mark.parametrize(
    ("name", "count", "labelled"),
    [
        ("afqmc_train.txt", 34334, True),
        ("afqmc_dev.txt", 4316, True),
        ("afqmc_test.txt", 3861, False),
        ("lcqmc_dev.txt", 8802, True),
        ("lcqmc_test.txt", 12500, True),
        ("chinese-sts-b_sts-b-train.txt", 5231, True),
        ("chinese-sts-b_sts-b-dev.txt", 1458, True),
        ("chinese-sts-b_sts-b-test.txt", 1361, True),
    ],
)
def test_pairs_tsv(shared_data: Path, name: str, count: int, labelled: bool) -> None:
    records = read(shared_data / "pairs" / name, PairsTsvCorpus(format="pairs_tsv", path=""))
    assert kinds(records) == {"HumanPair": count}
    assert all((r.label is not None) == labelled for r in records)
    if "sts-b" in name:
        assert {r.label for r in records} <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}


@pytest.mark.parametrize("name", ["cmrc2018_dev.squad.json", "cmrc2018_trial.squad.json"])
def test_squad_cmrc(shared_data: Path, name: str) -> None:
    paragraphs, questions = squad_counts(shared_data / "cmrc2018" / name)
    records = read(shared_data / "cmrc2018" / name, SquadCorpus(format="squad", path=""))
    docs = [r for r in records if isinstance(r, Document)]
    pairs = [r for r in records if isinstance(r, HumanPair)]
    assert len(docs) == paragraphs
    assert len(pairs) == questions
    assert {p.role for p in pairs} == {"eval"}
    contexts = {d.text for d in docs}
    assert all(p.text2 in contexts for p in pairs)


def test_generic_jsonl_and_parquet_with_custom_fields(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"body": "正文一", "head": "题一", "key": "a"}, {"body": "正文二", "head": None, "key": None}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")
    (tmp_path / "x.jsonl").write_text("\n".join(__import__("json").dumps(r, ensure_ascii=False) for r in rows))
    fields = {"text_field": "body", "title_field": "head", "id_field": "key"}
    for corpus, name in (
        (ParquetCorpus(format="parquet", path="", **fields), "x.parquet"),
        (JsonlCorpus(format="jsonl", path="", **fields), "x.jsonl"),
    ):
        docs = read(tmp_path / name, corpus)
        assert [(d.id, d.title, d.text) for d in docs] == [
            (f"{name}:a", "题一", "正文一"),
            (f"{name}:L2", "", "正文二"),
        ]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_shards_read_like_plain_ones(shared_data: Path, tmp_path: Path, suffix: str) -> None:
    source = shared_data / "wudao" / "wudao_demo.jsonl"
    data = source.read_bytes()
    target = tmp_path / f"demo.jsonl{suffix}"
    target.write_bytes(gzip.compress(data) if suffix == ".gz" else zstandard.ZstdCompressor().compress(data))
    corpus = WudaoCorpus(format="wudao", path="")
    assert [d.text for d in read(target, corpus)] == [d.text for d in read(source, corpus)]
