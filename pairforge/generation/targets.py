"""Evidence-first targets: the sentences of a passage the LLM is asked about, chosen by the pipeline.

The model only writes the query (or the restatement); which sentence it is about, and so where the evidence
lies, is decided here. That puts the long-text property under the pipeline's control: on a passage longer
than ``long_chars``, at least ``long_tail_share`` of the targets start past that point (when the passage has
informative sentences there). Choices are deterministic: seeded by the kind and the passage text.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pairforge.text import CJK
from pairforge.window import trimmed_sentences

# A sentence that ends like one: an end mark, then any closing quotes or brackets. Headings and list items
# (lines without an end mark) and fragments cut by the window do not.
_ENDS_LIKE_A_SENTENCE = re.compile(r"[。！？；…!?;][”’\"'』」》）)\]]*$")
_DIGIT = re.compile(r"[0-9０-９]")
_GOLDEN = (math.sqrt(5) - 1) / 2  # a low-discrepancy step: consecutive targets of a passage get different types


@dataclass(frozen=True, slots=True)
class Target:
    """A target sentence: ``passage[start:end] == text``."""

    start: int
    end: int
    text: str


def candidate_sentences(passage: str, *, min_chars: int, max_chars: int) -> list[Target]:
    """The passage's informative sentences (whitespace trimmed), in order."""
    found = []
    for start, end in trimmed_sentences(passage):
        if is_informative(passage[start:end], min_chars=min_chars, max_chars=max_chars):
            found.append(Target(start, end, passage[start:end]))
    return found


def is_informative(sentence: str, *, min_chars: int, max_chars: int) -> bool:
    """A sentence worth a query: of a bounded length, ending like a sentence, mostly Chinese, not mostly digits."""
    if not min_chars <= len(sentence) <= max_chars or not _ENDS_LIKE_A_SENTENCE.search(sentence):
        return False
    cjk = len(CJK.findall(sentence))
    return cjk >= len(sentence) / 2 and len(_DIGIT.findall(sentence)) <= cjk / 3


def select_targets(
    passage: str,
    count: int,
    *,
    kind: str,
    long_chars: int = 512,
    long_tail_share: float = 0.5,
    min_chars: int = 12,
    max_chars: int = 80,
    exclude: Collection[tuple[int, int]] = (),
) -> list[Target]:
    """Up to ``count`` target sentences of ``passage``, spread over it, in passage order.

    On a passage longer than ``long_chars``, ``ceil(long_tail_share * n)`` of the ``n`` targets start at or past
    ``long_chars`` (fewer only if the tail has fewer informative sentences). Spans in ``exclude`` (another
    kind's targets) are avoided while enough other sentences remain.
    """
    candidates = candidate_sentences(passage, min_chars=min_chars, max_chars=max_chars)
    n = min(count, len(candidates))
    if n <= 0:
        return []
    rng = random.Random(_seed(kind, passage))
    groups = [(candidates, n)]
    if len(passage) > long_chars:
        head = [c for c in candidates if c.start < long_chars]
        tail = [c for c in candidates if c.start >= long_chars]
        n_tail = min(len(tail), math.ceil(long_tail_share * n))
        n_head = min(len(head), n - n_tail)
        groups = [(head, n_head), (tail, min(len(tail), n - n_head))]  # a short head leaves more to the tail
    chosen: list[Target] = []
    for group, k in groups:
        fresh = [c for c in group if (c.start, c.end) not in exclude]
        if len(fresh) >= k:
            chosen += _spread(fresh, k, rng)
        else:  # every fresh sentence, then reuse some of the taken ones
            chosen += fresh + _spread([c for c in group if c not in fresh], k - len(fresh), rng)
    return sorted(chosen, key=lambda t: t.start)


def assign_query_types(passage: str, count: int, mix: Mapping[Any, float]) -> list[str]:
    """A query type for each of ``count`` targets, following the weights of ``mix``.

    Each passage starts at a seeded point of a golden-ratio sequence, so over many passages the types follow the
    mix, and the targets of one passage get different types.
    """
    types = [t for t, w in mix.items() if w > 0]
    weights = [mix[t] for t in types]
    total = sum(weights)
    start = _seed("query_types", passage) / 2**256
    bounds = list(itertools.accumulate(weights))
    chosen = []
    for i in range(count):
        u = (start + i * _GOLDEN) % 1.0 * total
        chosen.append(types[min(bisect.bisect_right(bounds, u), len(types) - 1)])
    return chosen


def _spread(items: Sequence[Target], k: int, rng: random.Random) -> list[Target]:
    """``k`` items, one from each of ``k`` consecutive, near-equal bins: spread over the sequence."""
    if k <= 0:
        return []
    return [items[rng.randrange(i * len(items) // k, (i + 1) * len(items) // k)] for i in range(k)]


def _seed(kind: str, passage: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{kind}\x1f{passage}".encode()).digest(), "big")
