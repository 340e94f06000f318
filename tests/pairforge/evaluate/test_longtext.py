"""The long-text protocol picks the right questions: a handmade SQuAD file (long = over 40 characters here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.evaluate import evaluate_longtext, select_longtext
from pairforge.text import normalize_text

LONG = 40
FILL = "这是一段用于填充位置的普通文字"  # 15 characters, no answer text in it


def context(length: int, answers: dict[int, str]) -> str:
    """``length`` characters of filler with each answer text written at its offset."""
    chars = list((FILL * (length // len(FILL) + 1))[:length])
    for at, text in answers.items():
        chars[at : at + len(text)] = text
    return "".join(chars)[:length]


# (question, [(answer text, answer_start given in the file)], expected role)
LONG_PARAGRAPH = context(90, {50: "长江", 5: "黄河", 60: "珠江", 40: "淮河", 38: "汉水", 10: "湘江"})
TABLE = [
    ("长江在哪里？", [("长江", 50)], "long"),  # answer past char 40 of a long passage
    ("黄河在哪里？", [("黄河", 5)], "answer_in_first_chars"),
    ("珠江在哪里？", [("珠江", 3)], "long"),  # a wrong offset: moved to the text's occurrence at 60
    ("淮河在哪里？", [("淮河", 40)], "long"),  # exactly at char 40: the first 40 characters hold no answer
    ("汉水在哪里？", [("汉水", 38)], "answer_in_first_chars"),  # ends at char 39, just inside
    ("湘江和长江？", [("长江", 50), ("湘江", 10)], "answer_in_first_chars"),  # one annotator's answer is early
    ("松花江在哪里？", [("松花江", -1)], "answer_not_in_passage"),
]
SHORT = [context(LONG, {}), "短段落一，长度不到四十个字。", "短段落二。", "短段落三，也很短。"]


def squad_file(tmp_path: Path) -> Path:
    qas = [
        {"id": f"L{i}", "question": q, "answers": [{"text": t, "answer_start": s} for t, s in answers]}
        for i, (q, answers, _) in enumerate(TABLE)
    ]
    paragraphs = [{"id": "long", "context": LONG_PARAGRAPH, "qas": qas}]
    for i, text in enumerate([*SHORT, SHORT[1]]):  # the last one repeats a passage: it counts once
        qas = [{"id": f"S{i}-{j}", "question": f"短问题{i}之{j}？", "answers": []} for j in range(3)]
        paragraphs.append({"id": f"s{i}", "context": text, "qas": qas})
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}, ensure_ascii=False))
    return path


def test_the_long_queries_are_the_questions_answered_late_in_long_passages(tmp_path: Path) -> None:
    data = select_longtext(squad_file(tmp_path), long_chars=LONG, short_per_long=0)
    long_questions = [q for q, _, role in TABLE if role == "long"]
    assert data.queries == long_questions and all(data.long)
    assert data.gold == [0, 0, 0]
    assert data.passages == [LONG_PARAGRAPH, *SHORT]  # every passage, the repeated one once
    expected_skips: dict[str, int] = {}
    for _, _, role in TABLE:
        if role != "long":
            expected_skips[role] = expected_skips.get(role, 0) + 1
    assert data.skipped == expected_skips


@pytest.mark.parametrize(("ratio", "shorts"), [(0, 0), (1, 3), (2, 6), (2.5, 8), (100, 15)])
def test_short_questions_join_at_the_ratio(tmp_path: Path, ratio: float, shorts: int) -> None:
    data = select_longtext(squad_file(tmp_path), long_chars=LONG, short_per_long=ratio)
    assert data.long == [True] * 3 + [False] * shorts  # capped at the 15 short-passage questions there are
    for query, gold in zip(data.queries[3:], data.gold[3:], strict=True):
        i = int(query.removeprefix("短问题").split("之")[0])
        assert data.passages[gold] == [*SHORT, SHORT[1]][i]  # the gold passage is the question's own


def test_the_short_draw_is_seeded(tmp_path: Path) -> None:
    path = squad_file(tmp_path)
    draws = {s: select_longtext(path, long_chars=LONG, short_per_long=2, seed=s).queries for s in range(4)}
    assert draws[0] == select_longtext(path, long_chars=LONG, short_per_long=2, seed=0).queries
    assert len({tuple(q) for q in draws.values()}) > 1


def test_recall_blocks_and_the_cli(tmp_path: Path) -> None:
    path = squad_file(tmp_path)
    report = evaluate_longtext(path, long_chars=LONG, short_per_long=1)
    assert (report.queries, report.long_queries, report.passages) == (6, 3, 5)
    assert set(report.bm25) == {"recall_at_1", "recall_at_5", "recall_at_10", "long", "short"}
    assert report.bm25["long"]["recall_at_10"] == 1.0 and report.model == {}  # 5 passages: all retrieved
    result = CliRunner().invoke(
        app, ["eval", "longtext", "--squad", str(path), "--long-chars", "40", "--short-per-long", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: printed[k] for k in ("queries", "long_queries", "passages", "bm25", "model")} == {
        k: report.to_dict()[k] for k in ("queries", "long_queries", "passages", "bm25", "model")
    }


def test_cmrc_dev_long_queries_are_answered_past_char_512(shared_data: Path) -> None:
    squad = shared_data / "cmrc2018" / "cmrc2018_dev.squad.json"
    data = select_longtext(squad, long_chars=512, short_per_long=2)
    raw = json.loads(squad.read_text(encoding="utf-8"))
    late = set()  # questions of long paragraphs whose every well-placed answer starts at or past char 512
    for p in (p for article in raw["data"] for p in article["paragraphs"] if len(p["context"]) > 512):
        for qa in p["qas"]:
            starts = [
                a["answer_start"]
                for a in qa["answers"]
                if p["context"][a["answer_start"] : a["answer_start"] + len(a["text"])] == a["text"]
            ]
            if starts and min(starts) >= 512:
                late.add(normalize_text(qa["question"]))
    long_queries = {q for q, is_long in zip(data.queries, data.long, strict=True) if is_long}
    assert len(long_queries) > 100 and long_queries == late
    assert data.long.count(False) == 2 * data.long.count(True)
    assert len(data.passages) == sum(len(article["paragraphs"]) for article in raw["data"])


def test_a_broken_file_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"paragraphs": [{"qas": []}]}]}')
    with pytest.raises(ValueError, match=r"bad.json:record 1: missing_field paragraphs\[0\].context"):
        select_longtext(bad)
    result = CliRunner().invoke(app, ["eval", "longtext", "--squad", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "no such file" in result.output
