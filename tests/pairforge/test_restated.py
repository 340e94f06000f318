from __future__ import annotations

import pytest

from pairforge.restated import bigram_overlap, locate_restated

PASSAGE = (
    "赵州桥位于河北省赵县城南的洨河之上。它建于隋朝大业年间，由匠师李春设计建造。"
    "桥长五十多米，只有一个大拱，两肩各有两个小拱。\n这种敞肩拱既减轻了桥身重量，又便于洪水宣泄。"
)
SENTENCES = [
    "赵州桥位于河北省赵县城南的洨河之上。",
    "它建于隋朝大业年间，由匠师李春设计建造。",
    "桥长五十多米，只有一个大拱，两肩各有两个小拱。",
    "这种敞肩拱既减轻了桥身重量，又便于洪水宣泄。",
]
SPANS = [(PASSAGE.index(s), PASSAGE.index(s) + len(s)) for s in SENTENCES]


@pytest.mark.parametrize(
    ("restatement", "target", "expected"),
    [
        ("赵州桥是隋朝匠师李春设计建造的。", 1, 1),  # restates its target
        ("赵州桥是隋朝匠师李春设计建造的。", 0, 1),  # asked about sentence 0, restated sentence 1: relocated
        ("赵州桥的敞肩拱能减轻桥身重量并便于泄洪。", 2, 3),  # a neighbour
        ("赵州桥坐落在河北赵县洨河上。", None, 0),  # no target: the best sentence
        ("赵州桥在河北，由李春设计。", 0, 0),  # a tie (3 of 10 bigrams each): the target keeps its place
    ],
)
def test_locate_restated_table(restatement: str, target: int | None, expected: int) -> None:
    found = locate_restated(restatement, PASSAGE, SPANS[target] if target is not None else None)
    assert found is not None
    assert (found.start, found.end) == SPANS[expected]
    assert found.overlap == pytest.approx(bigram_overlap(restatement, SENTENCES[expected]))


def test_locate_restated_unrelated_and_empty() -> None:
    found = locate_restated("长城是世界上最长的城墙。", PASSAGE)
    assert found is not None and found.overlap == 0.0
    assert locate_restated("赵州桥很古老。", "") is None
    assert locate_restated("赵州桥很古老。", "   \n ") is None


@pytest.mark.parametrize(
    ("text", "source", "overlap"),
    [
        ("赵州桥", "赵州桥位于河北", 1.0),
        ("赵州桥，很老", "赵州桥位于河北", 0.5),  # 赵州 州桥 of 赵州 州桥 桥很 很老 (punctuation ignored)
        ("赵", "赵州桥", 0.0),  # no bigram
        ("长城", "赵州桥", 0.0),
    ],
)
def test_bigram_overlap_table(text: str, source: str, overlap: float) -> None:
    assert bigram_overlap(text, source) == pytest.approx(overlap)
