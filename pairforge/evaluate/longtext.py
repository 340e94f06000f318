"""The stella authors' long-text retrieval protocol on a SQuAD-style file (CMRC 2018).

Queries: every question whose answer starts at or past character ``long_chars`` of a passage longer than
``long_chars`` (so no annotated answer lies in the passage's first ``long_chars`` characters), plus questions of
short passages (at most ``long_chars``), ``short_per_long`` of them per long query, drawn with ``seed``. The
corpus is every passage. Offsets are the file's ``answer_start``; one that does not point at its answer text
is moved to the nearest occurrence of that text, and an answer not in the passage at all is ignored (a long
passage's question with no answer left is not a query). Reported: recall@1/5/10 of the gold passage for BM25
and, with a model, for the model, overall and for the long and short queries apart.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pairforge.corpora.squad import read_squad_paragraphs
from pairforge.records import Rejected
from pairforge.text import normalize_text

KS = (1, 5, 10)


@dataclass
class LongTextSet:
    """Distinct passages, the chosen queries with their gold passage, and which queries are long ones."""

    passages: list[str]
    queries: list[str]
    gold: list[int]
    long: list[bool]
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class LongTextReport:
    """Recall blocks ``{recall_at_1, recall_at_5, recall_at_10, long: {...}, short: {...}}``; ``model`` is empty
    without a model."""

    queries: int
    long_queries: int
    passages: int
    bm25: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select_longtext(
    squad_file: Path, *, long_chars: int = 512, short_per_long: float = 2.0, seed: int = 0, t2s: bool = False
) -> LongTextSet:
    """The protocol's queries and corpus from ``squad_file``; texts normalised (``t2s``: to simplified)."""
    data = LongTextSet([], [], [], [])
    position: dict[str, int] = {}
    short: list[tuple[str, int]] = []
    for context, questions in _paragraphs(squad_file):
        text = normalize_text(context, t2s=t2s)
        if not text:
            continue
        gold = position.setdefault(text, len(position))
        if gold == len(data.passages):
            data.passages.append(text)
        for question, starts in questions:
            query = normalize_text(question, t2s=t2s)
            if not query:
                _count(data.skipped, "empty_question")
            elif len(context) <= long_chars:
                short.append((query, gold))
            elif not starts:
                _count(data.skipped, "answer_not_in_passage")
            elif min(starts) >= long_chars:
                data.queries.append(query)
                data.gold.append(gold)
                data.long.append(True)
            else:
                _count(data.skipped, "answer_in_first_chars")
    n_short = min(len(short), round(short_per_long * len(data.queries)))
    for query, gold in random.Random(seed).sample(short, n_short):
        data.queries.append(query)
        data.gold.append(gold)
        data.long.append(False)
    return data


def evaluate_longtext(
    squad_file: Path,
    *,
    model: Any = None,
    long_chars: int = 512,
    short_per_long: float = 2.0,
    seed: int = 0,
    t2s: bool = False,
) -> LongTextReport:
    """Recall@1/5/10 under the protocol for BM25 and, when ``model`` (a sentence-transformers path or model) is
    given, for the model; queries get the model's ``query`` prompt when it has one (``pairforge train`` saves it)."""
    started = time.perf_counter()
    data = select_longtext(squad_file, long_chars=long_chars, short_per_long=short_per_long, seed=seed, t2s=t2s)
    if not data.queries:
        raise ValueError(f"{squad_file}: no question qualifies (no answer at or past char {long_chars})")
    k = max(KS)
    report = LongTextReport(
        queries=len(data.queries),
        long_queries=sum(data.long),
        passages=len(data.passages),
        bm25=recall_block(bm25_top_k(data.passages, data.queries, k), data),
        skipped=data.skipped,
    )
    if model is not None:
        report.model = recall_block(model_top_k(model, data.passages, data.queries, k), data)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def bm25_top_k(passages: list[str], queries: list[str], k: int) -> list[list[int]]:
    """BM25 (jieba terms) top-``k`` passage indices per query; passages sharing no term are not retrieved."""
    import tempfile

    from pairforge.negatives.bm25 import build_bm25_index

    with tempfile.TemporaryDirectory(prefix="pairforge-longtext-") as tmp:
        index = build_bm25_index([([str(i) for i in range(len(passages))], passages)], Path(tmp) / "bm25",
                                 analyzer="jieba", workers=1)  # fmt: skip
        top, scores = index.search(queries, k)
    return [
        [int(i) for i, s in zip(row, row_scores, strict=True) if i >= 0 and s > 0]
        for row, row_scores in zip(top, scores, strict=True)
    ]


def model_top_k(model: Any, passages: list[str], queries: list[str], k: int) -> list[list[int]]:
    """Cosine top-``k`` passage indices per query for a sentence-transformers model (or its path)."""
    if isinstance(model, str | Path):
        from sentence_transformers import SentenceTransformer

        if not Path(model).is_dir():
            raise FileNotFoundError(f"{model}: no such model folder")
        model = SentenceTransformer(str(model))
    docs = model.encode_document(passages, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    q = model.encode_query(queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    scores = q @ docs.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[int(i) for i in row] for row in top]


def recall_block(top: list[list[int]], data: LongTextSet) -> dict[str, Any]:
    """``recall_at_k`` over all queries, and the same for the long and the short ones apart."""

    def recall(picked: list[int]) -> dict[str, float]:
        hits = [[data.gold[i] in top[i][:k] for i in picked] for k in KS]
        return {f"recall_at_{k}": round(float(np.mean(h)), 4) if h else 0.0 for k, h in zip(KS, hits, strict=True)}

    every = list(range(len(data.queries)))
    return {
        **recall(every),
        "long": recall([i for i in every if data.long[i]]),
        "short": recall([i for i in every if not data.long[i]]),
    }


def _paragraphs(squad_file: Path) -> list[tuple[str, list[tuple[str, list[int]]]]]:
    """(context, [(question, answer starts)]) per paragraph, starts located as the module docstring says; a file
    the SQuAD reader cannot read whole is an error naming it and the article."""
    out = []
    for item in read_squad_paragraphs(str(squad_file)):
        if isinstance(item, Rejected):
            raise ValueError(f"{item.where()}: {item.reason} {item.detail}".strip())
        questions = []
        for qa in item.questions:
            starts = [_locate(item.context, text, start) for text, start in qa.answers]
            questions.append((qa.question, [s for s in starts if s is not None]))
        out.append((item.context, questions))
    return out


def _locate(context: str, text: str, start: int | None) -> int | None:
    """The answer's start: ``start`` when the text is there, else the nearest occurrence, else None."""
    if not text:
        return None
    if start is not None and context[start : start + len(text)] == text:
        return start
    found, at = [], context.find(text)
    while at >= 0:
        found.append(at)
        at = context.find(text, at + 1)
    anchor = start if start is not None else 0
    return min(found, key=lambda i: abs(i - anchor)) if found else None


def _count(counts: dict[str, int], reason: str) -> None:
    counts[reason] = counts.get(reason, 0) + 1
