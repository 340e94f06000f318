"""Ray for a run (the optional ``ray`` extra): an existing cluster at an address, or a local Ray started on
127.0.0.1 for the run; a Ray this process already joined is reused and left running."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Ray's Linux default binds a local Ray to the machine's routable address (reachable from the network);
# this setting keeps it on loopback. Read at import, so it is also set on the constant below once ray is loaded.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
OBJECT_STORE_BYTES = 200 * 1024**2  # shard tasks pass paths and small dicts, never data: Ray's minimum is 75 MB


@contextmanager
def joined_ray(address: str | None, cpus: int, **init: Any) -> Iterator[None]:
    """Ray for the block: this process's Ray if it has joined one already (left running after), else the cluster
    at ``address``, else a local Ray of ``cpus`` CPUs on 127.0.0.1 with no dashboard and a small object store
    (both left again after the block). ``init`` goes to ``ray.init`` (e.g. ``runtime_env``)."""
    if not address:
        os.environ.setdefault(LOOPBACK_ENV, "0")
    import ray

    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False, **init)
    else:
        import ray._private.ray_constants as constants

        constants.ENABLE_RAY_CLUSTER = False  # ray was imported before the variable was set (prefect_ray, a test)
        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            log_to_driver=False,
            configure_logging=False,
            **init,
        )
    try:
        yield
    finally:
        ray.shutdown()
