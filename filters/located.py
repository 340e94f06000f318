"""Located evidence (sp): the evidence of a restatement is the passage sentence it actually restates, found by
character-bigram overlap, not the sentence it was asked about. A small model often restates a neighbour of its
target; such a pair is kept with the true offsets (``filter.locate_evidence: relocate``, the default) or dropped as
``off_target`` (``drop``). A restatement sharing less than ``filter.sp_min_evidence_overlap`` of its bigrams with
its evidence restates nothing in the passage and is dropped as ``not_restated``. A query (qp) sharing no character
bigram with the target sentence it was asked about is ``off_target`` too (``filter.qp_off_target``); a query is
not relocated (bigram overlap finds the sentence holding a question's answer too rarely for that)."""

from __future__ import annotations

from typing import Any

from pairforge.config import FilterConfig
from pairforge.restated import bigram_overlap, locate_restated


def check_located(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``off_target``, ``not_restated`` or None; with ``relocate`` a restatement's evidence fields are set, in place,
    to the restated sentence (``evidence_method`` ``located``)."""
    passage, start = pair["positive"], pair.get("evidence_start")
    if pair.get("kind") == "qp":
        asked = pair.get("evidence_method") == "target" and start is not None
        if config.qp_off_target and asked and not bigram_overlap(pair["query"], passage[start : pair["evidence_end"]]):
            return "off_target"
        return None
    if pair.get("kind") != "sp":
        return None
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
