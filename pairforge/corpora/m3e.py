"""m3e / uniem pair sets: {text, text_pos[, text_neg]}, {query, pos, neg} (FlagEmbedding), {instruction,
output}, and scored {text1|sentence1, text2|sentence2, label}."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pairforge.config import M3eCorpus
from pairforge.corpora.files import get_text, get_texts, read_json_records
from pairforge.records import HumanPair, Record


def read_m3e(path: str, corpus: M3eCorpus) -> Iterator[Record]:
    """Yield the HumanPairs of one m3e/uniem JSONL shard (ingest turns their texts into documents)."""
    name = Path(path).name
    return read_json_records(
        path, lambda obj, line: parse_m3e_record(obj, f"{name}:L{line}", corpus.source), corpus.encoding
    )


def parse_m3e_record(obj: dict[str, Any], pair_id: str, source: str) -> list[HumanPair] | str:
    """The pairs one record holds, or a drop reason (``unknown_layout``, ``wrong_type``, ``invalid_label``)."""
    if "query" in obj and "pos" in obj:
        query, positives, negatives = get_text(obj, "query"), get_texts(obj, "pos"), get_texts(obj, "neg") or []
        if query is None or not positives:
            return "wrong_type"
        return [
            HumanPair(f"{pair_id}#{i}" if i else pair_id, source, "positive", query, pos, list(negatives))
            for i, pos in enumerate(positives)
        ]
    for anchor, positive, negative in (("text", "text_pos", "text_neg"), ("instruction", "output", None)):
        if anchor in obj and positive in obj:
            a, p = get_text(obj, anchor), get_text(obj, positive)
            n = get_texts(obj, negative) if negative and negative in obj else []
            if a is None or p is None or n is None:
                return "wrong_type"
            return [HumanPair(pair_id, source, "positive", a, p, n)]
    for first, second in (("text1", "text2"), ("sentence1", "sentence2")):
        if first in obj and second in obj:
            a, b = get_text(obj, first), get_text(obj, second)
            if a is None or b is None:
                return "wrong_type"
            label = parse_label(obj.get("label"))
            if label is None:
                return "invalid_label"
            return [HumanPair(pair_id, source, "scored", a, b, label=label)]
    return "unknown_layout"


def parse_label(value: Any) -> float | None:
    """A numeric label from an int, float or numeric string ("1", "4.2"); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        label = float(value)
    elif isinstance(value, str):
        try:
            label = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return label if math.isfinite(label) else None  # NaN and inf are no grade
