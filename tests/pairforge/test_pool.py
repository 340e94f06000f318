"""The pool on disk: texts, ids and signatures by position, lookups by id and by text, parts in order."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from pairforge.config import DedupConfig
from pairforge.dedup.index import dedup_signatures, write_index
from pairforge.pool import Pool, PoolPart, build_pool
from pairforge.records import PASSAGE_SCHEMA
from pairforge.shards import ShardWriter

TEXTS = ["长江是中国第一长河。", "黄河是中华文明的母亲河。", "珠江流经广东。", "淮河是南北分界线之一。"]


def part(folder: Path, name: str, texts: list[str], config: DedupConfig) -> PoolPart:
    writer = ShardWriter(folder / "passages", name, PASSAGE_SCHEMA, 2)  # two files for the four texts
    ids = [f"{name}-{i}" for i in range(len(texts))]
    for pid, text in zip(ids, texts, strict=True):
        writer.add({"id": pid, "doc_id": pid, "source": "t", "text": text, "start": 0, "end": len(text),
                    "char_len": len(text)})  # fmt: skip
    writer.close()
    write_index(folder / "index" / name, ids, dedup_signatures(texts, config), config)
    return PoolPart(name, writer.paths, folder / "index" / name)


def test_parts_in_order_with_texts_ids_and_signatures(tmp_path: Path) -> None:
    config = DedupConfig()
    parts = [part(tmp_path, "a", TEXTS[:3], config), part(tmp_path, "b", TEXTS[3:], config)]
    pool = build_pool(parts, tmp_path / "pool", config)
    again = Pool(tmp_path / "pool")
    assert again.size == 4 and again.ids(range(4)) == ["a-0", "a-1", "a-2", "b-0"]
    assert again.texts([3, 0]) == [TEXTS[3], TEXTS[0]]
    assert np.array_equal([again.signatures[i] for i in range(4)], dedup_signatures(TEXTS, config))
    assert again.positions(["b-0", "missing", None, "a-1"]).tolist() == [3, -1, -1, 1]
    assert again.positions_of_texts([TEXTS[2], "别的"]).tolist() == [2, -1]
    assert pool.meta["parts"] == [{"name": "a", "rows": 3}, {"name": "b", "rows": 1}]


def test_the_pool_shares_the_index_parts_signatures_rather_than_copying_them(tmp_path: Path) -> None:
    config = DedupConfig()
    parts = [part(tmp_path, "a", TEXTS[:3], config), part(tmp_path, "b", TEXTS[3:], config)]
    build_pool(parts, tmp_path / "pool", config)
    for n, name in enumerate("ab"):
        assert (tmp_path / "pool" / f"signatures-{n:05d}.u32").samefile(tmp_path / "index" / name / "signatures.u32")
    write_index(tmp_path / "index" / "b", ["b-0"], dedup_signatures(TEXTS[:1], config), config)  # rewritten aside
    assert np.array_equal(Pool(tmp_path / "pool").signatures[3], dedup_signatures(TEXTS[3:], config)[0])
    assert np.array_equal(Pool(tmp_path / "pool").signatures[-4], dedup_signatures(TEXTS[:1], config)[0])
    with pytest.raises(IndexError):
        Pool(tmp_path / "pool").signatures[4]


def test_texts_across_parts_read_back_in_any_order(tmp_path: Path) -> None:
    config, BLOCK = DedupConfig(), 16
    texts = [f"{TEXTS[i % 4]}第{i}段。" * (1 + i % 3) for i in range(3 * BLOCK + 5)]
    cuts = [0, 7, 7 + BLOCK + 3, len(texts)]
    parts = [part(tmp_path, f"p{n}", texts[a:b], config) for n, (a, b) in enumerate(itertools.pairwise(cuts))]
    pool = build_pool(parts, tmp_path / "pool", config)
    order = [len(texts) - 1, 0, BLOCK, BLOCK - 1, 5, 2 * BLOCK + 1, BLOCK]
    assert pool.texts(order) == [texts[i] for i in order]
    assert Pool(tmp_path / "pool").texts(range(len(texts))) == texts
    assert pool.positions_of_texts([texts[BLOCK + 2]]).tolist() == [BLOCK + 2]


def test_a_part_whose_index_does_not_match_its_passages_is_refused(tmp_path: Path) -> None:
    config = DedupConfig()
    good = part(tmp_path, "a", TEXTS, config)
    write_index(tmp_path / "index" / "a", ["a-0"], dedup_signatures(TEXTS[:1], config), config)
    with pytest.raises(ValueError, match="4 passages but 1 MinHash rows"):
        build_pool([good], tmp_path / "pool", config)
    assert not (tmp_path / "pool").exists()  # nothing half-built is left looking whole
