"""``pairforge train``: train a student on published versions (the stella recipe on sentence-transformers)."""

from __future__ import annotations

import sys
from contextlib import redirect_stdout
from typing import Annotated

import typer

from pairforge.cli_common import JsonOption, err, print_json, user_errors


def train(
    versions: Annotated[list[str], typer.Argument(help="Version folders (STORE/NAME/v<N>) or STORE/NAME/latest.")],
    student: Annotated[
        str, typer.Option("--student", help="static, demo-layers[:N], or a sentence-transformers model folder.")
    ] = "static",
    out: Annotated[
        str | None, typer.Option("--out", help="Where to save the model (default train/<dataset>-v<N>-...).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Stop after N steps.")] = None,
    epochs: Annotated[float, typer.Option("--epochs", help="Passes over the data (without --max-steps).")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    ewc_lambda: Annotated[float, typer.Option("--ewc-lambda", help="EWC strength λ (0: off); see docs/cli.md.")] = 0.0,
    ewc_reference: Annotated[
        list[str] | None, typer.Option("--ewc-reference", help="Versions for the Fisher sample (default: the data).")
    ] = None,
    negatives: Annotated[int, typer.Option("--negatives", help="Hard negatives per MNRL row.")] = 1,
    sampler: Annotated[str, typer.Option("--sampler", help="proportional or round_robin.")] = "proportional",
    kinds: Annotated[list[str] | None, typer.Option("--kind", help="Train only this kind (repeatable).")] = None,
    prompts: Annotated[
        bool | None,
        typer.Option("--prompts/--no-prompts", help="Query instructions on anchors (default: on, off for static)."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Default 128 static, else 32.")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Default 0.05 static, else 2e-5.")] = None,
    as_json: JsonOption = False,
) -> None:
    """One dataset per kind, each with its loss (MNRL with hard negatives, CoSENT on scored pairs), optional EWC."""
    from pairforge.train import TrainConfig, run_train

    with user_errors():
        config = TrainConfig(
            student=student,
            epochs=epochs,
            max_steps=max_steps,
            seed=seed,
            ewc_lambda=ewc_lambda,
            ewc_reference=ewc_reference or None,
            num_negatives=negatives,
            sampler=sampler,  # type: ignore[arg-type]  # pydantic checks the name
            kinds=kinds or None,
            query_prompts=prompts,
            batch_size=batch_size,
            learning_rate=learning_rate,
        )
        with redirect_stdout(sys.stderr):  # stdout is for --json; libraries print progress
            summary = run_train(versions, config, out)
    rows = ", ".join(f"{kind} {n:,}" for kind, n in summary.datasets.items())
    losses = ", ".join(f"{kind} {s['first']} → {s['last']}" for kind, s in summary.losses.items())
    err.print(
        f"trained {summary.student} for {summary.steps} steps in {summary.seconds:.1f} s on {rows}; "
        f"loss {losses}; saved to {summary.model_path}",
        highlight=False,
    )
    print_json(summary.to_dict(), as_json)
