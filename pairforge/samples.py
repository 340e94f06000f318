"""A few kept generated pairs of a published version, drawn with a seed: what ``pairforge run`` shows at the end, so
a person sees what the run made (and where in the passage its evidence lies)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pairforge.store import layout

COLUMNS = ["kind", "query", "query_type", "evidence", "evidence_start", "evidence_end", "positive"]


def sample_pairs(version: str | Path, per_kind: int = 5, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Up to ``per_kind`` kept generated pairs of each kind, with the evidence's offsets and the passage length."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((Path(version) / layout.PAIRS).glob("*.parquet")):
        for row in pq.read_table(path, columns=COLUMNS).to_pylist():
            row["passage_chars"] = len(row.pop("positive"))
            by_kind.setdefault(row["kind"], []).append(row)
    rng = random.Random(seed)
    return {kind: rng.sample(rows, min(per_kind, len(rows))) for kind, rows in sorted(by_kind.items())}
