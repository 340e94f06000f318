from __future__ import annotations

import json

import pytest

from pairforge.generation.parse import extract_json, is_chinese, parse_generation
from prompts import load_prompt

QP = load_prompt("qp").schema_for(3)
SP = load_prompt("sp").schema_for(1)


def q(type_: str, query: str, evidence: str = "长江发源于青藏高原。") -> dict:
    return {"type": type_, "query": query, "evidence": evidence}


GOOD = json.dumps(
    {
        "queries": [
            q("factoid", "长江发源于哪里？"),
            q("keyword", "长江 源头"),
            q("natural", "我想知道中国最长的河流是从哪里流出来的"),
        ]
    },
    ensure_ascii=False,
)


@pytest.mark.parametrize(
    ("raw", "finish", "items", "failure"),
    [
        (GOOD, "stop", 3, None),
        (f"```json\n{GOOD}\n```", "stop", 3, None),  # code fence
        (f"好的，以下是结果：\n{GOOD}\n希望对你有帮助。", "stop", 3, None),  # prose around the JSON
        (GOOD.replace("长江发源于哪里？", "长江\x01发源于哪里？"), "stop", 3, None),  # raw control character
        ("", "stop", 0, "empty"),
        ("  \n ", "stop", 0, "empty"),
        (GOOD[:60], "length", 0, "truncated"),
        (GOOD[:60], "stop", 0, "invalid_json"),
        ("抱歉，我无法完成这个任务。", "stop", 0, "refusal"),
        ("I'm sorry, but I cannot help with that.", "stop", 0, "refusal"),
        ("这段文字讲的是长江。", "stop", 0, "invalid_json"),
        ('{"questions": ["长江在哪"]}', "stop", 0, "schema"),  # wrong key
        ('{"queries": []}', "stop", 0, "schema"),
        ('{"queries": "长江"}', "stop", 0, "schema"),
        ('{"queries": [{"type": "other", "query": "长江在哪", "evidence": "长江"}]}', "stop", 0, "schema"),
        (
            '{"queries": [{"type": "factoid", "query": "Where does it start?", "evidence": "x y"}]}',
            "stop",
            0,
            "not_chinese",
        ),
        ("[1, 2, 3]", "stop", 0, "invalid_json"),
    ],
)
def test_parse_table(raw: str, finish: str, items: int, failure: str | None) -> None:
    result = parse_generation(raw, schema=QP, finish_reason=finish)
    assert (len(result.items), result.failure) == (items, failure)


def test_mixed_items_keep_the_good_ones_and_count_the_rest() -> None:
    raw = json.dumps(
        {
            "queries": [
                q("factoid", "长江有多长？"),
                q("keyword", "What is the source river"),
                {"type": "natural", "query": "缺少证据"},
            ]
        },
        ensure_ascii=False,
    )
    result = parse_generation(raw, schema=QP)
    assert [i.text for i in result.items] == ["长江有多长？"]
    assert result.failure is None
    assert dict(result.dropped) == {"not_chinese": 1, "schema": 1}


def test_a_repeated_item_is_dropped_as_duplicate() -> None:
    raw = json.dumps(
        {"queries": [q("factoid", "长江有多长？"), q("keyword", "长江有多长？"), q("natural", "长江在哪里？")]}
    )
    result = parse_generation(raw, schema=QP)
    assert [i.text for i in result.items] == ["长江有多长？", "长江在哪里？"]  # one pair id each
    assert dict(result.dropped) == {"duplicate": 1}


def test_traditional_output_is_converted_to_simplified() -> None:
    raw = json.dumps({"queries": [q("factoid", "長江的發源地在哪裡？", "長江發源於青藏高原。")]}, ensure_ascii=False)
    item = parse_generation(raw, schema=QP).items[0]
    assert (item.text, item.evidence, item.type) == ("长江的发源地在哪里？", "长江发源于青藏高原。", "factoid")


def test_sentence_prompt_schema() -> None:
    raw = '{"sentences": [{"sentence": "长江的源头位于青藏高原。", "evidence": "长江发源于青藏高原。"}]}'
    result = parse_generation(raw, schema=SP)
    assert [(i.text, i.type) for i in result.items] == [("长江的源头位于青藏高原。", "")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [('前缀 {"a": {"b": "}"}} 后缀', {"a": {"b": "}"}}), ("{broken", None), ('```\n{"x": 1}\n```', {"x": 1})],
)
def test_extract_json(text: str, expected: dict | None) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("长江有多长", True), ("长江 length", True), ("What are the regions where 松鸦 lives", False), ("123", False)],
)
def test_is_chinese(text: str, expected: bool) -> None:
    assert is_chinese(text) is expected
