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
    path: str = Field(description="A file or a glob of shards; .gz and .zst are read transparently.")
    name: str | None = Field(default=None, description="Source label on every record; defaults to the format.")
    encoding: str = Field(
        default="utf-8", description="Text encoding of the files: utf-8, or gb18030 for GBK corpora (see README)."
    )

    @property
    def source(self) -> str:
        return self.name or self.format  # type: ignore[attr-defined]

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str) -> str:
        return canonical_encoding(value)


class WudaoCorpus(_CorpusBase):
    format: Literal["wudao"]
    records_key: str = Field(
        default="RECORDS", description="Key of the record array in dump files shaped {KEY: [...]}"
    )


class M3eCorpus(_CorpusBase):
    format: Literal["m3e"]
    documents: bool = Field(default=True, description="Also turn the passage-side texts into documents.")


class SimclueCorpus(_CorpusBase):
    format: Literal["simclue"]
    documents: bool = True


class PairsTsvCorpus(_CorpusBase):
    format: Literal["pairs_tsv"]
    documents: bool = False


class SquadCorpus(_CorpusBase):
    format: Literal["squad"]
    role: Literal["train", "eval"] = Field(default="eval", description="Human questions are held out by default.")


class JsonlCorpus(_CorpusBase):
    format: Literal["jsonl"]
    text_field: str = "text"
    title_field: str | None = "title"
    id_field: str | None = "id"


class ParquetCorpus(_CorpusBase):
    format: Literal["parquet"]
    text_field: str = "text"
    title_field: str | None = "title"
    id_field: str | None = "id"

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
    t2s: bool = Field(default=False, description="Traditional → simplified Chinese with OpenCC.")
    fold_punctuation: bool = Field(default=False, description="Also fold Chinese full-width punctuation to ASCII.")


class WindowConfig(Strict):
    max_length: int = Field(default=1024, gt=0, description="Upper bound per passage, in tokens (or characters).")
    min_length: int = Field(default=64, ge=1, description="Shorter windows are dropped (counted as too_short).")
    overlap: int = Field(
        default=0, ge=0, description="Trailing sentences up to this length repeat in the next window."
    )
    tokenizer: str | None = Field(default=None, description="Local Hugging Face tokenizer folder; None = characters.")
    long_chars: int = Field(default=512, gt=0, description="Passages longer than this many characters are 'long'.")
    long_short_ratio: float | None = Field(
        default=2.0, gt=0, description="Keep at most 1 short passage per this many long ones; None keeps all."
    )
    seed: int = 0

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
