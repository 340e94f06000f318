"""Pinned Dask workers (issue 23): one core and one thread per pool for the worker, its helpers inside the pin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pairforge.pinning import choose_core, usable_cores


@pytest.mark.parametrize(("name", "expected"), [(0, 4), (1, 6), (2, 4), ("3", 6)])
def test_an_integer_named_worker_takes_that_core(name: object, expected: int) -> None:
    assert choose_core(name, [4, 6]) == expected


def test_other_workers_claim_free_cores_by_lock_file(tmp_path: Path) -> None:
    """Each process claims the first core no live process holds; with every core held it shares the last one."""
    claim = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from pairforge.pinning import choose_core
        print(choose_core("tcp://127.0.0.1:1", [0, 1], Path({str(tmp_path)!r})), flush=True)
        sys.stdin.read()  # hold the lock until told to go
    """)
    first = subprocess.Popen([sys.executable, "-c", claim], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "0"
        assert choose_core("tcp://127.0.0.1:2", [0, 1], tmp_path) == 1  # this process now holds core 1
        assert choose_core("tcp://127.0.0.1:3", [0, 1], tmp_path) == 1  # every core taken: the last one
    finally:
        first.communicate("", timeout=30)
    assert choose_core("tcp://127.0.0.1:4", [0, 1], tmp_path) == 0  # the first process ended: core 0 is free


def test_a_pinned_process_has_one_core_one_thread_each_and_forks_inside_the_pin() -> None:
    """In a fresh process (numba not yet imported): one core for every thread, numba with one thread, the BM25
    build's helper count at 1, and a forked child on the same core."""
    core = sorted(os.sched_getaffinity(0))[-1]
    script = textwrap.dedent(f"""
        import json, multiprocessing, os, threading
        from pairforge.pinning import pin_process, usable_cores
        started = threading.Thread(target=threading.Event().wait, args=(60,), daemon=True)
        started.start()  # a thread running before the pin is pinned too
        pin_process({core})
        import numba
        with multiprocessing.get_context("fork").Pool(1) as pool:
            child = pool.apply(os.sched_getaffinity, (0,))
        thread = sorted(os.sched_getaffinity(started.native_id))
        print(json.dumps({{"main": sorted(os.sched_getaffinity(0)), "thread": thread,
                           "child": sorted(child), "helpers": usable_cores(), "numba": numba.config.NUMBA_NUM_THREADS,
                           "omp": os.environ["OMP_NUM_THREADS"]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"main": [core], "thread": [core], "child": [core], "helpers": 1, "numba": 1, "omp": "1"}
    assert usable_cores() == len(os.sched_getaffinity(0))  # this process is not pinned


@pytest.mark.parametrize(
    ("flow", "error"),
    [
        ({"task_runner": "dask", "pin_workers": True}, None),
        ({"task_runner": "thread", "pin_workers": True}, "pin_workers pins the workers of the run's own"),
        ({"task_runner": "dask", "dask_address": "tcp://127.0.0.1:8786", "pin_workers": True}, "--preload"),
    ],
)
def test_pin_workers_is_for_the_runs_own_local_cluster(flow: dict, error: str | None) -> None:
    from pydantic import ValidationError

    from pairforge.config_stages import FlowConfig

    if error is None:
        assert FlowConfig.model_validate(flow).pin_workers
    else:
        with pytest.raises(ValidationError, match=error):
            FlowConfig.model_validate(flow)
