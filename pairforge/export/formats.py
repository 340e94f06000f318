"""Training formats written from one segment's examples: FlagEmbedding JSONL (one file per kind, optional length
buckets by query + positive, teacher scores only with ``export.teacher``), sentence-transformers Parquet (anchor,
positive, negative_1..n) and uniem / m3e triplets. Every file is named after its segment
(``flagembedding/qp-<segment>.jsonl``), so a version shares its parent's files unchanged and a trainer reads the
whole version from one folder per format."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.config import ExportConfig, RunConfig
from pairforge.export.teacher import Scores, Teacher, load_teacher
from pairforge.export.writer import HashingFile, VersionWriter

BATCH_ROWS = 4096


@dataclass
class FormatCounts:
    """Rows per written file and examples left out per format (with the reason)."""

    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)

    def drop(self, fmt: str, reason: str, n: int = 1) -> None:
        self.dropped.setdefault(fmt, {}).setdefault(reason, 0)
        self.dropped[fmt][reason] += n


def flagembedding_row(example: dict[str, Any], config: ExportConfig, scores: Scores | None = None) -> dict[str, Any]:
    """``{query, pos, neg, prompt, type}`` as FlagEmbedding's training data reads it, with ``pos_scores`` and
    ``neg_scores`` only when a teacher gave ``scores`` (the mined retriever scores are never written there: see
    ``pairforge.export.teacher``)."""
    kind = example["kind"]
    row: dict[str, Any] = {"query": example["query"], "pos": list(example["pos"]), "neg": list(example["neg"])}
    if scores is not None:
        row.update(pos_scores=list(scores[0]), neg_scores=list(scores[1]))
    row.update(prompt=config.query_instructions.get(kind, ""), type=config.flagembedding_types.get(kind, "normal"))
    return row


def sentence_transformers_row(example: dict[str, Any], num_negatives: int) -> dict[str, str] | None:
    """``anchor, positive, negative_1..n``, or None when the example has fewer than ``num_negatives``."""
    if len(example["neg"]) < num_negatives:
        return None
    row = {"anchor": example["query"], "positive": example["pos"][0]}
    row.update({f"negative_{i + 1}": neg for i, neg in enumerate(example["neg"][:num_negatives])})
    return row


def uniem_row(example: dict[str, Any]) -> dict[str, str] | None:
    """uniem's TripletRecord ``{text, text_pos, text_neg}`` with the first (hardest) negative, or None."""
    if not example["neg"]:
        return None
    return {"text": example["query"], "text_pos": example["pos"][0], "text_neg": example["neg"][0]}


def bucket_edges(edges: Sequence[int]) -> list[tuple[int, float]]:
    """FlagEmbedding's ranges: ``[e_i, e_i+1)``, the last one open; 0 is always the first edge."""
    points = sorted({0, *edges})
    if points[0] < 0:
        raise ValueError(f"export.length_buckets: edges must be >= 0, got {list(edges)}")
    return [(lo, points[i + 1] if i + 1 < len(points) else math.inf) for i, lo in enumerate(points)]


def write_formats(
    examples: Sequence[Path], segment: str, config: RunConfig, writer: VersionWriter, counts: FormatCounts
) -> None:
    """Write every configured format of one segment's examples, adding rows per file and drops per format."""
    export = config.export
    if not examples or not (export.flagembedding or export.sentence_transformers or export.uniem):
        return
    measure = _length_measure(config.window.tokenizer) if export.length_buckets else None
    buckets = bucket_edges(export.length_buckets) if export.length_buckets else []
    teacher = load_teacher(export) if export.flagembedding else None
    with _Outputs(writer, counts) as out:
        for batch in _batches(examples):
            lengths = measure(batch) if measure else [0] * len(batch)
            scores = _teacher_scores(teacher, batch)
            for example, length, score in zip(batch, lengths, scores, strict=True):
                _write_example(example, length, buckets, config, out, counts, segment, score)


def _teacher_scores(teacher: Teacher | None, batch: list[dict[str, Any]]) -> list[Scores | None]:
    """The teacher's scores of the examples FlagEmbedding gets (those with negatives); None for the others."""
    if teacher is None:
        return [None] * len(batch)
    wanted = [e for e in batch if e["neg"]]
    scored = iter(teacher.score(wanted))
    return [next(scored) if e["neg"] else None for e in batch]


