"""A Dask worker preload for the tests (``distributed.worker.preload``; ``ray_setup`` is the same for Ray workers):
each worker process records the name of every Prefect task run it executes in ``$PAIRFORGE_TEST_TASK_LOG/<pid>.txt``,
so a test can tell which process ran which shard task. It listens to Prefect's task-run logger, whose records carry
``task_run_name`` (the engine logs "Finished in state ..." for every task run, in the process that ran it)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

ENV = "PAIRFORGE_TEST_TASK_LOG"


class TaskRunRecorder(logging.Handler):
    """Appends ``<task run name>\\t<message>`` to this process's file for every finished task run."""

    def __init__(self, folder: Path) -> None:
        super().__init__(logging.INFO)
        self.path = folder / f"{os.getpid()}.txt"

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "task_run_name", None)
        message = record.getMessage()
        if name and message.startswith("Finished in state"):
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(f"{name}\t{message}\n")
            # the cores the task's thread may run on (a pinned worker: its one core)
            self.path.with_suffix(".cores").write_text(" ".join(map(str, sorted(os.sched_getaffinity(0)))))


def dask_setup(worker: Any) -> None:
    """Called by Dask when the worker starts: attach the recorder after Prefect has configured its logging (its
    first configuration replaces the handlers of the loggers it names)."""
    import prefect.main  # noqa: F401 - configures Prefect's logging once for this process

    logger = logging.getLogger("prefect.task_runs")
    logger.addHandler(TaskRunRecorder(Path(os.environ[ENV])))
    logger.setLevel(logging.INFO)  # the tests run Prefect at WARNING; "Finished in state" is INFO


def read_task_log(folder: Path) -> dict[int, list[str]]:
    """Task run names by the pid of the worker process that ran them."""
    return {
        int(path.stem): [line.split("\t", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]
        for path in folder.glob("*.txt")
    }


def ray_setup() -> None:
    """The same recorder in a Ray worker process (``runtime_env={"worker_process_setup_hook": ...}``)."""
    dask_setup(None)
