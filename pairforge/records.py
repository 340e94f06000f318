"""The records that stages exchange (see DESIGN.md, "Stages and data contracts"): the in-memory records the
corpus readers yield, and the Arrow schemas of the shards every stage writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa


@dataclass(slots=True)
class Document:
    """One source document, text already normalised."""

    id: str
    source: str
    title: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Passage:
    """A window of a document: ``text == document.text[start:end]``."""

    id: str
    doc_id: str
    source: str
    text: str
    start: int
    end: int

    @property
    def char_len(self) -> int:
        return len(self.text)


@dataclass(slots=True)
class HumanPair:
    """A pair written by people, taken over from an existing set without the LLM.

    ``kind="positive"``: ``text2`` answers or paraphrases ``text1``; ``negatives`` are hard negatives the set
    ships. ``kind="scored"``: ``label`` grades the pair (0/1 for AFQMC, LCQMC, SimCLUE; 0..5 for STS-B).
    ``role="eval"`` marks pairs kept for evaluation (CMRC 2018 questions), never for training.
    """

    id: str
    source: str
    kind: Literal["positive", "scored"]
    text1: str
    text2: str
    negatives: list[str] = field(default_factory=list)
    label: float | None = None
    role: Literal["train", "eval"] = "train"
    answers: list[str] = field(default_factory=list)  # gold answer strings where the set has them (SQuAD)


@dataclass(slots=True)
class Rejected:
    """A record that could not be read; it goes to quarantine with where it came from and why."""

    file: str
    line: int | None
    reason: str
    detail: str = ""
    raw: str = ""
    record: int | None = None

    def where(self) -> str:
        """``file:line`` (or ``file:record N`` for JSON arrays), as error messages print it."""
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.record is not None:
            return f"{self.file}:record {self.record}"
        return self.file


Record = Document | HumanPair | Rejected


# The Arrow schemas of the shards stages exchange. Every shard is checked against its schema where it is written
# (``pairforge.shards``), so a stage never hands on rows another stage cannot read.

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

PAIR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("query", pa.string()),
        ("passage_id", pa.string()),
        ("positive", pa.string()),
        ("query_type", pa.string()),
        ("evidence", pa.string()),
        ("evidence_start", pa.int64()),
        ("evidence_end", pa.int64()),
        ("evidence_method", pa.string()),
        ("source", pa.string()),
        ("doc_id", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt_sha256", pa.string()),
        ("model", pa.string()),
        ("sampling", pa.string()),
        ("request_key", pa.string()),
        ("sample", pa.int32()),
    ]
)
"""A generated pair as ``generate`` writes it; ``filter`` adds the round trip's rank, score and margin against the
best other passage (under ``filter.consistency_retriever``)."""

FILTERED_PAIR_SCHEMA = PAIR_SCHEMA.append(pa.field("consistency_rank", pa.int32())).append(
    pa.field("consistency_score", pa.float64())).append(pa.field("consistency_margin", pa.float64())
)  # fmt: skip

JUDGED_PAIR_SCHEMA = FILTERED_PAIR_SCHEMA.append(pa.field("judge_relevance", pa.int32())).append(
    pa.field("judge_faithfulness", pa.int32())).append(pa.field("judge_clarity", pa.int32())).append(
    pa.field("judge_score", pa.float64()))  # fmt: skip
"""A pair as ``judge`` keeps it: the rubric's scores (1..5) and their mean; all null when the judge is off."""

DROPPED_SCHEMA = pa.schema(
    [("id", pa.string()), ("query", pa.string()), ("passage_id", pa.string()), ("reason", pa.string())]
)
"""A row a filter or dedup step left out, with its reason: nothing is dropped without a record."""

CANDIDATE_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("kind", pa.string()),
        ("query", pa.string()),
        ("positive_id", pa.string()),  # null when the positive is not a pool passage (human sets)
        ("positive", pa.string()),  # the positive's text when it is not a pool passage, else null
        ("answers", pa.list_(pa.string())),
        ("bm25_ids", pa.list_(pa.string())),
        ("bm25_scores", pa.list_(pa.float64())),
        ("bm25_positive_score", pa.float64()),
        ("dense_ids", pa.list_(pa.string())),
        ("dense_scores", pa.list_(pa.float64())),
        ("dense_positive_score", pa.float64()),
    ]
)
"""What mining stores per query: every retriever's top ``range_max`` with scores ("mine once, select many")."""

ADJUDICATED_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("kind", pa.string()),
        ("asked_ids", pa.list_(pa.string())),  # the candidates asked about, in the order asked
        ("asked_scores", pa.list_(pa.float64())),  # their retriever scores
        ("asked_sources", pa.list_(pa.string())),  # bm25 | dense
        ("verdicts", pa.list_(pa.string())),  # yes | no | unanswered | a failure kind, per asked candidate
        ("false_negative_ids", pa.list_(pa.string())),  # the confirmed ones (verdict yes)
    ]
)
"""False-negative adjudication per pair (``mine.adjudicate``): what the LLM was asked and which it confirmed."""

EXAMPLE_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("kind", pa.string()),
        ("query", pa.string()),
        ("pos", pa.list_(pa.string())),
        ("neg", pa.list_(pa.string())),
        ("pos_scores", pa.list_(pa.float64())),
        ("neg_scores", pa.list_(pa.float64())),
        ("neg_sources", pa.list_(pa.string())),
        ("positive_id", pa.string()),
        ("negative_ids", pa.list_(pa.string())),
    ]
)
"""A training example: a query, its positive and the selected negatives, as the export formats read it."""


class SchemaError(ValueError):
    """A shard whose columns or types are not its stage's schema."""


def check_schema(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in order; a clear error naming ``where`` otherwise. Columns
    whose type differs only in nullability or by a safe cast (all-null columns) are cast."""
    missing = [name for name in schema.names if name not in table.column_names]
    extra = [name for name in table.column_names if name not in schema.names]
    if missing or extra:
        raise SchemaError(f"{where}: columns do not match the schema (missing {missing}, unexpected {extra})")
    table = table.select(schema.names)
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"{where}: a column has the wrong type: {exc}") from None
