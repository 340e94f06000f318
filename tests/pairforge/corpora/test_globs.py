"""What a corpus glob matches that is not a regular file (issue 21 item 8): skipped with a warning naming each
and how many, never opened (a FIFO would hang a reader)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from pairforge.corpora import CorpusPathError, expand_paths


def hostile_folder(folder: Path) -> Path:
    (folder / "a.jsonl").write_text("{}\n", encoding="utf-8")
    (folder / "sub").mkdir()
    os.mkfifo(folder / "pipe")
    (folder / "gone").symlink_to(folder / "no-such-file")
    (folder / "link.jsonl").symlink_to(folder / "a.jsonl")  # a symlink to a file is a file
    return folder


def test_non_files_are_skipped_with_a_warning_naming_each(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = hostile_folder(tmp_path)
    with caplog.at_level(logging.WARNING):
        paths = expand_paths(str(folder / "*"))
    assert paths == [str(folder / "a.jsonl"), str(folder / "link.jsonl")]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "3 matched path(s) skipped" in warning
    for name, kind in (("sub", "directory"), ("pipe", "FIFO"), ("gone", "dangling symlink")):
        assert f"{folder / name} ({kind})" in warning


def test_a_glob_of_only_non_files_is_an_error_naming_them(tmp_path: Path) -> None:
    folder = hostile_folder(tmp_path)
    (folder / "a.jsonl").unlink()
    (folder / "link.jsonl").unlink()
    with pytest.raises(CorpusPathError, match=r"matches only what is not a regular file: .*pipe \(FIFO\)"):
        expand_paths(str(folder / "*"))
