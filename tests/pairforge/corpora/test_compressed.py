"""Cut and damaged .zst / .gz shards: the records before the damage are kept, and reading ends in one
``unreadable`` record at the line where it stopped; never a silent end, a crash, or another reason."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest
import zstandard

from pairforge.config import JsonlCorpus, SquadCorpus, WudaoCorpus
from pairforge.corpora import read_shard
from pairforge.records import Document, Rejected

JSONL = JsonlCorpus(format="jsonl", path="")


def sentences(shared_data: Path, n: int) -> list[str]:
    return (shared_data / "simclue" / "corpus_1w.txt").read_text(encoding="utf-8").splitlines()[:n]


def jsonl(texts: list[str]) -> bytes:
    return b"".join(
        json.dumps({"id": f"s{i}", "text": t}, ensure_ascii=False).encode() + b"\n" for i, t in enumerate(texts)
    )


def compress(data: bytes, suffix: str, **zstd_options: object) -> bytes:
    return gzip.compress(data, mtime=0) if suffix == ".gz" else zstandard.ZstdCompressor(**zstd_options).compress(data)


def decodable_prefix(cut: bytes, suffix: str) -> bytes:
    """What a decoder gets out of a cut stream before it runs out of input."""
    if suffix == ".gz":
        return zlib.decompressobj(31).decompress(cut)
    return zstandard.ZstdDecompressor().decompressobj().decompress(cut)


def read(path: Path, corpus: object = JSONL) -> tuple[list[Document], list[Rejected]]:
    records = list(read_shard(str(path), corpus))  # type: ignore[arg-type]
    return [r for r in records if isinstance(r, Document)], [r for r in records if isinstance(r, Rejected)]


def test_a_cut_single_block_zst_is_unreadable_not_empty(shared_data: Path, tmp_path: Path) -> None:
    data = jsonl(sentences(shared_data, 20))
    packed = compress(data, ".zst")
    assert decodable_prefix(packed[: len(packed) // 2], ".zst") == b""  # one block: nothing before its end
    path = tmp_path / "one-block.jsonl.zst"
    path.write_bytes(packed[: len(packed) // 2])
    docs, rejected = read(path)
    assert docs == []
    assert [(r.file, r.line, r.reason) for r in rejected] == [(str(path), 1, "unreadable")]
    assert "cut" in rejected[0].detail


@pytest.mark.parametrize("suffix", [".zst", ".gz"])
@pytest.mark.parametrize("share", [0.6, 0.9])
def test_a_cut_shard_keeps_the_records_before_the_cut(
    shared_data: Path, tmp_path: Path, suffix: str, share: float
) -> None:
    texts = sentences(shared_data, 4000)
    packed = compress(jsonl(texts), suffix)
    cut = packed[: int(len(packed) * share)]
    kept = decodable_prefix(cut, suffix).count(b"\n")
    assert 0 < kept < 4000
    path = tmp_path / f"cut.jsonl{suffix}"
    path.write_bytes(cut)
    docs, rejected = read(path)
    assert [d.text for d in docs] == texts[:kept]
    assert [(r.line, r.reason) for r in rejected] == [(kept + 1, "unreadable")]
    assert "rest of the file not read" in rejected[0].detail


def test_a_partial_last_line_cut_inside_a_character_is_unreadable_not_invalid_utf8(
    shared_data: Path, tmp_path: Path
) -> None:
    texts = sentences(shared_data, 10_000)
    packed = compress(jsonl(texts), ".zst")
    for end in range(int(len(packed) * 0.6), len(packed), 512):  # find a block end that splits a character
        prefix = decodable_prefix(packed[:end], ".zst")
        try:
            prefix[prefix.rfind(b"\n") + 1 :].decode("utf-8")
        except UnicodeDecodeError:
            break
    else:
        pytest.fail("no block boundary inside a character")
    path = tmp_path / "mid-character.jsonl.zst"
    path.write_bytes(packed[:end])
    docs, rejected = read(path)
    assert len(docs) == prefix.count(b"\n")
    assert [(r.line, r.reason) for r in rejected] == [(len(docs) + 1, "unreadable")]


def test_a_zst_cut_in_its_checksum_is_unreadable(shared_data: Path, tmp_path: Path) -> None:
    """Every block decodes, but the frame never ends: the shard was not read whole."""
    texts = sentences(shared_data, 50)
    path = tmp_path / "no-checksum.jsonl.zst"
    path.write_bytes(compress(jsonl(texts), ".zst", write_checksum=True)[:-2])
    docs, rejected = read(path)
    assert [d.text for d in docs] == texts
    assert [(r.line, r.reason) for r in rejected] == [(51, "unreadable")]


@pytest.mark.parametrize("suffix", [".zst", ".gz"])
def test_a_damaged_compressed_shard_is_unreadable_not_a_crash(shared_data: Path, tmp_path: Path, suffix: str) -> None:
    """zstandard.ZstdError and zlib.error are no OSError: before, they escaped the readers and stopped ingest."""
    packed = bytearray(compress(jsonl(sentences(shared_data, 4000)), suffix, write_checksum=True))
    if suffix == ".gz":
        packed[10] |= 0x06  # the first deflate block header: an invalid block type
    else:
        packed[len(packed) // 2] ^= 0xFF  # the restored data no longer matches the frame's checksum
    path = tmp_path / f"damaged.jsonl{suffix}"
    path.write_bytes(bytes(packed))
    _, rejected = read(path)
    assert rejected[-1].reason == "unreadable"
    assert rejected[-1].file == str(path) and rejected[-1].line is not None


def test_a_multi_frame_zst_is_read_whole(shared_data: Path, tmp_path: Path) -> None:
    texts = sentences(shared_data, 3000)
    path = tmp_path / "frames.jsonl.zst"
    path.write_bytes(b"".join(compress(jsonl(texts[i : i + 1000]), ".zst") for i in range(0, 3000, 1000)))
    docs, rejected = read(path)
    assert rejected == [] and [d.text for d in docs] == texts


@pytest.mark.parametrize("suffix", [".zst", ".gz"])
def test_a_cut_compressed_json_dump_is_unreadable(shared_data: Path, tmp_path: Path, suffix: str) -> None:
    """The JSON-value readers (WuDao dumps, SQuAD) name a cut stream `unreadable` too, not `invalid_json`."""
    records = [{"id": i, "title": "", "content": text} for i, text in enumerate(sentences(shared_data, 4000))]
    dump = json.dumps({"RECORDS": records}, ensure_ascii=False, indent=1)
    squad = (shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8")
    cases = [
        ("dump.json", dump, WudaoCorpus(format="wudao", path="")),
        ("dev.squad.json", squad, SquadCorpus(format="squad", path="")),
    ]
    for name, text, corpus in cases:
        packed = compress(text.encode(), suffix)
        cut = packed[: len(packed) * 6 // 10]
        path, prefix = tmp_path / f"{name}{suffix}", tmp_path / f"prefix-{name}"
        path.write_bytes(cut)
        prefix.write_bytes(decodable_prefix(cut, suffix))  # the same bytes, cut, but not compressed
        records, before = list(read_shard(str(path), corpus)), list(read_shard(str(prefix), corpus))
        assert [r.reason for r in records if isinstance(r, Rejected)] == ["unreadable"], name
        # Uncompressed, the same bytes are read whole: cut JSON (or a cut character), not an unreadable file.
        assert [r.reason for r in before if isinstance(r, Rejected)] in (["invalid_json"], ["invalid_utf8"])
        kept = [r.text for r in records if isinstance(r, Document)]
        assert kept and kept == [r.text for r in before if isinstance(r, Document)]  # the records before the cut
