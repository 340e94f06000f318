"""``pairforge train``: train a student on published versions with sentence-transformers, the stella way: one
dataset per kind, batched in turn (proportionally or round robin), each kind with its own loss
(MultipleNegativesRankingLoss with the mined hard negatives under ``NO_DUPLICATES``, CoSENTLoss on scored
pairs), optional EWC, each kind's query instruction as its anchor prompt (off by default for the static
student, see ``TrainConfig.query_prompts``)."""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from pairforge.config_train import TrainConfig
from pairforge.train.datasets import SCORED, TrainData, read_versions
from pairforge.train.ewc import ElasticWeightConsolidation, estimate_fisher
from pairforge.train.losses import RecordedLoss, build_losses
from pairforge.train.students import build_student

SUMMARY = "train.json"


@dataclass
class TrainSummary:
    """What one run trained; ``--json`` prints this. ``losses`` is per kind ``{loss, calls, first, last, mean}``."""

    model_path: str
    steps: int
    seconds: float
    datasets: dict[str, int]
    losses: dict[str, dict[str, Any]]
    student: str = ""
    versions: list[str] = field(default_factory=list)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    ewc: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_train(
    versions: Sequence[str], config: TrainConfig, out: str | None = None, log: Callable[[str], None] | None = None
) -> TrainSummary:
    """Train ``config.student`` on the versions at ``versions`` (folders, or ``STORE/NAME/latest``) and save it
    to ``out`` (default ``train/<dataset>-v<N>-<student>-seed<S>``), which must not exist yet."""
    data = read_versions(versions, config.num_negatives).only(config.kinds)
    return train_student(data, config, out or default_out(data.sources, config), log=log)


def train_student(
    data: TrainData, config: TrainConfig, out: str, log: Callable[[str], None] | None = None
) -> TrainSummary:
    """Train on per-kind rows already read (versions, human pairs, or both) and save the model to ``out``: written
    aside, renamed when complete, so a crash never leaves a half-saved model under that name."""
    import torch
    from datasets import Dataset, DatasetDict
    from sentence_transformers import SentenceTransformerTrainer

    target = Path(out)
    if target.exists():
        raise ValueError(f"{target}: already exists (a trained model is never overwritten; pass another --out)")
    counts = {kind: n for kind, n in data.counts().items() if n}
    if not counts:
        raise ValueError(f"nothing to train on in {data.sources or 'the data given'} (left out: {data.dropped})")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    prompts = data.prompts if config.uses_prompts() else {}
    model = build_student(config, device)
    ewc = _build_ewc(model, data, config, prompts) if config.ewc_lambda > 0 else None
    losses: dict[str, nn.Module] = dict(build_losses(model, counts, ewc))
    train = DatasetDict({kind: Dataset.from_dict(data.rows[kind]) for kind in counts})
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    # The Hub widget's examples are computed (on the trainer's creation) behind a tqdm bar that leaks onto the
    # console; the saved card needs none.
    model.model_card_data.set_widget_examples = lambda dataset: None
    trainer = SentenceTransformerTrainer(
        model=model, args=_arguments(config, prompts, counts, partial, device), train_dataset=train, loss=losses
    )
    _quiet(trainer, log)
    started = time.perf_counter()
    trainer.train()
    seconds = round(time.perf_counter() - started, 3)
    _save(model, _saved_prompts(prompts, counts), partial)
    summary = TrainSummary(
        model_path=str(target),
        steps=int(trainer.state.global_step),
        seconds=seconds,
        datasets=counts,
        losses={kind: loss.summary() for kind, loss in losses.items() if isinstance(loss, RecordedLoss)},
        student=config.student,
        versions=list(data.sources),
        dropped=data.dropped,
        settings=_settings(config),
        ewc={"lambda": config.ewc_lambda, "samples": config.ewc_samples, "last_penalty": ewc.last} if ewc else None,
    )
    (partial / SUMMARY).write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    partial.rename(target)
    return summary


def _save(model: Any, prompts: dict[str, str], partial: Path) -> None:
    """The model with its prompts, into the (emptied) scratch folder the trainer had: nothing is checkpointed."""
    model.prompts = {**model.prompts, **prompts}
    shutil.rmtree(partial, ignore_errors=True)
    model.save(str(partial))


def default_out(sources: Sequence[str], config: TrainConfig) -> str:
    """``train/<dataset>-v<N>[+...]-<student>-seed<S>`` under the current folder."""
    names = "+".join(f"{Path(s).parent.name}-{Path(s).name}" for s in sources) or "data"
    student = config.student if config.student in ("static",) else Path(config.student.replace(":", "-")).name
    return str(Path("train") / f"{names}-{student}-seed{config.seed}")


def _arguments(config: TrainConfig, prompts: dict[str, str], counts: dict[str, int], output: Path, device: str) -> Any:
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    anchors = {kind: {"anchor": prompts[kind]} for kind in counts if kind != SCORED and prompts.get(kind)}
    return SentenceTransformerTrainingArguments(
        output_dir=str(output),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.resolved_batch_size(),
        learning_rate=config.resolved_learning_rate(),
        seed=config.seed,
        # rows sharing a positive would be each other's false in-batch negatives
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers(config.sampler),
        prompts=anchors or None,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
    )


def _build_ewc(
    model: Any, data: TrainData, config: TrainConfig, prompts: dict[str, str]
) -> ElasticWeightConsolidation:
    """The EWC penalty, its Fisher estimated on ``ewc_samples`` seeded (anchor, positive) pairs of the reference
    versions, or of the training data's MNRL kinds."""
    reference = read_versions(config.ewc_reference, 0) if config.ewc_reference else data
    pairs = [
        (anchor, positive)
        for kind, columns in sorted(reference.rows.items())
        if kind != SCORED
        for anchor, positive in zip(columns["anchor"], columns["positive"], strict=True)
    ]
    if len(pairs) < 2:
        raise ValueError("EWC needs at least 2 (anchor, positive) reference pairs; the reference has none")
    pairs = random.Random(config.seed).sample(pairs, min(config.ewc_samples, len(pairs)))
    prompt = _saved_prompts(prompts, reference.counts()).get("query")
    fisher = estimate_fisher(model, pairs, config.resolved_batch_size(), prompt)
    return ElasticWeightConsolidation(model, fisher, config.ewc_lambda)


def _saved_prompts(prompts: dict[str, str], counts: dict[str, int]) -> dict[str, str]:
    """The prompts saved with the model: each trained kind's, and ``query`` (what ``encode_query`` and
    ``pairforge eval`` use) as the question kind's (``qp``, else the first kind with one)."""
    trained = {kind: prompts[kind] for kind in counts if prompts.get(kind)}
    query = trained.get("qp") or next(iter(trained.values()), None)
    return {**trained, **({"query": query} if query else {})}


def _settings(config: TrainConfig) -> dict[str, Any]:
    values = config.model_dump(mode="json")
    values.update(
        batch_size=config.resolved_batch_size(),
        learning_rate=config.resolved_learning_rate(),
        query_prompts=config.uses_prompts(),
    )
    return values


def _quiet(trainer: Any, log: Callable[[str], None] | None) -> None:
    """No printing from the trainer (stdout belongs to ``--json``); progress every tenth of the run to ``log``."""
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    say = log or (lambda line: print(line, file=sys.stderr))

    class Progress(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            every = max(1, state.max_steps // 10)
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                say(f"train: step {state.global_step}/{state.max_steps}")

    trainer.add_callback(Progress())
