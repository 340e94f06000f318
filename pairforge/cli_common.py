"""What the command modules share: the stderr console, user-facing errors, the ``--json`` line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one JSON line last.")]


@contextmanager
def user_errors(stage: str = "", config: Path | None = None) -> Iterator[None]:
    """Bad configs, inputs and missing files end the command with their message and exit code 2; a full disk
    with one sentence naming ``stage`` and the full folder (of ``config``'s workdir or store), exit code 4."""
    import sqlite3

    from pairforge.diskfull import DiskFullError, describe_disk_full, is_disk_full

    try:
        yield
    except (FileNotFoundError, ValueError) as exc:  # ConfigError, StrictModeError, CorpusPathError among them
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except DiskFullError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(4) from None
    except (OSError, sqlite3.Error) as exc:
        folders = _folders_of(config)
        if not is_disk_full(exc, folders):
            raise
        message = describe_disk_full(stage or "pairforge", folders)
        err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(4) from None


def _folders_of(config: Path | None) -> list[str]:
    """The folders ``config`` writes to (workdir and store), or the current one."""
    from pairforge.config import load_config

    try:
        cfg = load_config(config) if config else None
    except (OSError, ValueError):
        cfg = None
    return [cfg.workdir, cfg.store] if cfg is not None else ["."]


def print_json(summary: dict[str, object], as_json: bool) -> None:
    """With ``--json``, the summary as the last line of stdout."""
    if as_json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")


@contextmanager
def store_errors() -> Iterator[None]:
    """Store errors (bad name, missing version, a store URL whose fsspec package is not installed) are user errors:
    exit code 2 with the message."""
    from pairforge.store import StoreError

    try:
        yield
    except StoreError as exc:
        raise ValueError(str(exc)) from None
    except ImportError as exc:
        if not str(exc).startswith("Install "):  # fsspec's words for a protocol's missing package
            raise
        raise ValueError(f"the store URL's protocol needs a package: {exc} (pip install it)") from None
