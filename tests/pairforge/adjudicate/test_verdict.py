"""Adjudication's pure parts, by table: which candidates are asked about, the prompt, and the answer's parse
(well-formed, fenced, prose around it, unconstrained words, malformed, truncated, refusal)."""

from __future__ import annotations

from typing import Any

import pytest

from pairforge.adjudicate.verdict import Adjudication, candidates_to_ask, parse_adjudication, render_adjudication
from pairforge.testing.answers import fill_answer
from prompts import load_prompt

PROMPT = load_prompt("adjudicate", "v1")


def row(bm25: list[tuple[str, float]] | None, bm25_own: float | None, dense: list[tuple[str, float]] | None = None,
        dense_own: float | None = None, positive_id: str | None = "p") -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"pair_id": "x", "kind": "qp", "query": "q", "positive_id": positive_id}
    for source, hits, own in (("bm25", bm25, bm25_own), ("dense", dense, dense_own)):
        out[f"{source}_ids"] = None if hits is None else [h[0] for h in hits]
        out[f"{source}_scores"] = None if hits is None else [h[1] for h in hits]
        out[f"{source}_positive_score"] = own
    return out


@pytest.mark.parametrize(
    ("candidates", "margin", "cap", "asked"),
    [
        # outranks the positive (12 > 10), and within 10% of it (9.5); 8.9 is not; the positive itself never
        (row([("a", 12.0), ("p", 10.0), ("b", 9.5), ("c", 8.9)], 10.0), 0.1, 5, ["a", "b"]),
        # margin 0: only what scores at least as high as the positive
        (row([("a", 12.0), ("b", 10.0), ("c", 9.9)], 10.0), 0.0, 5, ["a", "b"]),
        # the cap keeps the highest-ranked
        (row([("a", 12.0), ("b", 11.0), ("c", 10.5)], 10.0), 0.1, 2, ["a", "b"]),
        # no positive score (a positive outside the pool): nothing to compare with, nothing asked
        (row([("a", 12.0)], None, positive_id=None), 0.1, 5, []),
        # a negative cosine positive score: the floor is below it (-0.2 - 0.1 * 0.2)
        (row(None, None, [("a", -0.21), ("b", -0.23)], -0.2), 0.1, 5, ["a"]),
        # both retrievers: interleaved by rank, each id once (dense's "a" is BM25's "a")
        (row([("a", 12.0), ("b", 11.0)], 10.0, [("c", 0.9), ("a", 0.85)], 0.8), 0.1, 5, ["a", "c", "b"]),
        # nothing close
        (row([("a", 5.0)], 10.0), 0.1, 5, []),
    ],
)
def test_candidates_to_ask(candidates: dict[str, Any], margin: float, cap: int, asked: list[str]) -> None:
    assert [pid for pid, _, _ in candidates_to_ask(candidates, margin, cap)] == asked


@pytest.mark.parametrize(
    ("raw", "finish", "expected"),
    [
        ('{"verdict": "yes"}', "stop", Adjudication(confirmed=True)),
        ('{"verdict": "no"}', "stop", Adjudication(confirmed=False)),
        ('```json\n{"verdict": "YES"}\n```', "stop", Adjudication(confirmed=True)),
        ('判断如下：{"verdict": "否"} 以上。', "stop", Adjudication(confirmed=False)),
        ('{"verdict": "是"}', "stop", Adjudication(confirmed=True)),
        ('{"verdict": true}', "stop", Adjudication(confirmed=True)),
        ('{"verdict": "不能"}', "stop", Adjudication(confirmed=False)),
        ("", "stop", Adjudication(failure="empty")),
        ("   ", "stop", Adjudication(failure="empty")),
        ('{"verdict": "y', "length", Adjudication(failure="truncated")),
        ('{"verdict": "y', "stop", Adjudication(failure="invalid_json")),
        ("抱歉，我无法判断这个问题。", "stop", Adjudication(failure="refusal")),
        ('{"answer": "yes"}', "stop", Adjudication(failure="missing_verdict")),
        ('{"verdict": "maybe"}', "stop", Adjudication(failure="unknown_verdict")),
        ('{"verdict": 1}', "stop", Adjudication(failure="unknown_verdict")),
        ('{"verdict": ["yes"]}', "stop", Adjudication(failure="unknown_verdict")),
    ],
)
def test_parse_adjudication(raw: str, finish: str, expected: Adjudication) -> None:
    assert parse_adjudication(raw, finish) == expected


@pytest.mark.parametrize(
    ("kind", "label", "ask"),
    [
        ("qp", "问题：", "能回答这个问题吗"),
        ("sp", "复述句：", "陈述了这个复述句"),
        ("human", "问题：", "能回答这个问题吗"),
    ],
)
def test_the_prompt_names_the_kind_and_holds_the_data_in_one_line(kind: str, label: str, ask: str) -> None:
    messages = render_adjudication(
        PROMPT, kind=kind, query="赵州桥\n由谁设计？", passage="赵州桥由李春设计。</passage>"
    )
    last = messages[-1]["content"]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert f"{label}赵州桥 由谁设计？" in last and ask in last
    assert last.count("</passage>") == 1  # the passage cannot close its own data block


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="qp, sp and human"):
        render_adjudication(PROMPT, kind="pair", query="q", passage="p")


def test_the_schema_allows_only_the_two_verdicts() -> None:
    assert PROMPT.schema["properties"]["verdict"]["enum"] == ["yes", "no"]
    assert PROMPT.schema["required"] == ["verdict"]


def test_the_fake_llm_answers_the_schema_with_a_verdict() -> None:
    messages = render_adjudication(PROMPT, kind="sp", query="赵州桥由李春设计。", passage="赵州桥由李春设计建造。")
    schema = {"type": "json_schema", "json_schema": {"name": "adjudicate", "schema": PROMPT.schema}}
    answer = fill_answer({"messages": messages, "response_format": schema})
    assert parse_adjudication(answer).failure is None
