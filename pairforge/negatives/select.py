"""The select stage: training examples (query, positive, selected hard negatives) from the stored candidates of
each input shard, with the positive-aware guards of ``policy``. No retrieval, no tokenising: the pool gives texts and
MinHash signatures by position, so ``pairforge reselect`` re-runs only this with another policy.

One global step first: queries that occur more than once in the run (a human set with several positives per
question, or the same question generated for two passages), so no positive of a query becomes its negative.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pairforge.adjudicate.stage import adjudication_key, read_false_negatives
from pairforge.config import MineConfig, RunConfig
from pairforge.dedup.minhash import estimate_jaccard
from pairforge.mapping import Mapper, serial_map
from pairforge.negatives.heldout import drop_heldout_candidates, is_heldout, split_heldout
from pairforge.negatives.policy import score_means, select_all
from pairforge.pool import Pool, id_hashes
from pairforge.records import EXAMPLE_SCHEMA
from pairforge.shard_task import StageRun, run_shard_task
from pairforge.shards import ShardWriter
from pairforge.stages import get_stage
from pairforge.stats import StageStats
from pairforge.workdir import ALL, Workdir, shard_files

STAGE = "select"
UNIT = get_stage(STAGE).unit


@dataclass(frozen=True)
class SelectInputs:
    """The input shards, where their candidates are and the pool they were mined from (a workdir's own, or those of
    another workdir or a published version for ``reselect``), and what keys the candidates."""

    shards: list[str]
    candidates: Path
    pool: Path
    upstream: str
    adjudicated: Path | None = None  # false-negative verdicts (``mine.adjudicate``), where the workdir has them


class PoolIds(Sequence[str]):
    """The pool's ids as a sequence (random top-up draws from it by position)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def __len__(self) -> int:
        return self.pool.size

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return self.pool.id(i)


def run_select(
    config: RunConfig, inputs: SelectInputs, output: Workdir, *, fresh: bool = False, map_shards: Mapper = serial_map
) -> StageStats:
    """Examples for every input shard's candidates under ``config.mine``'s selection policy."""
    run = StageRun(STAGE, output)
    repeats_key = find_repeated_queries(config, inputs, output, fresh=fresh)
    select = functools.partial(select_shard, config, inputs, output, repeats_key, fresh)
    stats = run.combine(map_shards(STAGE, select, inputs.shards))
    stats.details = score_means(stats.details)
    return run.save(stats)


def find_repeated_queries(config: RunConfig, inputs: SelectInputs, output: Workdir, *, fresh: bool = False) -> str:
    """The global step: every query that occurs in more than one candidate row, with its positives, to
    ``select/_global/repeats.parquet``. Memory: 8 bytes per row, and the repeated rows."""
    work = functools.partial(_find_repeats, inputs, output)
    run_shard_task(output, f"{STAGE}.repeats", ALL, (inputs.upstream, inputs.shards), work, fresh=fresh)
    return output.key_of(STAGE, ALL)


def _find_repeats(inputs: SelectInputs, output: Workdir) -> StageStats:
    files = [f for s in inputs.shards for f in shard_files(inputs.candidates, s)]
    hashes = np.concatenate(
        [id_hashes(pq.read_table(f, columns=["query"])["query"].to_pylist()) for f in files]
        or [np.zeros(0, np.uint64)]
    )
    unique, counts = np.unique(hashes, return_counts=True)
    repeated = unique[counts > 1]
    rows: list[pa.Table] = []
    for f in files:
        table = pq.read_table(f, columns=["query", "positive_id", "positive"])
        mask = np.isin(id_hashes(table["query"].to_pylist()), repeated)
        rows.append(table.filter(pa.array(mask, pa.bool_())))
    folder = output.stage(STAGE) / "_global"
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("query", pa.string()), ("positive_id", pa.string()), ("positive", pa.string())])
    table = pa.concat_tables([r.cast(schema) for r in rows]) if rows else schema.empty_table()
    pq.write_table(table, folder / "repeats.parquet")
    return StageStats(STAGE, UNIT, details={"repeated_rows": table.num_rows})


def select_shard(
    config: RunConfig, inputs: SelectInputs, output: Workdir, repeats_key: str, fresh: bool, shard: str
) -> StageStats:
    """One shard's examples."""
    adjudicated = inputs.adjudicated if config.mine.adjudicate.enabled else None
    verdicts_key = adjudication_key(output, shard) if adjudicated else None
    work = functools.partial(_select, config, inputs, output, shard, adjudicated)
    depends_on = (repeats_key, shard, config.mine.model_dump(mode="json"), *([verdicts_key] * bool(adjudicated)))
    return run_shard_task(output, STAGE, shard, depends_on, work, fresh=fresh)


def _select(
    config: RunConfig, inputs: SelectInputs, output: Workdir, shard: str, adjudicated: Path | None
) -> StageStats:
    table = pa.concat_tables(pq.read_table(f) for f in shard_files(inputs.candidates, shard))
    candidates = [cut(row, config.mine.range_max) for row in table.to_pylist()]
    if adjudicated:
        mark_false_negatives(candidates, read_false_negatives(adjudicated, shard), config.mine)
    pool = Pool(inputs.pool)
    examples, summary = select_examples(candidates, pool, config.mine, _repeats(output))
    examples, heldout = split_heldout(examples, config.mine.heldout_share, config.mine.seed)
    outputs = [(output.examples, examples)]
    if config.mine.heldout_share:  # no held-out files at all without a split (versions list the same files)
        outputs.append((output.heldout, heldout))
        summary["heldout"] = len(heldout)
    for folder, rows in outputs:
        writer = ShardWriter(folder, shard, EXAMPLE_SCHEMA, config.ingest.shard_rows)
        for example in rows:
            writer.add(example)
        writer.close()
    stats = StageStats(STAGE, UNIT, input=len(candidates), output=len(examples), details=summary)
    stats.details["human_examples"] = sum(e["kind"] == "human" for e in examples)  # the funnel's human-pairs row
    return stats


