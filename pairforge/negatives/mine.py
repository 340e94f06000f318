"""``pairforge mine``: BM25 (or dense) candidates for every pair, stored in full, then positive-aware
selection into training examples: ``workdir/candidates/`` and ``workdir/examples/``."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.config import MineConfig, RunConfig
from pairforge.minhash import estimate_jaccard, signatures
from pairforge.negatives.bm25 import BM25Index, tokenize
from pairforge.negatives.select import SelectionStats, select_negatives


@dataclass
class MineSummary:
    """Counts from one mine run; ``--json`` prints this."""

    queries: int = 0
    with_full_negatives: int = 0
    shortfall: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    positive_score_mean: float = 0.0
    negative_score_mean: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mine_candidates(
    queries: list[str], positive_ids: list[str], pool_ids: list[str], pool_texts: list[str], config: MineConfig
) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    """Top ``range_max`` pool indices and scores per query, and each query's score for its own positive."""
    position = {pid: i for i, pid in enumerate(pool_ids)}
    if config.retriever == "dense":
        from pairforge.negatives.dense import Embedder, top_k_dense

        if not config.dense_model:
            raise ValueError("mine.retriever is dense but mine.dense_model is not set")
        embedder = Embedder(config.dense_model)
        docs, q = embedder.encode(pool_texts), embedder.encode(queries)
        top, scores = top_k_dense(q, docs, config.range_max)
        dense_own = [float(q[i] @ docs[position[p]]) if p in position else None for i, p in enumerate(positive_ids)]
        return top, scores, dense_own
    index = BM25Index(tokenize(pool_texts))
    q_tokens = tokenize(queries)
    top, scores = index.search(q_tokens, config.range_max)
    own: list[float | None] = []
    for start in range(0, len(queries), 256):
        block = index.scores(q_tokens[start : start + 256])
        for row, pid in zip(block, positive_ids[start : start + 256], strict=True):
            own.append(float(row[position[pid]]) if pid in position else None)
    return top, scores, own


def run_mine(config: RunConfig) -> MineSummary:
    """Mine candidates for ``workdir/pairs`` against ``workdir/passages`` and select negatives."""
    started = time.perf_counter()
    workdir = Path(config.workdir)
    pairs = pq.read_table(
        sorted((workdir / "pairs").glob("*.parquet")), columns=["id", "kind", "query", "passage_id"]
    ).to_pylist()
    pool = pq.read_table(sorted((workdir / "passages").glob("*.parquet")), columns=["id", "text"])
    pool_ids, pool_texts = pool["id"].to_pylist(), pool["text"].to_pylist()
    m = config.mine
    top, scores, own = mine_candidates(
        [p["query"] for p in pairs], [p["passage_id"] for p in pairs], pool_ids, pool_texts, m
    )
    candidates = [
        {
            "pair_id": p["id"],
            "query": p["query"],
            "positive_id": p["passage_id"],
            "retriever": m.retriever,
            "ids": [pool_ids[i] for i in row],
            "scores": [float(s) for s in srow],
            "positive_score": own_score,
        }
        for p, row, srow, own_score in zip(pairs, top, scores, own, strict=True)
    ]
    (workdir / "candidates").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(candidates), workdir / "candidates" / "candidates.parquet")
    summary = select_examples(candidates, pairs, pool_ids, pool_texts, config, workdir)
    summary.seconds = round(time.perf_counter() - started, 3)
    (workdir / "mine_summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    return summary


def select_examples(
    candidates: list[dict[str, Any]],
    pairs: list[dict[str, Any]],
    pool_ids: list[str],
    pool_texts: list[str],
    config: RunConfig,
    workdir: Path,
) -> MineSummary:
    """Selection from stored candidates (no re-encoding): writes ``workdir/examples/examples.parquet``."""
    m = config.mine
    text_of = dict(zip(pool_ids, pool_texts, strict=True))
    sigs = dict(zip(pool_ids, signatures(pool_texts), strict=True))
    positives_of: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        positives_of[p["query"]].add(p["passage_id"])

    def near_duplicate(a: str, b: str) -> bool:
        return a in sigs and b in sigs and estimate_jaccard(sigs[a], sigs[b]) >= m.near_duplicate_threshold

    stats = SelectionStats()
    examples, pos_scores, neg_scores = [], [], []
    for cand, pair in zip(candidates, pairs, strict=True):
        negatives, scores = select_negatives(cand, positives_of[pair["query"]], m, near_duplicate, stats)
        examples.append(
            {
                "query": pair["query"],
                "pos": [text_of.get(pair["passage_id"], "")],
                "neg": [text_of[n] for n in negatives],
                "pos_scores": [cand["positive_score"] or 0.0],
                "neg_scores": scores,
                "kind": pair["kind"],
                "pair_id": pair["id"],
            }
        )
        pos_scores.append(cand["positive_score"] or 0.0)
        neg_scores.extend(scores)
    (workdir / "examples").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(examples), workdir / "examples" / "examples.parquet")
    return MineSummary(
        queries=stats.queries,
        with_full_negatives=stats.with_full_negatives,
        shortfall=stats.shortfall,
        skipped=dict(stats.skipped),
        positive_score_mean=round(float(np.mean(pos_scores)), 4) if pos_scores else 0.0,
        negative_score_mean=round(float(np.mean(neg_scores)), 4) if neg_scores else 0.0,
    )
