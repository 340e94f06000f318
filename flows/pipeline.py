"""The parent flow: plan, then ingest → dedup-passages → index → generate → filter → judge → dedup-pairs → mine →
select → export, each stage a flow whose shard tasks run on the configured task runner.

Incremental by construction: the plan processes only the input shards the latest version does not cover under the
current settings (new, changed, incomplete), carries every other segment, and publishes a complete version built
on the latest, announced by a ``pairforge.version.published`` event. With nothing to do it publishes nothing and
emits no event. If another run publishes first, the run plans again against the new latest and redoes what
depends on it (its dedup above all), so no version ever repeats another's passages. A rerun after a crash skips
every shard task whose output is complete (``Workdir.finished``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import fsspec
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.events import emit_version_published
from flows.progress import report
from flows.runtime import create_task_runner, dask_cluster, ensure_llm_limit, temporary_server
from flows.stages import stage_flow
from pairforge.config import RunConfig, load_config
from pairforge.diskfull import DiskFullError, describe_disk_full, is_disk_full
from pairforge.export import NothingToPublish
from pairforge.export.notes import describe_human_pairs, describe_left_out
from pairforge.plan import RunPlan, plan_run
from pairforge.stages import STAGE_NAMES, StageError
from pairforge.stats import StageStats
from pairforge.store import Store, VersionConflict
from pairforge.store.catalog import repair_pointers
from pairforge.store.verify import verify_version
from pairforge.workdir import Workdir

ATTEMPTS = 3  # plans against a newer latest after a concurrent publish, at most this often


@flow(name="pipeline")
def pipeline(config_path: str, limit: int | None = None, fresh: bool = False) -> Any:
    """Run every stage for the config at ``config_path``; returns dataset, version, path, funnel, seconds.
    This is what deployments (``prefect.yaml``, ``pairforge deploy``) schedule. What the run did ("published vN" or
    "nothing new") is its Completed state's message, a log line and the ``pairforge-outcome`` artifact."""
    started = time.perf_counter()
    return _run_planned(load_config(Path(config_path)), None, limit=limit, fresh=fresh, started=started)


def _run_planned(config: RunConfig, plan: RunPlan | None, *, limit: int | None, fresh: bool, started: float) -> Any:
    """The body of a pipeline flow run over a loaded config (and the plan made before it started, if any): the plan
    is made again only when there is none yet or another run published after it."""
    repair_pointers(Store(config.store), config.name)  # a publisher killed between its rename and `latest`
    ensure_llm_limit(config.flow.llm_concurrency)
    with dask_cluster(config.flow) as address:
        for attempt in range(ATTEMPTS):
            if plan is None or attempt > 0:
                plan = plan_run(config, fresh=fresh, limit=limit)
            if not plan.todo:
                report("pipeline", "stages", len(STAGE_NAMES), len(STAGE_NAMES))
                return _announce(_nothing_new(config, plan, started))
            try:
                return _announce(run_stages(config, plan, address, fresh=fresh, started=started))
            except VersionConflict:
                if attempt == ATTEMPTS - 1:
                    raise
    raise AssertionError("unreachable")


def describe_outcome(result: dict[str, Any]) -> str:
    """One line for what a run did: ``published vN`` (with its example count and path) or ``nothing new``."""
    if result.get("new_shards") == 0:
        return (
            f"nothing new: {result['dataset']} v{result['version']} already covers every input shard under these "
            f"settings ({result['path']})"
        )
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(result["examples"].items()))
    total = sum(result["examples"].values())
    return f"published {result['dataset']} v{result['version']}: {total:,} examples ({kinds}) at {result['path']}"


def _announce(result: dict[str, Any]) -> Any:
    """The flow's final state: Completed with ``describe_outcome`` as its message (what the Prefect UI shows in the
    run list, so a nothing-new run no longer looks like a publishing one), the result as its data; the same line
    goes to the run's log and to the ``pairforge-outcome`` artifact."""
    from prefect import get_run_logger
    from prefect.states import Completed

    message = describe_outcome(result)
    get_run_logger().info(message)
    create_markdown_artifact(key="pairforge-outcome", markdown=f"**{message}**\n", description="What this run did")
    return Completed(message=message, data=result)


def run_pipeline(
    config_path: Path, *, fresh: bool = False, limit: int | None = None, config: RunConfig | None = None
) -> dict[str, Any]:
    """``pairforge run``: the pipeline flow on the temporary local server (nothing to start by hand); when the
    latest version already covers every input shard, the answer comes without starting anything. ``config`` is the
    config already loaded from ``config_path`` (the CLI's): the YAML is read once and the plan made once per run."""
    started = time.perf_counter()
    loaded = config or load_config(config_path)  # a bad config fails before any server starts
    repair_pointers(Store(loaded.store), loaded.name)  # a publisher killed between its rename and `latest`
    plan = plan_run(loaded, fresh=fresh, limit=limit)
    if not plan.todo:
        return _nothing_new(loaded, plan, started)

    def run_loaded(config_path: str, limit: int | None = None, fresh: bool = False) -> Any:
        return _run_planned(loaded, plan, limit=limit, fresh=fresh, started=started)

    # The deployable flow's name and parameters (what the UI and Prefect's database show), this run's config and
    # plan bound in: nothing loaded or planned twice, no config in Prefect's database.
    one_run = flow(name="pipeline", description=pipeline.description, validate_parameters=False)(run_loaded)
    with temporary_server():
        return cast(dict[str, Any], one_run(str(Path(config_path).resolve()), limit, fresh))


