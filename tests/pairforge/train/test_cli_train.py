"""``pairforge train --json`` end to end on a published version, then ``eval longtext`` on what it saved."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.train import TrainConfig
from pairforge.train.students import build_student

runner = CliRunner()


def test_train_json_then_eval_longtext_on_the_model(
    version: Path, static_config: TrainConfig, tmp_path: Path, shared_data: Path
) -> None:
    student = tmp_path / "student"
    build_student(static_config, "cpu").save(str(student))  # the tiny static student as a model folder
    out = tmp_path / "trained"
    args = ["train", str(version.parent / "latest"), "--student", str(student), "--out", str(out)]
    result = runner.invoke(app, [*args, "--max-steps", "6", "--batch-size", "4", "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"model_path", "steps", "seconds", "datasets", "losses"} <= set(summary)
    assert summary["model_path"] == str(out) and summary["steps"] == 6 and summary["seconds"] > 0
    assert set(summary["datasets"]) == {"qp", "sp", "human", "scored"} and all(summary["datasets"].values())
    assert sum(s["calls"] for s in summary["losses"].values()) == 6
    assert summary["versions"] == [str(version)]  # latest resolved
    assert len(result.stdout.strip().splitlines()) == 1  # progress went to stderr
    assert (out / "train.json").is_file() and (out / "model.safetensors").is_file()

    squad = shared_data / "cmrc2018" / "cmrc2018_trial.squad.json"
    result = runner.invoke(app, ["eval", "longtext", "--squad", str(squad), "--model", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["long_queries"] > 0 and report["queries"] == 3 * report["long_queries"]
    for block in ("bm25", "model"):
        assert set(report[block]) == {"recall_at_1", "recall_at_5", "recall_at_10", "long", "short"}
        assert 0 <= report[block]["recall_at_1"] <= report[block]["recall_at_5"] <= report[block]["recall_at_10"]
    assert report["bm25"]["recall_at_5"] > 0.9


def test_user_errors_exit_2_with_the_message(version: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no manifest.json here" in result.output
    result = runner.invoke(app, ["train", str(version), "--sampler", "random", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "round_robin" in result.output
    result = runner.invoke(app, ["train", str(version), "--kind", "nope", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "no training rows of kind ['nope']" in result.output
    assert not (tmp_path / "m").exists()
