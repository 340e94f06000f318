"""The judge stage: an LLM scores every pair the filters kept, and a cut keeps the good ones.

Two steps, like generate. **Send**: one task per partition of the key space asks the judge's backend for the
requests its ledger (``cache/judge-ledger``) lacks, through generation's send machinery: keyed, committed in small
batches, resumable after a kill, a backend failure never stored. **Keep**: one task per input shard reads every
pair's answer from the ledger, stores the scores on the pair (``judge/pairs``) and drops pairs below the cut, or
whose answer gave no scores, to ``judge/dropped`` with the reason. The cut is in the keep step's key only, so a
changed cut redoes this step from the ledger and sends nothing. A judge that is off passes every pair on unscored.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from pairforge.config import JudgeConfig, RunConfig
from pairforge.generation.ledger import Ledger
from pairforge.generation.requests import PlannedRequest
from pairforge.generation.send import ProgressFn, partition_count, send_partition
from pairforge.judge.requests import judge_model_id, plan_judge_requests
from pairforge.judge.rubric import CRITERIA, Verdict, parse_verdict
from pairforge.llm import Backend
from pairforge.mapping import Mapper, ShardInputs, serial_map
from pairforge.records import DROPPED_SCHEMA, JUDGED_PAIR_SCHEMA
from pairforge.shard_task import StageRun, Unfinished, run_shard_task
from pairforge.shards import ShardWriter, read_shard_table
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats, combine
from pairforge.workdir import Workdir
from prompts import load_prompt

STAGE = "judge"
UNIT = get_stage(STAGE).unit
SCORE_COLUMNS = {f"judge_{name}": name for name in CRITERIA}


def run_judge(
    config: RunConfig,
    inputs: ShardInputs,
    output: Workdir,
    *,
    fresh: bool = False,
    map_shards: Mapper = serial_map,
    progress: ProgressFn | None = None,
    backend: Backend | None = None,
) -> StageStats:
    """Send the judge requests the ledger lacks, then keep each shard's pairs that pass the cut."""
    run = StageRun(STAGE, output)
    sending = StageStats(STAGE, "requests")
    if config.judge.enabled:
        engine = config.judge.engine(config.generate)
        partitions = partition_count(config, engine)
        send = functools.partial(_send, config, output, inputs.shards, partitions, backend, progress)
        sending = combine(STAGE, "requests", map_shards(f"{STAGE}.send", send, [str(p) for p in range(partitions)]))
    keep = functools.partial(judge_shard, config, output, fresh)
    stats = run.combine(map_shards(STAGE, keep, inputs.shards))
    stats.details["enabled"] = config.judge.enabled
    if config.judge.enabled:
        for kind, n in sending.details.get("backend_errors", {}).items():
            stats.details.setdefault("backend_errors", {})[kind] = n
        stats.details.update(
            sent=sending.details.get("sent", 0), reasked=sending.details.get("reasked", 0),
            send_seconds=round(sending.seconds, 3),
            tokens_out_sent=sending.details.get("tokens_out_sent", 0), model=judge_model_id(engine),
            prompt=f"judge/{config.judge.prompt_version}.zh",
            cut={"min_score": config.judge.min_score, "min_scores": dict(config.judge.min_scores)},
        )  # fmt: skip
    return run.save(stats)


def plan_judge_shard(config: RunConfig, output: Workdir, shard: str) -> list[PlannedRequest]:
    """The judge requests of one input shard's filtered pairs, in their order."""
    pairs = read_shard_table(output.filtered, shard, ["id", "kind", "query", "passage_id", "positive"]).to_pylist()
    engine = config.judge.engine(config.generate)
    return plan_judge_requests(pairs, engine, load_prompt("judge", config.judge.prompt_version))


def cut_reason(verdict: Verdict, judge: JudgeConfig) -> str | None:
    """Why a scored pair is below the cut (``judge_below_min_<criterion>`` first, then ``judge_below_min_score``),
    or None when it is kept."""
    assert verdict.scores is not None and verdict.mean is not None
    for name in CRITERIA:
        if name in judge.min_scores and verdict.scores[name] < judge.min_scores[name]:
            return f"judge_below_min_{name}"
    if judge.min_score is not None and verdict.mean < judge.min_score:
        return "judge_below_min_score"
    return None


def judge_shard(config: RunConfig, output: Workdir, fresh: bool, shard: str) -> StageStats:
    """One shard's pairs, scored and cut (passed on unscored when the judge is off); skipped when done under the
    same filtered pairs, judge settings and model."""
    engine = config.judge.engine(config.generate) if config.judge.enabled else None
    model = [engine.backend, judge_model_id(engine)] if engine else None
    depends_on = (output.key_of("filter", shard), stage_settings(config, STAGE), model)
    work = functools.partial(_judge_pairs, config, output, shard)
    return run_shard_task(output, STAGE, shard, depends_on, work, fresh=fresh, reuse=_answered)


