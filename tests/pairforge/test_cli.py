from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.workdir import Workdir

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def write_config(tmp_path: Path, shared_data: Path, extra: str = "") -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        f"workdir: {tmp_path / 'work'}\nstore: {tmp_path / 'store'}\n"
        "corpora:\n"
        f"  - {{format: wudao, path: '{shared_data}/wudao/*'}}\n"
        f"  - {{format: simclue, path: '{shared_data}/simclue/*'}}\n"
        f"  - {{format: m3e, path: '{shared_data}/m3e_style/*.jsonl'}}\n" + extra,
        encoding="utf-8",
    )
    return path


def test_ingest_json_summary_is_the_last_stdout_line(tmp_path: Path, shared_data: Path) -> None:
    result = runner.invoke(app, ["ingest", str(write_config(tmp_path, shared_data)), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    details = stats["details"]
    assert stats["stage"] == "ingest" and details["by_source"]["wudao"]["documents"] == 41
    assert details["documents"] == sum(s["documents"] for s in details["by_source"].values())
    assert stats["out"] == details["passages"] > 0 and details["long_passages"] > 0
    assert details["quarantined"] == 0 and stats["seconds"] > 0
    assert details["human_pairs"] == 58031 + 3754
    assert Workdir(tmp_path / "work").ingested.is_dir() and Workdir(tmp_path / "work").plan.is_file()


def test_demo_config_ingests(tmp_path: Path) -> None:
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    for corpus in demo["corpora"]:
        corpus["path"] = str((REPO / "configs" / corpus["path"]).resolve())
    assert "eval" not in demo["gate"]  # the demo's gate evaluates on the version's held-out split only
    assert demo["mine"]["heldout_share"] > 0
    demo |= {"workdir": str(tmp_path / "work"), "store": str(tmp_path / "store")}
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(demo, allow_unicode=True), encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(tmp_path / "demo.yaml"), "--json", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["details"]["documents"] == 5


def test_strict_error_names_file_and_line(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "好的文本。"}\n{"text": 1\n', encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"workdir: {tmp_path / 'w'}\nstore: {tmp_path / 's'}\ncorpora:\n  - {{format: wudao, path: {corpus}}}\n"
    )
    result = runner.invoke(app, ["ingest", str(config), "--strict"])
    assert result.exit_code == 2
    assert f"{corpus}:2: invalid_json" in result.output


def test_config_errors_exit_2_with_the_message(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("corpora:\n  - {format: wudao, path: x, colour: red}\n")
    result = runner.invoke(app, ["ingest", str(config)])
    assert result.exit_code == 2
    assert "unknown key 'corpora.0.colour'" in result.output


def test_strict_fails_on_a_warm_workdir_whose_shard_had_bad_records(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "好的文本。"}\n{"text": 1\n', encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"workdir: {tmp_path / 'w'}\nstore: {tmp_path / 's'}\ncorpora:\n  - {{format: wudao, path: {corpus}}}\n"
    )
    assert runner.invoke(app, ["ingest", str(config)]).exit_code == 0  # quarantined, not fatal
    result = runner.invoke(app, ["ingest", str(config), "--strict"])  # the shard's output is current
    assert result.exit_code == 2 and f"{corpus}:2: invalid_json" in result.output


def test_an_s3_store_without_s3fs_names_the_package(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed here: the error cannot happen")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"workdir: {tmp_path / 'w'}\nstore: s3://bucket/prefix\ncorpora:\n  - {{format: wudao, path: x}}\n"
    )
    result = runner.invoke(app, ["ingest", str(config)])
    assert result.exit_code == 2 and "store: a s3:// URL needs the s3fs package: pip install s3fs" in result.output
    listed = runner.invoke(app, ["versions", "list", "demo", "--store", "s3://bucket/prefix"])
    assert listed.exit_code == 2 and "s3fs" in listed.output and "Traceback" not in listed.output


def test_an_incomplete_version_is_said_in_one_line() -> None:
    from pairforge.cli import describe_incomplete

    complete = {"version": 3, "incomplete": {}}
    partial = {"version": 3, "incomplete": {"a.jsonl": {"unanswered": 12}, "b.jsonl": {"unanswered": 3, "x": 1}}}
    assert describe_incomplete(complete) is None
    assert describe_incomplete(partial) == (
        "incomplete: v3 does not cover 2 input shard(s) (unanswered 15, x 1); the next run finishes them"
    )
