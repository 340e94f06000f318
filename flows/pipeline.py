"""The parent flow: ingest → dedup passages → generate → filter → dedup pairs → mine → export.

Incremental: input shards the newest version's watermark covers are skipped, so a nightly run processes
only new shards and publishes a version deduplicated against every earlier one; with nothing new it
publishes nothing. A rerun after a crash skips every finished task (cache keys in ``flows.stages``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import fsspec
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.progress import report
from flows.runtime import create_task_runner, ensure_llm_limit, result_settings, results_path, temporary_server
from flows.stages import (
    dedup_pairs_flow,
    dedup_passages_flow,
    export_flow,
    filter_flow,
    generate_flow,
    ingest_flow,
    mine_flow,
)
from pairforge.config import RunConfig, load_config
from pairforge.ingest import file_sha256, list_shards
from pairforge.plan import STAGES
from pairforge.store import Store


@flow(name="pipeline")
def pipeline(config_path: str, limit: int | None = None, fresh: bool = False) -> dict[str, Any]:
    """Run every stage for the config at ``config_path``; returns dataset, version, path, funnel, seconds.
    This is what deployments (``prefect.yaml``, ``pairforge deploy``) schedule."""
    config = load_config(Path(config_path))
    ensure_llm_limit(config.flow.llm_concurrency)
    with result_settings(Path(config.workdir), fresh=fresh):
        return run_stages(config, limit)


def run_pipeline(config_path: Path, *, fresh: bool = False, limit: int | None = None) -> dict[str, Any]:
    """``pairforge run``: the pipeline flow on the temporary local server (nothing to start by hand)."""
    load_config(config_path)  # a bad config fails before any server starts
    with temporary_server():
        return pipeline(str(Path(config_path).resolve()), limit, fresh)


def run_stages(config: RunConfig, limit: int | None = None) -> dict[str, Any]:
    """The stage flows in order, each keyed on the one before (called inside a flow run)."""
    from pairforge.export import read_watermark

    started = time.perf_counter()
    data = config.model_dump(mode="json")
    covered = sorted(read_watermark(config.store, config.name))
    digests = [file_sha256(path) for _, path in list_shards(config)]
    if covered and set(digests) <= set(covered):
        report("pipeline", "stages", len(STAGES), len(STAGES))
        return _nothing_new(config, started)
    results = results_path(Path(config.workdir))
    runner = create_task_runner(config.flow)
    key = _in_workdir(ingest_flow, results, task_runner=runner)(data, covered, digests)["key"]  # hashed once
    report("pipeline", "stages", 1, len(STAGES))
    key = _in_workdir(dedup_passages_flow, results)(data, key)["key"]
    report("pipeline", "stages", 2, len(STAGES))
    key = _in_workdir(generate_flow, results)(data, key, limit)["key"]
    report("pipeline", "stages", 3, len(STAGES))
    for n, stage in enumerate((filter_flow, dedup_pairs_flow, mine_flow), 4):
        key = _in_workdir(stage, results)(data, key)["key"]
        report("pipeline", "stages", n, len(STAGES))
    exported = _in_workdir(export_flow, results)(data, key)["summary"]
    report("pipeline", "stages", len(STAGES), len(STAGES))
    result = _result(config, exported["version"], exported["path"], started)
    result["report"] = str(_write_report(config, exported["path"], exported["version"]))
    _publish_artifacts(result)
    return result


def _in_workdir(stage: Any, results: Path, **options: Any) -> Any:
    """``stage`` with its tasks' results and cache records in ``results``. A stage flow inherits the result store
    its parent flow got when it started, so the setting ``result_settings`` changes inside the parent comes too
    late: without this the cache lands in Prefect's default storage, shared by every workdir."""
    return stage.with_options(result_storage=results, persist_result=False, **options)


def _nothing_new(config: RunConfig, started: float) -> dict[str, Any]:
    store = Store(config.store)
    version = store.latest(config.name)
    assert version is not None  # a watermark exists only in a published version
    return _result(config, version, store.path(config.name, version), started) | {"new_shards": 0}


def _result(config: RunConfig, version: int, path: str, started: float) -> dict[str, Any]:
    with fsspec.open(f"{path}/manifest.json", "r", encoding="utf-8") as handle:
        manifest = json.load(handle)
    return {
        "dataset": config.name,
        "version": version,
        "path": path,
        "funnel": {
            row["stage"]: {k: row.get(k) for k in ("unit", "in", "out", "dropped")} for row in manifest["funnel"]
        },
        "seconds": round(time.perf_counter() - started, 3),
    }


def _write_report(config: RunConfig, version_path: str, version: int) -> Path:
    """The version's HTML report beside the workdir's outputs (versions themselves are immutable)."""
    from pairforge.report import write_report

    out = Path(config.workdir) / "reports" / f"{config.name}-v{version}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_report(version_path, out)


def _as_url(path: str) -> str:
    return path if "://" in path else Path(path).resolve().as_uri()


def _publish_artifacts(result: dict[str, Any]) -> None:
    """The funnel as a table artifact, and links to the version and its report."""
    rows = [
        {"stage": stage, **row, "dropped": json.dumps(row["dropped"], ensure_ascii=False)}
        for stage, row in result["funnel"].items()
    ]
    title = f"{result['dataset']} v{result['version']}"
    create_table_artifact(key="pairforge-funnel", table=rows, description=f"{title}: what each stage kept and dropped")
    create_markdown_artifact(
        key="pairforge-version",
        markdown=f"# {title}\n\nVersion: `{result['path']}`\n\nDataset card: `{result['path']}/README.md`\n\n"
        f"Report: [{result['report']}]({_as_url(result['report'])})\n",
        description="Where the published version and its report are",
    )
