"""The stage commands: each runs one stage in this process over the workdir's run plan (``ingest`` makes the plan:
the input shards the latest version does not cover). ``pairforge run`` runs them all as a Prefect flow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pairforge.cli_common import JsonOption, err, print_json, store_errors, user_errors
from pairforge.config import RunConfig, load_config
from pairforge.plan import RunPlan, plan_run
from pairforge.stats import StageStats
from pairforge.workdir import Workdir


def stage_inputs(name: str, config: RunConfig, plan: RunPlan, workdir: Workdir) -> Any:
    """``pairforge.wiring.stage_inputs``, imported when a command runs: the CLI module's own imports must not load
    numba (the stage modules do), because vLLM's engine process re-imports it and its CPU kernel scan breaks on
    llvmlite's objects (tests/test_imports.py keeps the CLI free of numba)."""
    from pairforge.wiring import stage_inputs as wired_inputs

    return wired_inputs(name, config, plan, workdir)


ConfigArg = Annotated[Path, typer.Argument(help="RunConfig YAML file.")]
FreshOption = Annotated[bool, typer.Option("--fresh", help="Recompute even the shards whose output is current.")]


def register(app: typer.Typer) -> None:
    """Add the stage commands to ``app``."""
    app.command("ingest")(ingest)
    app.command("dedup")(dedup)
    app.command("index")(index)
    app.command("generate")(generate)
    app.command("filter")(filter_pairs)
    app.command("judge")(judge)
    app.command("mine")(mine)
    app.command("select")(select)
    app.command("export")(export)


def open_run(config: Path) -> tuple[RunConfig, Workdir, RunPlan]:
    cfg = load_config(config)
    workdir = Workdir(cfg.workdir)
    return cfg, workdir, RunPlan.load(workdir.plan)


def print_stats(stats: StageStats, as_json: bool) -> None:
    """One line for a stage's stats on stderr; with ``--json`` the stats as the last line of stdout."""
    dropped = ", ".join(f"{k} {v:,}" for k, v in stats.dropped.items()) or "none"
    err.print(f"{stats.stage}: {stats.input:,} in, {stats.output:,} out ({stats.unit}); dropped {dropped};"
              f" {stats.seconds:.1f} s", highlight=False)  # fmt: skip
    print_json(stats.to_dict(), as_json)


def ingest(
    config: ConfigArg,
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop at the first bad record (file:line: reason).")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="Read at most N documents.")] = None,
    fresh: FreshOption = False,
    as_json: JsonOption = False,
) -> None:
    """Plan the run (the input shards the latest version does not cover), then read, normalise and window them:
    WORKDIR/ingest/."""
    from pairforge.ingest import run_ingest

    with user_errors("ingest", config), store_errors():
        cfg = load_config(config)
        workdir = Workdir(cfg.workdir)
        plan = plan_run(cfg, fresh=fresh)
        plan.save(workdir.plan)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[docs]:,} docs"),
                      TimeElapsedColumn(), console=err, transient=True) as bar:  # fmt: skip
            task = bar.add_task("ingest", total=None, docs=0)

            def progress(shard: str, documents: int, _bytes: int) -> None:
                bar.update(task, description=f"ingest {Path(shard).name}", docs=documents)

            stats = run_ingest(cfg, stage_inputs("ingest", cfg, plan, workdir), workdir, strict=strict, limit=limit,
                               progress=progress, fresh=fresh)  # fmt: skip
    err.print(f"{len(plan.todo)} of {len(plan.shards)} input shards to process (the others are covered)",
              highlight=False)  # fmt: skip
    print_stats(stats, as_json)


def dedup(
    config: ConfigArg,
    target: Annotated[
        str, typer.Option("--target", help="passages (before generation) or pairs (after).")
    ] = "passages",
    fresh: FreshOption = False,
    as_json: JsonOption = False,
) -> None:
    """Drop near-duplicates (MinHash LSH): passages (against earlier versions too) or pairs."""
    if target not in ("passages", "pairs"):
        err.print(f"[red]error:[/red] --target must be passages or pairs, not {target!r}", highlight=False)
        raise typer.Exit(2)
    with user_errors(f"dedup-{target}", config), store_errors():
        cfg, workdir, plan = open_run(config)
        if target == "passages":
            from pairforge.dedup.passages import run_dedup_passages

            stats = run_dedup_passages(cfg, stage_inputs("dedup-passages", cfg, plan, workdir), workdir, fresh=fresh)
        else:
            from pairforge.dedup.pairs import run_dedup_pairs

            stats = run_dedup_pairs(cfg, stage_inputs("dedup-pairs", cfg, plan, workdir), workdir, fresh=fresh)
    print_stats(stats, as_json)


def index(config: ConfigArg, fresh: FreshOption = False, as_json: JsonOption = False) -> None:
    """The whole pool (earlier versions' and this run's passages) and its BM25 index: WORKDIR/index/."""
    from pairforge.negatives.index import run_index

    with user_errors("index", config), store_errors():
        cfg, workdir, plan = open_run(config)
        stats = run_index(cfg, stage_inputs("index", cfg, plan, workdir), workdir, fresh=fresh)
    print_stats(stats, as_json)


