"""A publishing process for the concurrency test (imported by spawned children, so it imports little)."""

from __future__ import annotations

import time
from typing import Any

FILES = 5


def payload(publisher: str, index: int) -> bytes:
    """What ``publisher`` writes to its file ``index``: enough to tell whose and which file it is."""
    return f"{publisher}:{index}:".encode() + bytes(range(256)) * 64


def publish(root: str, dataset: str, publisher: str, start: Any, results: Any) -> None:
    """Wait at the common barrier, then publish ``FILES`` files slowly, so the two writers overlap."""
    from pairforge.store import Store, StoreError

    def write(folder: str, fs: Any) -> None:
        for index in range(FILES):
            fs.pipe(f"{folder}/part-{index}.bin", payload(publisher, index))
            time.sleep(0.01)

    store = Store(root)
    start.wait(timeout=60)
    try:
        results.put((publisher, store.publish(dataset, write, lock_timeout_s=5), ""))
    except StoreError as exc:
        results.put((publisher, None, str(exc)))
    except Exception as exc:  # reported, not lost: the test fails at once instead of waiting
        results.put((publisher, None, f"unexpected {type(exc).__name__}: {exc}"))
