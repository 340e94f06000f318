"""Evidence: a generated pair must point at text of its passage. A pair whose evidence could not be located
(the model invented it) is dropped as ``evidence_not_found`` (``filter.require_evidence``)."""

from __future__ import annotations

from typing import Any

from pairforge.config import FilterConfig


def check_evidence(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``evidence_not_found`` when the pair has no evidence offsets in its passage, else None."""
    if config.require_evidence and "evidence_start" in pair and pair["evidence_start"] is None:
        return "evidence_not_found"
    return None
