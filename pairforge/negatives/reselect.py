"""``pairforge reselect``: a new selection policy over stored candidates, without re-encoding or re-tokenising.

``--from`` names a workdir, its ``candidates/`` folder, or a published version (``data/candidates.parquet``);
the passages come from beside the candidates (``passages/`` or ``data/passages``), else from the workdir.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from pydantic import ValidationError

from pairforge.config import MineConfig, RunConfig
from pairforge.negatives.mine import MINED_WITH, write_examples
from pairforge.negatives.select import MineSummary


def run_reselect(config: RunConfig, source: Path, policy_file: Path | None = None) -> MineSummary:
    """Select negatives from the candidates under ``source`` with ``config.mine`` updated by ``policy_file``."""
    started = time.perf_counter()
    policy = load_policy(config.mine, policy_file)
    candidates_file = find_candidates(source)
    table = pq.read_table(candidates_file)
    mined_with = json.loads((table.schema.metadata or {}).get(b"pairforge.mined_with", b"{}"))
    for key in MINED_WITH:
        if key in mined_with and key != "range_max" and getattr(policy, key) != mined_with[key]:
            raise ValueError(f"{policy_file}: {key} is {getattr(policy, key)!r} but the candidates were mined "
                             f"with {mined_with[key]!r}; run `pairforge mine` for that")  # fmt: skip
    if policy.range_max > mined_with.get("range_max", policy.range_max):
        raise ValueError(f"{policy_file}: range_max {policy.range_max} > the {mined_with['range_max']} candidates "
                         "stored per query; run `pairforge mine` with a larger range_max")  # fmt: skip
    pool = pq.read_table(_passage_files(candidates_file, Path(config.workdir)), columns=["id", "text"])
    candidates = [_cut(row, policy.range_max) for row in table.to_pylist()]
    summary = write_examples(
        candidates, pool["id"].to_pylist(), pool["text"].to_pylist(), policy, Path(config.workdir)
    )
    summary.seconds = round(time.perf_counter() - started, 3)
    (Path(config.workdir) / "mine_summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    return summary


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


def find_candidates(source: Path) -> Path:
    """The candidates file under a workdir, a candidates folder, a version folder, or the file itself."""
    for path in (source, source / "candidates.parquet", source / "candidates" / "candidates.parquet",
                 source / "data" / "candidates.parquet"):  # fmt: skip
        if path.is_file():
            return path
    raise FileNotFoundError(f"{source}: no candidates.parquet here (run `pairforge mine` first)")


def _passage_files(candidates_file: Path, workdir: Path) -> list[Path]:
    here = candidates_file.parent
    for folder in (here / "passages", here.parent / "passages", here / "data" / "passages", workdir / "passages"):
        files = sorted(folder.glob("*.parquet"))
        if files:
            return files
    raise FileNotFoundError(f"{candidates_file}: no passages beside it or in {workdir / 'passages'}")


def _cut(row: dict, range_max: int) -> dict:
    for source in ("bm25", "dense"):
        if row.get(f"{source}_ids") is not None:
            row[f"{source}_ids"] = row[f"{source}_ids"][:range_max]
            row[f"{source}_scores"] = row[f"{source}_scores"][:range_max]
    return row
