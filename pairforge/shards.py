"""Parquet shards: rows are buffered and written in files of a bounded size, so no stage holds a corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PASSAGE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("text", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("char_len", pa.int32()),
    ]
)

HUMAN_PAIR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("text1", pa.string()),
        ("text2", pa.string()),
        ("negatives", pa.list_(pa.string())),
        ("label", pa.float64()),
        ("role", pa.string()),
        ("answers", pa.list_(pa.string())),
    ]
)


class ShardWriter:
    """Appends rows and writes ``<prefix>-NNNNN.parquet`` files of at most ``shard_rows`` rows."""

    def __init__(self, folder: Path, prefix: str, schema: pa.Schema, shard_rows: int) -> None:
        self.folder, self.prefix, self.schema, self.shard_rows = folder, prefix, schema, shard_rows
        self.rows: list[dict[str, Any]] = []
        self.paths: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.shard_rows:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        path = self.folder / f"{self.prefix}-{len(self.paths):05d}.parquet"
        pq.write_table(pa.Table.from_pylist(self.rows, schema=self.schema), path)
        self.paths.append(path)
        self.rows = []

    def close(self) -> list[Path]:
        self.flush()
        return self.paths
