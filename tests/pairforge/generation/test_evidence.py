from __future__ import annotations

import pytest

from pairforge.generation.evidence import locate_evidence

PASSAGE = "长江是中国第一长河。它发源于青藏高原，流经十一个省级行政区，最后注入东海。2021年起，长江流域实行十年禁渔。"


@pytest.mark.parametrize(
    ("evidence", "method", "text"),
    [
        ("它发源于青藏高原，流经十一个省级行政区，最后注入东海。", "exact", None),
        ("“长江是中国第一长河。”", "normalized", "长江是中国第一长河"),
        ("它发源于青藏高原,流经十一个省级行政区,最后注入东海。", "fuzzy", None),
        ("2021年起长江流域实行十年禁渔", "fuzzy", None),
    ],
)
def test_located(evidence: str, method: str, text: str | None) -> None:
    found = locate_evidence(PASSAGE, evidence)
    assert found is not None and found[2] == method
    start, end, _ = found
    located = PASSAGE[start:end]
    if text is not None:
        assert located == text
    else:
        assert abs(len(located) - len(evidence)) <= 3 and located[:2] == evidence.strip("“")[:2]


@pytest.mark.parametrize(
    "evidence", ["黄河发源于巴颜喀拉山脉北麓。", "", "长江"[:0], "完全无关的一句话，讲的是计算机。"]
)
def test_not_located(evidence: str) -> None:
    assert locate_evidence(PASSAGE, evidence) is None


def test_offsets_past_512_are_reported_as_such() -> None:
    passage = "甲" * 600 + "乙丙丁戊己庚辛。"
    start, end, _ = locate_evidence(passage, "乙丙丁戊己庚辛。")
    assert (start, end) == (600, 608)
