"""The one place that turns a run plan into a stage's inputs.

``pairforge run`` (``flows.pipeline``), the stage commands (``pairforge dedup``, ``mine``, ...) and the stage
contract test all call ``stage_inputs``, so a stage sees the same inputs whichever way it is started: ``dedup.against``
reaches passage dedup in a flow run exactly as it does from ``pairforge dedup``.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from pairforge.config import RunConfig
from pairforge.dedup.index import is_index
from pairforge.dedup.passages import DedupInputs
from pairforge.export import ExportInputs
from pairforge.generation.generate import GenerateInputs
from pairforge.mapping import ShardInputs
from pairforge.negatives.index import IndexInputs
from pairforge.negatives.select import SelectInputs
from pairforge.plan import RunPlan, carried_parts
from pairforge.stages import STAGE_NAMES, get_stage
from pairforge.stats import StageStats
from pairforge.workdir import Workdir, task_key

SHARD_ONLY = ("filter", "judge", "dedup-pairs", "mine")  # stages whose inputs are the plan's shard keys alone


def stage_inputs(name: str, config: RunConfig, plan: RunPlan, workdir: Workdir) -> Any:
    """The inputs of stage ``name`` for this run: ingest reads the plan's input shards to process, the stages after
    it those shards' keys, passage dedup and index also what the plan carries from the parent version (and
    ``dedup.against``), generate the plan's ``limit``, export the plan and the funnel the workdir's stages saved."""
    get_stage(name)  # an unknown name is a KeyError naming the stages
    keys = plan.keys
    if name == "ingest":
        return [s.shard for s in plan.todo]
    if name == "dedup-passages":
        prior, _ = carried_parts(config, plan, workdir)
        return DedupInputs(keys, [*prior, *against_parts(config)])
    if name == "index":
        _, parts = carried_parts(config, plan, workdir)
        return IndexInputs(keys, parts)
    if name == "generate":
        return GenerateInputs(keys, plan.limit)
    if name in SHARD_ONLY:
        return ShardInputs(keys)
    if name == "select":
        upstream = task_key("select.upstream", [workdir.key_of("mine", s) for s in keys])
        return SelectInputs(keys, workdir.candidates, workdir.pool, upstream, workdir.adjudicated)
    assert name == "export"
    return ExportInputs(plan, saved_funnel(workdir))


def saved_funnel(workdir: Workdir) -> list[StageStats]:
    """The stats the stages before export saved in the workdir, in stage order (a stage not run is left out)."""
    paths = [workdir.stats(s) for s in STAGE_NAMES if s != "export"]
    return [StageStats.load(p) for p in paths if Path(p).is_file()]


def against_parts(config: RunConfig) -> list[Path]:
    """The MinHash index parts ``dedup.against`` names: a glob of index parts, or of folders of them (a version's
    ``index/passages``); a pattern that finds none is an error naming it."""
    found: list[Path] = []
    for pattern in config.dedup.against:
        parts = sorted(Path(p) for p in glob.glob(pattern) if is_index(Path(p)))
        parts += sorted(Path(p).parent for p in glob.glob(f"{pattern}/*/meta.json"))  # a folder of parts
        if not parts:
            raise FileNotFoundError(f"dedup.against: {pattern}: no MinHash index there")
        found.extend(parts)
    return found
