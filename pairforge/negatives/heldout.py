"""The held-out split of a version: pool passages chosen by a seeded hash of their id (``mine.heldout_share``).
After passage dedup each pool passage stands for its MinHash cluster, so holding out passages holds out clusters.
A held-out passage's examples are never trained on, and the passage is never a negative of a training example."""

from __future__ import annotations

import hashlib
from typing import Any

_SCALE = float(1 << 64)


def is_heldout(passage_id: str | None, share: float, seed: int) -> bool:
    """Whether the pool passage ``passage_id`` is held out; a positive outside the pool (None) never is."""
    if not passage_id or share <= 0:
        return False
    digest = hashlib.sha256(f"heldout\x1f{seed}\x1f{passage_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE < share


def drop_heldout_candidates(row: dict[str, Any], share: float, seed: int) -> dict[str, Any]:
    """A candidate row without held-out passages among its retrievers' lists (so none becomes a negative)."""
    for source in ("bm25", "dense"):
        ids = row.get(f"{source}_ids")
        if ids is None:
            continue
        keep = [i for i, pid in enumerate(ids) if not is_heldout(pid, share, seed)]
        row[f"{source}_ids"] = [ids[i] for i in keep]
        row[f"{source}_scores"] = [row[f"{source}_scores"][i] for i in keep]
    return row


def split_heldout(
    examples: list[dict[str, Any]], share: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training examples, held-out examples): an example is held out when its positive is a held-out passage."""
    train: list[dict[str, Any]] = []
    heldout: list[dict[str, Any]] = []
    for example in examples:
        (heldout if is_heldout(example["positive_id"], share, seed) else train).append(example)
    return train, heldout
