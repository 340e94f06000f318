"""``pairforge reselect``: a new selection policy over stored candidates, without re-encoding or re-tokenising.

``--from`` names a workdir (its ``mine/candidates`` and ``index/pool``) or a published version (its
``data/candidates`` segments; the pool is rebuilt from its ``data/passages`` and ``index/passages`` without
tokenising). The examples go to the config's workdir (``select/examples``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pairforge.config import MineConfig, RunConfig
from pairforge.negatives.select import SelectInputs, run_select
from pairforge.pool import build_pool
from pairforge.stages import MINED_WITH
from pairforge.stats import StageStats
from pairforge.store import layout
from pairforge.store.local import pool_part
from pairforge.workdir import Workdir, task_key


def run_reselect(config: RunConfig, source: Path, policy_file: Path | None = None) -> StageStats:
    """Select negatives from the candidates under ``source`` with ``config.mine`` updated by ``policy_file``."""
    policy = load_policy(config.mine, policy_file)
    output = Workdir(config.workdir)
    inputs, mined_with = _from_version(config, source, output) if _is_version(source) else _from_workdir(source)
    check_policy(policy, mined_with, policy_file)
    return run_select(config.model_copy(update={"mine": policy}), inputs, output, fresh=True)


def load_policy(base: MineConfig, policy_file: Path | None) -> MineConfig:
    """``base`` with the keys of a YAML mapping of ``mine`` fields applied (unknown keys are errors)."""
    if policy_file is None:
        return base
    data = yaml.safe_load(policy_file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{policy_file}: expected a mapping of mine settings")
    data = data.get("mine", data)
    try:
        return MineConfig.model_validate({**base.model_dump(), **data})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{policy_file}: {where}: {first['msg']}") from None


def check_policy(policy: MineConfig, mined_with: dict[str, Any], policy_file: Path | None) -> None:
    """A policy may change only the selection: the retriever, analyzer and model the candidates were mined with
    stay, and it cannot ask for more candidates than were stored."""
    for dotted in MINED_WITH:
        key = dotted.split(".", 1)[1]
        if key in mined_with and key != "range_max" and getattr(policy, key) != mined_with[key]:
            raise ValueError(f"{policy_file}: {key} is {getattr(policy, key)!r} but the candidates were mined "
                             f"with {mined_with[key]!r}; run `pairforge mine` for that")  # fmt: skip
    if policy.range_max > mined_with.get("range_max", policy.range_max):
        raise ValueError(f"{policy_file}: range_max {policy.range_max} > the {mined_with['range_max']} candidates "
                         "stored per query; run `pairforge mine` with a larger range_max")  # fmt: skip


def _is_version(source: Path) -> bool:
    return (source / layout.MANIFEST).is_file()


def _from_workdir(source: Path) -> tuple[SelectInputs, dict[str, Any]]:
    workdir = Workdir(source)
    if not workdir.stats("mine").is_file():
        raise FileNotFoundError(f"{source}: no mined candidates here (run `pairforge mine` first)")
    mined_with = StageStats.load(workdir.stats("mine")).details.get("mined_with", {})
    shards = _shards(workdir.candidates)
    upstream = task_key("reselect", str(source), [workdir.key_of("mine", s) for s in shards])
    return SelectInputs(shards, workdir.candidates, workdir.pool, upstream), mined_with


def _from_version(config: RunConfig, source: Path, output: Workdir) -> tuple[SelectInputs, dict[str, Any]]:
    manifest = json.loads((source / layout.MANIFEST).read_text(encoding="utf-8"))
    parts = [pool_part(source, segment) for segment in manifest["segments"]]
    pool_folder = output.stage("reselect") / "pool"
    build_pool(parts, pool_folder, config.dedup)
    mine = manifest["config"]["mine"]
    upstream = task_key("reselect", str(source), manifest["version"])
    candidates = source / layout.CANDIDATES
    inputs = SelectInputs(_shards(candidates), candidates, pool_folder, upstream)
    return inputs, {k.split(".", 1)[1]: mine[k.split(".", 1)[1]] for k in MINED_WITH}


def _shards(folder: Path) -> list[str]:
    """The input-shard keys of the Parquet files in a stage folder."""
    shards = sorted({p.name.rsplit("-", 1)[0] for p in folder.glob("*.parquet")})
    if not shards:
        raise FileNotFoundError(f"{folder}: no candidates here (run `pairforge mine` first)")
    return shards