def _answered(done: StageStats) -> bool:
    return not done.details.get("unanswered")


def _judge_pairs(config: RunConfig, output: Workdir, shard: str) -> Unfinished:
    engine = config.judge.engine(config.generate) if config.judge.enabled else None
    pairs = read_shard_table(output.filtered, shard).to_pylist()
    retryable: list[str] = []  # answers that gave no scores and will be asked again (generate.max_attempts)
    verdicts: list[Verdict | None] = [None] * len(pairs)
    if engine:
        verdicts = _verdicts(config, output, shard, engine.max_attempts, retryable)
    stats = _write(config, output, shard, pairs, verdicts)
    unanswered = [p["id"] for p, v in zip(pairs, verdicts, strict=True) if engine and v is None]
    # other output once answers arrive: keyed by what it lacks, so later stages redo
    lacking = [sorted(unanswered), *([sorted(retryable)] if retryable else [])] if unanswered or retryable else []
    return Unfinished(stats, lacking)


def _verdicts(
    config: RunConfig, output: Workdir, shard: str, max_attempts: int, retryable: list[str]
) -> list[Verdict | None]:
    """Each pair's verdict from the ledger (None: not answered yet), in the shard's order; the keys (with their
    attempt counts) of answers that gave no scores and will be asked again are appended to ``retryable``."""
    planned = plan_judge_shard(config, output, shard)
    ledger = Ledger(output.judge_ledger)
    try:
        rows = {row.key: row for row in ledger.get(p.key for p in planned)}
    finally:
        ledger.close()
    verdicts: list[Verdict | None] = []
    for p in planned:
        row = rows.get(p.key)
        verdict = None if row is None else parse_verdict(row.outputs[0], row.finish_reasons[0])
        if row is not None and verdict is not None and verdict.failure is not None and row.attempts < max_attempts:
            retryable.append(f"{p.key}:{row.attempts}")
        verdicts.append(verdict)
    return verdicts


def _write(
    config: RunConfig, output: Workdir, shard: str, pairs: list[dict[str, Any]], verdicts: list[Verdict | None]
) -> StageStats:
    """Kept pairs (with their scores) and dropped ones (with the reason) of one shard; the stats and the score
    distribution of what was judged."""
    kept = ShardWriter(output.judged, shard, JUDGED_PAIR_SCHEMA, config.ingest.shard_rows)
    dropped = ShardWriter(output.judge_dropped, shard, DROPPED_SCHEMA, config.ingest.shard_rows)
    stats = StageStats(STAGE, UNIT, input=len(pairs))
    histogram: dict[str, Counter[int]] = {name: Counter() for name in CRITERIA}
    failures: Counter[str] = Counter()
    for pair, verdict in zip(pairs, verdicts, strict=True):
        reason = _reason(config, verdict, failures)
        if verdict is not None and verdict.scores is not None:
            for name, score in verdict.scores.items():
                histogram[name][score] += 1
            pair.update({column: verdict.scores[name] for column, name in SCORE_COLUMNS.items()})
        pair["judge_score"] = None if verdict is None else verdict.mean
        if reason is None:
            kept.add(pair)
        else:
            dropped.add({"id": pair["id"], "query": pair["query"], "passage_id": pair["passage_id"], "reason": reason})
            stats.drop(reason)
    kept.close()
    dropped.close()
    stats.output = kept.count
    if config.judge.enabled:
        stats.details.update(
            scores={name: {str(s): n for s, n in sorted(c.items())} for name, c in histogram.items()},
            failures=dict(failures), unanswered=stats.dropped.get("judge_unanswered", 0),
        )  # fmt: skip
    return stats


def _reason(config: RunConfig, verdict: Verdict | None, failures: Counter[str]) -> str | None:
    if not config.judge.enabled:
        return None
    if verdict is None:
        return "judge_unanswered"  # the next run sends it again
    if verdict.failure is not None:
        failures[verdict.failure] += 1
        return "judge_no_scores"
    return cut_reason(verdict, config.judge)


def _send(
    config: RunConfig, output: Workdir, shards: list[str], partitions: int, backend: Backend | None,
    progress: ProgressFn | None, partition: str,
) -> StageStats:  # fmt: skip
    plan = functools.partial(plan_judge_shard, config, output)
    engine = config.judge.engine(config.generate)
    return send_partition(
        config, output, shards, plan, int(partition), partitions, backend=backend, progress=progress,
        engine=engine, ledger_folder=output.judge_ledger, stage=STAGE,
    )  # fmt: skip
