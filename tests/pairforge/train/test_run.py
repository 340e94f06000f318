"""Multi-dataset training for real (sentence-transformers' trainer, a tiny static student): one dataset per
kind, each batch from one kind, each kind's own loss called on its batches; EWC holds the weights back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from pairforge.train import TrainConfig, run_train
from pairforge.train.datasets import read_versions


def batches(rows: int, batch: int) -> int:
    return math.ceil(rows / batch)


def test_each_kind_is_its_own_dataset_with_its_own_loss(version: Path, static_config: TrainConfig, tmp_path) -> None:
    summary = run_train([str(version)], static_config, str(tmp_path / "model"), log=lambda _: None)
    data = read_versions([str(version)], static_config.num_negatives)
    assert summary.datasets == data.counts() and set(summary.datasets) == {"qp", "sp", "human", "scored"}
    names = {kind: s["loss"] for kind, s in summary.losses.items()}
    assert names == {
        "qp": "MultipleNegativesRankingLoss",
        "sp": "MultipleNegativesRankingLoss",
        "human": "MultipleNegativesRankingLoss",
        "scored": "CoSENTLoss",
    }
    # proportional, one epoch: every batch of every kind was seen once, by that kind's loss and no other
    for kind, rows in summary.datasets.items():
        assert summary.losses[kind]["calls"] == batches(rows, 4), kind
        assert all(math.isfinite(summary.losses[kind][k]) for k in ("first", "last", "mean"))
    assert summary.steps == sum(batches(n, 4) for n in summary.datasets.values())


def test_round_robin_gives_each_kind_equal_turns(version: Path, static_config: TrainConfig, tmp_path) -> None:
    config = static_config.model_copy(update={"sampler": "round_robin"})
    summary = run_train([str(version)], config, str(tmp_path / "model"), log=lambda _: None)
    turns = min(batches(n, 4) for n in summary.datasets.values())  # until the smallest dataset runs out
    assert {s["calls"] for s in summary.losses.values()} == {turns}
    assert summary.steps == turns * len(summary.datasets)


def test_the_saved_model_loads_with_its_prompts_and_moved(version: Path, static_config: TrainConfig, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer

    from pairforge.train.students import build_student

    out = tmp_path / "model"
    config = static_config.model_copy(update={"max_steps": 5, "kinds": ["qp", "scored"], "query_prompts": True})
    summary = run_train([str(version)], config, str(out), log=lambda _: None)
    assert summary.steps == 5 and set(summary.datasets) == {"qp", "scored"}
    model = SentenceTransformer(str(out), device="cpu")
    instruction = read_versions([str(version)], 1).prompts["qp"]
    assert model.prompts["query"] == instruction == model.prompts["qp"]  # eval longtext's queries get it
    start = next(build_student(config, "cpu").parameters())
    assert not torch.equal(next(model.parameters()), start)  # trained: the seeded start moved
    recorded = json.loads((out / "train.json").read_text(encoding="utf-8"))
    assert recorded["steps"] == 5 and recorded["versions"] == [str(version)]
    assert not list(tmp_path.glob(".*partial"))


def test_the_static_student_skips_instructions_by_default(version: Path, static_config: TrainConfig, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer

    config = static_config.model_copy(update={"max_steps": 2, "kinds": ["qp"]})
    summary = run_train([str(version)], config, str(tmp_path / "model"), log=lambda _: None)
    assert summary.settings["query_prompts"] is False
    model = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    assert not model.prompts.get("query") and not model.prompts.get("qp")


def test_an_existing_output_is_never_overwritten(version: Path, static_config: TrainConfig, tmp_path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists"):
        run_train([str(version)], static_config, str(tmp_path / "model"), log=lambda _: None)
    assert (tmp_path / "model" / "keep.txt").read_text() == "mine"


def test_ewc_holds_the_weights_near_the_start(version: Path, static_config: TrainConfig, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer

    from pairforge.train.students import build_student

    base = tmp_path / "base"
    build_student(static_config, "cpu").save(str(base))  # a "trained" start to protect
    start = next(SentenceTransformer(str(base), device="cpu").parameters()).detach()
    moved = {}
    for strength in (0.0, 1e4):
        config = static_config.model_copy(
            update={"student": str(base), "ewc_lambda": strength, "max_steps": 8, "learning_rate": 0.05}
        )
        out = tmp_path / f"ewc-{strength}"
        summary = run_train([str(version)], config, str(out), log=lambda _: None)
        weights = next(SentenceTransformer(str(out), device="cpu").parameters()).detach()
        moved[strength] = float(((weights - start) ** 2).sum())
        if strength:
            assert summary.ewc and summary.ewc["last_penalty"] > 0
            assert all(s["loss"].endswith("+EWC") for s in summary.losses.values())
    assert 0 < moved[1e4] < moved[0.0] / 2


def test_training_prints_no_progress_bar_of_its_own(
    version: Path, static_config: TrainConfig, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run_train([str(version)], static_config, str(tmp_path / "model"), log=lambda _: None)
    out, err = capfd.readouterr()
    assert "Computing widget examples" not in out + err  # sentence-transformers' model-card tqdm bar
