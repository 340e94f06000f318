"""Scheduled runs without a prefect.yaml: ``pairforge deploy CONFIG --cron "0 2 * * *"`` serves the pipeline
flow from this process (``Flow.serve``); each scheduled run is incremental (see ``flows.pipeline``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.pipeline import pipeline
from flows.runtime import temporary_server


def build_deployment(config_path: Path, cron: str, name: str = "nightly") -> Any:
    """The deployment ``serve`` runs: the pipeline flow, a cron schedule, the config path as parameter."""
    return pipeline.to_deployment(name=name, cron=cron, parameters={"config_path": str(config_path.resolve())})


def serve_pipeline(config_path: Path, cron: str, name: str = "nightly") -> None:
    """Serve the deployment until interrupted (a temporary server unless ``PREFECT_API_URL`` names one)."""
    from prefect import serve

    with temporary_server():
        serve(build_deployment(config_path, cron, name))
