"""Byte-order marks and encodings, on the real files in ../shared/data: a BOM never costs a record, a GBK
corpus reads with ``encoding: gb18030``, and a GBK line read as UTF-8 says how to fix the config."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

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

BOM = b"\xef\xbb\xbf"
# (file under ../shared/data, format, lines kept: None = the whole file, for the one-JSON-value layouts)
LAYOUTS = [
    ("wudao/wudao_demo.jsonl", "wudao", 20),
    ("wudao/wudao_records_jinrong.json", "wudao", None),
    ("m3e_style/snli_zh_50.jsonl", "m3e", 50),
    ("simclue/train_pair_1w.json", "simclue", 200),
    ("simclue/corpus_1w.txt", "simclue", 200),
    ("pairs/afqmc_dev.txt", "pairs_tsv", 200),
    ("cmrc2018/cmrc2018_trial.squad.json", "squad", None),
]
CORPORA: dict[str, Any] = {
    "wudao": WudaoCorpus,
    "m3e": M3eCorpus,
    "simclue": SimclueCorpus,
    "pairs_tsv": PairsTsvCorpus,
    "squad": SquadCorpus,
    "jsonl": JsonlCorpus,
}


def sample(shared_data: Path, name: str, lines: int | None, encoding: str = "utf-8") -> bytes:
    """The file (or its first lines that ``encoding`` can hold), encoded with ``encoding``."""
    text = (shared_data / name).read_text(encoding="utf-8")
    if lines is None:
        return text.encode(encoding)
    kept = []
    for line in text.splitlines()[: lines * 2]:
        try:
            kept.append(line.encode(encoding))
        except UnicodeEncodeError:
            continue  # a character GBK does not have (GB18030 has them all)
    return b"\n".join(kept[:lines]) + b"\n"


def read(path: Path, fmt: str, **options: Any) -> list[Any]:
    return list(read_shard(str(path), CORPORA[fmt](format=fmt, path="", **options)))


def view(records: list[Any]) -> list[tuple[Any, ...]]:
    """What a record holds, without the file name it came from."""
    out: list[tuple[Any, ...]] = []
    for r in records:
        if isinstance(r, Document):
            out.append(("doc", r.id.split(":", 1)[1], r.title, r.text))
        elif isinstance(r, HumanPair):
            out.append(("pair", r.id.split(":", 1)[1], r.text1, r.text2, tuple(r.negatives), r.label))
        else:
            out.append(("rejected", r.line, r.record, r.reason))
    return out


@pytest.mark.parametrize(("name", "fmt", "lines"), LAYOUTS)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_a_bom_costs_no_record(
    shared_data: Path, tmp_path: Path, name: str, fmt: str, lines: int | None, suffix: str
) -> None:
    data = sample(shared_data, name, lines)
    plain, marked = tmp_path / "plain" / (Path(name).name + suffix), tmp_path / "bom" / (Path(name).name + suffix)
    for path, content in ((plain, data), (marked, BOM + data)):
        path.parent.mkdir()
        path.write_bytes(gzip.compress(content, mtime=0) if suffix else content)
    expected = view(read(plain, fmt))
    assert expected and not any(r[0] == "rejected" for r in expected)
    assert view(read(marked, fmt)) == expected


def test_a_bom_at_the_start_of_any_line_is_dropped(tmp_path: Path) -> None:
    """Shards joined with ``cat`` keep each part's BOM at the start of a line."""
    part = '{"id": "a", "text": "长江是中国第一长河。"}\n'.encode()
    path = tmp_path / "joined.jsonl"
    path.write_bytes(BOM + part + BOM + part.replace(b'"a"', b'"b"'))
    assert [(d.id, d.text) for d in read(path, "jsonl")] == [
        ("joined.jsonl:a", "长江是中国第一长河。"),
        ("joined.jsonl:b", "长江是中国第一长河。"),
    ]


