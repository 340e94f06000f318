"""False-negative adjudication, the mine stage's opt-in second step (``mine.adjudicate``).

Like the judge, two steps. **Send**: one task per partition of the key space asks the LLM for the adjudication
requests its ledger (``cache/adjudicate-ledger``) lacks, through generation's send machinery: keyed, committed in
small batches, resumable after a kill, a backend failure never stored. **Verdicts**: one task per input shard reads
each asked candidate's answer from the ledger and writes, per pair, what was asked and which candidates the LLM
confirmed as answering the query (``mine/adjudicated``). Select never makes a confirmed candidate a negative and can
export it as an extra positive. The verdict step is keyed by the shard's candidates and the adjudication settings
(engine settings aside), so a changed margin redoes it from the ledger and re-mines nothing.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pairforge.adjudicate.requests import (
    CANDIDATE_COLUMNS,
    AdjudicationRequest,
    adjudication_model_id,
    plan_adjudication_requests,
)
from pairforge.adjudicate.verdict import Adjudication, parse_adjudication
from pairforge.config import RunConfig
from pairforge.generation.ledger import Ledger
from pairforge.generation.requests import PlannedRequest
from pairforge.generation.send import ProgressFn, partition_count, send_partition
from pairforge.llm import Backend
from pairforge.mapping import Mapper, serial_map
from pairforge.pool import Pool
from pairforge.records import ADJUDICATED_SCHEMA
from pairforge.shard_task import Unfinished, run_shard_task
from pairforge.shards import ShardWriter, read_shard_table
from pairforge.stats import StageStats, combine
from pairforge.workdir import Workdir, shard_files
from prompts import load_prompt

STAGE = "mine"
STEP = "mine.adjudicate"
# Settings that change neither what is asked nor the verdicts (how the engine runs).
COUNTS = ("pairs", "pairs_with_false_negatives", "asked", "confirmed", "failed", "unanswered")  # per kind
ENGINE_ONLY = ("vllm", "openai", "transformers", "chunk_size", "send_tasks")


def done_shard(shard: str) -> str:
    """The name of an input shard's adjudication completion record in the mine stage's ``_done`` folder."""
    return f"{shard}.adjudicate"


def adjudication_key(output: Workdir, shard: str) -> str | None:
    """The task key of a shard's finished adjudication (what select chains on), None when there is none."""
    try:
        return output.key_of(STAGE, done_shard(shard))
    except FileNotFoundError:
        return None


