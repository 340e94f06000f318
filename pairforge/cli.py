"""The ``pairforge`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pairforge.config import ConfigError, load_config
from pairforge.corpora import CorpusPathError
from pairforge.ingest import IngestSummary, run_ingest
from pairforge.quarantine import StrictModeError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Training data for Chinese text-embedding models.")
err = Console(stderr=True)


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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line last.")] = False,
) -> None:
    """Read the corpora, normalise, window into passages: writes WORKDIR/passages/*.parquet."""
    try:
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
    except (ConfigError, CorpusPathError, StrictModeError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    _print_summary(summary)
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), ensure_ascii=False) + "\n")


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