def select_examples(
    candidates: list[dict[str, Any]], pool: Pool, config: MineConfig, repeats: pa.Table
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Examples from candidate rows: no re-encoding, no re-tokenising (the pool holds texts and signatures)."""
    positives_of: dict[str, set[str]] = {}
    twin_texts: dict[str, list[str]] = {}
    for query, pid, text in zip(*(repeats[c].to_pylist() for c in ("query", "positive_id", "positive")), strict=True):
        if pid is not None:
            positives_of.setdefault(query, set()).add(pid)
        else:
            twin_texts.setdefault(query, []).append(text)
    for c in candidates:  # this shard's own positives (also in ``repeats`` when the query repeats)
        (positives_of.setdefault(c["query"], set()).add(c["positive_id"]) if c["positive_id"]
         else twin_texts.setdefault(c["query"], []).append(c["positive"]))  # fmt: skip
    if config.heldout_share:  # a held-out passage is nobody's negative
        candidates = [drop_heldout_candidates(c, config.heldout_share, config.seed) for c in candidates]
    twins = _twin_signatures(positives_of, twin_texts, pool)
    query_of = {c["pair_id"]: c["query"] for c in candidates}
    needed = sorted({pid for c in candidates for s in ("bm25", "dense") for pid in c.get(f"{s}_ids") or []})
    position = dict(zip(needed, pool.positions(needed).tolist(), strict=True))

    def at(pid: str) -> int:
        if pid not in position:
            position[pid] = int(pool.positions([pid])[0])
        return position[pid]

    def near_duplicate(pid: str, pair_id: str) -> bool:
        if is_heldout(pid, config.heldout_share, config.seed):  # unfit for a random top-up too
            return True
        sig = pool.signatures[at(pid)]
        return any(estimate_jaccard(sig, twin) >= config.near_duplicate_threshold for twin in twins[query_of[pair_id]])

    def text_of(pid: str) -> str:
        return pool.text(at(pid))

    chosen, summary = select_all(candidates, PoolIds(pool), config, near_duplicate, text_of, positives_of)
    examples = [_example(c, negs, text_of) for c, negs in zip(candidates, chosen, strict=True)]
    return examples, summary.to_dict()


def mark_false_negatives(
    candidates: list[dict[str, Any]], confirmed: dict[str, list[str]], config: MineConfig
) -> None:
    """Give each candidate row the ids the LLM confirmed as answering its query (never its negatives) and, with
    ``adjudicate.export_positives``, the same ids as extra positives (held-out passages never: they are eval)."""
    for c in candidates:
        ids = confirmed.get(c["pair_id"], [])
        c["false_negative_ids"] = ids
        export = config.adjudicate.export_positives
        c["extra_positive_ids"] = [i for i in ids if not is_heldout(i, config.heldout_share, config.seed)] * export


def _twin_signatures(positives_of: dict[str, set[str]], texts: dict[str, list[str]], pool: Pool) -> dict[str, list]:
    """Per query, the MinHash signatures of all its positives (pool rows, or computed for positives outside it)."""
    twins: dict[str, list] = {}
    for query, ids in positives_of.items():
        twins[query] = [pool.signatures[p] for p in pool.positions(sorted(ids)).tolist() if p >= 0]
    outside = [(q, t) for q, ts in texts.items() for t in ts]
    if outside:
        for (query, _), sig in zip(outside, pool.sign([t for _, t in outside]), strict=True):
            twins.setdefault(query, []).append(sig)
    return twins


def _example(c: dict[str, Any], negs: list[tuple[str, float, str]], text_of: Any) -> dict[str, Any]:
    positive = text_of(c["positive_id"]) if c["positive_id"] else c["positive"]
    own = c["bm25_positive_score"] if c["bm25_positive_score"] is not None else c["dense_positive_score"]
    extra = c.get("extra_positive_ids") or []  # confirmed false negatives, after the pair's own positive
    return {"pair_id": c["pair_id"], "kind": c["kind"], "query": c["query"], "pos": [positive, *map(text_of, extra)],
            "neg": [text_of(pid) for pid, _, _ in negs], "pos_scores": [own or 0.0, *_scores_of(c, extra)],
            "neg_scores": [score for _, score, _ in negs], "neg_sources": [source for _, _, source in negs],
            "positive_id": c["positive_id"], "negative_ids": [pid for pid, _, _ in negs]}  # fmt: skip


def _scores_of(c: dict[str, Any], ids: list[str]) -> list[float]:
    """The retriever score of each of ``ids`` in a candidate row (BM25's where both found it)."""
    scores: dict[str, float] = {}
    for source in ("dense", "bm25"):
        scores.update(zip(c.get(f"{source}_ids") or [], c.get(f"{source}_scores") or [], strict=True))
    return [scores.get(pid, 0.0) for pid in ids]


def _repeats(output: Workdir) -> pa.Table:
    return pq.read_table(output.stage(STAGE) / "_global" / "repeats.parquet")


def cut(row: dict[str, Any], range_max: int) -> dict[str, Any]:
    """A candidate row with each retriever's list cut to ``range_max`` (a policy may use fewer than were mined)."""
    for source in ("bm25", "dense"):
        if row.get(f"{source}_ids") is not None:
            row[f"{source}_ids"] = row[f"{source}_ids"][:range_max]
            row[f"{source}_scores"] = row[f"{source}_scores"][:range_max]
    return row


def count_kinds(examples: pa.Table) -> dict[str, int]:
    """Examples per kind."""
    counts = pc.value_counts(examples["kind"]).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}
