"""The judge's section of the dataset card: who judged, the cut, and the score distribution of this run's pairs."""

from __future__ import annotations

from typing import Any

from pairforge.judge.rubric import CRITERIA, HIGH, LOW


def judge_section(funnel: list[dict[str, Any]]) -> str:
    """The card's judge section from the funnel's judge row; empty when the judge was off (or absent)."""
    row = next((r for r in funnel if r["stage"] == "judge"), None)
    if row is None or not row.get("details", {}).get("enabled"):
        return ""
    d = row["details"]
    cut = d.get("cut", {})
    rules = [f"mean score ≥ {cut['min_score']}"] if cut.get("min_score") is not None else []
    rules += [f"{name} ≥ {score}" for name, score in sorted(cut.get("min_scores", {}).items())]
    dropped = ", ".join(f"{reason} {n:,}" for reason, n in row["dropped"].items()) or "none"
    lines = [
        "## Judge\n",
        f"Every pair the filters kept in this run was scored by the LLM judge ({d.get('model', '-')}, prompt "
        f"{d.get('prompt', '-')}) on relevance, faithfulness to the passage and clarity, each 1 to 5. "
        f"Cut: {' and '.join(rules) or 'none'}. Kept {row['out']:,} of {row['in']:,} pairs; dropped: {dropped}.\n",
        "| score | " + " | ".join(CRITERIA) + " |",
        "| ---: | " + " | ".join("---:" for _ in CRITERIA) + " |",
    ]
    scores = d.get("scores", {})
    for score in range(HIGH, LOW - 1, -1):
        counts = [f"{scores.get(name, {}).get(str(score), 0):,}" for name in CRITERIA]
        lines.append(f"| {score} | " + " | ".join(counts) + " |")
    if d.get("failures"):
        failures = ", ".join(f"{kind} {n:,}" for kind, n in sorted(d["failures"].items()))
        lines.append(f"\nAnswers that gave no scores (the pair is dropped as judge_no_scores): {failures}.")
    return "\n".join(lines) + "\n"
