"""Planted near-duplicates over real CMRC 2018 passages, with exact-Jaccard ground truth."""

from __future__ import annotations

import json
import random
from itertools import combinations
from pathlib import Path

from pairforge.dedup.minhash import char_shingles


def real_passages(shared_data: Path, count: int) -> list[str]:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    texts = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    return [t for t in texts if 200 <= len(t) <= 1000][:count]


def edit(text: str, rate: float, rng: random.Random) -> str:
    """Replace about ``rate`` of the characters with others from the same text."""
    chars = list(text)
    for i in rng.sample(range(len(chars)), k=max(1, int(len(chars) * rate))):
        chars[i] = rng.choice(text)
    return "".join(chars)


def planted_set(shared_data: Path, originals: int, seed: int = 0) -> list[str]:
    """Originals, each of the first half with a near copy (J ~0.88-0.97) and the next quarter with a far
    variant (J ~0.3-0.6)."""
    rng = random.Random(seed)
    base = real_passages(shared_data, originals)
    texts = list(base)
    for i, text in enumerate(base):
        if i < originals // 2:
            texts.append(edit(text, rng.uniform(0.003, 0.012), rng))
        elif i < originals * 3 // 4:
            texts.append(edit(text, rng.uniform(0.06, 0.15), rng))
    return texts


def exact_jaccard(a: str, b: str, n: int = 5) -> float:
    sa, sb = set(char_shingles(a, n)), set(char_shingles(b, n))
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def true_pairs(texts: list[str], threshold: float) -> set[tuple[int, int]]:
    shingles = [set(char_shingles(t, 5)) for t in texts]
    return {
        (i, j)
        for i, j in combinations(range(len(texts)), 2)
        if len(shingles[i] & shingles[j]) / len(shingles[i] | shingles[j]) >= threshold
    }
