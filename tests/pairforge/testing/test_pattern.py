"""Strings for a schema's pattern: reshaping a text (end marks, refused characters, keywords) and building one from
the pattern itself out of a preferred text, as tables; every result is checked against the pattern."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pairforge.testing.pattern import example_of, fits, keywords, reshape
from prompts import load_prompt

QP2 = load_prompt("qp", "v2").schema["$defs"]
SP2 = load_prompt("sp", "v2").schema["properties"]["sentence"]
SOURCES = ["长江是中国第一长河，全长约6300公里。", "它发源于青藏高原的唐古拉山脉。"]

RESHAPED: list[tuple[str, dict[str, Any], str, bool, str | None]] = [
    ("already fits", QP2["factoid"], "长江有多长？", True, "长江有多长？"),
    ("question mark added", QP2["factoid"], "长江有多长", True, "长江有多长？"),
    ("statement mark swapped", QP2["natural"], "长江全长多少公里。", True, "长江全长多少公里？"),
    ("Latin dropped", QP2["factoid"], "iPhone长江有多长", True, "长江有多长？"),
    ("statement", SP2, "长江是中国最长的河流", False, "长江是中国最长的河流。"),
    ("keywords", QP2["keyword"], "长江有多长？", True, "长江是中 全长约6 它发源于"),
    ("too long for any shape", {"type": "string", "pattern": "^.{1,3}$"}, "长江有多长", True, None),
]


@pytest.mark.parametrize(("name", "schema", "text", "question", "expected"), RESHAPED, ids=[r[0] for r in RESHAPED])
def test_a_text_is_reshaped_to_the_pattern(
    name: str, schema: dict[str, Any], text: str, question: bool, expected: str | None
) -> None:
    shaped = reshape(text, schema, SOURCES, question=question)
    assert shaped == expected
    if shaped is not None:
        assert fits(shaped, schema)


def test_keywords_are_distinct_short_cjk_words_varied_by_turn() -> None:
    words = keywords(SOURCES, 3)
    assert len(set(words)) == 3 and all(2 <= len(w) <= 4 and re.fullmatch(r"[0-9\u3400-\u9fff·]+", w) for w in words)
    assert keywords(SOURCES, 3, turn=1) != words
    assert keywords(["abc，。"], 2) == []


PATTERNS = [
    ("factoid", QP2["factoid"]["pattern"]),
    ("keyword", QP2["keyword"]["pattern"]),
    ("natural", QP2["natural"]["pattern"]),
    ("restatement", SP2["pattern"]),
    ("alternation and group reference", r"^(甲|乙)丙\1$"),
    ("digits and words", r"^\d{3}-\w{2}\s\S$"),
    ("lazy and optional", r"^第.+?章(附录)?$"),
    ("unanchored", r"[A-Z]{2}"),
]


@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[p[0] for p in PATTERNS])
def test_a_string_is_built_from_the_pattern(name: str, pattern: str) -> None:
    built = example_of(pattern, "".join(SOURCES))
    assert re.search(pattern, built), built
    if name in ("factoid", "natural", "restatement"):  # the class picks walk the preferred text
        assert built[:3] == "长江是"


def test_lengths_and_pattern_together_decide_fits() -> None:
    schema = {"type": "string", "minLength": 3, "maxLength": 5, "pattern": "？$"}
    assert [fits(t, schema) for t in ("长江？", "长江", "长江有多长吗？", "长？")] == [True, False, False, False]
    assert fits("任何文字", {"type": "string"})
