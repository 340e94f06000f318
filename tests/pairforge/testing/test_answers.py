"""The fake LLM's answers: schema filling as tables of schemas → answers, the passage and target-sentence rules,
determinism, and answers to the real qp/sp prompts over real CMRC passages that parse and would survive the
copy filter."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pairforge.generation.parse import parse_generation
from pairforge.generation.targets import Target
from pairforge.judge.rubric import CRITERIA, parse_verdict, render_judge
from pairforge.testing.answers import MAX_DEPTH, MAX_ITEMS, example_schema, fill_answer
from pairforge.testing.passage import FALLBACK_SENTENCE, pick_sentences, split_prompt, split_sentences
from prompts import PROMPTS_DIR, load_prompt, render_messages, render_prompt

PASSAGE = "长江是中国第一长河，全长约6300公里。它发源于青藏高原的唐古拉山脉。长江流经十一个省级行政区！最后注入东海。"
PUNCTUATION = str.maketrans("", "", "，。！？；：、“”‘’（）《》,.!?;:\"'() ")
SENTENCES = [
    "长江是中国第一长河，全长约6300公里。",
    "它发源于青藏高原的唐古拉山脉。",
    "长江流经十一个省级行政区！",
    "最后注入东海。",
]


def request(prompt: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "system", "content": "你好"}, {"role": "user", "content": prompt}],
    }
    if schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    return body


def boxed(passage: str) -> str:
    return f"请阅读下面的段落。\n<passage>\n{passage}\n</passage>\n只输出 JSON。"


def in_order(passage: str, salt: int) -> list[str]:
    return split_sentences(passage)


def answer(schema: dict[str, Any] | None, passage: str = PASSAGE, **kwargs: Any) -> Any:
    kwargs.setdefault("picker", in_order)
    return json.loads(fill_answer(request(boxed(passage), schema), **kwargs))


def is_copy(query: str, passage: str) -> bool:
    """filters/copy.py's rule at its defaults: a shared span over 12 characters, or 80% of a 6+ character query
    (punctuation ignored)."""
    q, p = query.translate(PUNCTUATION), passage.translate(PUNCTUATION)
    span = difflib.SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p)).size
    return span > 12 or (len(q) >= 6 and span >= 0.8 * len(q))


ITEM = {
    "type": "object",
    "properties": {"evidence": {"type": "string"}, "query": {"type": "string", "maxLength": 48}},
    "required": ["evidence", "query"],
}
RECURSIVE = {"type": "object", "properties": {"child": {"$ref": "#"}}, "required": ["child"]}
SCHEMAS: list[tuple[str, dict[str, Any], Any]] = [
    ("string", {"type": "string", "minLength": 30, "maxLength": 40}, lambda v: 30 <= len(v) <= 40),
    ("integer", {"type": "integer", "minimum": 3, "maximum": 9}, lambda v: v == 3),
    ("exclusive", {"type": "integer", "exclusiveMinimum": 3}, lambda v: v == 4),
    ("number", {"type": "number"}, lambda v: v == 0.0),
    ("boolean", {"type": "boolean"}, lambda v: v is True),
    ("const", {"const": "固定"}, lambda v: v == "固定"),
    ("nullable", {"anyOf": [{"type": "null"}, {"type": "integer"}]}, lambda v: v == 0),
    ("type list", {"type": ["null", "boolean"]}, lambda v: v is True),
    (
        "no required",
        {"properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}}},
        lambda v: v == {"a": 0, "b": True},
    ),
    (
        "required only",
        {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["b"]},
        lambda v: list(v) == ["b"],
    ),
    ("min items", {"type": "array", "items": ITEM, "minItems": 4}, lambda v: len(v) == 4),
    ("no min items", {"type": "array", "items": {"type": "integer"}}, lambda v: v == [0]),
    (
        "max items",
        {"type": "array", "items": {"type": "integer"}, "minItems": 9, "maxItems": 2},
        lambda v: len(v) == 2,
    ),
    ("bounded", {"type": "array", "items": {"type": "integer"}, "minItems": 10**9}, lambda v: len(v) == MAX_ITEMS),
    ("tuple", {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}]}, lambda v: v == [0, True]),
    (
        "enum",
        {"type": "array", "minItems": 5, "items": {"enum": ["a", "b"]}},
        lambda v: v == ["a", "b", "a", "b", "a"],
    ),
    (
        "nested",
        {
            "type": "object",
            "properties": {
                "doc": {
                    "type": "object",
                    "properties": {"pairs": {"type": "array", "minItems": 2, "items": ITEM}},
                    "required": ["pairs"],
                }
            },
            "required": ["doc"],
        },
        lambda v: [p["evidence"] for p in v["doc"]["pairs"]] == SENTENCES[:2],
    ),
    (
        "ref",
        {
            "$defs": {"Item": ITEM},
            "type": "object",
            "properties": {"items": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/Item"}}},
            "required": ["items"],
        },
        lambda v: len(v["items"]) == 2 and v["items"][0]["evidence"] in PASSAGE,
    ),
    (
        "all of",
        {
            "allOf": [
                {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"required": ["b"], "properties": {"b": {"const": 1}}},
            ]
        },
        lambda v: v == {"a": 0, "b": 1},
    ),
    (
        "recursive",
        RECURSIVE,
        lambda v: json.dumps(v) == '{"child": ' * (MAX_DEPTH + 1) + "null" + "}" * (MAX_DEPTH + 1),
    ),
    (
        "evidence list",
        {
            "type": "object",
            "properties": {"evidence": {"type": "array", "minItems": 3, "items": {"type": "string"}}},
            "required": ["evidence"],
        },
        lambda v: v["evidence"] == SENTENCES[:3],
    ),
    (
        "questions",
        {
            "type": "object",
            "properties": {"questions": {"type": "array", "minItems": 6, "items": {"type": "string"}}},
            "required": ["questions"],
        },
        lambda v: len(set(v["questions"])) == 6,
    ),
]


@pytest.mark.parametrize(("name", "schema", "expected"), SCHEMAS, ids=[s[0] for s in SCHEMAS])
def test_a_schema_is_filled_and_followed(name: str, schema: dict[str, Any], expected: Any) -> None:
    value = answer(schema)
    assert expected(value), value
    if name not in ("bounded", "max items", "recursive"):  # the first two cannot be met, the third has no end
        jsonschema.validate(value, schema)


@pytest.mark.parametrize(("kind", "count"), [("qp", 3), ("qp", 7), ("sp", 1), ("sp", 3)])
def test_the_prompt_schemas_get_valid_distinct_items_quoting_the_passage(kind: str, count: int) -> None:
    prompt = load_prompt(kind)
    schema = prompt.schema_for(count)
    raw = fill_answer(request(render_prompt(prompt, PASSAGE, count=count), schema))
    value = json.loads(raw)
    jsonschema.validate(value, schema)
    items = value[prompt.list_key]
    assert len(items) == count
    assert all(item["evidence"] in SENTENCES for item in items)  # a passage sentence, verbatim
    texts = [item.get("query") or item["sentence"] for item in items]
    assert len(set(texts)) == count
    if kind == "qp":
        assert [item["type"] for item in items] == ["factoid", "keyword", "natural"] * (count // 3) + ["factoid"] * (
            count % 3
        )
    parsed = parse_generation(raw, schema=schema)
    assert parsed.failure is None and len(parsed.items) == count and not parsed.dropped


def test_without_a_schema_the_prompt_example_is_followed_else_an_empty_object() -> None:
    prompt = load_prompt("qp")
    text = render_prompt(prompt, PASSAGE, count=3)
    inferred = example_schema(split_prompt(text)[1])
    assert inferred is not None
    assert inferred["properties"]["queries"]["minItems"] == 3
    assert inferred["properties"]["queries"]["items"]["properties"]["type"] == {
        "enum": ["factoid", "keyword", "natural"]
    }
    value = json.loads(fill_answer(request(text)))
    jsonschema.validate(value, prompt.schema_for(3))
    assert fill_answer(request(boxed(PASSAGE))) == "{}"  # a schema found nowhere
    # An example inside the passage is data, not the answer format.
    assert fill_answer(request(boxed('{"queries": ["x"]}'))) == "{}"


def test_the_passage_is_the_delimited_block_of_the_last_user_message() -> None:
    prompt = "前言里提到 <passage> 和 </passage> 两个标记。\n<passage>\n第一句。第二句！\n</passage>\n后记：别的内容。"
    assert split_prompt(prompt) == (
        "第一句。第二句！",
        "前言里提到 <passage> 和 </passage> 两个标记。\n\n后记：别的内容。",
    )
    assert split_prompt("没有段落。")[0] == "没有段落。"  # no block: the prompt itself is quoted
    body = {
        "messages": [
            {"role": "user", "content": boxed("旧的段落。")},
            {"role": "assistant", "content": "好"},
            {"role": "user", "content": [{"type": "text", "text": boxed("新的段落内容。")}]},
        ]
    }
    body["response_format"] = request(
        "", {"type": "object", "properties": {"evidence": {}}, "required": ["evidence"]}
    )["response_format"]
    assert json.loads(fill_answer(body)) == {"evidence": "新的段落内容。"}


def test_sentences_are_verbatim_and_marked_targets_come_first() -> None:
    assert split_sentences(PASSAGE) == SENTENCES
    assert split_sentences("“你好！”他说。\n\n  。。\n第二行") == ["“你好！”", "他说。", "第二行"]
    assert pick_sentences("", 0) == [FALLBACK_SENTENCE]
    walk = pick_sentences(PASSAGE, 1)
    assert walk == SENTENCES[1:] + SENTENCES[:1]
    marked = PASSAGE.replace("它发源于青藏高原的唐古拉山脉。", "【它发源于青藏高原的唐古拉山脉。】")
    assert pick_sentences(marked, 0)[0] == SENTENCES[1] and sorted(pick_sentences(marked, 0)) == sorted(SENTENCES)
    tagged = "据<target>新华社</target>报道，大桥今天通车。"
    assert pick_sentences(tagged, 0) == ["新华社", "报道，大桥今天通车。"]  # each verbatim in the unmarked text
    news = "【环球网综合报道】据新华社报道，大桥今天通车。<target>全长十公里。</target>"
    assert pick_sentences(news, 0)[0] == "全长十公里。"  # beside a <target> tag, 【…】 is the passage's own text
    schema = load_prompt("sp").schema_for(1)
    assert answer(schema, marked, picker=pick_sentences)["sentences"][0]["evidence"] == SENTENCES[1]


def test_the_sentence_choice_is_pluggable() -> None:
    schema = load_prompt("sp").schema_for(2)
    value = answer(schema, picker=lambda passage, salt: ["最后注入东海。"])
    assert [item["evidence"] for item in value["sentences"]] == ["最后注入东海。"] * 2
    assert len({item["sentence"] for item in value["sentences"]}) == 2


def test_answers_are_deterministic_on_request_and_seed() -> None:
    schema = load_prompt("qp").schema_for(3)
    assert fill_answer(request(boxed(PASSAGE), schema), seed=1) == fill_answer(request(boxed(PASSAGE), schema), seed=1)
    by_seed = {fill_answer(request(boxed(PASSAGE), schema), seed=s) for s in range(6)}
    by_choice = {fill_answer(request(boxed(PASSAGE), schema), choice=c) for c in range(6)}
    assert len(by_seed) > 1 and len(by_choice) > 1


def cmrc_passages(shared_data: Path, limit: int) -> list[str]:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_trial.squad.json").read_text(encoding="utf-8"))
    return [p["context"] for doc in data["data"] for p in doc["paragraphs"]][:limit]


def test_answers_on_real_passages_parse_quote_and_do_not_copy(shared_data: Path) -> None:
    """Each item's evidence is located in the passage and no text is a copy of the passage by the copy filter's
    default rule: a dry run's pairs survive the filters."""
    for passage in cmrc_passages(shared_data, 40):
        for kind, count in (("qp", 3), ("sp", 1)):
            prompt = load_prompt(kind)
            schema = prompt.schema_for(count)
            raw = fill_answer(request(render_prompt(prompt, passage, count=count), schema))
            parsed = parse_generation(raw, schema=schema)
            assert parsed.failure is None and len(parsed.items) == count, raw
            for item in json.loads(raw)[prompt.list_key]:
                text = item.get("query") or item["sentence"]
                assert item["evidence"] in passage
                assert not is_copy(text, passage), (text, passage)


