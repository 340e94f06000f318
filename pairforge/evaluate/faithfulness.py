"""Faithfulness of a sample of pairs, by rules a reader would apply (issue 20's "Done when"):

- a restatement (``sp``) restates its recorded evidence: at least ``min_overlap`` (0.3) of its character bigrams
  occur in ``positive[evidence_start:evidence_end]`` (or in ``evidence`` when no offsets are recorded), and it
  holds no number or Latin-script word absent from its passage;
- a query (``qp``, and any other kind) holds no number or Latin-script word absent from its passage.

Cheap and model-free, so a benchmark can report the faithful share of any version or sample.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pairforge.grounding import find_unsupported
from pairforge.restated import bigram_overlap


@dataclass(slots=True)
class Faithfulness:
    """Pairs scored and pairs faithful, overall and by kind; ``reasons`` counts why pairs were not faithful
    (``unsupported``, ``not_restated``: one reason per pair, tokens first)."""

    pairs: int = 0
    faithful: int = 0
    pairs_by_kind: Counter[str] = field(default_factory=Counter)
    faithful_by_kind: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def share(self, kind: str | None = None) -> float:
        """The faithful share of all pairs, or of one ``kind``'s; 0.0 when there are none."""
        n = self.pairs if kind is None else self.pairs_by_kind[kind]
        k = self.faithful if kind is None else self.faithful_by_kind[kind]
        return k / n if n else 0.0


def score_faithfulness(pairs: Iterable[Mapping[str, Any]], *, min_overlap: float = 0.3) -> Faithfulness:
    """Score ``pairs`` (rows with ``kind``, ``query``, ``positive`` and, for sp, ``evidence_start``/``evidence_end``
    or ``evidence``) by the rules above."""
    score = Faithfulness()
    for pair in pairs:
        kind = pair.get("kind") or "qp"
        reason = unfaithful_reason(pair, min_overlap)
        score.pairs += 1
        score.pairs_by_kind[kind] += 1
        if reason is None:
            score.faithful += 1
            score.faithful_by_kind[kind] += 1
        else:
            score.reasons[reason] += 1
    return score


def unfaithful_reason(pair: Mapping[str, Any], min_overlap: float = 0.3) -> str | None:
    """``unsupported``, ``not_restated`` or None (faithful) for one pair."""
    if find_unsupported(pair["query"], pair["positive"], names=False):
        return "unsupported"
    if pair.get("kind") == "sp":
        start, end = pair.get("evidence_start"), pair.get("evidence_end")
        evidence = pair["positive"][start:end] if start is not None and end is not None else pair.get("evidence")
        if not evidence or bigram_overlap(pair["query"], evidence) < min_overlap:
            return "not_restated"
    return None
