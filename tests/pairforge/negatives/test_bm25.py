"""BM25 against rank-bm25's BM25Okapi on the same jieba tokens of CMRC 2018 dev."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from pairforge.negatives.bm25 import BM25Index, tokenize


@pytest.fixture(scope="module")
def cmrc(shared_data: Path) -> tuple[list[list[str]], list[list[str]], list[int]]:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]]
    questions = [(q["question"], i) for i, p in enumerate(paragraphs) for q in p["qas"]]
    return tokenize([p["context"] for p in paragraphs]), tokenize([q for q, _ in questions]), [i for _, i in questions]


def test_scores_and_top10_equal_rank_bm25(cmrc) -> None:
    docs, queries, _ = cmrc
    ours, reference = BM25Index(docs), BM25Okapi(docs)
    for query in queries[:60]:
        a, b = ours.get_scores(query), reference.get_scores(query)
        assert np.abs(a - b).max() < 1e-6
        assert list(np.argsort(-a, kind="stable")[:10]) == list(np.argsort(-b, kind="stable")[:10])


def test_epsilon_floor_for_terms_in_most_documents() -> None:
    docs = [["的", "长江"], ["的", "黄河"], ["的", "珠江"], ["淮河"]]
    ours, reference = BM25Index(docs), BM25Okapi(docs)
    assert np.allclose(
        ours.get_scores(["的", "的", "长江", "未知"]), reference.get_scores(["的", "的", "长江", "未知"])
    )


def test_search_returns_the_best_first_and_recall_on_cmrc(cmrc) -> None:
    docs, queries, gold = cmrc
    index = BM25Index(docs)
    top, scores = index.search(queries, 10)
    assert np.all(np.diff(scores, axis=1) <= 1e-12)
    recall_at_5 = np.mean([g in row[:5] for g, row in zip(gold, top, strict=True)])
    assert recall_at_5 >= 0.98, recall_at_5


def test_eval_retrieval_cli_on_cmrc_trial(shared_data: Path) -> None:
    from typer.testing import CliRunner

    from pairforge.cli import app

    squad = shared_data / "cmrc2018" / "cmrc2018_trial.squad.json"
    result = CliRunner().invoke(app, ["eval", "retrieval", "--squad", str(squad), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["passages"], report["queries"]) == (256, 1000)  # 2 of the 1,002 questions are empty
    assert report["recall_at_1"] <= report["recall_at_5"] <= report["recall_at_10"]
    assert report["recall_at_5"] >= 0.95
