"""Counts of a SQuAD-style file computed from its JSON, so tests state what the data holds instead of copying
numbers from it."""

from __future__ import annotations

import json
from pathlib import Path


def squad_counts(path: Path) -> tuple[int, int]:
    """(paragraphs, questions) in the SQuAD-style file at ``path``."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    paragraphs = [p for article in raw["data"] for p in article["paragraphs"]]
    return len(paragraphs), sum(len(p["qas"]) for p in paragraphs)
