from __future__ import annotations

import pytest

from filters.chain import drop_reason
from filters.copy import longest_shared_span, ngram_overlap
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


TARGET = "长江发源于青藏高原唐古拉山脉主峰各拉丹冬雪山一带，"


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("长江的源头位于唐古拉山脉的各拉丹冬雪山附近。", None),  # a paraphrase shares words with its target
        ("长江源自青藏高原上的各拉丹冬雪山。", None),
        ("作为中国第一长河，长江的源头在青藏高原唐古拉山脉主峰各拉丹冬雪山附近的冰川里。", None),
        ("长江发源于青藏高原唐古拉山脉主峰各拉丹冬雪山一带。", "copied_from_target"),  # the target itself
        ("长江发源于青藏高原唐古拉山脉主峰各拉丹冬雪山。", "copied_from_target"),  # a trimmed copy
    ],
)
def test_restatements_have_their_own_copy_rule(sentence: str, reason: str | None) -> None:
    pair = {"kind": "sp", "query": sentence, "positive": PASSAGE, "evidence": TARGET}
    assert drop_reason(pair, CONFIG) == reason


def test_the_query_rule_would_drop_a_fair_restatement() -> None:
    restated = "作为中国第一长河，长江的源头在青藏高原唐古拉山脉主峰各拉丹冬雪山附近的冰川里。"
    pair = {"kind": "sp", "query": restated, "positive": PASSAGE, "evidence": TARGET}
    assert longest_shared_span(restated, PASSAGE) > CONFIG.filter.max_copy_chars
    assert drop_reason({**pair, "kind": "qp"}, CONFIG) == "copied_from_passage"
    assert drop_reason(pair, CONFIG) is None


def test_copy_thresholds_come_from_the_config() -> None:
    pair = {
        "kind": "sp",
        "query": "长江的源头位于唐古拉山脉的各拉丹冬雪山附近。",
        "positive": PASSAGE,
        "evidence": TARGET,
    }
    overlap = ngram_overlap(pair["query"], TARGET, 2)
    assert 0.3 < overlap < 0.7
    strict = CONFIG.model_copy(update={"filter": CONFIG.filter.model_copy(update={"sp_max_ngram_overlap": 0.3})})
    assert drop_reason(pair, strict) == "copied_from_target"
    trigram = CONFIG.model_copy(update={"filter": CONFIG.filter.model_copy(update={"sp_ngram": 3})})
    assert ngram_overlap(pair["query"], TARGET, 3) < overlap and drop_reason(pair, trigram) is None
    short = {"query": "长江流域重点", "positive": PASSAGE}  # 6 characters, all of them lifted
    assert drop_reason(short, CONFIG) == "copied_from_passage"
    lenient = CONFIG.model_copy(update={"filter": CONFIG.filter.model_copy(update={"copy_share_min_chars": 7})})
    assert drop_reason(short, lenient) is None


def test_a_restatement_without_known_evidence_is_measured_against_the_passage() -> None:
    assert drop_reason({"kind": "sp", "query": "长江流域重点水域实行十年禁渔。", "positive": PASSAGE}, CONFIG) == (
        "copied_from_target"
    )
    assert ngram_overlap("长", PASSAGE, 2) == 0.0  # shorter than n: nothing to measure


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("长江自2020年起禁渔吗？", "unsupported"),  # the passage says 2021
        ("长江的英文名Yangtze怎么来的？", "unsupported"),
        ("长江在《禹贡》里叫什么？", "unsupported"),
        ("长江从二〇二一年起禁渔多少年？", None),  # 2021 in Chinese digits
        ("长江禁渔期是10年吗？", None),  # 十年 in the passage
    ],
)
def test_unsupported_table(query: str, reason: str | None) -> None:
    assert drop_reason({"query": query, "positive": PASSAGE}, CONFIG) == reason


def test_unsupported_can_be_switched_off() -> None:
    config = CONFIG.model_copy(update={"filter": CONFIG.filter.model_copy(update={"unsupported": False})})
    assert drop_reason({"query": "长江自2020年起禁渔吗？", "positive": PASSAGE}, config) is None
