"""A full disk (issue 21 item 9): one clear error naming the stage and the full folder, exit code 4, short
output, on a real full file system (a 16 MiB tmpfs; skipped where mounting is not allowed)."""

from __future__ import annotations

import errno
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flows.pipeline import _run
from pairforge.cli import app
from pairforge.config import RunConfig
from pairforge.diskfull import DiskFullError, is_disk_full
from pairforge.testing.fake_llm import FakeLLM
from tests.pairforge.llm.helpers import cmrc_config, ingest_cmrc

runner = CliRunner()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> None:
    """Take every free byte of the file system: big blocks, then small ones."""
    with (disk / "filler").open("wb", buffering=0) as handle:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    assert shutil.disk_usage(disk).free < 4096


def test_generate_and_index_on_a_full_disk_say_so_in_one_line(shared_data: Path, small_disk: Path) -> None:
    with FakeLLM(seed=1) as server:
        generate = {"backend": "openai", "model": "fake-model", "kinds": ["qp"],
                    "openai": {"base_url": server.base_url, "max_retries": 0}}  # fmt: skip
        prepared = ingest_cmrc(shared_data, small_disk / "w", 5, generate=generate)
        config = small_disk.parent / "run.yaml"
        data = cmrc_config(shared_data, small_disk / "w", generate=generate)
        config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        assert prepared.shards
        fill(small_disk)
        for stage in ("generate", "index"):
            result = runner.invoke(app, [stage, str(config)])
            output = result.output.strip()
            assert result.exit_code == 4, output
            assert output.startswith(f"error: stage {stage} failed: the disk is full"), output
            assert str(small_disk / "w") in output and "Traceback" not in output
            assert len(output.splitlines()) <= 3  # one sentence (the console may wrap it)


def test_a_stage_flow_that_fills_the_disk_is_one_sentence(tmp_path: Path) -> None:
    def stage_flow(fresh: bool) -> dict[str, str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    config = RunConfig.model_validate(
        {
            "name": "full",
            "workdir": str(tmp_path / "w"),
            "store": str(tmp_path / "s"),
            "corpora": [{"format": "wudao", "path": str(tmp_path / "c.jsonl")}],
        }
    )
    with pytest.raises(DiskFullError, match=r"^stage generate failed: the disk is full .*" + str(tmp_path)) as info:
        _run("generate", config, stage_flow, False)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    ("error", "full"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (OSError("28297 requested and 5120 written"), False),  # vague: only where a folder is out of space
        (sqlite3.OperationalError("disk I/O error"), False),
        (RuntimeError("wrapped"), False),
    ],
)
def test_is_disk_full_on_a_disk_with_room(tmp_path: Path, error: BaseException, full: bool) -> None:
    assert is_disk_full(error, [tmp_path]) is full
    try:
        try:
            raise error
        except BaseException as inner:
            raise RuntimeError("a stage failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer, [tmp_path]) is full  # found behind the error that wraps it


def test_the_vague_errors_count_where_the_disk_is_full(small_disk: Path) -> None:
    fill(small_disk)
    assert is_disk_full(OSError("28297 requested and 5120 written"), [small_disk / "w"])
    assert is_disk_full(sqlite3.OperationalError("disk I/O error"), [small_disk])
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"), [small_disk])
    assert sys.platform.startswith("linux")
