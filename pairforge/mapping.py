"""How a stage runs its shard tasks: one after another here, or as Prefect tasks on any task runner (threads,
processes, Dask workers) when ``flows`` passes its own mapper. Stages only ever call a ``Mapper``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pairforge.stats import StageStats

ShardFn = Callable[[str], StageStats]
Mapper = Callable[[str, ShardFn, Sequence[str]], list[StageStats]]


def serial_map(stage: str, run_shard: ShardFn, shards: Sequence[str]) -> list[StageStats]:
    """Run ``run_shard`` for every shard in this process, in order."""
    return [run_shard(shard) for shard in shards]


@dataclass(frozen=True)
class ShardInputs:
    """The inputs of a stage that needs nothing but the run's input shards (their keys, in order): filter, judge,
    dedup-pairs and mine read their upstream stage's shards of these keys from the workdir."""

    shards: list[str]