@pytest.mark.parametrize(("name", "fmt", "lines"), LAYOUTS)
def test_a_gbk_corpus_reads_with_encoding_gb18030(
    shared_data: Path, tmp_path: Path, name: str, fmt: str, lines: int | None
) -> None:
    # The one-value layouts (dumps, SQuAD) are encoded as GB18030, which holds every character of the file.
    encoding = "gbk" if lines else "gb18030"
    utf8, gbk = tmp_path / "utf8" / Path(name).name, tmp_path / "gbk" / Path(name).name
    utf8.parent.mkdir(), gbk.parent.mkdir()
    utf8.write_bytes(sample(shared_data, name, lines, encoding).decode(encoding).encode("utf-8"))
    gbk.write_bytes(sample(shared_data, name, lines, encoding))
    expected = view(read(utf8, fmt))
    assert expected and not any(r[0] == "rejected" for r in expected)
    assert view(read(gbk, fmt, encoding="gb18030")) == expected
    assert view(read(gbk, fmt, encoding="GB18030")) == expected  # codec names are spelled freely


def test_gbk_read_as_utf8_is_quarantined_with_the_gb18030_hint(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "gbk.txt"
    path.write_bytes(sample(shared_data, "simclue/corpus_1w.txt", 30, "gbk"))
    records = read(path, "simclue")
    non_ascii = [n for n, line in enumerate(path.read_bytes().splitlines(), start=1) if not line.isascii()]
    assert [(r.line, r.reason) for r in records if isinstance(r, Rejected)] == [(n, "invalid_utf8") for n in non_ascii]
    hints = [r.detail for r in records if isinstance(r, Rejected)]
    assert all("decodes as GB18030" in h and "encoding: gb18030" in h for h in hints)
    first = path.read_bytes().splitlines()[non_ascii[0] - 1].decode("gbk")
    assert first[:10] in hints[0]  # the line as GB18030 reads it, so a person can tell


def test_bytes_that_are_no_gb18030_get_no_hint(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "\xff\xfe\xfa"}\n' + '{"text": "caf\xe9 au lait"}\n'.encode("latin-1"))
    rejected = [r for r in read(path, "jsonl") if isinstance(r, Rejected)]
    assert [r.reason for r in rejected] == ["invalid_utf8", "invalid_utf8"]
    assert not any("GB18030" in r.detail for r in rejected)


def test_utf8_read_as_gb18030_is_not_turned_into_mojibake(shared_data: Path, tmp_path: Path) -> None:
    """Most UTF-8 Chinese also decodes as GB18030, into other characters: those lines are quarantined."""
    path = tmp_path / "utf8.jsonl"
    path.write_bytes(sample(shared_data, "wudao/wudao_demo.jsonl", 20))
    records = read(path, "wudao", encoding="gb18030")
    lines = path.read_bytes().splitlines()
    chinese = [n for n, line in enumerate(lines, start=1) if not line.isascii()]
    assert chinese
    rejected = [r for r in records if isinstance(r, Rejected)]
    assert [(r.line, r.reason) for r in rejected] == [(n, "wrong_encoding") for n in chinese]
    assert all("encoding: utf-8" in r.detail for r in rejected)
    assert sum(isinstance(r, Document) for r in records) == len(lines) - len(chinese)  # ASCII reads either way


def test_an_undecodable_line_in_a_gb18030_corpus(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes("长江是中国第一长河。\n".encode("gbk") + b"\xff\xff\n" + "黄河\n".encode("gbk"))
    records = read(path, "simclue", encoding="gb18030")
    assert [r.text for r in records if isinstance(r, Document)] == ["长江是中国第一长河。", "黄河"]
    assert [(r.line, r.reason) for r in records if isinstance(r, Rejected)] == [(2, "invalid_encoding")]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "no-such-codec", "cp037"])
def test_encodings_a_line_reader_cannot_split_are_rejected(encoding: str) -> None:
    with pytest.raises(ValidationError, match="encoding"):
        JsonlCorpus(format="jsonl", path="x", encoding=encoding)


def test_encoding_spellings_are_canonical() -> None:
    assert JsonlCorpus(format="jsonl", path="x").encoding == "utf-8"
    assert JsonlCorpus(format="jsonl", path="x", encoding="UTF8").encoding == "utf-8"
    assert JsonlCorpus(format="jsonl", path="x", encoding="utf-8-sig").encoding == "utf-8"  # the BOM is dropped anyway
    assert JsonlCorpus(format="jsonl", path="x", encoding="GBK").encoding == "gbk"
    assert WudaoCorpus(format="wudao", path="x", encoding="gb18030").encoding == "gb18030"


def test_parquet_takes_no_encoding() -> None:
    with pytest.raises(ValidationError, match="Parquet"):
        ParquetCorpus(format="parquet", path="x", encoding="gb18030")
