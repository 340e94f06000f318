"""The records that stages exchange (see DESIGN.md, "Stages and data contracts")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


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
