"""The index stage's BM25 build spread over a cluster: one shard task per pool batch writes its segment, then the
global merge runs where the stage runs.

Analyzing the texts (jieba) is most of a BM25 build; done in the stage's own process it is a serial step that no
number of workers shortens (and its helper processes would escape a pinned worker's core). As shard tasks the
segments spread over every worker; the merge and the index files are those of ``build_bm25_index``, byte for byte.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

from pairforge.config import RunConfig
from pairforge.mapping import Mapper
from pairforge.negatives.bm25_build import build_folder_from_segments
from pairforge.negatives.bm25_segment import write_segment
from pairforge.pool import Pool
from pairforge.stages import get_stage
from pairforge.stats import StageStats
from pairforge.workdir import Workdir

BATCH = 8192  # passages per segment, as the in-process build batches them
SEGMENT_TASK = "index.segments"


def pool_batches(size: int, batch: int = BATCH) -> Iterator[tuple[int, int]]:
    """The ``[lo, hi)`` pool positions of each BM25 batch, in order."""
    return ((lo, min(lo + batch, size)) for lo in range(0, size, batch))


def build_bm25_on_workers(config: RunConfig, pool: Pool, output: Workdir, map_shards: Mapper) -> None:
    """The pool's BM25 index at ``output.bm25``, its segments written by ``map_shards`` tasks (one per batch)."""
    ranges = list(pool_batches(pool.size))
    names = [f"{n:06d}" for n in range(len(ranges))]
    params = {"k1": 1.5, "b": 0.75, "epsilon": 0.25}  # build_bm25_index's defaults, which the index stage uses

    def write_segments(segments: Path) -> None:
        write = functools.partial(write_pool_segment, str(output.pool), str(segments), config.mine.analyzer)
        map_shards(SEGMENT_TASK, write, names)

    ids = (pool.ids(range(lo, hi)) for lo, hi in ranges)
    build_folder_from_segments(ids, write_segments, output.bm25, analyzer=config.mine.analyzer, params=params)


def write_pool_segment(pool_folder: str, segments: str, analyzer: str, name: str) -> StageStats:
    """Shard task: the segment of pool batch ``name`` (its number) under ``segments``."""
    pool = _open_pool(pool_folder, (Path(pool_folder) / "meta.json").stat().st_mtime_ns)
    lo = int(name) * BATCH
    hi = min(lo + BATCH, pool.size)
    meta = write_segment(Path(segments) / name, pool.texts(range(lo, hi)), analyzer)
    return StageStats("index", get_stage("index").unit, input=hi - lo, output=meta["n_docs"])


@functools.lru_cache(maxsize=1)
def _open_pool(folder: str, mtime_ns: int) -> Pool:
    """The pool, opened once per worker process for all its segment tasks (``mtime_ns``: a rebuilt pool reopens)."""
    return Pool(Path(folder))
