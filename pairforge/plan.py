"""The run plan: which input shards this run processes and why, which segments of the parent version it carries.

A version covers an input shard under a fingerprint of every setting that changes output (``stages``) only if the
shard was read whole and every one of its requests was answered. So a shard is processed when it is new, when the
settings changed, when its segment in the latest version is incomplete (a backend outage, ``--limit``, a damaged
file), or always with ``fresh``; every other segment of the parent is carried into the new version unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pairforge.config import RunConfig
from pairforge.inputs import InputShard, list_input_shards
from pairforge.pool import PoolPart
from pairforge.stages import STAGE_NAMES, output_fingerprint, stage_settings
from pairforge.store import Store
from pairforge.store.catalog import read_manifest
from pairforge.store.local import fetch_version, pool_part, segment_index
from pairforge.workdir import Workdir

PROMPT_OVERHEAD_TOKENS = 350  # the template around the passage (measured on prompts/qp/v1: ~330 tokens)
TOKENS_PER_CHAR = 0.75  # Qwen-family tokenizers on Chinese text


@dataclass
class ShardPlan:
    """One input shard, what the run does with it (``new``, ``changed``, ``incomplete``, ``fresh`` or ``covered``)
    and why, and the fingerprint its segment will carry."""

    shard: InputShard
    status: str
    reason: str
    fingerprint: str
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class RunPlan:
    """What one run does: the shards to process, the parent version and the segments carried from it."""

    dataset: str
    parent: int | None
    shards: list[ShardPlan]
    carried: list[dict[str, Any]]
    limit: int | None = None

    @property
    def todo(self) -> list[ShardPlan]:
        return [s for s in self.shards if s.status != "covered"]

    @property
    def keys(self) -> list[str]:
        """The keys of the shards to process, in input order."""
        return [s.shard.key for s in self.todo]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**asdict(self), "shards": [{**asdict(s), "shard": s.shard.to_dict()} for s in self.shards]}
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> RunPlan:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no run plan; run `pairforge ingest` (or `pairforge run`) first")
        data = json.loads(path.read_text(encoding="utf-8"))
        shards = [ShardPlan(**{**s, "shard": InputShard.from_dict(s["shard"])}) for s in data["shards"]]
        return cls(data["dataset"], data["parent"], shards, data["carried"], data.get("limit"))


def plan_run(config: RunConfig, *, fresh: bool = False, limit: int | None = None) -> RunPlan:
    """Compare every input shard with the latest version's segments."""
    store = Store(config.store)
    parent = store.latest(config.name)
    segments = {s["key"]: s for s in read_manifest(store, config.name, parent)["segments"]} if parent else {}
    prompts = prompt_digests(config)
    settings = {name: _digest(stage_settings(config, name)) for name in STAGE_NAMES}
    planned = []
    for shard in list_input_shards(config):
        fingerprint = output_fingerprint(config, shard.corpus_index, prompts)
        status, reason = _status(segments.get(shard.key), fingerprint, settings, fresh)
        planned.append(ShardPlan(shard, status, reason, fingerprint, settings))
    todo = {s.shard.key for s in planned if s.status != "covered"}
    carried = [segment for key, segment in segments.items() if key not in todo]
    return RunPlan(config.name, parent, planned, carried, limit)


def carried_parts(config: RunConfig, plan: RunPlan, workdir: Workdir) -> tuple[list[Path], list[PoolPart]]:
    """The carried segments' MinHash index parts (what passage dedup runs against) and their pool parts (the
    passages negatives may come from), as local files of the parent version."""
    if plan.parent is None or not plan.carried:
        return [], []
    folder = fetch_version(Store(config.store), config.name, plan.parent, workdir)
    return [segment_index(folder, s) for s in plan.carried], [pool_part(folder, s) for s in plan.carried]


def _status(
    segment: dict[str, Any] | None, fingerprint: str, settings: dict[str, str], fresh: bool
) -> tuple[str, str]:
    if fresh:
        return "fresh", "--fresh recomputes every stage"
    if segment is None:
        return "new", "not in the latest version"
    if segment["fingerprint"] != fingerprint:
        changed = [s for s in STAGE_NAMES if segment.get("settings", {}).get(s) != settings.get(s)]
        return "changed", f"settings changed: {', '.join(changed) or 'corpus options or prompts'}"
    if not segment["complete"]:
        why = ", ".join(f"{k} {v}" for k, v in segment.get("incomplete", {}).items()) or "incomplete"
        return "incomplete", f"not complete in v{segment['version']}: {why}"
    return "covered", f"covered by v{segment['version']}"


def prompt_digests(config: RunConfig) -> dict[str, str]:
    """The sha256 of each prompt the run uses, by kind (a changed template is a changed setting)."""
    from prompts import load_prompt

    gen = config.generate
    return {kind: load_prompt(kind, gen.prompt_versions.get(kind, "v1")).sha256 for kind in gen.kinds}


def describe_plan(config: RunConfig, plan: RunPlan) -> dict[str, Any]:
    """``pairforge run --dry-run``: the stages, every shard's status and reason, and the LLM work (estimated)."""
    todo = plan.todo
    new_bytes = sum(s.shard.bytes for s in todo)
    workdir, passages, counted = Workdir(config.workdir), 0, 0
    for s in todo:  # a shard this workdir has already ingested is counted, others estimated from their bytes
        done = workdir.finished_any("ingest", s.shard.key)
        if done is not None:
            passages += done.output
            counted += 1
        else:
            passages += int(s.shard.bytes / 3 / max(config.window.max_length * 0.8, 1))  # ~3 bytes a character
    if plan.limit is not None:
        passages = min(passages, plan.limit)
    gen = config.generate
    requests = passages * len(gen.kinds)
    avg_chars = (config.window.max_length + config.window.min_length) / 2
    return {
        "stages": list(STAGE_NAMES),
        "parent": plan.parent,
        "shards": len(plan.shards),
        "to_process": len(todo),
        "carried_segments": len(plan.carried),
        "why": {s.shard.path: f"{s.status}: {s.reason}" for s in plan.shards},
        "new_input_bytes": new_bytes,
        "passages_estimate": passages,
        "passages_counted_shards": counted,
        "llm_requests_estimate": requests,
        "prompt_tokens_estimate": int(requests * (avg_chars * TOKENS_PER_CHAR + PROMPT_OVERHEAD_TOKENS)),
        "max_output_tokens": requests * gen.sampling.n * gen.sampling.max_tokens,
        "backend": gen.backend,
        "model": gen.model,
    }


def _digest(value: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