def run_stages(
    config: RunConfig, plan: RunPlan, address: str | None, *, fresh: bool = False, started: float = 0.0
) -> dict[str, Any]:
    """The stage flows in order over the plan's shards (called inside a flow run); the version export publishes
    is announced with one ``pairforge.version.published`` event (``flows.events``)."""
    workdir = Workdir(config.workdir)
    plan.save(workdir.plan)  # the stage commands and a rerun read it
    runner = create_task_runner(config.flow, address)
    report("pipeline", "stages", 0, len(STAGE_NAMES))  # first, so the overall bar heads the stages' bars
    for n, name in enumerate(STAGE_NAMES[:-1], 1):
        with _one_step(name):
            _run(name, config, stage_flow(name, config, plan, runner), fresh)
        report("pipeline", "stages", n, len(STAGE_NAMES))
    with _one_step("export"):  # in the flow run's own process; the gate, when configured, trains inside it
        exported = StageStats.from_dict(_run("export", config, stage_flow("export", config, plan), fresh))
    emit_version_published(config.name, exported.details)  # published: a failure below leaves it published
    report("pipeline", "stages", len(STAGE_NAMES), len(STAGE_NAMES))
    result = _result(config, exported.details["version"], exported.details["path"], started)
    result["new_shards"] = len(plan.keys)
    result["report"] = str(_write_report(config, exported.details["path"], exported.details["version"]))
    _publish_artifacts(result)
    return result


ONE_STEP = ("index", "export")  # global steps with no shard tasks to count: a bar of one step each


@contextmanager
def _one_step(name: str) -> Iterator[None]:
    """A progress bar for a global step (0/1 while it runs, 1/1 after); the shard stages report their own."""
    if name in ONE_STEP:
        report(name, "step", 0, 1)
    yield
    if name in ONE_STEP:
        report(name, "step", 1, 1)


def _run(name: str, config: RunConfig, one_stage: Any, fresh: bool) -> dict[str, Any]:
    """One stage flow; an unexpected error becomes one sentence naming the stage (a full disk: naming the full
    folder, the workdir's or the store's, with no traceback behind it)."""
    try:
        with _no_heartbeat():
            result: dict[str, Any] = one_stage(fresh)
        return result
    except (VersionConflict, NothingToPublish, StageError):
        raise
    except Exception as exc:
        folders = [config.workdir, config.store]
        if is_disk_full(exc, folders):
            raise DiskFullError(describe_disk_full(name, folders)) from None
        raise StageError(f"stage {name} failed: {type(exc).__name__}: {exc}") from exc


@contextmanager
def _no_heartbeat() -> Iterator[None]:
    """A stage flow (a subflow of the pipeline's flow run, whose heartbeat covers the run) sends no heartbeat of
    its own: Prefect joins a flow's heartbeat thread when the flow ends, up to a second per stage, ten per run."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _nothing_new(config: RunConfig, plan: RunPlan, started: float) -> dict[str, Any]:
    assert plan.parent is not None  # nothing to do means every shard is covered by a version
    store = Store(config.store)
    path = store.path(config.name, plan.parent)
    damaged = verify_version(store, config.name, plan.parent)["problems"]  # never point users at a damaged one
    if damaged:
        raise StageError(f"nothing new to do, but {path} is damaged: {'; '.join(damaged[:3])}"
                         f" (`pairforge versions verify {config.name}` lists all {len(damaged)})")  # fmt: skip
    return _result(config, plan.parent, path, started) | {"new_shards": 0}


def _result(config: RunConfig, version: int, path: str, started: float) -> dict[str, Any]:
    with fsspec.open(f"{path}/manifest.json", "r", encoding="utf-8") as handle:
        manifest = json.load(handle)
    return {
        "dataset": config.name,
        "version": version,
        "path": path,
        "examples": manifest["examples"],
        # input shards the version does not cover (an outage, --limit, a damaged file): the next run finishes them
        "incomplete": {s["input"]["path"]: s["incomplete"] for s in manifest["segments"] if not s["complete"]},
        "funnel": {
            row["stage"]: {k: row.get(k) for k in ("unit", "in", "out", "dropped")} for row in manifest["funnel"]
        },
        # what became of the human pairs, human questions held out, rows a format left out
        "notes": [line for line in [describe_human_pairs(manifest)] if line] + describe_left_out(manifest),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _write_report(config: RunConfig, version_path: str, version: int) -> Path:
    """The version's HTML report beside the workdir's outputs (versions themselves are immutable)."""
    from pairforge.report import write_report

    out = Workdir(config.workdir).reports / f"{config.name}-v{version}.html"
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
