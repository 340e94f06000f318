"""Which sentence of a passage a restatement restates: the one sharing most of its character bigrams.

A small model asked to restate a target sentence often restates a neighbouring one. The evidence recorded for such
a pair (the target's offsets, and every figure built on them, such as the share of evidence past char 512) is then
not what the pair is about; locating the restated sentence gives the true evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from pairforge.text import strip_punctuation
from pairforge.window import trimmed_sentences

# A target that scores within this much of the best sentence keeps its place: bigram shares of a short restatement
# move in steps of 1/len, and a near tie says nothing about which sentence was restated.
TIE_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Located:
    """The best-matching sentence ``passage[start:end]`` and the share of the restatement's bigrams it holds."""

    start: int
    end: int
    overlap: float


def bigrams(text: str) -> set[str]:
    """The distinct character bigrams of ``text``, punctuation and spaces removed."""
    t = strip_punctuation(text)
    return {t[i : i + 2] for i in range(len(t) - 1)}


def bigram_overlap(text: str, source: str) -> float:
    """Share of the distinct character bigrams of ``text`` that occur in ``source`` (punctuation ignored); 0.0
    for a text without bigrams."""
    grams = bigrams(text)
    return len(grams & bigrams(source)) / len(grams) if grams else 0.0


def locate_restated(sentence: str, passage: str, target: tuple[int, int] | None = None) -> Located | None:
    """The sentence of ``passage`` that ``sentence`` restates, or None when the passage has no sentence.

    The best sentence holds the largest share of the restatement's bigrams (ties: the one with fewer bigrams of its
    own, i.e. the closer match, then the first). ``target`` (start, end), the sentence the restatement was asked
    for, wins when it scores within ``TIE_MARGIN`` of the best.
    """
    grams = bigrams(sentence)
    best: tuple[float, float, int, int] | None = None  # (overlap, -share of its own bigrams not shared, -start, end)
    for start, end in trimmed_sentences(passage):
        own = bigrams(passage[start:end])
        shared = len(grams & own)
        score = (shared / len(grams) if grams else 0.0, -(len(own) - shared) / max(len(own), 1), -start, end)
        if best is None or score > best:
            best = score
    if best is None:
        return None
    if target is not None:
        target_overlap = bigram_overlap(sentence, passage[target[0] : target[1]])
        if target_overlap >= best[0] - TIE_MARGIN:
            return Located(target[0], target[1], target_overlap)
    return Located(-best[2], best[3], best[0])