def generate(
    config: ConfigArg,
    limit: Annotated[int | None, typer.Option("--limit", help="Use at most N passages.")] = None,
    fresh: FreshOption = False,
    as_json: JsonOption = False,
) -> None:
    """Ask the LLM for pairs: sends what the ledger lacks, writes WORKDIR/generate/pairs."""
    from pairforge.generation.generate import run_generate

    with user_errors("generate", config):
        cfg, workdir, plan = open_run(config)
        plan.limit = limit  # this command's --limit, not the one `ingest` planned with
        with Progress(TextColumn("[bold]generate"), BarColumn(), TextColumn("{task.completed}/{task.total} requests"),
                      TimeElapsedColumn(), console=err, transient=True) as bar:  # fmt: skip
            task = bar.add_task("generate", total=None)
            stats = run_generate(cfg, stage_inputs("generate", cfg, plan, workdir), workdir, fresh=fresh,
                                 progress=lambda d, t: bar.update(task, completed=d, total=t))  # fmt: skip
    d = stats.details
    err.print(f"generate ({d['backend']}, {d['model']}): {d['passages']:,} passages, {d['requests']:,} requests"
              f" ({d['sent']:,} sent), {stats.output:,} pairs {d['pairs_by_kind']}; backend errors"
              f" {d['backend_errors'] or 'none'}", highlight=False)  # fmt: skip
    print_stats(stats, as_json)


def filter_pairs(config: ConfigArg, fresh: FreshOption = False, as_json: JsonOption = False) -> None:
    """Drop generated pairs that fail the filters, with reasons: WORKDIR/filter/."""
    from filters.chain import build_filters
    from pairforge.filter import run_filter

    with user_errors("filter", config):
        cfg, workdir, plan = open_run(config)
        stats = run_filter(cfg, stage_inputs("filter", cfg, plan, workdir), workdir, build_filters=build_filters,
                           fresh=fresh)  # fmt: skip
    print_stats(stats, as_json)


def judge(config: ConfigArg, fresh: FreshOption = False, as_json: JsonOption = False) -> None:
    """Score the filtered pairs with the LLM judge and keep those above the cut (off: pass them on): sends what the
    judge's ledger lacks, writes WORKDIR/judge/."""
    from pairforge.judge import run_judge

    with user_errors():
        cfg, workdir, plan = open_run(config)
        with Progress(TextColumn("[bold]judge"), BarColumn(), TextColumn("{task.completed}/{task.total} requests"),
                      TimeElapsedColumn(), console=err, transient=True) as bar:  # fmt: skip
            task = bar.add_task("judge", total=None)
            stats = run_judge(cfg, stage_inputs("judge", cfg, plan, workdir), workdir, fresh=fresh,
                              progress=lambda d, t: bar.update(task, completed=d, total=t))  # fmt: skip
    d = stats.details
    if d.get("enabled"):
        err.print(f"judge ({d['model']}): {d['sent']:,} requests sent; cut {d['cut']}; backend errors"
                  f" {d.get('backend_errors') or 'none'}", highlight=False)  # fmt: skip
    else:
        err.print("judge: off (judge.enabled: false); the filtered pairs pass on unscored", highlight=False)
    print_stats(stats, as_json)


def mine(config: ConfigArg, fresh: FreshOption = False, as_json: JsonOption = False) -> None:
    """Hard-negative candidates for every pair, stored in full: WORKDIR/mine/."""
    from pairforge.negatives.mine import run_mine

    with user_errors("mine", config):
        cfg, workdir, plan = open_run(config)
        stats = run_mine(cfg, stage_inputs("mine", cfg, plan, workdir), workdir, fresh=fresh)
    print_stats(stats, as_json)


def select(config: ConfigArg, fresh: FreshOption = False, as_json: JsonOption = False) -> None:
    """Choose hard negatives from the stored candidates: WORKDIR/select/examples."""
    from pairforge.negatives.policy import format_stats
    from pairforge.negatives.select import run_select

    with user_errors("select", config):
        cfg, workdir, plan = open_run(config)
        stats = run_select(cfg, stage_inputs("select", cfg, plan, workdir), workdir, fresh=fresh)
    err.print(format_stats(stats.details), highlight=False)
    print_stats(stats, as_json)


def export(config: ConfigArg, as_json: JsonOption = False) -> None:
    """Publish the workdir's run as the next immutable version (exit code 3 when there is nothing to publish, 4 when
    a file the parent version shares is damaged)."""
    from pairforge.export import NothingToPublish, run_export
    from pairforge.store import DamagedVersion

    with user_errors("export", config), store_errors():
        cfg, workdir, plan = open_run(config)
        try:
            stats = run_export(cfg, stage_inputs("export", cfg, plan, workdir), workdir)
        except NothingToPublish as exc:
            err.print(str(exc), highlight=False)
            raise typer.Exit(3) from None
        except DamagedVersion as exc:  # as `pairforge run` says it: exit 4
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(4) from None
    d = stats.details
    err.print(f"export {cfg.name} v{d['version']} (parent {d['parent'] or 'none'}) → {d['path']}", highlight=False)
    print_stats(stats, as_json)
