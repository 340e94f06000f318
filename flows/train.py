"""The ``train`` flow: ``pairforge train`` on one published version as a Prefect flow, so that a deployment can
run it when a version is published (its trigger: ``flows.events.build_train_trigger``; deployments:
``prefect.yaml`` and ``pairforge deploy --train``).

The model goes to ``out``, by default ``<models_dir>/<dataset>-v<N>-<student>-seed0``; ``models_dir`` defaults to
``train/`` beside the store (``STORE/../train``), not the worker's working directory, which for a deployment is
wherever the worker was started. When a model of that name exists (the version was trained on before), the name
ends in the run's short id: a second run for a version never fails on, nor replaces, the first's model. Every path
in the result is absolute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

MODELS = "train"  # the default models folder's name, beside the store


@flow(name="train")
def train(
    version_path: str,
    student: str = "static",
    out: str | None = None,
    max_steps: int | None = None,
    models_dir: str | None = None,
) -> dict[str, Any]:
    """Train ``student`` on the version at ``version_path`` (``STORE/NAME/v<N>``, ``STORE/NAME/latest`` or a URL),
    at most ``max_steps`` steps, into ``out`` or a folder of ``models_dir`` (default: ``train/`` beside the store);
    returns the training summary (``model_path``, absolute, steps, losses, ...)."""
    from pairforge.train import TrainConfig, run_train
    from pairforge.train.datasets import resolve_version
    from pairforge.train.run import default_out

    logger = get_run_logger()
    config = TrainConfig(student=student, max_steps=max_steps)
    version = resolve_version(version_path)
    if out:
        target = str(Path(out).expanduser().resolve())
    else:
        folder = models_folder(version, models_dir)
        target = pick_out(str(folder / Path(default_out([version], config)).name), str(flow_run.id or ""))
    logger.info("training %s on %s into %s", student, version_path, target)
    summary = run_train([version_path], config, target, log=logger.info)
    logger.info("trained %s steps in %.1f s; model at %s", summary.steps, summary.seconds, summary.model_path)
    return summary.to_dict()


def models_folder(version: str, configured: str | None = None) -> Path:
    """Where models of ``version`` go, as an absolute path: ``configured`` when given, else ``train/`` beside the
    local store that holds the version (``STORE/NAME/v<N>`` → ``STORE/../train``). A version in an object store
    has no local neighbour: there it is ``train/`` in the working directory, unless configured."""
    if configured:
        return Path(configured).expanduser().resolve()
    if "://" in version and not version.startswith("file://"):
        return Path(MODELS).resolve()
    store = Path(version.removeprefix("file://")).resolve().parent.parent
    return store.parent / MODELS


def pick_out(default: str, run_id: str) -> str:
    """``default`` while nothing is there, else ``default-<first 8 characters of run_id>``."""
    if not Path(default).exists() or not run_id:
        return default
    return f"{default}-{run_id[:8]}"
