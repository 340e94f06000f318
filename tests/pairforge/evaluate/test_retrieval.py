"""``pairforge eval retrieval`` and ``eval negatives`` (pairforge.evaluate.retrieval) on CMRC 2018 dev."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pairforge.cli import app
from tests.squad_counts import squad_counts


def run_cli(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_eval_commands_on_cmrc_dev_meet_the_quality_bar(shared_data: Path) -> None:
    squad = str(shared_data / "cmrc2018" / "cmrc2018_dev.squad.json")
    paragraphs, questions = squad_counts(Path(squad))
    retrieval = run_cli("eval", "retrieval", "--squad", squad, "--json")
    assert retrieval["queries"] == questions and retrieval["passages"] == paragraphs
    assert retrieval["recall_at_5"] >= 0.99
    negatives = run_cli("eval", "negatives", "--squad", squad, "--json")
    n = negatives["negatives"]
    assert n == questions * 7
    assert negatives["gold_as_negative"] == 0
    assert negatives["near_dup_as_negative"] < 0.01 * n
    assert negatives["answer_in_negative"] < 0.005 * n
