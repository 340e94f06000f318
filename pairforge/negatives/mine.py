"""The mine stage: for every pair of an input shard (the generated pairs kept by ``dedup-pairs`` and the shard's
human positive training pairs), the top ``mine.range_max`` pool passages by BM25 and/or a dense retriever, with
their scores and the query's score for its own positive, stored in full (``mine/candidates``: "mine once, select
many"). ``select`` then chooses negatives from them."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pairforge.config import RunConfig
from pairforge.llm import Backend
from pairforge.mapping import Mapper, ShardInputs, serial_map
from pairforge.negatives.bm25 import BM25Index
from pairforge.pool import Pool
from pairforge.records import CANDIDATE_SCHEMA
from pairforge.shard_task import StageRun, run_shard_task
from pairforge.shards import ShardWriter, read_shard_table
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats
from pairforge.workdir import ALL, Workdir, shard_files

STAGE = "mine"
UNIT = get_stage(STAGE).unit
RETRIEVERS = ("bm25", "dense")


def run_mine(
    config: RunConfig,
    inputs: ShardInputs,
    output: Workdir,
    *,
    fresh: bool = False,
    map_shards: Mapper = serial_map,
    backend: Backend | None = None,
) -> StageStats:
    """Candidates for every pair of every input shard, then (``mine.adjudicate``) the LLM's false-negative verdicts
    on those that outrank or come close to the positive (``backend``: a ready one, for tests)."""
    run = StageRun(STAGE, output)
    mine = functools.partial(mine_shard, config, output, output.key_of("index", ALL), fresh)
    stats = run.combine(map_shards(STAGE, mine, inputs.shards))
    stats.details["mined_with"] = {k.split(".", 1)[1]: v for k, v in stage_settings(config, STAGE).items()}
    if config.mine.adjudicate.enabled:
        from pairforge.adjudicate.stage import run_adjudication

        stats.details["adjudication"] = run_adjudication(
            config, output, inputs.shards, fresh=fresh, map_shards=map_shards, backend=backend
        )
        stats.seconds = time.perf_counter() - run.started
    return run.save(stats)


def read_queries(output: Workdir, shard: str) -> list[dict[str, Any]]:
    """The shard's pairs to mine for: ``pair_id, kind, query, positive_id`` (None when the positive is not a pool
    passage), ``positive`` (its text) and ``answers`` (for the answer guard)."""
    out = []
    if shard_files(output.pairs, shard):
        for p in read_shard_table(output.pairs, shard, ["id", "kind", "query", "passage_id", "positive",
                                                        "evidence"]).to_pylist():  # fmt: skip
            out.append(_query(p["id"], p["kind"], p["query"], p["passage_id"], p["positive"],
                              [p["evidence"]] if p["evidence"] else []))  # fmt: skip
    if shard_files(output.human_pairs, shard):
        for h in read_shard_table(output.human_pairs, shard).to_pylist():
            if h["kind"] == "positive" and h["role"] == "train":
                out.append(_query(h["id"], "human", h["text1"], None, h["text2"], h.get("answers") or []))
    return out


def _query(pair_id: str, kind: str, query: str, positive_id: str | None, positive: str, answers: list[str]) -> dict:
    return {"pair_id": pair_id, "kind": kind, "query": query, "positive_id": positive_id, "positive": positive,
            "answers": answers}  # fmt: skip


def mine_shard(config: RunConfig, output: Workdir, index_key: str, fresh: bool, shard: str) -> StageStats:
    """One shard's candidate rows."""
    upstream = [
        output.key_of(s, shard) if output.done(s, shard).is_file() else None for s in ("dedup-pairs", "ingest")
    ]
    work = functools.partial(_mine, config, output, shard)
    depends_on = (upstream, index_key, stage_settings(config, STAGE))
    return run_shard_task(output, STAGE, shard, depends_on, work, fresh=fresh)


