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
from pairforge.store import layout
from tests.pairforge.export.workdir import build_workdir, make_config, write_inputs

runner = CliRunner()


def invoke(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_config(folder: Path, store: Path, inputs: list[dict], card_examples: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = make_config(folder, str(store), inputs, name="cmrc-cli", export={"card_examples": card_examples})
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Path, list[dict], Path]:
    """v1 from paragraphs 0..60, then a run over paragraphs 30..90 with another card size: both published by
    `pairforge export` from the workdir the stages left (its run plan and stats files)."""
    tmp = tmp_path_factory.mktemp("versions")
    exported = []
    for i, (start, card) in enumerate(((0, 10), (30, 5))):
        inputs = write_inputs(tmp / f"inputs{i}", shared_data, start=start, n_pool=60)
        config = write_config(tmp / f"run{i}", tmp / "store", inputs, card)
        build_workdir(load_config(config), shared_data)
        exported.append(invoke("export", str(config), "--json"))
    return tmp / "store", exported, config


def pair_ids(version: str) -> set[str]:
    files = (Path(version) / layout.EXAMPLES).glob("*.parquet")
    return {i for f in files for i in pq.read_table(f, columns=["pair_id"])["pair_id"].to_pylist()}


def test_export_json_is_the_stage_stats(two_versions: tuple[Path, list[dict], Path]) -> None:
    _, (first, second), _ = two_versions
    assert first["stage"] == second["stage"] == "export" and first["unit"] == "examples"
    d1, d2 = first["details"], second["details"]
    assert (d1["version"], d1["parent"], d2["version"], d2["parent"]) == (1, None, 2, 1)
    assert first["in"] == first["out"] == len(pair_ids(d1["path"]))  # everything in v1 is new
    assert second["out"] == len(pair_ids(d2["path"])) and second["in"] < second["out"]  # v2 carries v1's too
    assert (d2["new_segments"], d2["carried_segments"]) == (4, 2)  # the scored pair files changed settings: redone
    assert d2["delta"] == {"parent": 1, "added": second["out"] - first["out"], "removed": 0}
    manifest = json.loads((Path(d1["path"]) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["funnel"][0]["stage"] == "ingest"  # every stage's stats.json was read
    assert all((Path(d1["path"]) / f["path"]).is_file() for f in manifest["files"])


def test_versions_list(two_versions: tuple[Path, list[dict], Path]) -> None:
    store, (first, second), _ = two_versions
    listed = invoke("versions", "list", "cmrc-cli", "--store", str(store), "--json")
    assert [(v["version"], v["parent"], v["examples"]) for v in listed["versions"]] == [
        (1, None, first["out"]),
        (2, 1, second["out"]),
    ]
    assert all(v["created_at"] for v in listed["versions"])
    qp = listed["versions"][1]["by_kind"]["qp"]
    result = runner.invoke(app, ["versions", "list", "cmrc-cli", "--store", str(store)])
    assert result.exit_code == 0 and "v2" in result.output and f"qp {qp:,}" in result.output


def test_versions_list_takes_the_store_from_a_config(two_versions: tuple[Path, list[dict], Path]) -> None:
    _, _, config = two_versions
    listed = invoke("versions", "list", "cmrc-cli", "--config", str(config), "--json")
    assert [v["version"] for v in listed["versions"]] == [1, 2]


def test_versions_show(two_versions: tuple[Path, list[dict], Path]) -> None:
    store, (_, second), _ = two_versions
    shown = invoke("versions", "show", "cmrc-cli", "v2", "--store", str(store), "--json")
    path = second["details"]["path"]
    assert (shown["version"], shown["parent"], shown["path"]) == (2, 1, path)
    manifest = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    assert "config" not in shown and shown["files"] == len(manifest["files"])
    assert shown["funnel"][0]["stage"] == "ingest" and len(shown["segments"]) == 6
    dedup = next(row for row in shown["funnel"] if row["stage"] == "dedup-pairs")
    result = runner.invoke(app, ["versions", "show", "cmrc-cli", "2", "--store", str(store)])
    assert result.exit_code == 0 and re.search(r"6\s+segments\s+\(6\s+complete\)", result.output)
    assert re.search(rf"dedup-pairs\W+pairs\W+{dedup['in']}\W+{dedup['out']}\W", result.output)


def test_versions_show_and_diff_take_latest(two_versions: tuple[Path, list[dict], Path]) -> None:
    store, (_, second), _ = two_versions
    shown = invoke("versions", "show", "cmrc-cli", "latest", "--store", str(store), "--json")
    assert (shown["version"], shown["path"]) == (2, second["details"]["path"])
    diff = invoke("versions", "diff", "cmrc-cli", "v1", "latest", "--store", str(store), "--json")
    assert (diff["a"], diff["b"]) == (1, 2) and diff["added"] > 0


def test_tables_go_to_stdout_unless_json_does(two_versions: tuple[Path, list[dict], Path]) -> None:
    """`versions list | less` shows the table; with --json, stdout is the JSON line alone."""
    store, _, _ = two_versions
    for command in (["list", "cmrc-cli"], ["show", "cmrc-cli", "2"], ["diff", "cmrc-cli", "1", "2"]):
        plain = runner.invoke(app, ["versions", *command, "--store", str(store)])
        assert plain.exit_code == 0 and "v2" in plain.stdout, command
        as_json = runner.invoke(app, ["versions", *command, "--store", str(store), "--json"])
        assert as_json.exit_code == 0 and len(as_json.stdout.strip().splitlines()) == 1, command
        json.loads(as_json.stdout)


def test_versions_diff(two_versions: tuple[Path, list[dict], Path]) -> None:
    store, (first, second), _ = two_versions
    diff = invoke("versions", "diff", "cmrc-cli", "1", "2", "--store", str(store), "--show", "500", "--json")
    a, b = pair_ids(first["details"]["path"]), pair_ids(second["details"]["path"])
    assert a < b  # v2 is a complete dataset: v1's examples and the new ones
    assert diff["added"] == len(b - a) > 0 and diff["removed"] == 0 and diff["removed_ids"] == []
    assert set(diff["added_ids"]) == b - a
    assert diff["examples"]["human"] == {"a": 10, "b": 10 + 10}  # each run's pool shard has ten human questions
    assert diff["examples"]["qp"]["a"] < diff["examples"]["qp"]["b"]
    assert diff["config"]["export.card_examples"] == {"a": 10, "b": 5}
    assert "workdir" in diff["config"] and "mine.num_negatives" not in diff["config"]
    short = invoke("versions", "diff", "cmrc-cli", "v1", "v2", "--store", str(store), "--show", "3", "--json")
    assert len(short["added_ids"]) == 3 and short["added"] == diff["added"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["versions", "show", "cmrc-cli", "9"], "no version v9"),
        (["versions", "show", "cmrc-cli", "newest"], "not a version"),
        (["versions", "show", "cmrc-cli", "latest-promoted"], "no latest-promoted version"),  # no gate here
        (["versions", "verify", "cmrc-cli", "v9"], "no version v9"),
        (["versions", "list", "../escape"], "invalid dataset name"),
        (["versions", "diff", "cmrc-cli", "1", "7"], "no version v7"),
    ],
)
def test_versions_errors_exit_2(two_versions: tuple[Path, list[dict], Path], args: list[str], message: str) -> None:
    store, _, _ = two_versions
    result = runner.invoke(app, [*args, "--store", str(store)])
    assert result.exit_code == 2 and message in result.output


def test_export_without_a_run_plan_is_an_error(tmp_path: Path, shared_data: Path) -> None:
    config = write_config(
        tmp_path / "none", tmp_path / "store", write_inputs(tmp_path / "in", shared_data, n_pool=20), 10
    )
    result = runner.invoke(app, ["export", str(config)])
    assert result.exit_code == 2 and "no run plan" in result.output and "pairforge ingest" in result.output


def test_stage_commands_on_pairs_alone_publish_nothing_and_exit_3(tmp_path: Path, shared_data: Path) -> None:
    """Scored pair files give no passage and no example: every stage command runs (an empty pool included), and
    export says which stage let nothing through, with exit code 3 and no version."""
    inputs = [c for c in write_inputs(tmp_path / "in", shared_data, n_pool=20) if c["format"] == "pairs_tsv"]
    config = str(write_config(tmp_path / "pairs", tmp_path / "store", inputs, 10))
    for command in (["ingest"], ["dedup"], ["index"], ["generate"], ["filter"], ["judge"],
                    ["dedup", "--target", "pairs"], ["mine"], ["select"]):  # fmt: skip
        stats = invoke(*command, config, "--json")
        assert stats["out"] == 0, command
    result = runner.invoke(app, ["export", config])
    assert result.exit_code == 3
    assert result.output.strip() == "nothing to publish: 0 passages survived ingest (no reason recorded)"
    assert not list((tmp_path / "store").glob("*/v*"))
