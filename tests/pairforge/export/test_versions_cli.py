"""`pairforge export`, `versions list | show | diff` and their errors, through the real command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.config import load_config
from tests.pairforge.export.workdir import NUM_NEGATIVES, build_workdir

runner = CliRunner()


def invoke(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_config(folder: Path, store: Path, card_examples: int) -> Path:
    folder.mkdir(parents=True)
    raw = {
        "name": "cmrc-cli",
        "workdir": str(folder / "work"),
        "store": str(store),
        "corpora": [{"format": "squad", "path": "unused.json"}],
        "mine": {"range_max": 30, "num_negatives": NUM_NEGATIVES},
        "export": {"card_examples": card_examples},
    }
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Path, list[dict]]:
    """v1 from paragraphs 0..120, v2 from 60..180 with another card size; both through `pairforge export`."""
    tmp = tmp_path_factory.mktemp("versions")
    summaries = []
    for i, (start, card) in enumerate(((0, 10), (60, 5))):
        config = write_config(tmp / f"run{i}", tmp / "store", card)
        build_workdir(load_config(config), shared_data, start=start)
        summaries.append(invoke("export", str(config), "--json"))
    return tmp / "store", summaries


def pair_ids(version: str) -> set[str]:
    return set(pq.read_table(Path(version) / "data" / "examples.parquet", columns=["pair_id"])["pair_id"].to_pylist())


def test_export_json_summary(two_versions: tuple[Path, list[dict]]) -> None:
    _, (first, second) = two_versions
    assert {"dataset", "version", "path", "examples", "files"} <= set(first)
    assert (first["dataset"], first["version"], second["version"], second["parent"]) == ("cmrc-cli", 1, 2, 1)
    assert first["examples"] == {"human": 10, "qp": 30, "sp": 10}
    assert "sentence-transformers/train.parquet" in first["files"] and "manifest.json" in first["files"]
    assert all((Path(first["path"]) / f).is_file() for f in first["files"])


def test_versions_list(two_versions: tuple[Path, list[dict]]) -> None:
    store, _ = two_versions
    listed = invoke("versions", "list", "cmrc-cli", "--store", str(store), "--json")
    assert [(v["version"], v["parent"], v["examples"]) for v in listed["versions"]] == [(1, None, 50), (2, 1, 50)]
    assert all(v["created_at"] for v in listed["versions"])
    result = runner.invoke(app, ["versions", "list", "cmrc-cli", "--store", str(store)])
    assert result.exit_code == 0 and "v2" in result.output and "qp 30" in result.output


def test_versions_list_takes_the_store_from_a_config(two_versions: tuple[Path, list[dict]], tmp_path: Path) -> None:
    store, _ = two_versions
    config = write_config(tmp_path / "c", store, 10)
    listed = invoke("versions", "list", "cmrc-cli", "--config", str(config), "--json")
    assert [v["version"] for v in listed["versions"]] == [1, 2]


def test_versions_show(two_versions: tuple[Path, list[dict]]) -> None:
    store, (_, second) = two_versions
    shown = invoke("versions", "show", "cmrc-cli", "v2", "--store", str(store), "--json")
    assert (shown["version"], shown["parent"], shown["path"]) == (2, 1, second["path"])
    assert "config" not in shown and shown["files"] == len(second["files"]) - 1  # the manifest lists the others
    assert shown["funnel"][0]["stage"] == "read" and shown["watermark"]
    result = runner.invoke(app, ["versions", "show", "cmrc-cli", "2", "--store", str(store)])
    assert result.exit_code == 0 and re.search(r"dedup pairs\W+pairs\W+41\W+40\W+near_duplicate 1", result.output)


def test_versions_diff(two_versions: tuple[Path, list[dict]]) -> None:
    store, (first, second) = two_versions
    diff = invoke("versions", "diff", "cmrc-cli", "1", "2", "--store", str(store), "--show", "500", "--json")
    a, b = pair_ids(first["path"]), pair_ids(second["path"])
    assert diff["added"] == len(b - a) > 0 and diff["removed"] == len(a - b) > 0
    assert set(diff["added_ids"]) == b - a and set(diff["removed_ids"]) == a - b
    assert diff["examples"]["qp"] == {"a": 30, "b": 30}
    assert diff["config"]["export.card_examples"] == {"a": 10, "b": 5}
    assert "workdir" in diff["config"] and "mine.num_negatives" not in diff["config"]
    short = invoke("versions", "diff", "cmrc-cli", "v1", "v2", "--store", str(store), "--show", "3", "--json")
    assert len(short["added_ids"]) == 3 and short["added"] == diff["added"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["versions", "show", "cmrc-cli", "9"], "no version v9"),
        (["versions", "show", "cmrc-cli", "latest"], "not a version"),
        (["versions", "list", "../escape"], "invalid dataset name"),
        (["versions", "diff", "cmrc-cli", "1", "7"], "no version v7"),
    ],
)
def test_versions_errors_exit_2(two_versions: tuple[Path, list[dict]], args: list[str], message: str) -> None:
    store, _ = two_versions
    result = runner.invoke(app, [*args, "--store", str(store)])
    assert result.exit_code == 2 and message in result.output


def test_export_without_a_workdir_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "none", tmp_path / "store", 10)
    result = runner.invoke(app, ["export", str(config)])
    assert result.exit_code == 2 and "no workdir" in result.output
