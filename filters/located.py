"""Located evidence (sp): the evidence of a restatement is the passage sentence it actually restates, found by
character-bigram overlap, not the sentence it was asked about. A small model often restates a neighbour of its
target; such a pair is kept with the true offsets (``filter.locate_evidence: relocate``, the default) or dropped as
``off_target`` (``drop``). A restatement sharing less than ``filter.sp_min_evidence_overlap`` of its bigrams with
its evidence restates nothing in the passage and is dropped as ``not_restated``."""

from __future__ import annotations

from typing import Any

from pairforge.config import FilterConfig
from pairforge.restated import bigram_overlap, locate_restated


def check_located(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``off_target``, ``not_restated`` or None for a restatement (other kinds: None); with ``relocate`` the pair's
    evidence fields are set, in place, to the restated sentence (``evidence_method`` ``located``)."""
    if pair.get("kind") != "sp":
        return None
    passage, start = pair["positive"], pair.get("evidence_start")
    recorded = (start, pair["evidence_end"]) if start is not None else None
    if config.locate_evidence == "off":
        evidence = passage[recorded[0] : recorded[1]] if recorded else passage
        return "not_restated" if bigram_overlap(pair["query"], evidence) < config.sp_min_evidence_overlap else None
    found = locate_restated(pair["query"], passage, recorded)
    if found is None or found.overlap < config.sp_min_evidence_overlap:
        return "not_restated"
    if (found.start, found.end) != recorded:
        # Only a sentence the pipeline chose (evidence-first) was asked for; evidence the model quoted is just moved.
        if config.locate_evidence == "drop" and pair.get("evidence_method") == "target":
            return "off_target"
        pair["evidence"] = passage[found.start : found.end]
        pair["evidence_start"], pair["evidence_end"], pair["evidence_method"] = found.start, found.end, "located"
    return None
