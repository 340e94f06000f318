"""manifest.json of a version: its segments (one per input shard: the input's sha256, the fingerprint of the
settings it was made under, whether it is complete), lineage (config, prompts, model, code version, parent), the
delta against the parent, this run's funnel, and the sha256 of every other file of the version."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.stats import StageStats

FORMAT = "pairforge.manifest/2"


def code_version() -> dict[str, Any]:
    """The package version and, in a git checkout, the commit and whether the tree had local changes."""
    try:
        version = metadata.version("pairforge")
    except metadata.PackageNotFoundError:
        version = None
    here = Path(__file__).resolve().parent
    sha = _git(here, "rev-parse", "HEAD")
    status = _git(here, "status", "--porcelain", "--untracked-files=no") if sha else None
    return {"package": version, "git_sha": sha, "git_dirty": bool(status) if sha else None}


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def generation_info(pair_shards: list[Path], funnel: list[StageStats]) -> dict[str, Any]:
    """Prompt ids and sha256, model, backend and sampling of the generated pairs (None without an LLM stage)."""
    prompts: dict[str, str | None] = {}
    models: set[str] = set()
    sampling: set[str] = set()
    for shard in pair_shards:
        names = pq.read_schema(shard).names
        wanted = [c for c in ("prompt_id", "prompt_sha256", "model", "sampling") if c in names]
        for row in pq.read_table(shard, columns=wanted).to_pylist():
            if row.get("prompt_id"):
                prompts[row["prompt_id"]] = prompts.get(row["prompt_id"]) or row.get("prompt_sha256")
            models.update([row["model"]] if row.get("model") else [])
            sampling.update([row["sampling"]] if row.get("sampling") else [])
    generate = next((s.details for s in funnel if s.stage == "generate"), {})
    model = generate.get("model") or (sorted(models)[0] if len(models) == 1 else None)
    return {
        "model": model,
        "models": sorted(models),
        "backend": generate.get("backend") or None,
        "prompts": [{"id": pid, "sha256": sha or _prompt_sha(pid)} for pid, sha in sorted(prompts.items())],
        "sampling": [json.loads(s) for s in sorted(sampling)],
    }


def _prompt_sha(prompt_id: str) -> str | None:
    """The template's sha256 from the prompts package, for pairs written without it (``qp/v1.zh``)."""
    match = re.fullmatch(r"([\w-]+)/([\w.-]+)\.(\w+)", prompt_id)
    if not match:
        return None
    from prompts import load_prompt

    try:
        return load_prompt(*match.groups()).sha256
    except FileNotFoundError:
        return None


def build_manifest(
    config: RunConfig, *, version: int, parent: int | None, parts: dict[str, Any], files: list[dict[str, Any]]
) -> dict[str, Any]:
    """The manifest; ``parts`` holds segments, examples, delta, generation, formats, dropped and funnel."""
    return {
        "format": FORMAT,
        "dataset": config.name,
        "version": version,
        "parent": parent,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "config_fingerprint": config.fingerprint(),
        **parts,
        "config": config.redacted(),
        "files": files,
    }
