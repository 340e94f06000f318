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
    """Filter ``workdir/pairs`` shard by shard."""
    started = time.perf_counter()
    workdir = Path(config.workdir)
    shards = sorted((workdir / "pairs").glob("*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{workdir / 'pairs'}: no pairs; run `pairforge generate` first")
    staging = workdir / ".pairs-filtered"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    reasons: Counter[str] = Counter()
    dropped_rows: list[dict[str, Any]] = []
    summary = FilterSummary()
    for shard in shards:
        table = pq.read_table(shard)
        keep = []
        for row in table.to_pylist():
            reason = drop_reason(row, config)
            keep.append(reason is None)
            if reason:
                reasons[reason] += 1
                dropped_rows.append(
                    {"id": row["id"], "query": row["query"], "passage_id": row["passage_id"], "reason": reason}
                )
        summary.input += table.num_rows
        kept = table.filter(pa.array(keep, type=pa.bool_()))
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


_DROPPED = pa.schema(
    [("id", pa.string()), ("query", pa.string()), ("passage_id", pa.string()), ("reason", pa.string())]
)
