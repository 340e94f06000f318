"""``pairforge versions``: list, show, compare and verify the published versions of a dataset. Tables go to stdout
(``| less`` shows them), or to stderr with ``--json``, whose line is then stdout's only one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pairforge.cli_common import JsonOption, err, print_json, store_errors, user_errors
from pairforge.config import load_config

versions_app = typer.Typer(no_args_is_help=True, help="List, show, compare and verify published dataset versions.")
StoreOption = Annotated[str | None, typer.Option("--store", help="Store folder or fsspec URL (default: store).")]
StoreConfigOption = Annotated[Path | None, typer.Option("--config", help="RunConfig whose store to use.")]


@versions_app.command("list")
def versions_list(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    store: StoreOption = None,
    config: StoreConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The published versions: created_at, examples (by kind), parent."""
    from pairforge.store.catalog import list_versions, repair_pointers

    with user_errors(), store_errors():
        opened = _open_store(store, config)
        moved = repair_pointers(opened, dataset)
        rows = list_versions(opened, dataset)
    for pointer, number in moved.items():  # a publisher killed between its rename and the swap
        err.print(f"repaired: {dataset}/{pointer} → v{number}", highlight=False)
    table = Table(title=f"{dataset}: {len(rows)} versions")
    for col in ("version", "created_at", "examples", "by kind", "parent"):
        table.add_column(col)
    for r in rows:
        by_kind = ", ".join(f"{k} {n:,}" for k, n in r["by_kind"].items())
        table.add_row(f"v{r['version']}", r["created_at"], f"{r['examples']:,}", by_kind, _vname(r["parent"]))
    _out(as_json).print(table)
    print_json({"dataset": dataset, "versions": rows}, as_json)


@versions_app.command("show")
def versions_show(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[str, typer.Argument(help="Version: 3, v3, latest or latest-promoted.")],
    store: StoreOption = None,
    config: StoreConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version's manifest: lineage, counts, funnel (without the config and file list)."""
    from pairforge.store.catalog import show_version

    with user_errors(), store_errors():
        opened = _open_store(store, config)
        shown = show_version(opened, dataset, _resolve(opened, dataset, version))
    gen, code = shown.get("generation", {}), shown.get("code_version", {})
    prompts = ", ".join(p["id"] for p in gen.get("prompts", [])) or "-"
    segments = shown.get("segments", [])
    dirty = " (local changes)" if code.get("git_dirty") else ""
    out = _out(as_json)
    out.print(
        f"{dataset} v{shown['version']} at {shown['path']}\ncreated {shown['created_at']}, parent"
        f" {_vname(shown['parent'])}; examples {shown['examples']}; {shown['files']} files, {shown['bytes']:,} bytes\n"
        f"model {gen.get('model')}, backend {gen.get('backend')}, prompts {prompts}\n"
        f"config {shown['config_fingerprint'][:16]}, pairforge {code.get('package')} git {code.get('git_sha')}{dirty},"
        f" {len(segments)} segments ({sum(bool(s.get('complete')) for s in segments)} complete)",
        highlight=False,
        markup=False,
    )
    table = Table(title="funnel")
    for col in ("stage", "unit", "in", "out", "dropped"):
        table.add_column(col, justify="right" if col in ("in", "out") else "left")
    for row in shown.get("funnel", []):
        dropped = ", ".join(f"{reason} {n:,}" for reason, n in row["dropped"].items()) or "-"
        table.add_row(row["stage"], row["unit"], f"{row['in']:,}", f"{row['out']:,}", dropped)
    out.print(table)
    print_json(shown, as_json)


@versions_app.command("diff")
def versions_diff(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    a: Annotated[str, typer.Argument(help="The earlier version: 1, v1, latest or latest-promoted.")],
    b: Annotated[str, typer.Argument(help="The later version (the same forms).")],
    store: StoreOption = None,
    config: StoreConfigOption = None,
    show: Annotated[int, typer.Option("--show", help="List at most N added and removed pair ids.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Counts by kind, examples added and removed (by pair id), and config keys that changed."""
    from pairforge.store.catalog import diff_versions

    with user_errors(), store_errors():
        opened = _open_store(store, config)
        diff = diff_versions(opened, dataset, _resolve(opened, dataset, a), _resolve(opened, dataset, b), show)
    lines = [f"{dataset} v{diff['a']} → v{diff['b']}"]
    lines += [f"  {kind}: {n['a']:,} → {n['b']:,}" for kind, n in diff["examples"].items()]
    lines.append(f"examples added {diff['added']:,}, removed {diff['removed']:,}")
    lines += [f"  + {pid}" for pid in diff["added_ids"]] + [f"  - {pid}" for pid in diff["removed_ids"]]
    lines.append(f"config: {len(diff['config'])} keys changed")
    lines += [f"  {key}: {json.dumps(v['a'])} → {json.dumps(v['b'])}" for key, v in diff["config"].items()]
    _out(as_json).print("\n".join(lines), highlight=False, markup=False)
    print_json(diff, as_json)


@versions_app.command("verify")
def versions_verify(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[str, typer.Argument(help="Version: 3, v3, latest (default) or latest-promoted.")] = "latest",
    every: Annotated[bool, typer.Option("--all", help="Verify every published version.")] = False,
    store: StoreOption = None,
    config: StoreConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check every file of a version against its manifest (size and sha256, no unlisted file, row counts). Exit
    codes: 0 all as recorded, 1 a file is missing, truncated, edited or unlisted (each named), 2 no such version."""
    from pairforge.store.verify import verify_version

    with user_errors(), store_errors():
        opened = _open_store(store, config)
        numbers = opened.versions(dataset) if every else [_resolve(opened, dataset, version)]
        if not numbers:
            raise ValueError(f"{dataset}: no published version in {opened.url}")
        reports = [verify_version(opened, dataset, n) for n in numbers]
    out = _out(as_json)
    for report in reports:
        state = f"{len(report['problems'])} damaged" if report["problems"] else "ok"
        out.print(f"{dataset} v{report['version']}: {state} ({report['files']:,} files, {report['bytes']:,} bytes)",
                  highlight=False, markup=False)  # fmt: skip
        for problem in report["problems"]:
            out.print(f"  {report['path']}/{problem}", highlight=False, markup=False, soft_wrap=True)
    print_json({"dataset": dataset, "versions": reports}, as_json)
    if any(r["problems"] for r in reports):
        raise typer.Exit(1)


def _open_store(store: str | None, config: Path | None) -> Any:
    """The store named by --store, else the one of --config's RunConfig, else ./store."""
    from pairforge.store import Store

    return Store(store or (load_config(config).store if config else "store"))


def _resolve(store: Any, dataset: str, ref: str) -> int:
    """A version number from ``3``, ``v3``, ``latest`` or ``latest-promoted``; a pointer a killed publisher left
    behind is repaired first."""
    from pairforge.store.catalog import repair_pointers
    from pairforge.store.versions import POINTERS

    if ref in POINTERS:
        repair_pointers(store, dataset)
    version: int = store.resolve(dataset, ref)
    return version


def _out(as_json: bool) -> Console:
    """Where a command's human output goes: stdout, or stderr when stdout carries the ``--json`` line."""
    return err if as_json else Console()


def _vname(version: int | None) -> str:
    return f"v{version}" if version else "-"
