"""The ``data/`` and ``index/`` part of a version: what later stages and runs read back (``reselect --from``
reads ``data/candidates.parquet`` and ``data/passages/``; the next run's passage dedup reads ``index/passages/``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.export.writer import VersionWriter

EXAMPLES = "data/examples.parquet"
CANDIDATES = "data/candidates.parquet"
PASSAGES = "data/passages/passages.parquet"
PAIRS = "data/pairs.parquet"
HUMAN_PAIRS = "data/human_pairs.parquet"
INDEX = "index/passages"
PASSAGE_COLUMNS = ["id", "text", "doc_id", "source"]
COPIED = {EXAMPLES: "examples/examples.parquet", CANDIDATES: "candidates/candidates.parquet"}
CONCATENATED = {
    PASSAGES: ("passages/*.parquet", PASSAGE_COLUMNS),
    PAIRS: ("pairs/*.parquet", None),
    HUMAN_PAIRS: ("human_pairs/*.parquet", None),
}


def write_data(workdir: Path, writer: VersionWriter) -> dict[str, int]:
    """Copy the workdir's stage outputs into ``data/`` (and the MinHash index into ``index/passages``);
    returns rows per file written. Missing stages are skipped, never an error."""
    rows: dict[str, int] = {}
    for relative, source in COPIED.items():
        if (workdir / source).is_file():
            writer.put_file(relative, workdir / source)  # byte for byte: keeps the candidates' mined_with metadata
            rows[relative] = pq.read_metadata(workdir / source).num_rows
    for relative, (pattern, columns) in CONCATENATED.items():
        shards = sorted(workdir.glob(pattern))
        if shards:
            rows[relative] = concat_shards(shards, relative, writer, columns)
    index = workdir / "dedup" / "passages-index"
    if (index / "meta.json").is_file():
        writer.put_tree(INDEX, index)
    return rows


def concat_shards(shards: list[Path], relative: str, writer: VersionWriter, columns: list[str] | None) -> int:
    """Stream Parquet shards into one file, one shard in memory at a time; returns the row count."""
    schema = _common_schema(shards, columns)
    total = 0
    with writer.open(relative) as handle, pq.ParquetWriter(handle, schema) as out:
        for shard in shards:
            table = pq.read_table(shard, columns=schema.names)
            out.write_table(table.cast(schema))
            total += table.num_rows
    return total


def _common_schema(shards: list[Path], columns: list[str] | None) -> pa.Schema:
    """The shards' unified schema (an all-null column in one shard takes the others' type), restricted to
    ``columns`` that every shard has."""
    schemas = [pq.read_schema(s).remove_metadata() for s in shards]
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    names = [n for n in (columns or unified.names) if all(n in s.names for s in schemas)]
    return pa.schema([unified.field(n) for n in names])
