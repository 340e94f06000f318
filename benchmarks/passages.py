"""Real Chinese passages of 200-1000 characters built from ../shared/data, for the dedup benchmarks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

SHARED = Path(os.environ.get("PAIRFORGE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _sentences() -> Iterator[str]:
    for name in ("cmrc2018_dev.squad.json", "cmrc2018_trial.squad.json"):
        data = json.loads((SHARED / "cmrc2018" / name).read_text(encoding="utf-8"))
        for article in data["data"]:
            for para in article["paragraphs"]:
                yield from (s + "。" for s in para["context"].split("。") if s)
    for line in (SHARED / "simclue" / "corpus_1w.txt").read_text(encoding="utf-8").splitlines():
        yield line
    for name in ("train_pair_1w.json", "test_public.json"):
        for line in (SHARED / "simclue" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            yield row["sentence1"]
            yield row["sentence2"]
    for path in sorted((SHARED / "pairs").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            yield from line.split("\t")[:2]


def real_passages(count: int, min_chars: int = 200, max_chars: int = 1000) -> list[str]:
    """``count`` passages made of consecutive real sentences (cycling with a shifted start if needed)."""
    sentences = [s for s in _sentences() if s.strip()]
    out: list[str] = []
    offset = 0
    target = [min_chars + (i * 37) % (max_chars - min_chars) for i in range(count)]  # spread of lengths
    while len(out) < count:
        buf = ""
        for sentence in sentences[offset:] + sentences[:offset]:
            if len(buf) + len(sentence) > max_chars:
                buf = ""
            buf += sentence
            if len(buf) >= target[len(out)]:
                out.append(buf)
                buf = ""
                if len(out) == count:
                    break
        offset += 7
    return out
