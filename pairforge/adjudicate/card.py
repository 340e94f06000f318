"""The card's false-negative section: who adjudicated, the margin, and the false-negative rate per kind."""

from __future__ import annotations

from typing import Any


def adjudication_section(funnel: list[dict[str, Any]]) -> str:
    """The card's adjudication section from the funnel's mine row; empty when adjudication was off (or absent)."""
    row = next((r for r in funnel if r["stage"] == "mine"), None)
    a = None if row is None else row.get("details", {}).get("adjudication")
    if not a:
        return ""
    lines = [
        "## False negatives\n",
        f"Mined candidates that outrank a pair's positive or score within {a['margin']:g} (relative) of it were "
        f"asked to the LLM ({a.get('model', '-')}, prompt {a.get('prompt', '-')}): does this passage answer the "
        "query / state the sentence? A confirmed candidate is never a negative. The false-negative rate is the "
        "share of asked candidates the LLM confirmed.\n",
        "| kind | pairs asked about | candidates asked | confirmed | false-negative rate | pairs with one | "
        "no verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, c in sorted(a.get("by_kind", {}).items()):
        asked, confirmed = c.get("asked", 0), c.get("confirmed", 0)
        rate = f"{confirmed / asked:.1%}" if asked else "-"
        lines.append(
            f"| {kind} | {c.get('pairs', 0):,} | {asked:,} | {confirmed:,} | {rate} | "
            f"{c.get('pairs_with_false_negatives', 0):,} | {c.get('failed', 0) + c.get('unanswered', 0):,} |"
        )
    return "\n".join(lines) + "\n"
