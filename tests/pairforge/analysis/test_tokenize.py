from __future__ import annotations

from pathlib import Path

import jieba
import numpy as np
import pytest

from pairforge.analysis import tokenize as tokenize_module
from pairforge.analysis.analyze import analyze
from pairforge.analysis.terms import analyze_arrays
from pairforge.analysis.tokenize import PackedTokens, cut, helper_pool, tokenize, tokenize_packed

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


def assert_same_packed(a: PackedTokens, b: PackedTokens) -> None:
    assert a.joined == b.joined
    for x, y in ((a.starts, b.starts), (a.lens, b.lens), (a.doc_ptr, b.doc_ptr)):
        assert x.dtype == y.dtype
        assert np.array_equal(x, y)


@pytest.mark.parametrize("workers", [2, 3, 50])
@pytest.mark.parametrize("keep_whitespace", [False, True])
def test_helpers_give_exactly_the_single_process_arrays(lines: list[str], workers: int, keep_whitespace: bool) -> None:
    one = tokenize_packed(lines, keep_whitespace=keep_whitespace)
    assert_same_packed(tokenize_packed(lines, keep_whitespace=keep_whitespace, workers=workers), one)


@pytest.mark.parametrize("texts", [[], ["长江"], ["", ""], ["", "", "长江 黄河", ""], ["a\x01b", "\x01", "𠀀"]])
def test_helpers_on_few_and_empty_texts(texts: list[str]) -> None:
    assert_same_packed(
        tokenize_packed(texts, keep_whitespace=True, workers=2), tokenize_packed(texts, keep_whitespace=True)
    )
    assert tokenize_packed(texts, workers=2).lists() == tokenize(texts)


def test_helpers_start_once_and_leave_no_files(
    lines: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokenize_module, "_shared_folder", lambda: str(tmp_path))
    tokenize_packed(lines[:50], workers=2)
    pool = helper_pool(1)
    assert tokenize_packed(lines[50:100], workers=2).lists() == tokenize(lines[50:100])
    assert helper_pool(1) is pool
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("analyzer", ["jieba", "bigram", "jieba_bigram"])
def test_array_analysis_gives_analyzes_terms_in_order(lines: list[str], analyzer: str) -> None:
    terms = analyze_arrays(lines, analyzer)
    assert [terms.strings(i) for i in range(len(lines))] == analyze(lines, analyzer)
