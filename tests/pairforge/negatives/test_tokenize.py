from __future__ import annotations

import jieba
import pytest

from pairforge.negatives.analyze import analyze
from pairforge.negatives.terms import analyze_arrays
from pairforge.negatives.tokenize import cut, tokenize, tokenize_packed

ODD = ["", "  ", "a\x01b\x00c", "长江\r\n黄河", "2.4km 1.5.3 text-align 3-MCPD 50%以上 T.F.", "𠀀𠀁好", "__——…"]


@pytest.fixture(scope="module")
def lines(shared_data) -> list[str]:  # type: ignore[no-untyped-def]
    text = (shared_data / "simclue" / "corpus_1w.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()][:3000] + ODD


@pytest.mark.parametrize(
    "text",
    ["我来到北京清华大学", "全长2.4km，约7.3km", "1958-1965年间", "CCTV-1的节目", "增长了50%以上", "T.F.的报道"],
)
def test_tokens_equal_jieba(text: str) -> None:
    assert cut(text, keep_whitespace=True) == jieba.lcut(text)


def test_whitespace_tokens_are_dropped_by_default() -> None:
    assert cut("长江 黄河") == ["长江", "黄河"]


@pytest.mark.parametrize("keep_whitespace", [False, True])
def test_packed_tokens_on_both_cores_equal_single_core_lists(lines: list[str], keep_whitespace: bool) -> None:
    expected = tokenize(lines, keep_whitespace=keep_whitespace)
    assert tokenize_packed(lines, keep_whitespace=keep_whitespace).lists() == expected
    assert tokenize_packed(lines, keep_whitespace=keep_whitespace, workers=2).lists() == expected


@pytest.mark.parametrize("analyzer", ["jieba", "bigram", "jieba_bigram"])
def test_array_analysis_gives_analyzes_terms_in_order(lines: list[str], analyzer: str) -> None:
    terms = analyze_arrays(lines, analyzer)
    assert [terms.strings(i) for i in range(len(lines))] == analyze(lines, analyzer)
