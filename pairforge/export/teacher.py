"""Teacher scores for FlagEmbedding's knowledge distillation (``export.teacher``), opt-in: every positive and
negative of an example scored against its query by a real model, written as ``pos_scores`` / ``neg_scores``.

FlagEmbedding softmaxes a row's scores as they are (no temperature) into the teacher distribution, and the
student's own scores are its similarities divided by ``--temperature`` (0.02 by default). So a cross-encoder
gives its raw logits (as the bge rerankers FlagEmbedding distils from), and an embedding model its cosine
divided by ``export.teacher_temperature`` (0.02), on the student's scale. Without a teacher no score field is
written at all: the mined BM25 scores softmaxed would be an almost one-hot teacher that only repeats BM25, and
FlagEmbedding's ``--knowledge_distillation`` then stops with "`pos_scores` and `neg_scores` not found" instead of
training on them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pairforge.config import ExportConfig

Scores = tuple[list[float], list[float]]  # (pos_scores, neg_scores) of one example


def teacher_kind(folder: str) -> str:
    """``cross-encoder`` or ``embedding`` for a model folder: sentence-transformers' saved ``model_type`` first,
    else an embedding model when it has ``modules.json``, else a cross-encoder when its transformers architecture
    is a ``*ForSequenceClassification`` (a bge reranker), else an embedding model."""
    path = Path(folder)
    saved = path / "config_sentence_transformers.json"
    if saved.is_file() and json.loads(saved.read_text(encoding="utf-8")).get("model_type") == "CrossEncoder":
        return "cross-encoder"
    if (path / "modules.json").is_file():
        return "embedding"
    config = path / "config.json"
    architectures: list[str] = []
    if config.is_file():
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    return "cross-encoder" if any(a.endswith("ForSequenceClassification") for a in architectures) else "embedding"


class Teacher:
    """A loaded teacher model that scores examples (``{query, pos, neg}``) in batches."""

    def __init__(self, folder: str, kind: str, temperature: float, batch_size: int) -> None:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"export.teacher: no model folder {folder} (models are never downloaded)")
        self.kind = teacher_kind(folder) if kind == "auto" else kind
        self.temperature, self.batch_size = temperature, batch_size
        if self.kind == "cross-encoder":
            from sentence_transformers import CrossEncoder

            self.model: Any = CrossEncoder(folder)
        else:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(folder)

    def score(self, examples: Sequence[dict[str, Any]]) -> list[Scores]:
        """Each example's (pos_scores, neg_scores), in the order of its ``pos`` and ``neg``."""
        pairs = [(e["query"], text) for e in examples for text in [*e["pos"], *e["neg"]]]
        flat = self._cross(pairs) if self.kind == "cross-encoder" else self._embedding(pairs)
        out, at = [], 0
        for e in examples:
            n_pos, n_neg = len(e["pos"]), len(e["neg"])
            out.append((flat[at : at + n_pos], flat[at + n_pos : at + n_pos + n_neg]))
            at += n_pos + n_neg
        return out

    def _cross(self, pairs: list[tuple[str, str]]) -> list[float]:
        import torch

        if not pairs:
            return []
        logits = self.model.predict(pairs, batch_size=self.batch_size, activation_fn=torch.nn.Identity(),
                                    show_progress_bar=False, convert_to_numpy=True)  # fmt: skip
        if logits.ndim > 1:  # a multi-label head: the last label is "relevant"
            logits = logits[:, -1]
        return [float(x) for x in logits]

    def _embedding(self, pairs: list[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        queries = sorted({q for q, _ in pairs})
        texts = sorted({t for _, t in pairs})
        encode = {"batch_size": self.batch_size, "normalize_embeddings": True, "show_progress_bar": False}
        q = dict(zip(queries, self.model.encode_query(queries, **encode), strict=True))
        t = dict(zip(texts, self.model.encode_document(texts, **encode), strict=True))
        return [float(q[a] @ t[b]) / self.temperature for a, b in pairs]


@lru_cache(maxsize=1)
def _load(folder: str, kind: str, temperature: float, batch_size: int) -> Teacher:
    return Teacher(folder, kind, temperature, batch_size)


def load_teacher(config: ExportConfig) -> Teacher | None:
    """The configured teacher (loaded once per process and setting, so every segment of a version shares it), or
    None when ``export.teacher`` is unset."""
    if not config.teacher:
        return None
    return _load(config.teacher, config.teacher_kind, config.teacher_temperature, config.teacher_batch_size)