def shipped_requests() -> list[tuple[str, str, str | None]]:
    """(kind, version, query type) of every generation prompt under prompts/ (qp and sp; the judge's has a test of
    its own): a targeted qp prompt once per query type its schema defines a shape for."""
    found = []
    for template in sorted(PROMPTS_DIR.glob("*/*.zh.j2")):
        kind, version = template.parent.name, template.name.split(".")[0]
        if kind not in ("qp", "sp"):
            continue
        types = sorted(load_prompt(kind, version).schema.get("$defs", {})) or [None]
        found += [(kind, version, query_type) for query_type in types]
    return found


def answer_shipped(kind: str, version: str, query_type: str | None, passage: str, count: int = 2) -> tuple:
    """The fake's answer to a prompt under prompts/ as the pipeline sends it, its schema and the parse."""
    prompt = load_prompt(kind, version)
    target = None
    if prompt.mode == "target":
        sentence = split_sentences(passage)[-1]
        start = passage.index(sentence)
        target = Target(start, start + len(sentence), sentence)
        count = 1
    schema = prompt.schema_for(count, query_type)
    messages = render_messages(
        prompt, passage, count=count, target=(target.start, target.end) if target else None, query_type=query_type
    )
    body = {"messages": messages, "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    raw = fill_answer(body)
    return raw, schema, parse_generation(raw, schema=schema, target=target, query_type=query_type)


@pytest.mark.parametrize(("kind", "version", "query_type"), shipped_requests())
def test_every_shipped_prompt_schema_is_answered_validly(kind: str, version: str, query_type: str | None) -> None:
    """Patterns (a v2 question ends with ？, a keyword query is words and spaces, a v2 restatement ends with 。),
    enums, lengths and item counts: the answer validates and parses into kept items."""
    raw, schema, parsed = answer_shipped(kind, version, query_type, PASSAGE)
    jsonschema.validate(json.loads(raw), schema)
    assert parsed.failure is None and parsed.items and not parsed.dropped, raw


def test_the_judge_prompt_is_answered_validly() -> None:
    """The judge's schema (three integer enums): the fake's answer validates and parses into scores."""
    prompt = load_prompt("judge", "v1")
    messages = render_judge(prompt, kind="qp", query="嘉义市冬天会低于10度吗？", passage=PASSAGE)
    body = {"messages": messages, "response_format": {"type": "json_schema", "json_schema": {"schema": prompt.schema}}}
    raw = fill_answer(body)
    jsonschema.validate(json.loads(raw), prompt.schema)
    verdict = parse_verdict(raw)
    assert verdict.failure is None and verdict.scores is not None and set(verdict.scores) == set(CRITERIA), raw


def test_shipped_prompt_schemas_are_answered_on_real_passages(shared_data: Path) -> None:
    """Over 40 real CMRC passages, every prompt and query type: no answer is lost to the schema."""
    failures = []
    for passage in cmrc_passages(shared_data, 40):
        for kind, version, query_type in shipped_requests():
            raw, schema, parsed = answer_shipped(kind, version, query_type, passage)
            if parsed.failure is not None or not jsonschema.Draft202012Validator(schema).is_valid(json.loads(raw)):
                failures.append((kind, version, query_type, parsed.failure, raw))
    assert not failures, failures[:5]
