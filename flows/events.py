"""The Prefect event a published version emits, ``pairforge.version.published``, and the deployment trigger that
starts a ``train`` run on it. Both live here so that the event's name and resource labels and what the trigger
matches cannot drift apart; ``prefect.yaml``'s ``train`` deployment spells the same trigger out (a test compares
the two).

The event's resource is the version: ``{"prefect.resource.id": "pairforge.dataset.<name>.v<N>",
"pairforge.dataset": <name>, "pairforge.version": "<N>"}`` (Prefect resource labels are strings). Its payload is
``{"path": <version path or URL>, "promoted": <bool or null>, "dataset": <name>, "version": <N>}``: nothing from
the config, so no secret can reach an event (a store URL with credentials is refused when the config loads).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect.events import DeploymentEventTrigger, Event, emit_event
from prefect.events.schemas.automations import Posture

VERSION_PUBLISHED = "pairforge.version.published"
RESOURCE_PREFIX = "pairforge.dataset"
TRAIN_TRIGGER = "train-on-published-version"


def version_resource(dataset: str, version: int) -> dict[str, str]:
    """The labels of a published version as a Prefect event resource."""
    return {
        "prefect.resource.id": f"{RESOURCE_PREFIX}.{dataset}.v{version}",
        "pairforge.dataset": dataset,
        "pairforge.version": str(version),
    }


def emit_version_published(dataset: str, details: dict[str, Any]) -> Event | None:
    """Emit ``pairforge.version.published`` for the version an export stage published (its ``details`` hold
    ``version``, ``path`` and, when a gate is configured, ``promoted``); returns the event (None when Prefect
    emits no events in this process)."""
    version = int(details["version"])
    payload = {"path": details["path"], "promoted": details.get("promoted"), "dataset": dataset, "version": version}
    return emit_event(VERSION_PUBLISHED, resource=version_resource(dataset, version), payload=payload)


def build_train_trigger(dataset: str | None = None) -> DeploymentEventTrigger:
    """The trigger of a ``train`` deployment: one run per ``pairforge.version.published`` event (of any dataset, or
    of ``dataset`` only), its ``version_path`` the event's ``path``; other parameters keep the deployment's
    defaults. ``prefect.yaml``'s ``train/on-publish`` trigger is this one with no dataset."""
    match: dict[str, str | list[str]] = {"prefect.resource.id": f"{RESOURCE_PREFIX}.*"}
    if dataset:
        match["pairforge.dataset"] = dataset
    return DeploymentEventTrigger(
        name=f"{TRAIN_TRIGGER}:{dataset}" if dataset else TRAIN_TRIGGER,
        description=f"Train a student on each version of {dataset or 'any dataset'} that pairforge publishes.",
        expect={VERSION_PUBLISHED},
        match=match,
        for_each={"prefect.resource.id"},  # one bucket per version: every version gets its own run
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
        parameters={"version_path": "{{ event.payload.path }}"},
    )
