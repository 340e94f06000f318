"""Teacher scores (``export.teacher``): which kind a model folder is, and an embedding teacher's scores are its
cosines over the temperature, in each example's pos/neg order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pairforge.config import ExportConfig
from pairforge.export.teacher import load_teacher, teacher_kind

EXAMPLES = [
    {"query": "长江有多长？", "pos": ["长江全长约6300公里。"], "neg": ["黄河是第二长河。", "北京是首都。"]},
    {"query": "大熊猫吃什么", "pos": ["大熊猫主要吃竹子。"], "neg": ["茶起源于中国。"]},
]


@pytest.fixture(scope="module")
def embedding_teacher(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved sentence-transformers model (a static embedding over the tiny tokenizer) as the teacher."""
    from pairforge.train.students import static_student

    folder = tmp_path_factory.mktemp("teacher")
    static_student(str(tiny_model_dir), 16).save(str(folder))
    return folder


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        ({"config_sentence_transformers.json": {"model_type": "CrossEncoder"}}, "cross-encoder"),
        ({"modules.json": [], "config.json": {"architectures": ["BertForSequenceClassification"]}}, "embedding"),
        ({"config.json": {"architectures": ["XLMRobertaForSequenceClassification"]}}, "cross-encoder"),
        ({"config.json": {"architectures": ["BertModel"]}}, "embedding"),
        ({}, "embedding"),
    ],
)
def test_teacher_kind_from_the_folder(tmp_path: Path, files: dict, kind: str) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content), encoding="utf-8")
    assert teacher_kind(str(tmp_path)) == kind


def test_no_teacher_is_none_and_a_missing_folder_an_error(tmp_path: Path) -> None:
    assert load_teacher(ExportConfig()) is None
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_teacher(ExportConfig(teacher=str(tmp_path / "absent")))


def test_embedding_teacher_scores_are_cosines_over_the_temperature(embedding_teacher: Path) -> None:
    from sentence_transformers import SentenceTransformer

    teacher = load_teacher(ExportConfig(teacher=str(embedding_teacher), teacher_temperature=0.05))
    assert teacher is not None and teacher.kind == "embedding"
    scores = teacher.score(EXAMPLES)
    model = SentenceTransformer(str(embedding_teacher))
    for example, (pos, neg) in zip(EXAMPLES, scores, strict=True):
        assert len(pos) == len(example["pos"]) and len(neg) == len(example["neg"])
        q = model.encode([example["query"]], normalize_embeddings=True)[0]
        texts = model.encode([*example["pos"], *example["neg"]], normalize_embeddings=True)
        np.testing.assert_allclose([*pos, *neg], texts @ q / 0.05, rtol=1e-4, atol=1e-4)
    assert len({round(s, 6) for p, n in scores for s in [*p, *n]}) > 1  # not one constant
