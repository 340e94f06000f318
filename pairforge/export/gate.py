"""The training-effect gate of a version being published: the same student, seed and budget trained on the new
version and on its parent (or, for a first version, left untrained), both scored on the version's held-out split
(``heldout/``, BEIR format: passages and questions never trained on) and on the configured SQuAD-style eval
files under the long-text protocol. The verdict (``promoted``) goes into the manifest and the card, and
moves ``latest-promoted``; a refused version is published all the same, and so is one whose gate failed (the
error is recorded, the version is not promoted): the gate never costs data."""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec

from pairforge.config import GateConfig
from pairforge.evaluate.beir import load_beir
from pairforge.evaluate.longtext import (
    KS,
    LongTextSet,
    bm25_top_k,
    model_top_k,
    recall_block,
    select_longtext,
)
from pairforge.train.datasets import TrainData, read_folder, read_versions

UNTRAINED = "untrained"  # what a version without a parent is compared with
HELDOUT = "heldout"  # the eval set name of the version's own held-out split


def heldout_split(version: str) -> LongTextSet | None:
    """The held-out split of the version folder ``version`` (None when it has none)."""
    fs, root = fsspec.core.url_to_fs(version)
    return load_beir(f"{version.rstrip('/')}/{HELDOUT}") if fs.isdir(f"{root}/{HELDOUT}") else None


def run_gate(
    gate: GateConfig,
    version: str,
    instructions: dict[str, str],
    parent: str | None,
    scratch: Path,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The gate record of the version folder ``version`` (being written: read without a manifest, with the
    export's query ``instructions``) against the published ``parent`` folder. ``scratch`` holds the two trained
    students (replaced on every run). Never raises for a training or evaluation failure: it is the record's
    ``error``, with ``promoted`` false."""
    started = time.perf_counter()
    record: dict[str, Any] = {
        "student": gate.train.student,
        "seed": gate.train.seed,
        "metric": gate.metric,
        "tolerance": gate.tolerance,
        "against": "parent" if parent else UNTRAINED,
    }
    try:
        record.update(compare(gate, read_folder(version, instructions, gate.train.num_negatives, TrainData()),
                              read_versions([parent], gate.train.num_negatives) if parent else None,
                              scratch, log, heldout_split(version)))  # fmt: skip
    except Exception as exc:  # a failed gate is recorded, never a lost version
        record.update(promoted=False, error=f"{type(exc).__name__}: {exc}")
        if log:  # the traceback goes to the run's log; the manifest keeps the one line
            log(f"gate failed, version kept unpromoted:\n{traceback.format_exc(limit=3)[-2000:]}")
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def compare(
    gate: GateConfig,
    new: TrainData,
    parent: TrainData | None,
    scratch: Path,
    log: Callable[[str], None] | None = None,
    heldout: LongTextSet | None = None,
) -> dict[str, Any]:
    """Train on ``new`` and on ``parent`` (None: the untrained student) with ``gate.train``, evaluate both on the
    ``heldout`` split (when given) and ``gate.eval``, and decide: promoted when the new score (the mean over the
    eval sets) is at least the parent's minus ``gate.tolerance``."""
    from pairforge.train.run import train_student
    from pairforge.train.students import build_student

    sets = {HELDOUT: heldout} if heldout is not None and heldout.queries else {}
    sets.update({file: load_eval(gate, file) for file in gate.eval})
    if not sets:
        raise ValueError("nothing to evaluate on: the version has no held-out queries (mine.heldout_share) and "
                         "gate.eval names no file")  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    trained = train_student(new, gate.train, str(scratch / "version"), log=log)
    parent_model: Any
    parent_rows: dict[str, int]
    if parent is None:  # a first version is compared with the untrained student
        parent_model, parent_steps, parent_rows = build_student(gate.train), 0, {}
    else:
        baseline = train_student(parent, gate.train, str(scratch / "parent"), log=log)
        parent_model, parent_steps, parent_rows = baseline.model_path, baseline.steps, baseline.datasets
    blocks: dict[str, dict[str, Any]] = {
        file: {"queries": len(data.queries), "long_queries": sum(data.long), "passages": len(data.passages),
               "bm25": recall_block(bm25_top_k(data.passages, data.queries, max(KS)), data),
               "version": score_model(trained.model_path, data), "parent": score_model(parent_model, data)}
        for file, data in sets.items()
    }  # fmt: skip
    score = _mean(block["version"][gate.metric] for block in blocks.values())
    parent_score = _mean(block["parent"][gate.metric] for block in blocks.values())
    return {
        "steps": {"version": trained.steps, "parent": parent_steps},
        "rows": {"version": trained.datasets, "parent": parent_rows},
        "score": score,
        "parent_score": parent_score,
        "promoted": score >= parent_score - gate.tolerance,
        "eval": blocks,
        "error": None,
    }


def load_eval(gate: GateConfig, file: str) -> LongTextSet:
    """One eval file's queries and corpus under the gate's protocol; an error if no question qualifies."""
    data = select_longtext(
        Path(file), long_chars=gate.long_chars, short_per_long=gate.short_per_long, seed=gate.train.seed,
        t2s=gate.t2s,
    )  # fmt: skip
    if not data.queries:
        raise ValueError(f"{file}: no question qualifies (no answer at or past char {gate.long_chars})")
    return data


def score_model(model: Any, data: LongTextSet) -> dict[str, Any]:
    """The model's recall block on one eval set."""
    return recall_block(model_top_k(model, data.passages, data.queries, max(KS)), data)


def _mean(values: Any) -> float:
    items = list(values)
    return round(sum(items) / len(items), 4)
