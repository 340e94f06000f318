"""Evaluation on a SQuAD-style file (CMRC 2018): every paragraph is in the pool, every question a query.

``evaluate_retrieval``: recall@1/5/10 of the gold paragraph (BM25, and dense when a model is configured).
``evaluate_negatives``: mine negatives for the questions with the configured policy and count the likely
false negatives among them: the gold paragraph itself, a near-duplicate of it, or one containing a gold answer.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pairforge.config import MineConfig, RunConfig, SquadCorpus
from pairforge.corpora import read_shard
from pairforge.dedup.minhash import char_shingles
from pairforge.negatives.index import index_passages
from pairforge.negatives.mine import mine_candidates
from pairforge.negatives.select import select_examples
from pairforge.pool import Pool
from pairforge.records import Document, HumanPair
from pairforge.text import normalize_text
from pairforge.workdir import Workdir


@dataclass
class SquadSet:
    """Distinct paragraphs and the questions on them (gold paragraph index, answer strings)."""

    passages: list[str]
    questions: list[str]
    gold: list[int]
    answers: list[list[str]]


@dataclass
class RetrievalReport:
    """Recall@k of the gold paragraph for the file's human questions (``dense`` when a model is set)."""

    queries: int
    passages: int
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    seconds: float
    dense: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NegativesReport:
    """How many mined negatives are likely false negatives."""

    queries: int
    passages: int
    negatives: int
    gold_as_negative: int
    near_dup_as_negative: int
    answer_in_negative: int
    shortfall: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_squad(squad_file: Path, *, t2s: bool = False) -> SquadSet:
    """Read and normalise a SQuAD-style file; identical paragraphs count once."""
    data = SquadSet([], [], [], [])
    position: dict[str, int] = {}
    for record in read_shard(str(squad_file), SquadCorpus(format="squad", path=str(squad_file))):
        if isinstance(record, Document):
            text = normalize_text(record.text, t2s=t2s)
            if text and text not in position:
                position[text] = len(data.passages)
                data.passages.append(text)
        elif isinstance(record, HumanPair):
            question, context = normalize_text(record.text1, t2s=t2s), normalize_text(record.text2, t2s=t2s)
            if question and context in position:
                data.questions.append(question)
                data.gold.append(position[context])
                data.answers.append([normalize_text(a, t2s=t2s) for a in record.answers if a.strip()])
    return data


def evaluate_retrieval(squad_file: Path, *, t2s: bool = False, config: MineConfig | None = None) -> RetrievalReport:
    """Recall@1/5/10 of BM25 (``config.analyzer``), and of the dense model when ``config.dense_model`` is set."""
    started = time.perf_counter()
    config = config or MineConfig()
    data = load_squad(squad_file, t2s=t2s)
    recalls = {}
    for retriever in ("bm25", "dense") if config.dense_model else ("bm25",):
        policy = config.model_copy(update={"retriever": retriever, "range_max": 10})
        with _indexed(data, policy) as (pool, run, workdir):
            rows = mine_candidates(_pairs(data), pool, run, workdir)
        ranks = np.array([_rank(row[f"{retriever}_ids"], str(g)) for row, g in zip(rows, data.gold, strict=True)])
        recalls[retriever] = {f"recall_at_{k}": round(float((ranks < k).mean()), 4) for k in (1, 5, 10)}
    return RetrievalReport(
        queries=len(data.questions),
        passages=len(data.passages),
        **recalls["bm25"],
        seconds=round(time.perf_counter() - started, 3),
        dense=recalls.get("dense", {}),
    )


def evaluate_negatives(squad_file: Path, *, t2s: bool = False, config: MineConfig | None = None) -> NegativesReport:
    """Mine and select negatives for every question; count gold, near-duplicate and answer-containing ones.

    A near-duplicate here is exact: Jaccard of character 5-grams >= ``near_duplicate_threshold`` (the guard
    itself uses MinHash estimates, so this checks it independently)."""
    started = time.perf_counter()
    config = config or MineConfig()
    data = load_squad(squad_file, t2s=t2s)
    with _indexed(data, config) as (pool, run, workdir):
        candidates = mine_candidates(_pairs(data), pool, run, workdir)
        examples, summary = select_examples(candidates, pool, config, _no_repeats())
    gold = near = answer = 0
    for example, g, answers in zip(examples, data.gold, data.answers, strict=True):
        gold_grams = set(char_shingles(data.passages[g], 5))
        for pid in example["negative_ids"]:
            text = data.passages[int(pid)]
            gold += int(pid) == g
            near += _jaccard(set(char_shingles(text, 5)), gold_grams) >= config.near_duplicate_threshold
            answer += any(a in text for a in answers)
    return NegativesReport(
        queries=len(data.questions),
        passages=len(data.passages),
        negatives=summary["negatives"],
        gold_as_negative=gold,
        near_dup_as_negative=near,
        answer_in_negative=answer,
        shortfall=summary["shortfall"],
        seconds=round(time.perf_counter() - started, 3),
    )


@contextmanager
def _indexed(data: SquadSet, mine: MineConfig) -> Iterator[tuple[Pool, RunConfig, Workdir]]:
    """The file's paragraphs as a pool with its indexes, in a temporary workdir."""
    with tempfile.TemporaryDirectory(prefix="pairforge-eval-") as tmp:
        run = RunConfig.model_validate({"workdir": tmp, "corpora": [{"format": "squad", "path": tmp}]})
        run = run.model_copy(update={"mine": mine})
        workdir = Workdir(tmp)
        yield index_passages(run, _ids(data), data.passages, workdir), run, workdir


def _no_repeats() -> pa.Table:
    """Every question of a SQuAD file is its own query row: nothing repeats beyond the rows themselves."""
    return pa.table({"query": pa.array([], pa.string()), "positive_id": pa.array([], pa.string()),
                     "positive": pa.array([], pa.string())})  # fmt: skip


def _rank(ids: list[str], gold: str) -> int:
    """The gold passage's rank among the retrieved ids (a large number when not retrieved)."""
    return ids.index(gold) if gold in ids else 1 << 30


def _ids(data: SquadSet) -> list[str]:
    return [str(i) for i in range(len(data.passages))]


def _pairs(data: SquadSet) -> list[dict[str, Any]]:
    return [
        {
            "pair_id": f"q{i}",
            "kind": "qp",
            "query": q,
            "positive_id": str(g),
            "positive": data.passages[g],
            "answers": a,
        }
        for i, (q, g, a) in enumerate(zip(data.questions, data.gold, data.answers, strict=True))
    ]


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
