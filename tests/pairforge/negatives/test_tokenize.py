from __future__ import annotations

import jieba
import pytest

from pairforge.negatives.tokenize import cut


@pytest.mark.parametrize(
    "text",
    ["我来到北京清华大学", "全长2.4km，约7.3km", "1958-1965年间", "CCTV-1的节目", "增长了50%以上", "T.F.的报道"],
)
def test_tokens_equal_jieba(text: str) -> None:
    assert cut(text, keep_whitespace=True) == jieba.lcut(text)


def test_whitespace_tokens_are_dropped_by_default() -> None:
    assert cut("长江 黄河") == ["长江", "黄河"]