def _write_example(
    example: dict[str, Any],
    length: int,
    buckets: list[tuple[int, float]],
    config: RunConfig,
    out: _Outputs,
    counts: FormatCounts,
    segment: str,
    scores: Scores | None = None,
) -> None:
    export, kind = config.export, example["kind"]
    if export.flagembedding:
        if example["neg"]:  # FlagEmbedding divides by the number of negatives
            line = json.dumps(flagembedding_row(example, export, scores), ensure_ascii=False) + "\n"
            out.jsonl(f"flagembedding/{kind}-{segment}.jsonl", line)
            for lo, hi in buckets:
                if lo <= length < hi:
                    out.jsonl(f"flagembedding/by_length/{kind}_len-{lo}-{hi}-{segment}.jsonl", line)
        else:
            counts.drop("flagembedding", "no_negatives")
    if export.sentence_transformers:
        n = config.mine.num_negatives
        row = sentence_transformers_row(example, n)
        if row is None:
            counts.drop("sentence_transformers", f"fewer_than_{n}_negatives")
        else:
            out.parquet(f"sentence-transformers/train-{segment}.parquet", row, n)
    if export.uniem:
        triplet = uniem_row(example)
        if triplet is None:
            counts.drop("uniem", "no_negatives")
        else:
            out.jsonl(f"uniem/train-{segment}.jsonl", json.dumps(triplet, ensure_ascii=False) + "\n")


class _Outputs:
    """Output files opened on their first row (so no empty files), closed together."""

    def __init__(self, writer: VersionWriter, counts: FormatCounts) -> None:
        self.writer, self.counts, self.stack = writer, counts, ExitStack()
        self.handles: dict[str, HashingFile] = {}
        self.tables: dict[str, tuple[pq.ParquetWriter, list[dict[str, str]]]] = {}

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        for relative in self.tables:
            self._flush(relative)
        self.stack.close()

    def jsonl(self, relative: str, line: str) -> None:
        if relative not in self.handles:
            self.handles[relative] = self.stack.enter_context(self.writer.open(relative))
        self.handles[relative].write(line.encode("utf-8"))
        self.counts.rows[relative] = self.counts.rows.get(relative, 0) + 1

    def parquet(self, relative: str, row: dict[str, str], n_negatives: int) -> None:
        if relative not in self.tables:
            names = ["anchor", "positive", *(f"negative_{i + 1}" for i in range(n_negatives))]
            handle = self.stack.enter_context(self.writer.open(relative))
            table_writer = pq.ParquetWriter(handle, pa.schema([(name, pa.string()) for name in names]))
            self.stack.callback(table_writer.close)  # closes before the file (LIFO)
            self.tables[relative] = (table_writer, [])
        rows = self.tables[relative][1]
        rows.append(row)
        self.counts.rows[relative] = self.counts.rows.get(relative, 0) + 1
        if len(rows) >= BATCH_ROWS:
            self._flush(relative)

    def _flush(self, relative: str) -> None:
        table_writer, rows = self.tables[relative]
        if rows:
            table_writer.write_table(pa.Table.from_pylist(rows, schema=table_writer.schema))
            rows.clear()


def _batches(examples: Sequence[Path]) -> Iterator[list[dict[str, Any]]]:
    for path in examples:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            yield batch.to_pylist()


def _length_measure(tokenizer_name: str | None) -> Any:
    """An example's length for its bucket: its query's plus its (first) positive's, in tokens of the student's
    tokenizer, or in characters without one. Not its longest text: mined negatives are long passages, so with them
    nearly every row would land in the last bucket whatever its query and positive."""
    if tokenizer_name is None:
        return lambda batch: [sum(len(t) for t in _texts(e)) for e in batch]
    from pairforge.ingest import load_tokenizer

    tokenizer: Any = load_tokenizer(tokenizer_name)

    def measure(batch: list[dict[str, Any]]) -> list[int]:
        return [sum(len(ids) for ids in tokenizer(_texts(example))["input_ids"]) for example in batch]

    return measure


def _texts(example: dict[str, Any]) -> list[str]:
    return [example["query"], *example["pos"][:1]]
