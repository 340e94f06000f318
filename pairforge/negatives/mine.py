"""``pairforge mine``: BM25 and/or dense candidates for every pair, stored in full with their scores
(``workdir/candidates/candidates.parquet``), then positive-aware selection into training examples
(``workdir/examples/examples.parquet``). ``pairforge reselect`` re-runs only the second half."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.config import MineConfig, RunConfig
from pairforge.minhash import estimate_jaccard, signatures
from pairforge.negatives.bm25 import build_bm25_index
from pairforge.negatives.select import MineSummary, select_all

CANDIDATES = "candidates/candidates.parquet"
EXAMPLES = "examples/examples.parquet"
MINED_WITH = ("retriever", "range_max", "analyzer", "dense_model")  # what a reselect policy may not change


def run_mine(config: RunConfig) -> MineSummary:
    """Mine candidates for the workdir's pairs against its passages, store them, and select negatives."""
    started = time.perf_counter()
    workdir = Path(config.workdir)
    pairs = read_pairs(workdir)
    pool = pq.read_table(sorted((workdir / "passages").glob("*.parquet")), columns=["id", "text"])
    pool_ids, pool_texts = pool["id"].to_pylist(), pool["text"].to_pylist()
    candidates = mine_candidates(pairs, pool_ids, pool_texts, config.mine, workdir / "embeddings.sqlite")
    table = pa.Table.from_pylist(candidates).replace_schema_metadata(
        {"pairforge.mined_with": json.dumps({k: getattr(config.mine, k) for k in MINED_WITH})}
    )
    (workdir / "candidates").mkdir(exist_ok=True)
    pq.write_table(table, workdir / CANDIDATES)
    summary = write_examples(candidates, pool_ids, pool_texts, config.mine, workdir)
    summary.seconds = round(time.perf_counter() - started, 3)
    (workdir / "mine_summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    return summary


def read_pairs(workdir: Path) -> list[dict[str, Any]]:
    """Generated pairs (``pairs/``) and human positive training pairs (``human_pairs/``) to mine for:
    ``pair_id, kind, query, positive_id`` (None when the positive is not a pool passage), ``positive``."""
    out = []
    for path in sorted((workdir / "pairs").glob("*.parquet")):
        for p in pq.read_table(path).to_pylist():
            answers = [p["evidence"]] if p.get("evidence") else []
            out.append(_pair(p["id"], p["kind"], p["query"], p["passage_id"], p["positive"], answers))
    for path in sorted((workdir / "human_pairs").glob("*.parquet")):
        for h in pq.read_table(path).to_pylist():
            if h["kind"] == "positive" and h["role"] == "train":
                out.append(_pair(h["id"], "human", h["text1"], None, h["text2"], h.get("answers") or []))
    return out


def _pair(
    pair_id: str, kind: str, query: str, positive_id: str | None, positive: str, answers: list[str]
) -> dict[str, Any]:
    return {"pair_id": pair_id, "kind": kind, "query": query, "positive_id": positive_id, "positive": positive,
            "answers": answers}  # fmt: skip


def mine_candidates(
    pairs: Sequence[dict[str, Any]],
    pool_ids: Sequence[str],
    pool_texts: Sequence[str],
    config: MineConfig,
    cache: Path | None = None,
) -> list[dict[str, Any]]:
    """One candidate row per pair: for each configured retriever the top ``range_max`` pool ids, their
    scores, and the query's score for its own positive."""
    by_text = {text: pid for pid, text in zip(pool_ids, pool_texts, strict=True)}
    rows = [
        {
            "pair_id": p["pair_id"],
            "kind": p["kind"],
            "query": p["query"],
            "positive_id": p["positive_id"] or by_text.get(p["positive"]),
        }
        for p in pairs
    ]
    for row, p in zip(rows, pairs, strict=True):  # a positive outside the pool is kept as text
        row["positive"] = None if row["positive_id"] else p["positive"]
        row["answers"] = p.get("answers") or []
    position = {pid: i for i, pid in enumerate(pool_ids)}
    own_at = [position.get(r["positive_id"]) for r in rows]
    queries = [p["query"] for p in pairs]
    results: dict[str, tuple[np.ndarray, np.ndarray, list[float | None]]] = {}
    if config.retriever in ("bm25", "both"):
        results["bm25"] = _mine_bm25(queries, pool_texts, own_at, config)
    if config.retriever in ("dense", "both"):
        results["dense"] = _mine_dense(queries, pool_texts, own_at, config, cache)
    for source in ("bm25", "dense"):
        if source not in results:
            for row in rows:
                row[f"{source}_ids"] = row[f"{source}_scores"] = row[f"{source}_positive_score"] = None
            continue
        top, scores, own = results[source]
        for i, row in enumerate(rows):
            hits = [j for j in range(top.shape[1]) if top[i, j] >= 0]
            row[f"{source}_ids"] = [pool_ids[top[i, j]] for j in hits]
            row[f"{source}_scores"] = [float(scores[i, j]) for j in hits]
            row[f"{source}_positive_score"] = own[i]
    return rows


def _mine_bm25(
    queries: list[str], pool_texts: Sequence[str], own_at: list[int | None], config: MineConfig
) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    with tempfile.TemporaryDirectory(prefix="pairforge-bm25-") as folder:
        batches = [([str(j) for j in range(i, min(i + 20_000, len(pool_texts)))], pool_texts[i : i + 20_000])
                   for i in range(0, len(pool_texts), 20_000)]  # fmt: skip
        index = build_bm25_index(batches, Path(folder) / "bm25", analyzer=config.analyzer)
        top, scores = index.search(queries, config.range_max)  # only docs sharing a term (score > 0); else -1
        known = [i for i, at in enumerate(own_at) if at is not None]
        _, known_scores = index.rank_of([queries[i] for i in known], [at for at in own_at if at is not None])
    own: list[float | None] = [None] * len(queries)
    for j, i in enumerate(known):
        own[i] = float(known_scores[j])
    return top, scores, own


def _mine_dense(
    queries: list[str], pool_texts: Sequence[str], own_at: list[int | None], config: MineConfig, cache: Path | None
) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    from pairforge.negatives.dense import Embedder, top_k_dense, top_k_faiss

    assert config.dense_model  # checked by MineConfig
    embedder = Embedder(config.dense_model, batch_size=config.dense_batch_size, device=_device(config), cache=cache)
    try:
        docs, q = embedder.encode(pool_texts), embedder.encode(queries)
    finally:
        embedder.close()
    top, scores = (top_k_faiss if config.dense_index == "faiss" else top_k_dense)(q, docs, config.range_max)
    own = [None if at is None else float(q[i] @ docs[at]) for i, at in enumerate(own_at)]
    return top, scores, own


def _device(config: MineConfig) -> str:
    if config.dense_device:
        return config.dense_device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def write_examples(
    candidates: Sequence[dict[str, Any]],
    pool_ids: Sequence[str],
    pool_texts: Sequence[str],
    config: MineConfig,
    workdir: Path,
) -> MineSummary:
    """Select negatives from stored candidates into ``workdir/examples/examples.parquet``."""
    examples, summary = select_examples(candidates, pool_ids, pool_texts, config)
    (workdir / "examples").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(examples), workdir / EXAMPLES)
    return summary


