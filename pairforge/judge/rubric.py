"""The judge's rubric: rendering one pair into the judge prompt, and parsing the answer into scores.

Pure functions. An answer gives three integer scores from 1 to 5 (``CRITERIA``), or a failure of one kind:
``empty``, ``truncated``, ``refusal``, ``invalid_json``, ``missing_score``, ``out_of_range``. Recovery is as
tolerant as generation's (code fences, prose around the JSON, integral floats, a digit as a string), but a
score outside 1..5 is never clipped into range: that answer is ``out_of_range``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pairforge.generation.parse import REFUSAL, extract_json
from prompts import Prompt, render_values

CRITERIA = ("relevance", "faithfulness", "clarity")
FAILURE_KINDS = ("empty", "truncated", "refusal", "invalid_json", "missing_score", "out_of_range")
LABELS = {"qp": "问题", "sp": "复述句"}  # what the prompt calls the generated text of each kind
LOW, HIGH = 1, 5


@dataclass(frozen=True, slots=True)
class Verdict:
    """The scores of one answer (criterion → 1..5), or the failure that gave none."""

    scores: dict[str, int] | None = None
    failure: str | None = None

    @property
    def mean(self) -> float | None:
        """The mean of the three scores (None without scores)."""
        return None if self.scores is None else sum(self.scores.values()) / len(self.scores)


def render_judge(prompt: Prompt, *, kind: str, query: str, passage: str) -> list[dict[str, str]]:
    """The chat messages asking the judge to score one pair of ``kind`` (qp or sp)."""
    if kind not in LABELS:
        raise ValueError(f"the judge scores qp and sp pairs, not {kind!r}")
    # One line: a newline in a generated query must not start a line of its own in the prompt.
    return render_values(prompt, passage=passage, query=" ".join(query.split()), label=LABELS[kind])


def parse_verdict(raw: str, finish_reason: str = "stop") -> Verdict:
    """The scores in one judge answer, or why there are none."""
    text = raw.strip()
    if not text:
        return Verdict(failure="empty")
    obj = extract_json(text)
    if obj is None:
        if finish_reason == "length":
            return Verdict(failure="truncated")
        return Verdict(failure="refusal" if REFUSAL.search(text) else "invalid_json")
    scores: dict[str, int] = {}
    for name in CRITERIA:
        if name not in obj:
            return Verdict(failure="missing_score")
        score = _as_score(obj[name])
        if score is None:
            return Verdict(failure="out_of_range")
        scores[name] = score
    return Verdict(scores=scores)


def _as_score(value: Any) -> int | None:
    """An integer 1..5 from what a model may write for one (4, 4.0, "4"); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and LOW <= value <= HIGH:
        return value
    return None
