"""Runs the pipeline (``flows.pipeline.run_pipeline``, as ``pairforge run`` does) for a config in its own process
and, when told, SIGKILLs itself at a chosen point: the crash-resume test's subject.
Usage: ``python crash_driver.py CONFIG [generate:N | mine | publish:N | meet:N/FOLDER]``; ``meet`` kills nothing:
the run's first publish waits until N runs have reached theirs (each leaves a file in FOLDER), so concurrent runs
all build on the same parent for certain.

The kill hooks wrap library functions from here (test code), never production code. With the default thread
task runner a hook runs in a worker thread of this process, so ``os.kill`` on our own pid kills the whole run
without a chance to clean up, as a power cut or the OOM killer would.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KILLED_AT = "CRASH_DRIVER_KILLED_AT"  # env: a file the hook writes (what it saw) just before the kill
COMMIT_EVERY = 4  # answers per ledger commit in every run (the default 32 is more than this corpus asks)
MEET_WAIT_S = 240  # the longest a run waits for the others at its first publish


def die(note: dict[str, Any]) -> None:
    """Record where we are, then SIGKILL this process (no finally blocks, no atexit, no flush)."""
    target = os.environ.get(KILLED_AT)
    if target:
        Path(target).write_text(json.dumps(note), encoding="utf-8")
    os.kill(os.getpid(), signal.SIGKILL)


def commit_in_small_batches() -> None:
    """Several ledger commits for a small corpus, so a kill can fall between two of them."""
    import pairforge.generation.send as send

    send.COMMIT_EVERY = COMMIT_EVERY


def arm_generate(after: int) -> None:
    """Die right after the ``after``-th ledger commit (the rows of earlier commits are durable; requests the
    backend still had in flight are lost with the process)."""
    from pairforge.generation.ledger import Ledger

    original = Ledger.add
    commits = [0]

    def add(self: Ledger, rows: Any) -> None:
        rows = list(rows)
        original(self, rows)
        commits[0] += bool(rows)
        if commits[0] == after:
            die({"point": "generate", "ledger_rows": self.count()})

    Ledger.add = add  # type: ignore[method-assign]


def arm_mine() -> None:
    """Die in the middle of the mine stage: a shard's candidates are written, its completion is not recorded."""
    from pairforge.workdir import Workdir, shard_files

    original = Workdir.mark_done

    def mark_done(self: Workdir, stage: str, shard: str, key: str, stats: Any) -> None:
        if stage == "mine":
            files = [str(p) for p in shard_files(self.candidates, shard)]
            die({"point": "mine", "shard": shard, "candidates": files, "recorded": self.done(stage, shard).exists()})
        original(self, stage, shard, key, stats)

    Workdir.mark_done = mark_done  # type: ignore[method-assign]


def arm_publish(after: int) -> None:
    """Die once the version's staging folder holds ``after`` files or more, before it is renamed to ``v<N>``: after
    a file written (``open``) or put in (``put_file``: a stage output hard-linked in, no write)."""
    from pairforge.export.writer import VersionWriter

    original: Callable[..., Any] = VersionWriter.open.__wrapped__  # type: ignore[attr-defined]
    put_file = VersionWriter.put_file

    def check(self: VersionWriter) -> None:
        if len(self.files) >= after:
            die({"point": "publish", "staging": self.folder, "files": sorted(self.files)})

    @contextmanager
    def open_(self: VersionWriter, relative: str) -> Iterator[Any]:
        yield from original(self, relative)
        check(self)

    def put_file_(self: VersionWriter, relative: str, local: Any) -> None:
        put_file(self, relative, local)
        check(self)

    VersionWriter.open = open_  # type: ignore[method-assign,assignment]
    VersionWriter.put_file = put_file_  # type: ignore[method-assign]


def arm_meet(runs: int, folder: Path) -> None:
    """The first ``Store.publish`` of this run waits (bounded) until ``runs`` runs have reached theirs; later
    publishes (a retry after a conflict) go ahead at once."""
    from pairforge.store.versions import Store

    original = Store.publish
    met = [False]

    def publish(self: Store, *args: Any, **kwargs: Any) -> int:
        if not met[0]:
            met[0] = True
            folder.mkdir(parents=True, exist_ok=True)
            (folder / str(os.getpid())).touch()
            deadline = time.monotonic() + MEET_WAIT_S
            while len(list(folder.iterdir())) < runs and time.monotonic() < deadline:
                time.sleep(0.1)
        return original(self, *args, **kwargs)

    Store.publish = publish  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    """Arm the requested kill (if any), run the pipeline, print its result as JSON."""
    sys.path.insert(0, str(REPO))
    config, point = Path(argv[0]), (argv[1] if len(argv) > 1 else "none")
    name, _, count = point.partition(":")
    arm: dict[str, Callable[[], None]] = {
        "generate": lambda: arm_generate(int(count or 1)),
        "mine": arm_mine,
        "publish": lambda: arm_publish(int(count or 1)),
        "meet": lambda: arm_meet(int(count.split("/", 1)[0]), Path(count.split("/", 1)[1])),
        "none": lambda: None,
    }
    commit_in_small_batches()
    arm[name]()
    from flows.pipeline import run_pipeline

    result = run_pipeline(config)
    print(json.dumps({"version": result["version"], "path": result["path"], "new_shards": result["new_shards"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
