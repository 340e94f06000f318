"""The index stage (a global step): the whole passage pool — earlier versions' segments and this run's deduplicated
passages — as one pool on disk, with its BM25 index and, for a dense retriever, its embeddings. The round-trip
filter and mining both read it, so the pool is tokenised and indexed once per run."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pairforge.config import RunConfig
from pairforge.mapping import Mapper, serial_map
from pairforge.negatives.bm25 import build_bm25_index
from pairforge.negatives.index_segments import build_bm25_on_workers, pool_batches
from pairforge.pool import POOL_FORMAT, Pool, PoolPart, build_pool
from pairforge.shard_task import StageRun, run_shard_task
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats
from pairforge.workdir import ALL, Workdir, shard_files

STAGE = "index"
UNIT = get_stage(STAGE).unit
EMBEDDINGS = "embeddings.f32"


@dataclass(frozen=True)
class IndexInputs:
    """This run's input shards (their deduplicated passages) and the earlier versions' pool segments."""

    shards: list[str]
    carried: list[PoolPart] = field(default_factory=list)


def run_index(
    config: RunConfig, inputs: IndexInputs, output: Workdir, *, fresh: bool = False, map_shards: Mapper = serial_map
) -> StageStats:
    """Build the pool, its BM25 index and (dense retrievers) its embeddings under ``output``; on Dask (a Dask
    ``map_shards``) the BM25 segments are written by shard tasks on the workers (``build_bm25_on_workers``)."""
    run = StageRun(STAGE, output)
    upstream = [output.key_of("dedup-passages", s) for s in inputs.shards]
    carried = [(p.name, [(str(f), f.stat().st_size) for f in p.passages]) for p in inputs.carried]
    work = functools.partial(_index, config, inputs, output, map_shards)
    stats = run_shard_task(
        output, STAGE, ALL, (upstream, carried, stage_settings(config, STAGE), POOL_FORMAT), work, fresh=fresh
    )
    return run.save(stats)


def _index(config: RunConfig, inputs: IndexInputs, output: Workdir, map_shards: Mapper) -> StageStats:
    own = [PoolPart(s, shard_files(output.passages, s), output.passage_index / s) for s in inputs.shards]
    pool = build_pool([*inputs.carried, *own], output.pool, config.dedup)
    if map_shards is serial_map or config.flow.task_runner != "dask":  # threads/processes: 2 helper processes
        batches = ((pool.ids(range(lo, hi)), pool.texts(range(lo, hi))) for lo, hi in pool_batches(pool.size))
        build_bm25_index(batches, output.bm25, analyzer=config.mine.analyzer)
    else:  # one task per batch on the cluster's workers, then the global merge here
        build_bm25_on_workers(config, pool, output, map_shards)
    if config.mine.retriever != "bm25":
        embed_pool(config, pool, output)
    stats = StageStats(STAGE, UNIT, input=pool.size, output=pool.size)
    stats.details.update(pool=pool.size, carried=sum(p["rows"] for p in pool.meta["parts"][: len(inputs.carried)]))
    return stats


def embed_pool(config: RunConfig, pool: Pool, output: Workdir, batch: int = 4096) -> Path:
    """Unit embeddings of every pool passage (float32, memory-mapped), through the embedding cache."""
    from pairforge.negatives.dense import Embedder

    assert config.mine.dense_model  # checked by MineConfig
    embedder = Embedder(
        config.mine.dense_model, batch_size=config.mine.dense_batch_size, device=dense_device(config),
        cache=output.embeddings,
    )  # fmt: skip
    path = output.dense / EMBEDDINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("wb") as out:
            for start in range(0, pool.size, batch):
                embedder.encode(pool.texts(range(start, min(start + batch, pool.size)))).tofile(out)
    finally:
        embedder.close()
    return path


def open_embeddings(output: Workdir, size: int) -> np.ndarray:
    """The pool's embeddings written by ``embed_pool``."""
    path = output.dense / EMBEDDINGS
    dim = path.stat().st_size // (4 * size) if size else 0
    return np.memmap(path, dtype=np.float32, mode="r", shape=(size, dim))


def dense_device(config: RunConfig) -> str:
    """``mine.dense_device``, else CUDA when present."""
    if config.mine.dense_device:
        return config.mine.dense_device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def index_passages(config: RunConfig, ids: list[str], texts: list[str], output: Workdir) -> Pool:
    """A pool of the given passages alone, with its indexes, in ``output`` (evaluations and tools that have a
    fixed passage set rather than a run's segments)."""
    import pyarrow as pa

    from pairforge.dedup.index import dedup_signatures, write_index
    from pairforge.records import PASSAGE_SCHEMA
    from pairforge.shards import ShardWriter

    rows = [{"id": i, "doc_id": i, "source": "eval", "text": t, "start": 0, "end": len(t), "char_len": len(t)}
            for i, t in zip(ids, texts, strict=True)]  # fmt: skip
    writer = ShardWriter(output.passages, "eval", PASSAGE_SCHEMA, max(len(rows), 1))
    writer.add_table(pa.Table.from_pylist(rows, schema=PASSAGE_SCHEMA))
    writer.close()
    write_index(output.passage_index / "eval", ids, dedup_signatures(texts, config.dedup), config.dedup)
    pool = build_pool([PoolPart("eval", writer.paths, output.passage_index / "eval")], output.pool, config.dedup)
    batches = ((pool.ids(range(i, min(i + 8192, pool.size))), pool.texts(range(i, min(i + 8192, pool.size))))
               for i in range(0, pool.size, 8192))  # fmt: skip
    build_bm25_index(batches, output.bm25, analyzer=config.mine.analyzer)
    if config.mine.retriever != "bm25":
        embed_pool(config, pool, output)
    return pool
