"""The ``train`` flow: ``pairforge train`` on one published version as a Prefect flow, so that a deployment can
run it when a version is published (its trigger: ``flows.events.build_train_trigger``; deployments:
``prefect.yaml`` and ``pairforge deploy --train``).

The model goes to ``out``, by default ``train/<dataset>-v<N>-<student>-seed0`` under the run's working directory
(``pairforge train``'s default), or, when a model of that name exists (the version was trained on before), the
same name ending in the run's short id: a second run for a version never fails on, nor replaces, the first's
model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run


@flow(name="train")
def train(version_path: str, student: str = "static", out: str | None = None, max_steps: int | None = None
          ) -> dict[str, Any]:  # fmt: skip
    """Train ``student`` on the version at ``version_path`` (``STORE/NAME/v<N>``, ``STORE/NAME/latest`` or a URL),
    at most ``max_steps`` steps; returns the training summary (``model_path``, steps, losses, ...)."""
    from pairforge.train import TrainConfig, run_train
    from pairforge.train.datasets import resolve_version
    from pairforge.train.run import default_out

    logger = get_run_logger()
    config = TrainConfig(student=student, max_steps=max_steps)
    target = out or pick_out(default_out([resolve_version(version_path)], config), str(flow_run.id or ""))
    logger.info("training %s on %s into %s", student, version_path, target)
    summary = run_train([version_path], config, target, log=logger.info)
    logger.info("trained %s steps in %.1f s; model at %s", summary.steps, summary.seconds, summary.model_path)
    return summary.to_dict()


def pick_out(default: str, run_id: str) -> str:
    """``default`` while nothing is there, else ``default-<first 8 characters of run_id>``."""
    if not Path(default).exists() or not run_id:
        return default
    return f"{default}-{run_id[:8]}"
