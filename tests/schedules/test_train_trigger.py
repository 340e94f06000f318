"""The training handoff on a real server, nothing started by hand: one ``pairforge deploy CONFIG --cron ...
--train`` process starts a real ``prefect server start`` (127.0.0.1, a free port, SQLite under the workdir) and
serves ``pipeline/handoff`` and ``train/handoff`` in one ``serve``. A pipeline run (fake LLM) publishes v1 → its
``pairforge.version.published`` event reaches the server (read back from ``/api/events/filter``) → the trigger's
automation creates a ``train/handoff`` run whose ``version_path`` is the published path → that run trains the
static student (over a tiny tokenizer standing in for the demo model's) and saves the model. A second pipeline run
has nothing new: it publishes nothing, emits no event, and no second training starts; training v1 again (by hand)
saves into a folder of its own. The timeline is printed
(``-rP``) and appended to $PAIRFORGE_FIGURES."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flows.events import VERSION_PUBLISHED, build_train_trigger, version_resource
from pairforge.models import DEMO_NAME
from pairforge.testing.fake_llm import FakeLLM
from tests.figures import figure
from tests.flows.conftest import split_wudao, write_pipeline_config
from tests.schedules.conftest import (
    KEY_ENV,
    RUN_WITHIN_S,
    SENTINEL,
    Deploy,
    api,
    clean_env,
    free_port,
    start_deploy,
    wait_for_completed_run,
    wait_for_deployment,
)
from tests.tiny_model import train_tiny_tokenizer

NAME = "handoff"
NEVER = "0 0 1 1 *"  # pipeline/handoff's cron: the runs here are created through the API, not by the clock
TRAIN_STEPS = 3
TRAIN_WITHIN_S = 150  # created by the automation, waits for the runner's slot, imports torch, trains 3 steps
EVENT_WITHIN_S = 30  # the server's event persister writes in batches (every 5 s)


@dataclass
class Handoff:
    deploy: Deploy
    folder: Path  # the config, corpus, store, workdir; the deploy process runs in its folder "elsewhere"


def install_tokenizer(folder: Path) -> None:
    """A stand-in for the demo model where ``resolve_model("demo")`` looks under ``$PAIRFORGE_CACHE``: the tiny
    tokenizer (all the static student reads) and a ``config.json`` (what marks the folder prepared)."""
    folder.mkdir(parents=True)
    train_tiny_tokenizer().save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text("{}", encoding="utf-8")


@pytest.fixture(scope="module")
def handoff(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, llm: FakeLLM) -> Iterator[Handoff]:
    folder = tmp_path_factory.mktemp("handoff")
    corpus = folder / "corpus"
    corpus.mkdir()
    first, _ = split_wudao(shared_data, folder / "parts")
    (corpus / first.name).write_bytes(first.read_bytes())  # one small WuDao shard (10 documents)
    openai = {"concurrency": 4, "timeout_s": 5}
    config = write_pipeline_config(folder, corpus, llm.base_url, KEY_ENV, name=NAME, openai=openai)
    install_tokenizer(folder / "cache" / "models" / DEMO_NAME)
    env = clean_env(folder, PAIRFORGE_CACHE=str(folder / "cache"))
    port = free_port()
    extra = ("--port", str(port), "--train", "--train-max-steps", str(TRAIN_STEPS))
    elsewhere = folder / "elsewhere"  # the worker's working directory is not where the store is (issue 21, 15)
    elsewhere.mkdir()
    process = start_deploy(config, NEVER, NAME, env, *extra, cwd=elsewhere)  # the models go beside the store
    deploy = Deploy(process, f"http://127.0.0.1:{port}/api", folder / f"deploy-{NAME}.log")
    try:
        yield Handoff(deploy, folder)
    finally:
        deploy.stop()


def read_events(deploy: Deploy, name: str, resource_id: str | None = None) -> list[dict[str, Any]]:
    """The events of that name (of that resource) the server has stored, from its events API."""
    query: dict[str, Any] = {"event": {"name": [name]}}
    if resource_id:
        query["resource"] = {"id": [resource_id]}
    events: list[dict[str, Any]] = api(deploy, "POST", "/events/filter", json={"filter": query, "limit": 50})["events"]
    return sorted(events, key=lambda e: e["occurred"])


def wait_for_events(deploy: Deploy, name: str, count: int = 1, resource_id: str | None = None) -> list[dict[str, Any]]:
    """At least ``count`` stored events of that name, within ``EVENT_WITHIN_S``."""
    deadline = time.monotonic() + EVENT_WITHIN_S
    while time.monotonic() < deadline:
        events = read_events(deploy, name, resource_id)
        if len(events) >= count:
            return events
        time.sleep(1.0)
    pytest.fail(f"fewer than {count} {name} events on the server after {EVENT_WITHIN_S} s:\n{deploy.log_tail()}")


def wait_for_run(deploy: Deploy, run_id: str, within: float = RUN_WITHIN_S) -> dict[str, Any]:
    """The flow run once completed, within ``within`` seconds; fails at once if it fails or crashes."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        deploy.watch()
        if deploy.process.poll() is not None:
            pytest.fail(f"pairforge deploy exited with {deploy.process.returncode}:\n{deploy.log_tail()}")
        run: dict[str, Any] = api(deploy, "GET", f"/flow_runs/{run_id}")
        if run["state_type"] == "COMPLETED":
            return run
        if run["state_type"] in ("FAILED", "CRASHED"):
            pytest.fail(f"flow run {run['name']} {run['state_name']}:\n{deploy.log_tail()}")
        time.sleep(1.0)
    pytest.fail(f"flow run {run_id} not completed within {within:.0f} s:\n{deploy.log_tail()}")


