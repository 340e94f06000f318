from __future__ import annotations

import json
from collections import Counter

from pairforge.config import GenerateConfig
from pairforge.generation.ledger import request_key
from pairforge.generation.requests import plan_requests
from prompts import load_prompt

SENTENCES = [
    "长江是中国第一长河，全长约六千三百千米。",
    "它发源于青藏高原唐古拉山脉的各拉丹冬雪山。",
    "干流自西向东流经十一个省级行政区。",
    "最后在上海崇明岛以东注入东海。",
    "长江流域的人口约占全国的三分之一。",
    "2021年起，长江流域重点水域实行十年禁渔。",
]
LONG = "".join(SENTENCES * 6)  # ~660 characters
SHORT = "".join(SENTENCES[:4])
PASSAGES = [
    {"id": "p-long", "doc_id": "d1", "source": "s", "text": LONG},
    {"id": "p-short", "doc_id": "d2", "source": "s", "text": SHORT},
]
EVIDENCE_FIRST = GenerateConfig(prompt_versions={"qp": "v2", "sp": "v2"}, counts={"qp": 3, "sp": 2})


def test_one_request_per_passage_kind_and_target_with_its_evidence_by_construction() -> None:
    planned = plan_requests(PASSAGES, EVIDENCE_FIRST, "m")
    assert Counter((p.passage["id"], p.kind) for p in planned) == {
        ("p-long", "qp"): 3,
        ("p-long", "sp"): 2,
        ("p-short", "qp"): 3,
        ("p-short", "sp"): 2,
    }
    assert len({p.key for p in planned}) == len(planned)
    for p in planned:
        assert p.count == 1 and p.passage["text"][p.target.start : p.target.end] == p.target.text
        assert (p.query_type in {"factoid", "keyword", "natural"}) == (p.kind == "qp")
        if p.kind == "qp":
            assert p.schema["properties"]["query"] == load_prompt("qp", "v2").schema["$defs"][p.query_type]
    long_targets = [p.target for p in planned if p.passage["id"] == "p-long"]
    assert sum(t.start >= 512 for t in long_targets if t) >= 2 + 1  # ceil(0.5 * 3) qp + ceil(0.5 * 2) sp
    short_qp = [p.target for p in planned if p.passage["id"] == "p-short" and p.kind == "qp"]
    short_sp = [p.target for p in planned if p.passage["id"] == "p-short" and p.kind == "sp"]
    assert len(set(short_qp) | set(short_sp)) == 4  # sp avoids qp's sentences while others remain


def test_a_parsed_answer_carries_its_targets_offsets() -> None:
    p = next(p for p in plan_requests(PASSAGES, EVIDENCE_FIRST, "m") if p.kind == "qp" and p.query_type == "factoid")
    query = p.target.text[:4] + "指的是什么？"
    (item,) = p.parse(json.dumps({"query": query}, ensure_ascii=False), "stop").items
    assert (item.start, item.end, item.evidence, item.type) == (p.target.start, p.target.end, p.target.text, "factoid")


def test_chat_request_marks_the_target_and_names_the_type() -> None:
    p = next(p for p in plan_requests(PASSAGES, EVIDENCE_FIRST, "m") if p.kind == "qp")
    request = p.chat_request()
    last = request.messages[-1]["content"]
    assert request.key == p.key and request.schema is p.schema
    assert f"<target>{p.target.text}</target>" in last and f"查询类型：{p.query_type}" in last
    assert request.messages[0]["role"] == "system"


def test_keys_change_with_everything_that_changes_the_answer() -> None:
    base = {p.key for p in plan_requests(PASSAGES, EVIDENCE_FIRST, "m")}
    assert base == {p.key for p in plan_requests(PASSAGES, EVIDENCE_FIRST, "m")}  # deterministic
    other_model = {p.key for p in plan_requests(PASSAGES, EVIDENCE_FIRST, "other")}
    hotter = EVIDENCE_FIRST.model_copy(update={"sampling": EVIDENCE_FIRST.sampling.model_copy(update={"n": 2})})
    mix = EVIDENCE_FIRST.model_copy(update={"query_types": {"keyword": 1.0}})
    tail = EVIDENCE_FIRST.model_copy(update={"long_tail_share": 1.0})
    assert not base & other_model
    assert not base & {p.key for p in plan_requests(PASSAGES, hotter, "m")}
    assert base != {p.key for p in plan_requests(PASSAGES, mix, "m")}  # another type, another request
    assert base != {p.key for p in plan_requests(PASSAGES, tail, "m")}  # other targets
    assert base != {p.key for p in plan_requests(PASSAGES, EVIDENCE_FIRST, "m", long_chars=100)}


def test_the_long_text_point_is_the_callers() -> None:
    later = [p.target for p in plan_requests(PASSAGES[:1], EVIDENCE_FIRST, "m", long_chars=600)]
    assert sum(t.start >= 600 for t in later) >= 3
    assert all(p.long_chars == 600 for p in plan_requests(PASSAGES[:1], EVIDENCE_FIRST, "m", long_chars=600))


def test_v1_requests_keep_their_keys() -> None:
    config = GenerateConfig()  # v1 prompts: one request per (passage, kind) asking for counts[kind] items
    planned = plan_requests(PASSAGES[:1], config, "m")
    assert [(p.kind, p.count, p.target) for p in planned] == [("qp", 3, None), ("sp", 1, None)]
    qp = load_prompt("qp")
    extra = {"kind": "qp", "count": 3, "schema": qp.schema_for(3), "long_chars": 512, "structured": True}
    assert planned[0].key == request_key(qp.sha256, "m", config.sampling.model_dump(), LONG, extra)