def select_examples(
    candidates: Sequence[dict[str, Any]],
    pool_ids: Sequence[str],
    pool_texts: Sequence[str],
    config: MineConfig,
) -> tuple[list[dict[str, Any]], MineSummary]:
    """Training examples from stored candidates: no re-encoding, no re-tokenising (MinHash of candidate
    texts only, for the near-duplicate guard)."""
    text_of = dict(zip(pool_ids, pool_texts, strict=True))
    positive_text = [text_of[c["positive_id"]] if c["positive_id"] else c["positive"] for c in candidates]
    needed = sorted({pid for c in candidates for s in ("bm25", "dense") for pid in c.get(f"{s}_ids") or []})
    sig_of = dict(zip(needed, signatures([text_of[k] for k in needed]), strict=True)) if needed else {}
    twins_of: dict[str, list[np.ndarray]] = {}  # query → signatures of all its positives
    for c, sig in zip(candidates, signatures(positive_text) if candidates else [], strict=True):
        twins_of.setdefault(c["query"], []).append(sig)
    query_of = {c["pair_id"]: c["query"] for c in candidates}

    def near_duplicate(pid: str, pair_id: str) -> bool:
        sig = sig_of.get(pid)
        if sig is None:
            sig = sig_of[pid] = signatures([text_of[pid]])[0]
        threshold = config.near_duplicate_threshold
        return any(estimate_jaccard(sig, twin) >= threshold for twin in twins_of.get(query_of[pair_id], []))

    chosen, summary = select_all(candidates, pool_ids, config, near_duplicate, text_of.__getitem__)
    examples = [
        {
            "pair_id": c["pair_id"],
            "kind": c["kind"],
            "query": c["query"],
            "pos": [positive],
            "neg": [text_of[pid] for pid, _, _ in negs],
            "pos_scores": [
                c["bm25_positive_score"]
                if c["bm25_positive_score"] is not None
                else (c["dense_positive_score"] or 0.0)
            ],
            "neg_scores": [score for _, score, _ in negs],
            "neg_sources": [source for _, _, source in negs],
            "positive_id": c["positive_id"],
            "negative_ids": [pid for pid, _, _ in negs],
        }
        for c, positive, negs in zip(candidates, positive_text, chosen, strict=True)
    ]
    return examples, summary