def test_a_published_version_triggers_one_training_run(handoff: Handoff) -> None:
    deploy, folder = handoff.deploy, handoff.folder
    pipeline = wait_for_deployment(deploy, NAME)
    trainer = wait_for_deployment(deploy, NAME, flow="train")
    served = time.time()
    (automation,) = api(deploy, "GET", f"/automations/related-to/prefect.deployment.{trainer['id']}")
    trigger = build_train_trigger(NAME).model_dump(mode="json")
    assert {k: automation["trigger"][k] for k in ("type", "expect", "match", "for_each", "posture")} == {
        k: trigger[k] for k in ("type", "expect", "match", "for_each", "posture")
    }
    assert [a["parameters"] for a in automation["actions"]] == [{"version_path": "{{ event.payload.path }}"}]

    first = api(deploy, "POST", f"/deployments/{pipeline['id']}/create_flow_run", json={})
    wait_for_run(deploy, first["id"])
    version = folder / "store" / NAME / "v1"
    (event,) = wait_for_events(deploy, VERSION_PUBLISHED)
    assert event["resource"] == version_resource(NAME, 1)
    assert event["payload"] == {"path": event["payload"]["path"], "promoted": None, "dataset": NAME, "version": 1}
    path = event["payload"]["path"]
    assert Path(path).resolve() == version.resolve() and (version / "manifest.json").is_file()
    assert f"prefect.flow-run.{first['id']}" in {r["prefect.resource.id"] for r in event["related"]}

    trained = wait_for_completed_run(deploy, trainer["id"], time.monotonic(), TRAIN_WITHIN_S)
    assert trained["parameters"]["version_path"] == path and trained["parameters"]["max_steps"] == TRAIN_STEPS
    assert trained["idempotency_key"], "created by the automation (a run created by hand has no idempotency key)"
    model = folder / "train" / f"{NAME}-v1-static-seed0"
    summary = json.loads((model / "train.json").read_text(encoding="utf-8"))
    assert summary["steps"] == TRAIN_STEPS and summary["versions"] == [path]
    assert summary["model_path"] == str(model.resolve())  # absolute, beside the store
    assert not (folder / "elsewhere" / "train").exists()
    assert (model / "modules.json").is_file(), "a saved sentence-transformers model"

    # once per published version: a run with nothing new publishes nothing, so emits nothing and trains nothing
    second = api(deploy, "POST", f"/deployments/{pipeline['id']}/create_flow_run", json={})
    again = wait_for_run(deploy, second["id"])
    # the server stores events in order of arrival: once it holds this run's Completed event, it holds anything
    # the run emitted before completing
    wait_for_events(deploy, "prefect.flow-run.Completed", resource_id=f"prefect.flow-run.{second['id']}")
    published = read_events(deploy, VERSION_PUBLISHED)
    train_runs = api(deploy, "POST", "/flow_runs/filter", json={"deployments": {"id": {"any_": [trainer["id"]]}}})
    assert [e["id"] for e in published] == [event["id"]]
    assert len(train_runs) == 1
    assert sorted(p.name for p in version.parent.iterdir() if p.name.startswith("v")) == ["v1"]
    assert SENTINEL not in json.dumps(published) and SENTINEL not in deploy.log.read_text(encoding="utf-8")

    # the same version trained again (by hand here): a folder of its own, the first model left as it was
    retrain = api(deploy, "POST", f"/deployments/{trainer['id']}/create_flow_run",
                  json={"parameters": {"version_path": path}})  # fmt: skip
    retrained = wait_for_run(deploy, retrain["id"], TRAIN_WITHIN_S)
    assert (folder / "train" / f"{model.name}-{retrain['id'][:8]}" / "train.json").is_file()
    assert json.loads((model / "train.json").read_text(encoding="utf-8")) == summary
    figure("training handoff on a real server (pairforge deploy --train)", timeline(
        deploy, served, version, event, trained, again, retrained, len(published), len(train_runs)
    ))  # fmt: skip


