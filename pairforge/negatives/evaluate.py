"""Retrieval evaluation on a SQuAD-style file: every paragraph is in the pool, every question a query."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pairforge.config import SquadCorpus
from pairforge.corpora import read_shard
from pairforge.negatives.bm25 import BM25Index, tokenize
from pairforge.records import Document, HumanPair
from pairforge.text import normalize_text


@dataclass
class RetrievalReport:
    """BM25 recall@k of the gold paragraph for the file's human questions."""

    queries: int
    passages: int
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_retrieval(squad_file: Path, *, t2s: bool = False) -> RetrievalReport:
    """Index every paragraph of ``squad_file`` with BM25 and query it with every question."""
    started = time.perf_counter()
    passages: list[str] = []
    position: dict[str, int] = {}
    questions: list[tuple[str, str]] = []
    for record in read_shard(str(squad_file), SquadCorpus(format="squad", path=str(squad_file))):
        if isinstance(record, Document):
            position.setdefault(record.text, len(passages))
            if position[record.text] == len(passages):
                passages.append(record.text)
        elif isinstance(record, HumanPair):
            questions.append((record.text1, record.text2))
    questions = [(q, c) for q, c in questions if q.strip()]
    norm_passages = [normalize_text(p, t2s=t2s) for p in passages]
    index = BM25Index(tokenize(norm_passages))
    top, _ = index.search(tokenize([normalize_text(q, t2s=t2s) for q, _ in questions]), 10)
    gold = np.array([position[c] for _, c in questions])
    hits = top == gold[:, None]
    return RetrievalReport(
        queries=len(questions),
        passages=len(passages),
        recall_at_1=round(float(hits[:, :1].any(axis=1).mean()), 4),
        recall_at_5=round(float(hits[:, :5].any(axis=1).mean()), 4),
        recall_at_10=round(float(hits[:, :10].any(axis=1).mean()), 4),
        seconds=round(time.perf_counter() - started, 3),
    )
