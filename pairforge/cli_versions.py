"""``pairforge versions``: list, show and compare the published versions of a dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pairforge.cli_common import JsonOption, err, print_json, store_errors, user_errors
from pairforge.config import load_config

versions_app = typer.Typer(no_args_is_help=True, help="List, show and compare published dataset versions.")
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
    from pairforge.store.catalog import list_versions

    with user_errors(), store_errors():
        rows = list_versions(_open_store(store, config), dataset)
    table = Table(title=f"{dataset}: {len(rows)} versions")
    for col in ("version", "created_at", "examples", "by kind", "parent"):
        table.add_column(col)
    for r in rows:
        by_kind = ", ".join(f"{k} {n:,}" for k, n in r["by_kind"].items())
        table.add_row(f"v{r['version']}", r["created_at"], f"{r['examples']:,}", by_kind, _vname(r["parent"]))
    err.print(table)
    print_json({"dataset": dataset, "versions": rows}, as_json)


@versions_app.command("show")
def versions_show(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[str, typer.Argument(help="Version: 3 or v3.")],
    store: StoreOption = None,
    config: StoreConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version's manifest: lineage, counts, funnel (without the config and file list)."""
    from pairforge.store.catalog import show_version

    with user_errors(), store_errors():
        shown = show_version(_open_store(store, config), dataset, _parse_version(version))
    gen, code = shown.get("generation", {}), shown.get("code_version", {})
    prompts = ", ".join(p["id"] for p in gen.get("prompts", [])) or "-"
    segments = shown.get("segments", [])
    dirty = " (local changes)" if code.get("git_dirty") else ""
    err.print(
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
    err.print(table)
    print_json(shown, as_json)


@versions_app.command("diff")
def versions_diff(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    a: Annotated[str, typer.Argument(help="The earlier version: 1 or v1.")],
    b: Annotated[str, typer.Argument(help="The later version.")],
    store: StoreOption = None,
    config: StoreConfigOption = None,
    show: Annotated[int, typer.Option("--show", help="List at most N added and removed pair ids.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Counts by kind, examples added and removed (by pair id), and config keys that changed."""
    from pairforge.store.catalog import diff_versions

    with user_errors(), store_errors():
        diff = diff_versions(_open_store(store, config), dataset, _parse_version(a), _parse_version(b), show)
    lines = [f"{dataset} v{diff['a']} → v{diff['b']}"]
    lines += [f"  {kind}: {n['a']:,} → {n['b']:,}" for kind, n in diff["examples"].items()]
    lines.append(f"examples added {diff['added']:,}, removed {diff['removed']:,}")
    lines += [f"  + {pid}" for pid in diff["added_ids"]] + [f"  - {pid}" for pid in diff["removed_ids"]]
    lines.append(f"config: {len(diff['config'])} keys changed")
    lines += [f"  {key}: {json.dumps(v['a'])} → {json.dumps(v['b'])}" for key, v in diff["config"].items()]
    err.print("\n".join(lines), highlight=False, markup=False)
    print_json(diff, as_json)


def _open_store(store: str | None, config: Path | None) -> Any:
    """The store named by --store, else the one of --config's RunConfig, else ./store."""
    from pairforge.store import Store

    return Store(store or (load_config(config).store if config else "store"))


def _parse_version(text: str) -> int:
    number = text.removeprefix("v")
    if not (number.isascii() and number.isdigit()):
        raise ValueError(f"{text!r} is not a version (use 3 or v3)")
    return int(number)


def _vname(version: int | None) -> str:
    return f"v{version}" if version else "-"
