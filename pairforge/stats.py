"""StageStats: the one record of what a stage did. Every stage returns one; shard tasks return one each and the
stage's is their sum. The funnel, the manifest and the dataset card are built from the list of them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StageStats:
    """``input`` units came in, ``output`` went out, ``dropped`` counts what was left out by reason; ``details``
    holds the stage's own figures (numbers, and mappings of numbers, add up when shard stats are combined)."""

    stage: str
    unit: str
    input: int = 0
    output: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` units left out for ``reason``."""
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        """JSON form, the funnel row: ``stage, unit, in, out, dropped, details, seconds``."""
        return {
            "stage": self.stage,
            "unit": self.unit,
            "in": self.input,
            "out": self.output,
            "dropped": dict(sorted((k, v) for k, v in self.dropped.items() if v)),
            "details": self.details,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageStats:
        """The inverse of ``to_dict``."""
        return cls(
            stage=data["stage"],
            unit=data["unit"],
            input=data["in"],
            output=data["out"],
            dropped=dict(data.get("dropped", {})),
            details=dict(data.get("details", {})),
            seconds=float(data.get("seconds", 0.0)),
        )

    def save(self, path: Path) -> None:
        """Write the JSON form (aside, then renamed: a reader never sees half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> StageStats:
        """Read what ``save`` wrote."""
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def combine(stage: str, unit: str, parts: Iterable[StageStats], seconds: float = 0.0) -> StageStats:
    """One StageStats for ``stage`` from its shards' stats: counts and numeric details add up."""
    total = StageStats(stage, unit, seconds=seconds)
    for part in parts:
        total.input += part.input
        total.output += part.output
        for reason, n in part.dropped.items():
            total.drop(reason, n)
        total.details = add_details(total.details, part.details)
    return total


def add_details(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a`` plus ``b``: numbers add, mappings merge recursively, lists concatenate, other values keep the first."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, bool) or isinstance(out[key], bool):
            out[key] = bool(out[key]) and bool(value)  # flags (e.g. complete) hold only if they hold for all
        elif isinstance(value, int | float) and isinstance(out[key], int | float):
            out[key] = out[key] + value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = add_details(out[key], value)
        elif isinstance(value, list) and isinstance(out[key], list):
            out[key] = out[key] + value
    return out
