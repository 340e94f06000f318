"""What became of the human pairs of a run, as one funnel row: read at ingest, held out for evaluation (``role:
eval``), matched to a pool passage at mining, kept as examples by select. The stages count their part in their
StageStats' details (ingest ``human``, mine ``human_queries`` and ``human_in_pool``, select ``human_examples``);
this adds them up, so the funnel, the manifest, the card and the run's closing lines all read the same figures.

Only positive pairs (a question or sentence with its passage) can become examples; scored pairs (STS-B, AFQMC) go
to the ``cosent`` format instead and are counted in the row's details, not in its input."""

from __future__ import annotations

from collections.abc import Sequence

from pairforge.stats import StageStats

HUMAN_ROW = "human-pairs"
UNIT = "pairs → examples"


def count_human_pairs(funnel: Sequence[StageStats]) -> StageStats | None:
    """The ``human-pairs`` funnel row from a run's stage stats, or None when the run read no human pair."""
    by_stage = {s.stage: s.details for s in funnel}
    read = by_stage.get("ingest", {}).get("human") or {}
    if not read.get("read"):
        return None
    mine, select = by_stage.get("mine", {}), by_stage.get("select", {})
    train, held_out, empty = read.get("train", 0), read.get("eval", 0), read.get("empty_text", 0)
    kept = select.get("human_examples", 0)
    queries, in_pool = mine.get("human_queries", 0), mine.get("human_in_pool", 0)
    row = StageStats(HUMAN_ROW, UNIT, input=train + held_out + empty, output=kept)
    row.drop("held_out_eval", held_out)
    row.drop("empty_text", empty)
    # Select makes an example of every mined query; a shortfall means a stage did not run over every shard.
    row.drop("not_mined", max(0, train - queries))
    row.drop("not_selected", max(0, queries - kept))
    row.details = {
        "read": read.get("read", 0),
        "train": train,
        "eval": held_out,
        "scored_pairs": read.get("scored", 0),
        "matched_to_pool_passage": in_pool,
        "positive_outside_pool": queries - in_pool,
        "kept_as_examples": kept,
    }
    return row
