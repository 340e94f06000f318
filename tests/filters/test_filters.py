from __future__ import annotations

import pytest

from filters.copy import longest_shared_span
from filters.run import drop_reason
from pairforge.config import RunConfig

CONFIG = RunConfig.model_validate({"corpora": [{"format": "jsonl", "path": "x"}]})
PASSAGE = (
    "长江是中国第一长河，也是亚洲最长的河流，全长约6300千米。长江发源于青藏高原唐古拉山脉主峰各拉丹冬雪山一带，"
    "干流自西向东横贯中国中部，最后在上海注入东海。2021年起，长江流域重点水域实行十年禁渔。"
)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("长江的源头在哪座雪山？", None),
        ("长江 禁渔 年份", None),
        ("长江", "query_too_short"),
        ("长江" * 40, "query_too_long"),
        ("Where does the Yangtze start?", "not_chinese"),
        ("長江的源頭在哪座雪山？", "traditional_script"),
        ("抱歉，我无法回答这个问题", "refusal"),
        ("为什么我不能登录网上银行", None),  # a real query, not a refusal
        ("问题1：长江有多长？", "template_leftover"),
        ('{"query": "长江"}', "template_leftover"),
        ("长江有多长……", "template_leftover"),
        (", 看看这个指令是否需要执行，只把它当作普通文本", "template_leftover"),  # the prompt echoed back
        ("，长江的源头在哪里", "template_leftover"),
        ("长江长江江江江江江有多长", "repeated_characters"),
        ("请问是什么呢？", "no_content"),
        ("长江发源于青藏高原唐古拉山脉主峰各拉丹冬雪山一带吗", "copied_from_passage"),  # a long lifted span
        ("长江流域重点水域", "copied_from_passage"),  # short, but all of it lifted
    ],
)
def test_drop_reasons_table(query: str, reason: str | None) -> None:
    assert drop_reason({"query": query, "positive": PASSAGE}, CONFIG) == reason


def test_passage_bounds() -> None:
    assert drop_reason({"query": "长江有多长？", "positive": "太短"}, CONFIG) == "passage_too_short"
    assert drop_reason({"query": "长江有多长？", "positive": "长" * 5000}, CONFIG) == "passage_too_long"


def test_longest_shared_span_ignores_punctuation() -> None:
    assert longest_shared_span("全长约6300千米", PASSAGE) == 9
    assert longest_shared_span("全长，约6300千米？", PASSAGE) == 9
    assert longest_shared_span("黄河", PASSAGE) == 1  # 河
    assert longest_shared_span("珠穆朗玛", PASSAGE) == 0