def timeline(
    deploy: Deploy,
    served: float,
    version: Path,
    event: dict[str, Any],
    trained: dict[str, Any],
    again: dict[str, Any],
    retrained: dict[str, Any],
    events: int,
    train_runs: int,
) -> str:
    """Seconds from the start of ``pairforge deploy`` (server start included), from server timestamps and the
    version's files."""

    def at(stamp: str | float) -> float:
        wall = stamp if isinstance(stamp, float) else datetime.fromisoformat(stamp).timestamp()
        return wall - deploy.started_at

    published = at(os.stat(version / "manifest.json").st_mtime)
    rows = [
        ("both deployments served (READY)", at(served)),
        ("v1 published (its manifest written)", published),
        ("pairforge.version.published emitted", at(event["occurred"])),
        ("event received by the server", at(event["received"])),
        (f"train run {trained['name']} created by the trigger", at(trained["created"])),
        ("train run started", at(trained["start_time"])),
        (f"train run completed ({TRAIN_STEPS} steps, model saved)", at(trained["end_time"])),
        ("second pipeline run (nothing new) completed", at(again["end_time"])),
        ("v1 trained again by hand: completed, into a folder of its own", at(retrained["end_time"])),
    ]
    lines = [f"  {seconds:7.1f} s  {what}" for what, seconds in rows]
    received, created = at(event["received"]), at(trained["created"])
    lines.append(
        f"  published → received {received - published:.1f} s; received → run created {created - received:.1f} s;"
        f" run created → completed {at(trained['end_time']) - created:.1f} s"
    )
    lines.append(f"  after both pipeline runs: {events} {VERSION_PUBLISHED} event(s), {train_runs} train run(s)")
    return "seconds from the start of `pairforge deploy ... --train`:\n" + "\n".join(lines)


@pytest.mark.parametrize(
    ("version", "configured", "expected"),
    [
        ("/data/pf/store/demo/v3", None, "/data/pf/train"),  # beside the store, wherever the worker runs
        ("file:///data/pf/store/demo/v3", None, "/data/pf/train"),
        ("/data/pf/store/demo/v3", "/models", "/models"),
        ("/data/pf/store/demo/v3", "models", "{cwd}/models"),  # a relative setting is made absolute
        ("s3://bucket/store/demo/v3", None, "{cwd}/train"),  # no local neighbour
    ],
)
def test_models_go_beside_the_store_or_to_the_configured_folder(
    version: str, configured: str | None, expected: str
) -> None:
    from flows.train import models_folder

    assert models_folder(version, configured) == Path(expected.format(cwd=Path.cwd()))
