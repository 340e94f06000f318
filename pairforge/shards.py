"""Writing and reading a stage's Parquet shards: bounded row groups, schema-checked, each file written aside and
renamed, so no stage holds a corpus and no reader sees half a file."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.records import check_schema
from pairforge.workdir import shard_files, shard_path


class ShardWriter:
    """Rows of one input shard into ``<folder>/<shard>-NNNNN.parquet`` files of at most ``rows_per_file`` rows,
    checked against ``schema``. Earlier files of the same shard are removed first, so a rerun replaces them."""

    def __init__(self, folder: Path, shard: str, schema: pa.Schema, rows_per_file: int = 50_000) -> None:
        self.folder, self.shard, self.schema, self.rows_per_file = folder, shard, schema, rows_per_file
        self.rows: list[dict[str, Any]] = []
        self.paths: list[Path] = []
        self.count = 0
        clear_shard(folder, shard)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.rows_per_file:
            self.flush()

    def add_table(self, table: pa.Table) -> None:
        """Append a whole table (already shaped like ``schema``), split to the file size."""
        self.flush()
        for start in range(0, table.num_rows, self.rows_per_file):
            self._write(table.slice(start, self.rows_per_file))

    def flush(self) -> None:
        if self.rows:
            self._write(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def _write(self, table: pa.Table) -> None:
        path = shard_path(self.folder, self.shard, len(self.paths))
        write_table(table, self.schema, path)
        self.paths.append(path)
        self.count += table.num_rows

    def close(self) -> list[Path]:
        """Write what is buffered; a shard with no rows still gets one empty file (readers see the schema)."""
        self.flush()
        if not self.paths:
            self._write(self.schema.empty_table())
        return self.paths


# zstd rather than Parquet's default snappy: Chinese text takes ~40% less disk (a 10k-passage shard: 13 → 7.5 MB)
# and reads as fast; every Parquet reader (pyarrow, HF datasets, pandas, DuckDB, Spark) reads it. Level 3 (zstd's
# own default; pyarrow's is 1): a 50k-passage shard's text 50 → 37 MB, written in 0.54 s instead of 0.33 s and read
# no slower; level 6 saves 3 MB more for 2.5x the writing time.
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3


def write_table(table: pa.Table, schema: pa.Schema, path: Path) -> None:
    """Check ``table`` against ``schema`` and write it to ``path`` atomically, zstd-compressed."""
    table = check_schema(table, schema, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    if table.num_rows:
        pq.write_table(table, tmp, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL)
    else:  # the schema and no row group: an empty row group stops readers such as `datasets` (batch size 0)
        pq.ParquetWriter(tmp, table.schema, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL).close()
    os.replace(tmp, path)


def clear_shard(folder: Path, shard: str) -> None:
    """Remove every file of ``shard`` in ``folder``."""
    for path in shard_files(folder, shard):
        path.unlink()


def read_shard_table(folder: Path, shard: str, columns: Sequence[str] | None = None) -> pa.Table:
    """All files of one input shard in ``folder`` as one table (one shard is bounded by ``ingest.shard_rows``)."""
    files = shard_files(folder, shard)
    if not files:
        raise FileNotFoundError(f"{folder}: no output for input shard {shard}; run the stage that writes it first")
    return pa.concat_tables(pq.read_table(f, columns=list(columns) if columns else None) for f in files)


def iter_batches(files: Sequence[Path], columns: Sequence[str] | None = None, rows: int = 8192) -> Iterator[pa.Table]:
    """Record batches of ``files`` in order, ``rows`` at a time (memory bounded by the batch, not the files)."""
    for path in files:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=rows, columns=list(columns) if columns else None):
            yield pa.Table.from_batches([batch])
