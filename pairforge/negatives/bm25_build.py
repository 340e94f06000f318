"""Building a BM25 index folder: batches to segments on worker processes, then the global merge.

The folder is built aside (``.<name>.tmp-<pid>-<random>`` beside it) and renamed into place only when
complete, so a crash never leaves a folder that opens as an index; an existing index is replaced only
after the new one is whole. Leftover ``.tmp`` folders of dead processes are removed by the next build.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pairforge.analysis.tokenize import pool_context
from pairforge.negatives.bm25_merge import merge_segments
from pairforge.negatives.bm25_segment import write_segment

FORMAT = 1
ANALYZERS = ("jieba", "bigram", "jieba_bigram")


def build_folder(
    batches: Iterable[tuple[Sequence[str], Sequence[str]]],
    folder: Path,
    *,
    analyzer: str,
    params: dict[str, float],
    workers: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Write a complete index into ``folder`` (see ``bm25.build_bm25_index``)."""
    _build(folder, analyzer, params, lambda tmp: _write_segments(batches, tmp, analyzer, workers, progress))


def build_folder_from_segments(
    ids: Iterable[Sequence[str]],
    write_segments: Callable[[Path], None],
    folder: Path,
    *,
    analyzer: str,
    params: dict[str, float],
) -> None:
    """``build_folder`` with the segments written elsewhere, e.g. as shard tasks on every worker of a cluster:
    ``write_segments(segments)`` must leave batch ``n``'s segment (``bm25_segment.write_segment`` of its texts
    with ``analyzer``) in ``segments / f"{n:06d}"``; ``ids`` gives each batch's doc ids in order. The merge and
    the atomic swap are ``build_folder``'s, so the index is byte-identical to one built in this process."""

    def segments_of(tmp: Path) -> tuple[list[Path], list[dict[str, Any]]]:
        with open(tmp / "ids.bin", "wb") as ids_file:
            offsets = [np.zeros(1, np.int64)]
            for batch in ids:
                offsets.append(offsets[-1][-1] + _write_ids(ids_file, [str(i) for i in batch]))
        np.concatenate(offsets).tofile(tmp / "ids_ptr.bin")
        write_segments(tmp / "segments")
        segments = [tmp / "segments" / f"{n:06d}" for n in range(len(offsets) - 1)]
        metas = [json.loads((s / "meta.json").read_text()) for s in segments]
        for number, meta in enumerate(metas):
            if meta["n_docs"] != offsets[number + 1].shape[0]:
                raise ValueError(f"batch {number}: {offsets[number + 1].shape[0]} ids but {meta['n_docs']} texts")
        return segments, metas

    _build(folder, analyzer, params, segments_of)


def _build(
    folder: Path,
    analyzer: str,
    params: dict[str, float],
    write: Callable[[Path], tuple[list[Path], list[dict[str, Any]]]],
) -> None:
    """Check the settings, write the segments into a folder aside (``write``), merge, and swap it in."""
    if analyzer not in ANALYZERS:
        raise ValueError(f"unknown analyzer {analyzer!r}; expected one of {ANALYZERS}")
    if params["k1"] < 0 or not 0 <= params["b"] <= 1:
        raise ValueError("BM25 needs k1 >= 0 and 0 <= b <= 1")
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        segments, metas = write(tmp)
        meta = merge_segments(segments, metas, tmp, params)
        shutil.rmtree(tmp / "segments", ignore_errors=True)
        meta.update(format=FORMAT, analyzer=analyzer, **params)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_ids(ids_file: Any, ids: list[str]) -> np.ndarray:
    """Append one batch's ids to the id file; returns their end offsets relative to the batch's start."""
    encoded = [i.encode("utf-8", errors="surrogatepass") for i in ids]
    ids_file.write(b"".join(encoded))
    return np.cumsum(np.fromiter(map(len, encoded), np.int64, len(ids)))


def _write_segments(
    batches: Iterable[tuple[Sequence[str], Sequence[str]]],
    tmp: Path,
    analyzer: str,
    workers: int,
    progress: Callable[[int], None] | None,
) -> tuple[list[Path], list[dict[str, Any]]]:
    """One segment per batch, ``workers`` at a time (in this process when ``workers <= 1``); ids in order."""
    segments: list[Path] = []
    metas: list[dict[str, Any]] = []
    pending: deque[Future[dict[str, Any]]] = deque()
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=pool_context())
    done = 0

    def collect(meta: dict[str, Any]) -> None:
        nonlocal done
        metas.append(meta)
        done += meta["n_docs"]
        if progress:
            progress(done)

    try:
        with open(tmp / "ids.bin", "wb") as ids_file:
            offsets = [np.zeros(1, np.int64)]
            for number, (ids, texts) in enumerate(batches):
                ids, texts = [str(i) for i in ids], list(texts)
                _check_batch(number, ids, texts)
                offsets.append(offsets[-1][-1] + _write_ids(ids_file, ids))
                segments.append(tmp / "segments" / f"{number:06d}")
                if pool is None:
                    collect(write_segment(segments[-1], texts, analyzer))
                    continue
                pending.append(pool.submit(write_segment, segments[-1], texts, analyzer))
                while len(pending) >= 2 * workers:  # bounded: at most 2 batches per worker in flight
                    collect(pending.popleft().result())
            while pending:
                collect(pending.popleft().result())
        np.concatenate(offsets).tofile(tmp / "ids_ptr.bin")
    finally:
        if pool is not None:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
    return segments, metas


def _check_batch(number: int, ids: list[str], texts: list[Any]) -> None:
    if len(ids) != len(texts):
        raise ValueError(f"batch {number}: {len(ids)} ids but {len(texts)} texts")
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"batch {number}, row {row} (id {ids[row]!r}): text is {type(text).__name__}, not str")


def _swap_in(tmp: Path, folder: Path) -> None:
    if not folder.exists():
        tmp.rename(folder)
        return
    old = folder.parent / f".{folder.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale(folder: Path) -> None:
    """Remove ``.tmp``/``.old`` siblings left by processes that no longer run."""
    for path in folder.parent.glob(f".{folder.name}.*-*-*"):
        try:
            pid = int(path.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, PermissionError):
            continue
