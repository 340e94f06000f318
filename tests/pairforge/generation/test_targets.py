from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pairforge.generation.targets import (
    Target,
    assign_query_types,
    candidate_sentences,
    is_informative,
    select_targets,
)
from pairforge.window import split_sentences

SENTENCES = [
    "长江是中国第一长河，全长约六千三百千米。",
    "它发源于青藏高原唐古拉山脉的各拉丹冬雪山。",
    "干流自西向东流经十一个省级行政区。",
    "最后在上海崇明岛以东注入东海。",
    "长江流域的人口约占全国的三分之一。",
    "2021年起，长江流域重点水域实行十年禁渔。",
    "三峡大坝是世界上装机容量最大的水电站。",
    "沿江的武汉、南京和重庆都是重要的港口城市。",
]
NOT_TARGETS = ["目录", "第二章 地理\n", "1990年、1995年、2000年、2005年、2010年。", "好。", "\n", "Yangtze River."]
settings.register_profile("targets", max_examples=80, deadline=None)
passages = st.lists(st.sampled_from(SENTENCES + NOT_TARGETS), min_size=1, max_size=40).map("".join)


def whole_sentences(passage: str) -> set[str]:
    return {passage[s:e].strip() for s, e in split_sentences(passage)}


@settings(max_examples=80, deadline=None)
@given(passage=passages, count=st.integers(0, 6), kind=st.sampled_from(["qp", "sp"]))
def test_targets_are_whole_sentences_whose_offsets_reproduce_them(passage: str, count: int, kind: str) -> None:
    targets = select_targets(passage, count, kind=kind)
    assert len(targets) <= count
    assert len({(t.start, t.end) for t in targets}) == len(targets)  # no sentence twice for one kind
    assert [t.start for t in targets] == sorted(t.start for t in targets)
    for t in targets:
        assert passage[t.start : t.end] == t.text
        assert t.text in whole_sentences(passage)
        assert is_informative(t.text, min_chars=12, max_chars=80)


@settings(max_examples=80, deadline=None)
@given(passage=passages, count=st.integers(1, 6), share=st.floats(0, 1), long_chars=st.integers(20, 400))
def test_the_tail_share_holds_on_long_passages(passage: str, count: int, share: float, long_chars: int) -> None:
    targets = select_targets(passage, count, kind="qp", long_chars=long_chars, long_tail_share=share)
    candidates = candidate_sentences(passage, min_chars=12, max_chars=80)
    assert len(targets) == min(count, len(candidates))  # as many as asked, while there are sentences
    if len(passage) <= long_chars:
        return
    tail = [c for c in candidates if c.start >= long_chars]
    wanted = min(len(tail), math.ceil(share * len(targets)))
    assert sum(t.start >= long_chars for t in targets) >= wanted


@settings(max_examples=40, deadline=None)
@given(passage=passages, count=st.integers(1, 6))
def test_selection_is_deterministic_and_depends_on_the_kind_only_through_the_seed(passage: str, count: int) -> None:
    first = select_targets(passage, count, kind="qp", long_chars=100)
    assert first == select_targets(passage, count, kind="qp", long_chars=100)
    assert len(select_targets(passage, count, kind="sp", long_chars=100)) == len(first)


def test_targets_spread_over_the_passage() -> None:
    passage = "".join(SENTENCES * 3)  # 24 candidate sentences
    targets = select_targets(passage, 4, kind="qp", long_chars=10_000)
    quarter = len(passage) / 4
    assert sorted(int(t.start // quarter) for t in targets) == [0, 1, 2, 3]  # one per quarter


def test_another_kinds_targets_are_avoided_while_others_remain() -> None:
    passage = "".join(SENTENCES)
    qp = select_targets(passage, 3, kind="qp")
    sp = select_targets(passage, 3, kind="sp", exclude={(t.start, t.end) for t in qp})
    assert not {(t.start, t.end) for t in qp} & {(t.start, t.end) for t in sp}
    # With only two sentences, the second kind reuses them rather than getting nothing.
    short = "".join(SENTENCES[:2])
    taken = {(t.start, t.end) for t in select_targets(short, 2, kind="qp")}
    assert len(select_targets(short, 2, kind="sp", exclude=taken)) == 2


def test_a_long_passage_gets_its_tail_targets_past_long_chars() -> None:
    passage = "".join(SENTENCES * 4)  # ~600 characters
    assert len(passage) > 512
    for count in (1, 2, 3, 4):
        targets = select_targets(passage, count, kind="qp")
        assert sum(t.start >= 512 for t in targets) >= math.ceil(count / 2)


@pytest.mark.parametrize(
    ("sentence", "informative"),
    [
        ("长江是中国第一长河，全长约六千三百千米。", True),
        ("“长江是中国第一长河，全长约六千三百千米。”", True),  # closing quote after the end mark
        ("第二章 长江的地理与水文特征概述", False),  # a heading: no end mark
        ("1990、1995、2000、2005、2010、2015年。", False),  # a list of numbers
        ("好的。", False),  # too short
        ("长" * 100 + "。", False),  # too long
        ("The Yangtze is the longest river in Asia.", False),  # not Chinese
    ],
)
def test_informative_sentences(sentence: str, informative: bool) -> None:
    assert is_informative(sentence, min_chars=12, max_chars=80) is informative


def test_candidate_offsets_skip_the_whitespace_around_a_sentence() -> None:
    passage = "  长江是中国第一长河，全长约六千三百千米。\n  它发源于青藏高原唐古拉山脉的各拉丹冬雪山。  "
    found = candidate_sentences(passage, min_chars=12, max_chars=80)
    assert [t.text for t in found] == SENTENCES[:2]
    assert all(passage[t.start : t.end] == t.text for t in found)
    assert found[0] == Target(2, 22, SENTENCES[0])


def test_query_types_follow_the_mix() -> None:
    mix = {"factoid": 1.0, "keyword": 1.0, "natural": 1.0}
    counts = Counter(t for i in range(300) for t in assign_query_types(f"段落{i}", 2, mix))
    assert set(counts) == set(mix) and all(170 <= n <= 230 for n in counts.values())  # 200 each, +-15%
    weighted = Counter(t for i in range(300) for t in assign_query_types(f"段落{i}", 2, {"factoid": 3, "natural": 1}))
    assert set(weighted) == {"factoid", "natural"} and 400 <= weighted["factoid"] <= 500  # 450 expected
    one = assign_query_types("长江是中国第一长河。", 3, mix)
    assert one == assign_query_types("长江是中国第一长河。", 3, mix) and len(set(one)) == 3  # one passage: all three