def run_adjudication(
    config: RunConfig,
    output: Workdir,
    shards: list[str],
    *,
    fresh: bool = False,
    map_shards: Mapper = serial_map,
    progress: ProgressFn | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Send the adjudication requests the ledger lacks, then record each shard's verdicts; the counts for the mine
    stage's ``details["adjudication"]`` (per kind: pairs, asked, confirmed, failed, unanswered)."""
    started = time.perf_counter()
    engine = config.mine.adjudicate.engine(config.generate)
    partitions = partition_count(config, engine)
    send = functools.partial(_send, config, output, shards, partitions, backend, progress)
    sending = combine(STEP, "requests", map_shards(f"{STEP}.send", send, [str(p) for p in range(partitions)]))
    verdicts = combine(STEP, "pairs", map_shards(STEP, functools.partial(adjudicate_shard, config, output, fresh),
                                                  shards))  # fmt: skip
    return {
        "model": adjudication_model_id(engine),
        "prompt": f"adjudicate/{config.mine.adjudicate.prompt_version}.zh",
        "margin": config.mine.adjudicate.margin,
        "sent": sending.details.get("sent", 0),
        "backend_errors": sending.details.get("backend_errors", {}),
        "by_kind": verdicts.details.get("by_kind", {}),
        "failures": verdicts.details.get("failures", {}),
        "seconds": round(time.perf_counter() - started, 3),
    }


def plan_adjudication_shard(config: RunConfig, output: Workdir, shard: str) -> list[PlannedRequest]:
    """The adjudication requests of one input shard's candidate rows, in their order."""
    rows = read_shard_table(output.candidates, shard, list(CANDIDATE_COLUMNS)).to_pylist()
    settings = config.mine.adjudicate
    engine = settings.engine(config.generate)
    prompt = load_prompt("adjudicate", settings.prompt_version)
    return list(plan_adjudication_requests(rows, Pool(output.pool), settings, engine, prompt))


def adjudicate_shard(config: RunConfig, output: Workdir, fresh: bool, shard: str) -> StageStats:
    """One shard's verdicts per pair; skipped when done under the same candidates, settings and model."""
    settings = config.mine.adjudicate
    engine = settings.engine(config.generate)
    asked = {k: v for k, v in settings.model_dump(mode="json").items() if k not in ENGINE_ONLY}
    depends_on = (output.key_of(STAGE, shard), asked, [engine.backend, adjudication_model_id(engine)])

    def work() -> Unfinished:
        planned = plan_adjudication_shard(config, output, shard)
        answers, retryable = _answers(output, planned, engine.max_attempts)
        stats = _write(config, output, shard, planned, answers)
        unanswered = sorted(p.key for p, a in zip(planned, answers, strict=True) if a is None)
        # other output once answers arrive: keyed by what it lacks, so select redoes
        return Unfinished(stats, [unanswered, retryable] if unanswered or retryable else [])

    def complete(done: StageStats) -> bool:
        return not done.details.get("unanswered")

    return run_shard_task(output, STEP, done_shard(shard), depends_on, work, fresh=fresh, reuse=complete)


def _answers(
    output: Workdir, planned: list[PlannedRequest], max_attempts: int
) -> tuple[list[Adjudication | None], list[str]]:
    """Each request's parsed answer from the ledger (None: not answered yet), and the keys (with their attempt
    counts) of answers that gave no verdict and will be asked again."""
    ledger = Ledger(output.adjudicate_ledger)
    try:
        rows = {row.key: row for row in ledger.get(p.key for p in planned)}
    finally:
        ledger.close()
    answers: list[Adjudication | None] = []
    retryable: list[str] = []
    for p in planned:
        row = rows.get(p.key)
        answer = None if row is None else parse_adjudication(row.outputs[0], row.finish_reasons[0])
        if row is not None and answer is not None and answer.failure is not None and row.attempts < max_attempts:
            retryable.append(f"{p.key}:{row.attempts}")
        answers.append(answer)
    return answers, sorted(retryable)


def _write(
    config: RunConfig, output: Workdir, shard: str, planned: list[PlannedRequest], answers: list[Adjudication | None]
) -> StageStats:
    """One row per adjudicated pair (what was asked, the verdicts, the confirmed ids) and the counts per kind."""
    by_pair: dict[str, dict[str, Any]] = {}
    counts: dict[str, Counter[str]] = {}
    failures: Counter[str] = Counter()
    for request, answer in zip(planned, answers, strict=True):
        assert isinstance(request, AdjudicationRequest)
        pair = request.pair
        row = by_pair.setdefault(pair["pair_id"], {"pair_id": pair["pair_id"], "kind": pair["kind"], "asked_ids": [],
                                                   "asked_scores": [], "asked_sources": [], "verdicts": [],
                                                   "false_negative_ids": []})  # fmt: skip
        verdict = "unanswered" if answer is None else answer.failure or ("yes" if answer.confirmed else "no")
        row["asked_ids"].append(request.passage["id"])
        row["asked_scores"].append(pair["score"])
        row["asked_sources"].append(pair["source"])
        row["verdicts"].append(verdict)
        tally = counts.setdefault(pair["kind"], Counter(dict.fromkeys(COUNTS, 0)))
        tally["asked"] += 1
        if verdict == "yes":
            row["false_negative_ids"].append(request.passage["id"])
            tally["confirmed"] += 1
        elif verdict == "unanswered":
            tally["unanswered"] += 1
        elif verdict != "no":
            tally["failed"] += 1
            failures[verdict] += 1
    writer = ShardWriter(output.adjudicated, shard, ADJUDICATED_SCHEMA, config.ingest.shard_rows)
    for row in by_pair.values():
        writer.add(row)
        counts[row["kind"]]["pairs"] += 1
        counts[row["kind"]]["pairs_with_false_negatives"] += bool(row["false_negative_ids"])
    writer.close()
    stats = StageStats(STEP, "pairs", input=len(by_pair), output=len(by_pair))
    stats.details.update(by_kind={kind: dict(c) for kind, c in sorted(counts.items())}, failures=dict(failures),
                         unanswered=sum(c["unanswered"] for c in counts.values()))  # fmt: skip
    return stats


def read_false_negatives(folder: Path, shard: str) -> dict[str, list[str]]:
    """Pair id → the candidate ids the LLM confirmed as answering it, for one shard of an ``adjudicated`` folder
    (empty when none was asked)."""
    if not shard_files(folder, shard):
        return {}
    table = read_shard_table(folder, shard, ["pair_id", "false_negative_ids"])
    return {p: ids for p, ids in zip(*(table[c].to_pylist() for c in table.column_names), strict=True) if ids}


def _send(
    config: RunConfig, output: Workdir, shards: list[str], partitions: int, backend: Backend | None,
    progress: ProgressFn | None, partition: str,
) -> StageStats:  # fmt: skip
    plan = functools.partial(plan_adjudication_shard, config, output)
    engine = config.mine.adjudicate.engine(config.generate)
    return send_partition(
        config, output, shards, plan, int(partition), partitions, backend=backend, progress=progress,
        engine=engine, ledger_folder=output.adjudicate_ledger, stage=STEP,
    )  # fmt: skip
