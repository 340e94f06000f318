"""The shard-task protocol, written once: every stage's shard tasks (and its global steps) go through
``run_shard_task``, every stage's totals through ``StageRun``.

A shard task's output is keyed by ``task_key`` over everything it depends on (upstream task keys, the settings that
change it, input fingerprints). A task whose completion record holds that key returns the recorded stats and
rewrites nothing; otherwise the record is dropped first (a crash mid-write leaves no stale "done"), the work runs,
and the record is written last, after the task's files. So a rerun after a crash redoes exactly the unfinished tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pairforge.stages import get_stage
from pairforge.stats import StageStats, combine
from pairforge.workdir import Workdir, task_key


@dataclass
class Unfinished:
    """What a task's work returns when its output lacks something that may come later (LLM answers not yet in the
    ledger, answers to ask again): the output is recorded under its key plus ``lacking``, so the next run redoes
    the task, and the tasks after it, whose keys chain on this one, redo theirs."""

    stats: StageStats
    lacking: list[Any] = field(default_factory=list)


def run_shard_task(
    output: Workdir,
    task: str,
    shard: str,
    depends_on: Sequence[Any],
    work: Callable[[], StageStats | Unfinished],
    *,
    fresh: bool = False,
    reuse: Callable[[StageStats], bool] | None = None,
) -> StageStats:
    """Run ``work()`` for ``shard`` of ``task`` (a stage name, or ``<stage>.<step>`` for one of its steps) unless
    its output is complete under the key of ``depends_on`` (and ``reuse`` accepts its recorded stats); ``fresh``
    redoes it anyway. The completion record lies in the stage's folder under ``shard`` (``Workdir.key_of`` reads its
    key back: what a later task's key chains on); the stats carry the task's seconds."""
    stage = task.split(".", 1)[0]
    key = task_key(task, *depends_on)
    done = None if fresh else output.finished(stage, shard, key)
    if done is not None and (reuse is None or reuse(done)):
        return done
    output.forget(stage, shard)
    started = time.perf_counter()
    result = work()
    stats = result.stats if isinstance(result, Unfinished) else result
    if isinstance(result, Unfinished) and result.lacking:
        key = task_key(task, key, *result.lacking)
    stats.seconds = time.perf_counter() - started
    output.mark_done(stage, shard, key, stats)
    return stats


class StageRun:
    """One run of a stage: its clock, its unit, its shard stats combined into one, and ``<stage>/stats.json``."""

    def __init__(self, stage: str, output: Workdir) -> None:
        self.stage = stage
        self.unit = get_stage(stage).unit
        self.output = output
        self.started = time.perf_counter()

    def combine(self, parts: Iterable[StageStats]) -> StageStats:
        """The shards' stats added up, with the seconds since the stage started."""
        return combine(self.stage, self.unit, parts, time.perf_counter() - self.started)

    def save(self, stats: StageStats) -> StageStats:
        """``stats`` as ``<stage>/stats.json`` (what the funnel of ``pairforge export`` reads); returns them."""
        stats.save(self.output.stats(self.stage))
        return stats
