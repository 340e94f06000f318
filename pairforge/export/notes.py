"""What a version left out that a user would otherwise not see: human questions held out as evaluation data, and
training formats that wrote fewer rows than there are examples (a ``sentence-transformers`` folder that is simply
absent), each with the setting to change. ``pairforge run`` prints these lines last; the card lists them."""

from __future__ import annotations

import re
from typing import Any

from pairforge.human_counts import HUMAN_ROW

FOLDERS = {"sentence_transformers": "sentence-transformers"}  # FormatCounts' name → the version's folder
_FEWER = re.compile(r"fewer_than_(\d+)_negatives")


def describe_human_pairs(manifest: dict[str, Any]) -> str | None:
    """One line on what became of this run's human pairs (None when it read none): the funnel table shows in, out
    and drops; this adds where the positives came from and the scored pairs."""
    row = next((r for r in manifest.get("funnel", []) if r["stage"] == HUMAN_ROW), None)
    if row is None:
        return None
    d = row["details"]
    drops = ", ".join(f"{n:,} {reason}" for reason, n in sorted(row["dropped"].items()))
    line = (f"human pairs: {row['in']:,} read, {d['kept_as_examples']:,} kept as examples"
            f" ({d['matched_to_pool_passage']:,} with a pool passage as positive, {d['positive_outside_pool']:,} with"
            " their own paragraph)")  # fmt: skip
    line += f"; dropped: {drops}" if drops else ""
    return line + (f"; {d['scored_pairs']:,} scored pairs for the cosent format" if d.get("scored_pairs") else "")


def describe_left_out(manifest: dict[str, Any]) -> list[str]:
    """One line per thing left out of this run's part of the version (empty when nothing was)."""
    rows = {row["stage"]: row for row in manifest.get("funnel", [])}
    lines = []
    human = rows.get(HUMAN_ROW)
    if human and human["details"].get("eval"):
        held, kept = human["details"]["eval"], human["details"].get("kept_as_examples", 0)
        also = f" ({kept:,} others kept as training examples)" if kept else ""
        lines.append(
            f"human pairs: {held:,} human questions held out as evaluation data (`role: eval`, the default of a "
            f"`squad` corpus; in data/human_pairs/){also}; to train on them, set `role: train` on their corpus entry"
        )
    examples = rows.get("export", {}).get("in", 0)
    for fmt, reasons in sorted((manifest.get("dropped") or {}).items()):
        folder = FOLDERS.get(fmt, fmt)
        written = sum(n for path, n in (manifest.get("formats") or {}).items() if path.startswith(f"{folder}/"))
        what = f"{written:,} rows written" if fmt == "cosent" else f"{written:,} of {examples:,} examples written"
        why = "; ".join(f"`{reason}` {n:,}{_remedy(reason)}" for reason, n in sorted(reasons.items()))
        absent = f", no {folder}/ folder in this run" if written == 0 else ""
        lines.append(f"{folder}: {what}{absent}; left out: {why}")
    return lines


def _remedy(reason: str) -> str:
    """The setting that changes how many rows a drop reason leaves out."""
    fewer = _FEWER.fullmatch(reason)
    if fewer:
        return (f" (each row needs `mine.num_negatives` = {fewer.group(1)} negatives: lower it, or raise "
                "`mine.range_max` / give the pool more passages)")  # fmt: skip
    if reason == "no_negatives":
        return " (no negative survived the guards: raise `mine.range_max` or give the pool more passages)"
    if reason == "held_out":
        return " (scored pairs with `role: eval`: held out from training)"
    if reason == "unlabelled":
        return " (pairs without a label, e.g. a test split: nothing to change)"
    return ""
