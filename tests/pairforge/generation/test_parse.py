from __future__ import annotations

import json

import pytest

from pairforge.generation.parse import _validator, check_against_target, extract_json, parse_generation
from pairforge.generation.targets import Target
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


PASSAGE = "长江是中国第一长河。它发源于青藏高原唐古拉山脉。干流最后注入东海。"
TARGET = Target(10, 24, "它发源于青藏高原唐古拉山脉。")
QP2 = {t: load_prompt("qp", "v2").schema_for(1, t) for t in ("factoid", "keyword", "natural")}
SP2 = load_prompt("sp", "v2").schema_for(1)


def answer(**fields: str) -> str:
    return json.dumps(fields, ensure_ascii=False)


@pytest.mark.parametrize(
    ("raw", "query_type", "finish", "text", "failure"),
    [
        (answer(query="长江的源头在哪座山脉？"), "factoid", "stop", "长江的源头在哪座山脉？", None),
        (f"```json\n{answer(query='长江 源头')}\n```", "keyword", "stop", "长江 源头", None),  # fenced
        (answer(query="長江發源於哪座山脈？"), "factoid", "stop", "长江发源于哪座山脉？", None),  # traditional
        (
            answer(query="青藏高原唐古拉 山脉"),
            "keyword",
            "stop",
            "青藏高原唐古拉 山脉",
            None,
        ),  # keywords may be its words
        (answer(query="它发源于青藏高原唐古拉山脉？"), "factoid", "stop", None, "copies_target"),  # the target itself
        (answer(query="发源于青藏高原唐古拉山脉吗？"), "natural", "stop", None, None),  # a question around it
        (answer(query="唐古拉山脉？"), "factoid", "stop", None, "copies_target"),  # a piece of it, no question
        (answer(query="黄河流经哪些省份？"), "factoid", "stop", None, "off_target"),  # about something else
        (answer(query="Where does the river start?"), "natural", "stop", None, "schema"),  # the grammar's shape
        (answer(query="长江的源头在哪里"), "factoid", "stop", None, "schema"),  # a factoid must be a question
        (answer(query="长江的源头在哪座山脉？", evidence="x"), "factoid", "stop", None, "schema"),  # extra field
        ('{"query": "长江的源头在', "factoid", "length", None, "truncated"),
        ('{"query": "长江的源头在', "factoid", "stop", None, "invalid_json"),
        ("抱歉，我无法完成这个任务。", "factoid", "stop", None, "refusal"),
        ("", "factoid", "stop", None, "empty"),
        ('{"queries": ["长江的源头在哪？"]}', "factoid", "stop", None, "schema"),  # the old shape
    ],
)
def test_targeted_query_table(raw: str, query_type: str, finish: str, text: str | None, failure: str | None) -> None:
    result = parse_generation(raw, schema=QP2[query_type], finish_reason=finish, target=TARGET, query_type=query_type)
    assert result.failure == failure
    if failure is None and text is not None:
        (item,) = result.items
        assert (item.text, item.type, item.evidence) == (text, query_type, TARGET.text)
        assert (item.start, item.end) == (10, 24) and PASSAGE[item.start : item.end] == item.evidence


@pytest.mark.parametrize(
    ("sentence", "failure"),
    [
        ("长江的源头位于青藏高原的唐古拉山脉。", None),
        ("長江的源頭位於青藏高原的唐古拉山脈。", None),  # traditional, converted
        ("它发源于青藏高原唐古拉山脉。", "copies_target"),  # identical
        ("它发源于青藏高原唐古拉山脉，全长六千多千米。", "copies_target"),  # the whole target and more
        ("发源于青藏高原唐古拉山脉。", "copies_target"),  # a piece of it
        ("黄河是中国第二长河，流经九个省区。", "off_target"),
        ("The Yangtze rises on the Tibetan Plateau.", "schema"),  # the pattern wants a Chinese sentence
        ("长江。", "schema"),  # too short for the pattern
        ("？。", "schema"),
    ],
)
def test_targeted_restatement_table(sentence: str, failure: str | None) -> None:
    result = parse_generation(answer(sentence=sentence), schema=SP2, target=TARGET)
    assert result.failure == failure
    assert len(result.items) == (failure is None)


def test_without_structured_output_the_parser_still_holds_the_shape() -> None:
    # A backend without a grammar can return anything; the compiled schema rejects what the grammar would.
    assert parse_generation(answer(query="长江 源头？"), schema=QP2["keyword"], target=TARGET).failure == "schema"
    assert parse_generation("[1, 2]", schema=SP2, target=TARGET).failure == "invalid_json"


@pytest.mark.parametrize(
    ("text", "field", "query_type", "expected"),
    [
        ("长江发源于哪里？", "query", "factoid", None),
        ("它发源于青藏高原唐古拉山脉", "query", "natural", "copies_target"),
        ("唐古拉山脉", "query", "keyword", None),
        ("唐古拉山脉", "sentence", None, "copies_target"),
        ("北京是首都", "query", "factoid", "off_target"),
    ],
)
def test_check_against_target(text: str, field: str, query_type: str | None, expected: str | None) -> None:
    assert check_against_target(text, TARGET.text, field=field, query_type=query_type) == expected


def test_validators_are_compiled_once_per_schema() -> None:
    raw = answer(query="长江的源头在哪座山脉？")
    parse_generation(raw, schema=QP2["factoid"], target=TARGET, query_type="factoid")
    before = _validator.cache_info()
    for _ in range(20):
        parse_generation(raw, schema=QP2["factoid"], target=TARGET, query_type="factoid")
    after = _validator.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 20


def test_punctuation_alone_is_empty_not_a_copy() -> None:
    schema = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
    result = parse_generation(answer(query="？？"), schema=schema, target=TARGET, query_type="factoid")
    assert (result.items, dict(result.dropped)) == ([], {"empty": 1})
