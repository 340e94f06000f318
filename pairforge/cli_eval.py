"""``pairforge eval``: retrieval and negative-mining quality on human-labelled SQuAD-style data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pairforge.cli_common import JsonOption, err, print_json, user_errors
from pairforge.config import load_config

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval on human-labelled data.")
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
    as_json: JsonOption = False,
) -> None:
    """BM25 (and dense, if configured) recall@1/5/10: every paragraph in the pool, every question a query."""
    from pairforge.evaluate.retrieval import evaluate_retrieval

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
    as_json: JsonOption = False,
) -> None:
    """Mine negatives for the file's questions; count gold, near-duplicate and answer-containing ones."""
    from pairforge.evaluate.retrieval import evaluate_negatives

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


@eval_app.command("longtext")
def eval_longtext(
    squad: SquadOption,
    t2s: T2sOption = False,
    model: Annotated[
        str | None,
        typer.Option("--model", help="A sentence-transformers model folder, or a `pairforge train` output."),
    ] = None,
    long_chars: Annotated[int, typer.Option("--long-chars", min=1, help="What counts as long, in characters.")] = 512,
    short_per_long: Annotated[
        float, typer.Option("--short-per-long", min=0, help="Short-passage questions drawn per long query.")
    ] = 2.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the short-question draw.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """The stella long-text protocol: questions answered past char LONG_CHARS of long passages, plus short-passage
    questions; every passage in the pool. Recall@1/5/10 for BM25 and the model."""
    from pairforge.evaluate import evaluate_longtext

    with user_errors():
        _require_file(squad)
        report = evaluate_longtext(
            squad, model=model, long_chars=long_chars, short_per_long=short_per_long, seed=seed, t2s=t2s
        )
    for name, block in (("BM25", report.bm25), ("model", report.model)):
        if block:
            err.print(
                f"{name}: recall@1 {block['recall_at_1']:.4f}, @5 {block['recall_at_5']:.4f}, @10 "
                f"{block['recall_at_10']:.4f} (long queries @5 {block['long']['recall_at_5']:.4f})",
                highlight=False,
            )
    err.print(
        f"{report.queries:,} queries ({report.long_queries:,} long) over {report.passages:,} passages;"
        f" {report.seconds:.1f} s",
        highlight=False,
    )
    print_json(report.to_dict(), as_json)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
