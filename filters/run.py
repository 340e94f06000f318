"""``pairforge filter``: run every quality filter over ``workdir/pairs`` in place; dropped pairs go to
``workdir/filtered/dropped.parquet`` with their reason, so nothing is lost silently."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from filters.consistency import RoundTrip
from filters.contamination import ContaminationIndex, load_evaluation_texts
from filters.copy import check_copy
from filters.language import check_language
from filters.length import check_length
from filters.quality import check_quality
from pairforge.config import RunConfig

FILTERS = (check_length, check_language, check_quality, check_copy)  # cheap first; the first reason wins


@dataclass
class FilterSummary:
    """Counts from one filter run; ``--json`` prints this."""

    input: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drop_reason(pair: dict[str, Any], config: RunConfig) -> str | None:
    """The first filter's drop reason for ``pair`` (needs ``query`` and ``positive``), or None to keep it."""
    for check in FILTERS:
        reason = check(pair, config.filter)
        if reason:
            return reason
    return None


def run_filter(config: RunConfig) -> FilterSummary:
    """Filter ``workdir/pairs`` shard by shard: the per-pair checks, then the contamination guard and the
    BM25 round trip (whose rank and score are added to every kept pair)."""
    started = time.perf_counter()
    workdir = Path(config.workdir)
    shards = sorted((workdir / "pairs").glob("*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{workdir / 'pairs'}: no pairs; run `pairforge generate` first")
    contamination = _contamination_index(config)
    round_trip = _round_trip(workdir) if config.filter.consistency_top_k else None
    staging = workdir / ".pairs-filtered"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    reasons: Counter[str] = Counter()
    dropped_rows: list[dict[str, Any]] = []
    summary = FilterSummary()
    for shard in shards:
        table = pq.read_table(shard)
        rows = table.to_pylist()
        why = [drop_reason(row, config) for row in rows]
        rank: list[int | None] = [None] * len(rows)
        score: list[float | None] = [None] * len(rows)
        _check_contamination(contamination, rows, why)
        if round_trip is not None:
            _check_round_trip(round_trip, config.filter.consistency_top_k or 0, rows, why, rank, score)
        for row, reason in zip(rows, why, strict=True):
            if reason:
                reasons[reason] += 1
                dropped_rows.append(
                    {"id": row["id"], "query": row["query"], "passage_id": row["passage_id"], "reason": reason}
                )
        keep = pa.array([reason is None for reason in why], type=pa.bool_())
        table = table.append_column("consistency_rank", pa.array(rank, type=pa.int32()))
        table = table.append_column("consistency_score", pa.array(score, type=pa.float64()))
        kept = table.filter(keep)
        summary.input += table.num_rows
        summary.kept += kept.num_rows
        pq.write_table(kept, staging / shard.name)
    (workdir / "filtered").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(dropped_rows, schema=_DROPPED), workdir / "filtered" / "dropped.parquet")
    shutil.rmtree(workdir / "pairs")
    staging.rename(workdir / "pairs")
    summary.dropped = dict(reasons)
    summary.seconds = round(time.perf_counter() - started, 3)
    (workdir / "filter_summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    return summary


def _contamination_index(config: RunConfig) -> ContaminationIndex | None:
    f = config.filter
    if not f.contamination:
        return None
    return ContaminationIndex(load_evaluation_texts(f.contamination), f.contamination_threshold, f.contamination_ngram)


def _round_trip(workdir: Path) -> RoundTrip:
    passages = pq.read_table(sorted((workdir / "passages").glob("*.parquet")), columns=["id", "text"])
    return RoundTrip(passages["id"].to_pylist(), passages["text"].to_pylist())


def _check_contamination(index: ContaminationIndex | None, rows: list[dict[str, Any]], why: list[str | None]) -> None:
    todo = [i for i, reason in enumerate(why) if reason is None]
    if index is None or not todo:
        return
    hits = index.matches([rows[i]["query"] for i in todo]) | index.matches([rows[i]["positive"] for i in todo])
    for i, hit in zip(todo, hits, strict=True):
        if hit:
            why[i] = "contaminated"


def _check_round_trip(
    round_trip: RoundTrip,
    top_k: int,
    rows: list[dict[str, Any]],
    why: list[str | None],
    rank: list[int | None],
    score: list[float | None],
) -> None:
    todo = [i for i, reason in enumerate(why) if reason is None]
    if not todo:
        return
    ranks, scores = round_trip.ranks([rows[i]["query"] for i in todo], [rows[i]["passage_id"] for i in todo])
    for i, r, s in zip(todo, ranks, scores, strict=True):
        rank[i], score[i] = r, s
        if r is None or r > top_k or not s:  # a passage sharing no term with the query is not retrieved at all
            why[i] = "not_retrievable"


_DROPPED = pa.schema(
    [("id", pa.string()), ("query", pa.string()), ("passage_id", pa.string()), ("reason", pa.string())]
)