def _mine(config: RunConfig, output: Workdir, shard: str) -> StageStats:
    pairs = read_queries(output, shard)
    rows = mine_candidates(pairs, Pool(output.pool), config, output)
    writer = ShardWriter(output.candidates, shard, CANDIDATE_SCHEMA, config.ingest.shard_rows)
    for row in rows:
        writer.add(row)
    writer.close()
    stats = StageStats(STAGE, UNIT, input=len(pairs), output=len(rows))
    human = [r for r in rows if r["kind"] == "human"]  # for the funnel's human-pairs row (pairforge.human_counts)
    stats.details.update(human_queries=len(human), human_in_pool=sum(r["positive_id"] is not None for r in human))
    for source in RETRIEVERS:
        if rows and rows[0][f"{source}_ids"] is not None:
            stats.details[f"{source}_candidates"] = sum(len(r[f"{source}_ids"]) for r in rows)
    return stats


def mine_candidates(
    pairs: Sequence[dict[str, Any]], pool: Pool, config: RunConfig, output: Workdir
) -> list[dict[str, Any]]:
    """One candidate row per pair: for each configured retriever the top ``range_max`` pool ids, their scores, and
    the query's score for its own positive (BM25 keeps only passages it retrieves: score above 0)."""
    at = pool.positions([p["positive_id"] for p in pairs])
    by_text = pool.positions_of_texts([p["positive"] if p["positive_id"] is None else None for p in pairs])
    at = np.where(at >= 0, at, by_text)  # a human positive that is a pool passage counts as that passage
    rows = []
    for p, position in zip(pairs, at.tolist(), strict=True):
        inside = position >= 0
        rows.append({"pair_id": p["pair_id"], "kind": p["kind"], "query": p["query"],
                     "positive_id": pool.id(position) if inside else None,
                     "positive": None if inside else p["positive"], "answers": p["answers"]})  # fmt: skip
    queries = [p["query"] for p in pairs]
    mine = config.mine
    for source in RETRIEVERS:
        wanted = mine.retriever in (source, "both")
        if not wanted or not pairs:
            for row in rows:
                row[f"{source}_ids"] = row[f"{source}_scores"] = row[f"{source}_positive_score"] = None
            continue
        top, scores, own = (_bm25 if source == "bm25" else _dense)(queries, at, pool, config, output)
        for i, row in enumerate(rows):
            hits = [j for j in range(top.shape[1]) if top[i, j] >= 0]
            row[f"{source}_ids"] = pool.ids([int(top[i, j]) for j in hits])
            row[f"{source}_scores"] = [float(scores[i, j]) for j in hits]
            row[f"{source}_positive_score"] = own[i]
    return rows


def _bm25(
    queries: list[str], at: np.ndarray, pool: Pool, config: RunConfig, output: Workdir
) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    index = BM25Index.open(output.bm25)
    top, scores = index.search(queries, config.mine.range_max)
    top = np.where(scores > 0, top, -1)  # not retrieved (no shared term): not candidates, however they rank
    own: list[float | None] = [None] * len(queries)
    inside = np.flatnonzero(at >= 0)
    if len(inside):
        _, own_scores = index.rank_of([queries[i] for i in inside], at[inside].tolist())
        for i, score in zip(inside.tolist(), own_scores.tolist(), strict=True):
            own[i] = float(score)
    return top, scores, own


def _dense(
    queries: list[str], at: np.ndarray, pool: Pool, config: RunConfig, output: Workdir
) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    from pairforge.negatives.dense import Embedder, top_k_dense, top_k_faiss
    from pairforge.negatives.index import dense_device, open_embeddings

    assert config.mine.dense_model  # checked by MineConfig
    docs = open_embeddings(output, pool.size)
    embedder = Embedder(config.mine.dense_model, batch_size=config.mine.dense_batch_size,
                        device=dense_device(config), cache=output.embeddings)  # fmt: skip
    try:
        q = embedder.encode(queries)
    finally:
        embedder.close()
    top, scores = (top_k_faiss if config.mine.dense_index == "faiss" else top_k_dense)(q, docs, config.mine.range_max)
    own = [None if a < 0 else float(q[i] @ docs[a]) for i, a in enumerate(at.tolist())]
    return top, scores, own
