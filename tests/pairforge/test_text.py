from __future__ import annotations

import pytest

from pairforge.text import is_chinese, normalize_text, strip_punctuation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３ｘｙｚ", "ABC123xyz"),  # full-width ASCII letters and digits fold
        ("价格：１００％＋税", "价格：100%+税"),  # symbols fold, the Chinese colon stays
        ("你好，世界！真的吗？是；（注）…～", "你好，世界！真的吗？是；（注）…～"),  # Chinese punctuation kept
        ("中\u3000文", "中 文"),  # ideographic space
        ("a\x00b\x07c\x1bd\x7fe\x85f", "abcdef"),  # C0/C1 controls and DEL removed
        ("零\u200b宽\ufeff字\u2060符", "零宽字符"),  # zero-width characters removed
        ("  多个   空格\t\t和\t制表  ", "多个 空格 和 制表"),
        ("第一段。\r\n\r\n\n  第二段。", "第一段。\n第二段。"),  # paragraph breaks collapse to one newline
        ("ﬁ ①", "fi 1"),  # compatibility forms (NFKC)
        ("", ""),
        ("\x00\u200b  ", ""),
    ],
)
def test_normalize_table(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("你好，世界！", "你好,世界!"),
        ("（注）：是；…～", "(注):是;...~"),
    ],
)
def test_fold_punctuation_folds_chinese_marks_too(raw: str, expected: str) -> None:
    assert normalize_text(raw, fold_punctuation=True) == expected


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("這是測試", "这是测试"),
        ("臺灣的歷史與文化", "台湾的历史与文化"),
        ("電腦軟體開發", "电脑软体开发"),
        ("簡體中文不變", "简体中文不变"),
    ],
)
def test_traditional_to_simplified(traditional: str, simplified: str) -> None:
    assert normalize_text(traditional, t2s=True) == simplified
    assert normalize_text(traditional) == traditional  # only when asked


def test_normalize_is_idempotent() -> None:
    text = "ＡＩ：人工智慧（ＡＩ）　是…\n\n\x01研究。"
    once = normalize_text(text, t2s=True)
    assert normalize_text(once, t2s=True) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [("长江有多长", True), ("长江 length", True), ("What are the regions where 松鸦 lives", False), ("123", False)],
)
def test_is_chinese(text: str, expected: bool) -> None:
    assert is_chinese(text) is expected


def test_strip_punctuation() -> None:
    assert strip_punctuation("长江，有多长？（全长） a.b") == "长江有多长全长ab"
