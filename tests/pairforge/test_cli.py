from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pairforge.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def write_config(tmp_path: Path, shared_data: Path, extra: str = "") -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        f"workdir: {tmp_path / 'work'}\n"
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
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["by_source"]["wudao"]["documents"] == 41
    assert summary["documents"] == sum(s["documents"] for s in summary["by_source"].values())
    assert summary["passages"] > 0 and summary["long_passages"] > 0
    assert summary["quarantined"] == 0 and summary["seconds"] > 0
    assert summary["human_pairs"] == 58031 + 3754
    assert (tmp_path / "work" / "passages").is_dir()


def test_demo_config_ingests(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(REPO / "configs" / "demo.yaml"), "--json", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["documents"] == 5


def test_strict_error_names_file_and_line(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "好的文本。"}\n{"text": 1\n', encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text(f"workdir: {tmp_path / 'w'}\ncorpora:\n  - {{format: wudao, path: {corpus}}}\n")
    result = runner.invoke(app, ["ingest", str(config), "--strict"])
    assert result.exit_code == 2
    assert f"{corpus}:2: invalid_json" in result.output


def test_config_errors_exit_2_with_the_message(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("corpora:\n  - {format: wudao, path: x, colour: red}\n")
    result = runner.invoke(app, ["ingest", str(config)])
    assert result.exit_code == 2
    assert "unknown key 'corpora.0.colour'" in result.output
