"""A published version is what its manifest says, or is reported: its files are read-only, `versions verify` names
every truncated, deleted, edited or unlisted file (and a count the manifest misstates), and the next export never
carries a damaged file with its parent's hash."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.export import ExportInputs, run_export
from pairforge.plan import plan_run
from pairforge.store import DamagedVersion, Store, layout
from pairforge.store.verify import verify_version
from tests.pairforge.export.conftest import Published
from tests.pairforge.export.conftest import publish as export_built
from tests.pairforge.export.test_publish import elsewhere, manifest_of
from tests.pairforge.export.workdir import Built

runner = CliRunner()
NAME = "cmrc-test"


@pytest.fixture
def own(published: Published, tmp_path: Path) -> tuple[Built, Path]:
    """The session's run exported again into a store of this test's own (which it may damage)."""
    built = elsewhere(published, str(tmp_path / "store"))
    return built, export_built(built)[1]


def damage(path: Path, how: str) -> None:
    """A file of a version changed as a user or a failing disk would: the file is made writable first."""
    if how == "delete":
        path.unlink()
        return
    # A local store hard-links the workdir's outputs: the damage goes to a copy at this path only, so the session's
    # workdir (the same inode) stays whole for the other tests.
    copy = path.with_name(path.name + ".copy")
    shutil.copyfile(path, copy)
    copy.replace(path)
    path.chmod(0o644)
    if how == "truncate":
        os.truncate(path, 1000)
    else:  # one byte edited in place: the size is unchanged
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


def verify_cli(store: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["versions", "verify", NAME, *args, "--store", store])
    return result.exit_code, result.stdout


def write_config(built: Built, folder: Path) -> Path:
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(built.config.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    return path


def test_a_published_version_is_read_only_and_verifies(own: tuple[Built, Path]) -> None:
    built, version = own
    files = [p for p in version.rglob("*") if p.is_file()]
    assert files and all(not p.stat().st_mode & 0o222 for p in files)
    report = verify_version(Store(built.config.store), NAME, 1)
    assert report["problems"] == [] and report["files"] == len(files) - 1  # all but the manifest are listed
    code, out = verify_cli(built.config.store)  # the latest by default
    assert code == 0 and f"{NAME} v1: ok ({report['files']:,} files" in out


def test_verify_names_each_truncated_deleted_edited_and_unlisted_file(own: tuple[Built, Path]) -> None:
    built, version = own
    listed = [f["path"] for f in manifest_of(version)["files"]]
    jsonl = next(p for p in listed if p.startswith("flagembedding/") and p.endswith(".jsonl"))
    examples = [p for p in listed if p.startswith(f"{layout.EXAMPLES}/")]
    passages = next(p for p in listed if p.startswith(f"{layout.PASSAGES}/"))
    damage(version / jsonl, "truncate")
    damage(version / examples[0], "delete")
    damage(version / passages, "edit")
    (version / "flagembedding" / "extra.jsonl").write_text("{}\n")
    manifest = json.loads((version / layout.MANIFEST).read_text(encoding="utf-8"))
    manifest["examples"]["qp"] += 72  # the edited count `versions show` would show as truth
    (version / layout.MANIFEST).chmod(0o644)
    (version / layout.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")

    problems = verify_version(Store(built.config.store), NAME, 1)["problems"]
    assert sorted(p.split(": ", 1)[0] for p in problems) == sorted(
        [jsonl, examples[0], passages, "flagembedding/extra.jsonl", layout.MANIFEST]
    ), problems
    by_file = {p.split(": ", 1)[0]: p for p in problems}
    assert "1,000 bytes, the manifest records" in by_file[jsonl] and "missing" in by_file[examples[0]]
    assert "sha256" in by_file[passages] and "not listed" in by_file["flagembedding/extra.jsonl"]
    code, out = verify_cli(built.config.store, "--all")
    assert code == 1 and f"{NAME} v1: 5 damaged" in out
    assert f"{version}/{jsonl}: 1,000 bytes" in out and f"{version}/{examples[0]}: missing" in out


@pytest.mark.parametrize("how", ["truncate", "delete", "edit"])
def test_the_next_export_and_run_refuse_a_damaged_parent_file(
    own: tuple[Built, Path], tmp_path: Path, how: str
) -> None:
    built, version = own
    manifest = manifest_of(version)
    carried = next(p["path"] for p in manifest["files"] if p["path"].startswith("flagembedding/"))
    damage(version / carried, how)
    plan = plan_run(built.config)  # every shard covered: all of v1's segments are carried
    assert plan.parent == 1 and plan.carried
    with pytest.raises(DamagedVersion, match=rf"{version}/{carried}: "):
        run_export(built.config, ExportInputs(plan, built.funnel), built.workdir)
    store = Store(built.config.store)
    assert store.versions(NAME) == [1] and store.resolve(NAME, "latest") == 1  # nothing carried it on
    assert [p for p in store.fs.ls(f"{store.root}/{NAME}", detail=False) if ".staging" in p] == []
    result = runner.invoke(app, ["run", str(write_config(built, tmp_path))])  # nothing new: the latest is checked
    assert result.exit_code == 4, result.output
    assert "nothing new to do, but" in result.output and carried in result.output


def test_an_intact_parent_is_shared_as_recorded(own: tuple[Built, Path]) -> None:
    built, version = own
    plan = plan_run(built.config)
    stats = run_export(built.config, ExportInputs(plan, built.funnel), built.workdir)
    second = Path(stats.details["path"])
    assert stats.details["version"] == 2 and verify_version(Store(built.config.store), NAME, 2)["problems"] == []
    shared = [p for segment in manifest_of(second)["segments"] if segment["version"] == 1 for p in segment["files"]]
    assert shared and all((second / p).stat().st_ino == (version / p).stat().st_ino for p in shared)


def test_load_dataset_on_a_version_missing_a_file_names_it(own: tuple[Built, Path], tmp_path: Path) -> None:
    """The card's configs list the files, so `datasets` cannot return a smaller dataset without a word."""
    from datasets import load_dataset

    _, version = own
    gone = sorted((version / layout.EXAMPLES).glob("*.parquet"))[0]
    gone.unlink()
    with pytest.raises(FileNotFoundError, match=gone.name):
        load_dataset(str(version), "examples", split="train", cache_dir=str(tmp_path / "hf"))


def test_a_run_and_versions_list_repair_latest_after_a_kill_between_rename_and_swap(
    own: tuple[Built, Path], tmp_path: Path
) -> None:
    """The state a publisher killed after renaming v2 leaves: `latest` → v1, its lock (naming a dead process)."""
    import socket
    import subprocess
    import sys
    import time

    built, _ = own
    store = Store(built.config.store)
    run_export(built.config, ExportInputs(plan_run(built.config), built.funnel), built.workdir)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for command in (
        ["versions", "list", NAME, "--store", built.config.store],
        ["run", str(write_config(built, tmp_path))],
    ):
        store.point(NAME, "latest", 1)
        store.fs.pipe(
            f"{store.root}/{NAME}/.publish.lock", f"{time.time()} x {socket.gethostname()} {int(gone.stdout)}".encode()
        )
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        assert store.resolve(NAME, "latest") == 2 and not store.fs.exists(f"{store.root}/{NAME}/.publish.lock")
