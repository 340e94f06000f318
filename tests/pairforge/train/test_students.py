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
