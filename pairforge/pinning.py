"""Pinned Dask workers: each worker process on one core with one thread of every pool, its helpers inside its pin.

A Dask worker with ``--nthreads 1`` still spreads over every core: numba's ``prange`` (MinHash signatures, BM25
queries) starts a thread per core, BLAS/OpenMP do the same, and the BM25 build forks segment processes. Two
such workers on two cores fight over both, so 2 workers against 1 measures contention, not scale-out. Pinned,
a worker owns one core: ``os.sched_setaffinity`` (inherited by every thread and forked helper it starts),
``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS``/... at 1 before numba or a BLAS is imported, and stages that start
helper processes size them with ``usable_cores`` (1 when pinned), so nothing escapes the pin.

Use it as a Dask preload: ``LocalCluster(..., preload=["pairforge.pinning"])`` (what ``flow.pin_workers``
does) or ``dask worker --nworkers 2 --nthreads 1 --preload pairforge.pinning`` for a cluster started by hand.
A worker named by an integer (LocalCluster's 0, 1, ...) takes that core of the host's usable ones; any other
worker claims the first free core through a lock file held for its lifetime (``PAIRFORGE_PIN_LOCKS``, default
the temporary folder), so several ``dask worker`` processes on one host spread over its cores.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# Thread pools that size themselves from the core count at import: one thread each in a pinned worker.
THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "POLARS_MAX_THREADS",
    "TOKENIZERS_PARALLELISM",
)
PIN_VARIABLE = "PAIRFORGE_PINNED_CORE"  # set in a pinned worker: the core it runs on
_LOCKS: list[Any] = []  # lock files held open for the process's lifetime (closing one frees the core)


def usable_cores() -> int:
    """The cores this process may run on (1 in a pinned worker): how many helper processes or threads a stage
    should start, so that its helpers stay inside the worker's pin."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS): every core
        return os.cpu_count() or 1


def pin_process(core: int) -> None:
    """Pin this process to ``core`` with one thread per pool (call before numba, torch or a BLAS is imported)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "false" if name == "TOKENIZERS_PARALLELISM" else "1"
    os.environ[PIN_VARIABLE] = str(core)
    # sched_setaffinity(0) pins the calling thread only: pin every thread already running (Dask's event loop,
    # its offload and profiling threads); threads and forked helpers started later inherit it.
    for task in Path("/proc/self/task").glob("*"):
        try:
            os.sched_setaffinity(int(task.name), {core})
        except (ProcessLookupError, ValueError):  # a thread that ended meanwhile
            continue
    os.sched_setaffinity(0, {core})
    if "numba" in sys.modules:  # imported already (e.g. by another preload): fewer threads is still possible
        import numba

        numba.set_num_threads(1)


def choose_core(name: object, cores: list[int], lock_folder: Path | None = None) -> int:
    """The core for the worker called ``name``: ``cores[name % len(cores)]`` for an integer name (LocalCluster's
    workers), else the first core whose lock file no other live process holds (the last core when all are taken)."""
    if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
        return cores[int(name) % len(cores)]
    folder = lock_folder or Path(os.environ.get("PAIRFORGE_PIN_LOCKS", tempfile.gettempdir()))
    for core in cores:
        handle = (folder / f"pairforge-pin-{core}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _LOCKS.append(handle)  # held until this process exits
        return core
    return cores[-1]


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: pin the starting worker to its core (see the module docstring)."""
    cores = sorted(os.sched_getaffinity(0))
    pin_process(choose_core(worker.name, cores))
