"""Prefect on Ray (``flow.task_runner: ray``): the Ray every stage of a run uses, and prefect-ray's task runner on it.
The shard tasks are the ones the Dask and thread runners run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pairforge.config import FlowConfig
from pairforge.ray_cluster import joined_ray


@contextmanager
def ray_cluster(flow: FlowConfig) -> Iterator[None]:
    """Ray joined once for the whole run (each stage's task runner then finds it and leaves it running):
    ``flow.ray_address``, or a local Ray of ``flow.ray_cpus`` CPUs on 127.0.0.1, ended with the block."""
    with joined_ray(flow.ray_address, flow.ray_cpus):
        yield


def create_ray_task_runner(flow: FlowConfig) -> Any:
    """prefect-ray's RayTaskRunner on the Ray ``ray_cluster`` joined (it would start its own otherwise)."""
    from prefect_ray import RayTaskRunner

    return RayTaskRunner(address=flow.ray_address)
