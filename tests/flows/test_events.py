"""The ``pairforge.version.published`` event and the ``train`` deployment's trigger: one definition
(``flows.events.build_train_trigger``) that ``prefect.yaml`` spells out and ``pairforge deploy --train`` uses;
the event's resource and payload. tests/schedules/test_train_trigger.py runs it all on a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.events import VERSION_PUBLISHED, build_train_trigger, emit_version_published, version_resource
from flows.train import pick_out
from tests.conftest import REPO


def project_deployments() -> dict[str, dict[str, Any]]:
    project = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    return {d["name"]: d for d in project["deployments"]}


def test_prefect_yaml_trigger_is_the_one_build_train_trigger_builds() -> None:
    from prefect.cli.deploy._triggers import _initialize_deployment_triggers

    on_publish = project_deployments()["on-publish"]
    assert on_publish["entrypoint"] == "flows/train.py:train" and on_publish["work_pool"]["name"] == "local"
    # as `prefect deploy` reads it (its own parser), and as pairforge builds it
    (parsed,) = _initialize_deployment_triggers("on-publish", on_publish["triggers"])
    assert parsed.model_dump(mode="json") == build_train_trigger().model_dump(mode="json")
    assert parsed.expect == {VERSION_PUBLISHED} and parsed.parameters == {"version_path": "{{ event.payload.path }}"}


def test_deploy_train_serves_the_same_trigger_for_the_config_dataset() -> None:
    from flows.deploy import build_train_deployment

    deployment = build_train_deployment("stella-zh", "nightly", {"student": "static", "max_steps": 5})
    assert deployment.name == "nightly" and deployment.flow_name == "train"
    assert deployment.entrypoint == "flows/train.py:train"
    assert deployment.parameters == {"student": "static", "max_steps": 5}
    (trigger,) = deployment.triggers
    generic = build_train_trigger().model_dump(mode="json", exclude={"name", "description", "match"})
    assert trigger.model_dump(mode="json", exclude={"name", "description", "match"}) == generic
    assert trigger.match.root == {"prefect.resource.id": "pairforge.dataset.*", "pairforge.dataset": "stella-zh"}


def test_trigger_matches_the_resource_of_a_published_version() -> None:
    from prefect.events.schemas.events import Resource

    resource = Resource.model_validate(version_resource("stella-zh", 3))
    assert build_train_trigger().match.matches(resource)
    assert build_train_trigger("stella-zh").match.matches(resource)
    assert not build_train_trigger("other").match.matches(resource)


def test_the_event_names_the_version_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr("flows.events.emit_event", lambda event, **kwargs: sent.append({"event": event, **kwargs}))
    details = {"version": 3, "path": "/data/store/stella-zh/v3", "parent": 2, "delta": {"examples": 10}}
    emit_version_published("stella-zh", details)
    emit_version_published("stella-zh", details | {"version": 4, "path": "s3://b/stella-zh/v4", "promoted": True})
    assert sent == [
        {
            "event": "pairforge.version.published",
            "resource": {
                "prefect.resource.id": "pairforge.dataset.stella-zh.v3",
                "pairforge.dataset": "stella-zh",
                "pairforge.version": "3",
            },
            "payload": {"path": "/data/store/stella-zh/v3", "promoted": None, "dataset": "stella-zh", "version": 3},
        },
        {
            "event": "pairforge.version.published",
            "resource": {
                "prefect.resource.id": "pairforge.dataset.stella-zh.v4",
                "pairforge.dataset": "stella-zh",
                "pairforge.version": "4",
            },
            "payload": {"path": "s3://b/stella-zh/v4", "promoted": True, "dataset": "stella-zh", "version": 4},
        },
    ]


def test_a_second_training_of_a_version_gets_its_own_folder(tmp_path: Path) -> None:
    default = str(tmp_path / "train" / "stella-zh-v3-static-seed0")
    assert pick_out(default, "0f6c2b1e-aaaa-bbbb-cccc-000000000000") == default
    Path(default).mkdir(parents=True)
    assert pick_out(default, "0f6c2b1e-aaaa-bbbb-cccc-000000000000") == f"{default}-0f6c2b1e"
    assert pick_out(default, "") == default  # no run id: run_train refuses the existing folder, a clear error
