"""Every process a run starts ends with it: ``guard_processes`` around ``pairforge run``.

A run starts processes it does not spawn itself: Prefect's temporary server, vLLM's EngineCore and Worker processes
(and multiprocessing's resource_tracker), Dask's LocalCluster workers. Nothing would stop them when the run dies,
so the guard does two things:

- a **reaper**: a small process in its own session (so neither a Ctrl-C in the terminal nor a kill of the run's
  process group reaches it) that records the run's descendants every ``POLL_S`` and, once the run is gone
  (SIGKILL, OOM, a crash), sends them SIGTERM, then SIGKILL after ``GRACE_S``, and exits. A process started in the
  last ``POLL_S`` before the run died is not yet on its list; a direct child can also be given a parent-death
  signal (``parent_death_signal``), as the Prefect server is.
- **SIGTERM and SIGINT handling**: the first signal stops the run's engines and workers (every descendant but the
  ones ``spare`` names: the Prefect server, which must record the run's end) and unwinds the run
  (``SystemExit(128 + signal)``, so ``finally`` blocks stop the server); if that takes longer than ``UNWIND_S``,
  or a second signal comes, every descendant is killed and the process exits at once.

Run as ``python -m pairforge.reaper PID`` it is the reaper of the process PID (its parent).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any

import psutil

POLL_S = 0.5  # how often the reaper records the run's descendants
GRACE_S = 5.0  # between SIGTERM and SIGKILL

_spared: set[int] = set()


def spare(pid: int) -> None:
    """Leave ``pid`` (a descendant that must outlive the engines, like the Prefect server) running when the first
    SIGTERM/SIGINT stops the engines; it still ends with the run."""
    _spared.add(pid)


def parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that makes the child get SIGTERM when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``); libc is loaded here, in the parent, so the child only makes the call. The signal
    comes when the *thread* that started the child ends: start such children from the main thread."""
    if sys.platform != "linux":
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@contextlib.contextmanager
def guard_processes() -> Iterator[None]:
    """For the block: a reaper watching this process, and SIGTERM/SIGINT handling that stops the engines and
    unwinds (only from the main thread; elsewhere the reaper alone)."""
    reaper = subprocess.Popen(
        [sys.executable, "-m", "pairforge.reaper", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    stopper = _Stopper(reaper.pid)
    saved: dict[int, Any] = {}
    wakeup: tuple[int, int] | None = None
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            saved[signum] = signal.signal(signum, stopper.handle)
        wakeup = _watch_wakeup_fd(stopper)
    try:
        yield
    finally:
        for number, previous in saved.items():
            signal.signal(number, previous)
        if wakeup is not None:
            signal.set_wakeup_fd(wakeup[0])
            os.close(wakeup[1])  # the watcher reads end-of-file and ends
        _spared.clear()
        if (
            stopper.signum is None
        ):  # the run ended by itself and stopped what it started; else the reaper ends the rest
            reaper.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                reaper.wait(timeout=GRACE_S)


SIGNALS = (signal.SIGTERM, signal.SIGINT)
UNWIND_S = 15.0  # the longest a signalled run may take to record its end and stop its server


class _Stopper:
    """What SIGTERM or SIGINT does to a guarded run. ``begin`` (once): SIGTERM to every descendant but the spared
    ones, and a timer that kills everything and exits after ``UNWIND_S``. ``handle`` (the Python handler): ``begin``,
    then ``SystemExit(128 + signal)`` to unwind; a second call exits at once.

    While a Prefect flow runs, Prefect's own SIGTERM handler replaces ours (``capture_sigterm``): it records the
    run as crashed and only then re-sends the signal to our handler, but its unwinding waits for the task threads,
    and a thread inside a live engine never returns. So ``begin`` also runs from a thread that reads the signal
    numbers Python's C-level handler writes to the wakeup fd, whichever Python handler is installed."""

    def __init__(self, reaper_pid: int) -> None:
        self.reaper_pid = reaper_pid
        self.signum: int | None = None
        self.unwinding = False
        self._lock = threading.Lock()

    def begin(self, signum: int) -> None:
        with self._lock:
            if self.signum is not None:
                return
            self.signum = signum
        _stop(_descendants(exclude={self.reaper_pid, *_spared}), wait=False)  # engines, Dask workers
        timer = threading.Timer(UNWIND_S, self.exit_now)
        timer.daemon = True
        timer.start()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.unwinding:  # a second signal: no more patience
            self.exit_now()
        self.unwinding = True
        self.begin(signum)
        raise SystemExit(128 + (self.signum or signum))

    def exit_now(self) -> None:
        """Kill what the run started and exit without waiting for its threads."""
        _stop(_descendants(exclude={self.reaper_pid}))
        os._exit(128 + (self.signum or signal.SIGTERM))


def _watch_wakeup_fd(stopper: _Stopper) -> tuple[int, int]:
    """A daemon thread that calls ``stopper.begin`` for each SIGTERM/SIGINT written to a new wakeup fd; returns
    (the previous wakeup fd, the pipe's write end)."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def watch() -> None:
        try:
            while data := os.read(read_end, 64):
                for signum in data:
                    if signum in SIGNALS:
                        stopper.begin(signum)
        except OSError:
            pass
        finally:
            os.close(read_end)

    threading.Thread(target=watch, name="pairforge-signals", daemon=True).start()
    return previous, write_end


def _descendants(exclude: set[int], root: int | None = None) -> list[psutil.Process]:
    try:
        children = psutil.Process(root or os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if p.pid not in exclude]


def _stop(processes: Iterable[psutil.Process], *, wait: bool = True) -> None:
    """SIGTERM to ``processes`` and their descendants; with ``wait``, SIGKILL to those alive ``GRACE_S`` later."""
    targets: dict[int, psutil.Process] = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.is_running():
                targets.setdefault(process.pid, process)
                for child in process.children(recursive=True):
                    targets.setdefault(child.pid, child)
    for process in targets.values():
        with contextlib.suppress(psutil.Error):
            process.terminate()
    if not wait:
        return
    _, alive = psutil.wait_procs(list(targets.values()), timeout=GRACE_S)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=GRACE_S)


def watch(parent: int) -> None:
    """The reaper's loop: record ``parent``'s descendants until it is gone, then stop them."""
    me = os.getpid()
    try:
        root = psutil.Process(parent)
    except psutil.NoSuchProcess:
        return
    known: dict[int, psutil.Process] = {}
    while _alive(root):
        with contextlib.suppress(psutil.Error):
            known = {p.pid: p for p in known.values() if p.is_running()}
            known.update((p.pid, p) for p in root.children(recursive=True) if p.pid != me)
        time.sleep(POLL_S)
    _stop(known.values())


def _alive(run: psutil.Process) -> bool:
    """The run is gone once the reaper is re-parented (a process's exit re-parents its children at once, before
    its zombie is reaped), or it no longer exists."""
    try:
        return os.getppid() == run.pid and run.is_running() and run.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


if __name__ == "__main__":
    with contextlib.suppress(psutil.Error, KeyboardInterrupt):
        watch(int(sys.argv[1]))
