"""The config's error type, its strict base model, and the input sections: corpora, normalize, window, ingest."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pairforge.config_rules import (
    canonical_encoding,
)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


class Strict(BaseModel):
    # hide_input_in_errors: a rejected value (a key pasted into api_key_env) never reaches an error message.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class _CorpusBase(Strict):
    path: str = Field(
        description="A file or a glob of shards; .gz and .zst are read transparently; what is not a regular file "
        "(folders, FIFOs, dangling links) is skipped with a warning."
    )
    name: str | None = Field(default=None, description="Source label on every record; defaults to the format.")
    encoding: str = Field(
        default="utf-8",
        description="Text encoding of the files: utf-8, or gb18030 for GBK / GB2312 corpora (their superset, read "
        "byte for byte); gbk, gb2312, big5 and big5hkscs too, spelled any way Python knows. Encodings in which a "
        "newline byte can occur inside a character (UTF-16, UTF-32, EBCDIC) are refused: lines are split before "
        "they are decoded. Parquet takes none (its strings are UTF-8).",
    )

    @property
    def source(self) -> str:
        return self.name or self.format  # type: ignore[attr-defined]

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str) -> str:
        return canonical_encoding(value)


class WudaoCorpus(_CorpusBase):
    """WuDao JSON Lines ``{title, text, id, ...}``, or the dump layout: a JSON array (or ``{"RECORDS": [...]}``) of
    ``{id, uniqueKey, titleUkey, dataType, title, content}``, streamed."""

    format: Literal["wudao"]
    records_key: str = Field(
        default="RECORDS", description="Key of the record array in dump files shaped {KEY: [...]}"
    )


class M3eCorpus(_CorpusBase):
    """uniem / m3e pair sets: ``{text, text_pos[, text_neg]}``, ``{query, pos, neg}``, ``{instruction, output}``,
    scored ``{text1|sentence1, text2|sentence2, label}``; the pairs are kept as human pairs."""

    format: Literal["m3e"]
    documents: bool = Field(default=True, description="Also turn the passage-side texts into documents.")


class SimclueCorpus(_CorpusBase):
    """SimCLUE JSON Lines ``{sentence1, sentence2, label}``, ``{query, title[, neg_title]}``; ``*.txt`` sentence
    corpora give one document per line. The pairs are kept as human pairs."""

    format: Literal["simclue"]
    documents: bool = Field(default=True, description="Also turn the pairs' texts into documents.")


class PairsTsvCorpus(_CorpusBase):
    """AFQMC / LCQMC / STS-B: ``s1 \\t s2 [\\t label]``, no header (two columns: an unlabelled split)."""

    format: Literal["pairs_tsv"]
    documents: bool = Field(default=False, description="Also turn the pairs' sentences into documents.")


class SquadCorpus(_CorpusBase):
    """SQuAD-style JSON (CMRC 2018): each paragraph is a document, each question a human pair (with its answers)."""

    format: Literal["squad"]
    role: Literal["train", "eval"] = Field(
        default="eval",
        description="eval: the questions are held out from training (counted as held_out_eval in the funnel); "
        "train: every question becomes an example.",
    )


class JsonlCorpus(_CorpusBase):
    """Any JSON Lines records with a text field."""

    format: Literal["jsonl"]
    text_field: str = Field(default="text", description="The field holding the document's text.")
    title_field: str | None = Field(default="title", description="The title field (None: no title).")
    id_field: str | None = Field(
        default="id",
        description="The document id field (None, or a record without it: the file name and line number).",
    )


class ParquetCorpus(_CorpusBase):
    """Any Parquet records with a text field."""

    format: Literal["parquet"]
    text_field: str = Field(default="text", description="The field holding the document's text.")
    title_field: str | None = Field(default="title", description="The title field (None: no title).")
    id_field: str | None = Field(
        default="id",
        description="The document id field (None, or a record without it: the file name and line number).",
    )

    @model_validator(mode="after")
    def _check_no_encoding(self) -> ParquetCorpus:
        if self.encoding != "utf-8":
            raise ValueError("encoding does not apply to Parquet: its strings are always UTF-8")
        return self


CorpusConfig = Annotated[
    WudaoCorpus | M3eCorpus | SimclueCorpus | PairsTsvCorpus | SquadCorpus | JsonlCorpus | ParquetCorpus,
    Field(discriminator="format"),
]


class NormalizeConfig(Strict):
    """Normalisation, once, at ingest, of every text field of a record (passages, titles, queries, pair
    sentences, shipped negatives, SQuAD answers): NFKC, which folds full-width letters, digits and symbols;
    Chinese punctuation kept unless ``fold_punctuation``; control and zero-width characters removed; runs of
    spaces collapse to one space and any whitespace run holding a newline to one newline; OpenCC t2s when
    ``t2s``."""

    t2s: bool = Field(default=False, description="Traditional → simplified Chinese with OpenCC.")
    fold_punctuation: bool = Field(default=False, description="Also fold ，！？；：（）…～ to ASCII.")


class WindowConfig(Strict):
    """Windowing cuts documents into passages on sentence ends (``。！？；…`` and ``!?;``, a ``.`` followed by
    whitespace, newlines), packing whole sentences up to ``max_length``; a sentence longer than that is cut at a
    clause mark (``，、：``) in its second half, else at the limit. Token lengths come from one tokenisation of
    the whole document with the configured fast tokenizer. Passage ids are a hash of (source, document id,
    start, end), so reruns give the same ids. Length sampling keeps every long passage and a seeded-hash choice
    of short ones per input shard, streaming and deterministic.

    Checked: ``min_length <= max_length`` and ``overlap < max_length``."""

    max_length: int = Field(default=1024, gt=0, description="Upper bound per passage, in tokens (or characters).")
    min_length: int = Field(default=64, ge=1, description="Shorter windows are dropped (counted as too_short_window).")
    overlap: int = Field(
        default=0, ge=0, description="Trailing sentences up to this length repeat in the next window."
    )
    tokenizer: str | None = Field(
        default=None,
        description="Local Hugging Face tokenizer folder (the student model's, e.g. models/bge); None = characters.",
    )
    long_chars: int = Field(default=512, gt=0, description="Passages longer than this many characters are 'long'.")
    long_short_ratio: float | None = Field(
        default=2.0, gt=0, description="Keep at most 1 short passage per this many long ones; None keeps all."
    )
    seed: int = Field(default=0, description="Seeds the choice of short passages kept.")

    @model_validator(mode="after")
    def _check_bounds(self) -> WindowConfig:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) is larger than max_length ({self.max_length})")
        if self.overlap >= self.max_length:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than max_length ({self.max_length})")
        return self


class IngestConfig(Strict):
    shard_rows: int = Field(default=20_000, gt=0, description="Passages per Parquet shard.")
    max_document_chars: int = Field(default=2_000_000, gt=0, description="Longer documents are quarantined.")
