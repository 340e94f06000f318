from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pairforge.store import Store, StoreError, VersionConflict


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return Store(str(tmp_path / "store") if request.param == "local" else f"memory://{tmp_path.name}")


def test_versions_count_up_and_latest_points_at_the_newest(store: Store) -> None:
    assert store.versions("ds") == [] and store.latest("ds") is None
    for n in (1, 2, 3):
        assert store.publish("ds", lambda folder, fs, n=n: fs.pipe(f"{folder}/data.txt", str(n).encode())) == n
    assert store.versions("ds") == [1, 2, 3]
    assert store.fs.cat(f"{store.path('ds', 1)}/data.txt") == b"1"  # earlier versions are untouched
    assert store.resolve("ds", "latest") == 3 == store.resolve("ds", "v3") == store.resolve("ds", "3")
    if store.local:  # a path a training job can use as it is
        assert (Path(store.root) / "ds" / "latest" / "data.txt").read_text() == "3"
    else:
        assert store.fs.cat(f"{store.root}/ds/latest") == b"v3\n"


def test_a_failed_write_leaves_no_version(store: Store) -> None:
    def crash(folder: str, fs) -> None:
        fs.pipe(f"{folder}/half.txt", b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        store.publish("ds", crash)
    assert store.versions("ds") == []
    assert [p for p in store.fs.ls(f"{store.root}/ds", detail=False) if ".staging" in p] == []


def test_concurrent_publishers_get_distinct_complete_versions(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(store.publish("ds", lambda folder, fs: fs.pipe(f"{folder}/x", b"x")))
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [1, 2, 3, 4] == store.versions("ds")


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 70, "a..b"])
def test_names_cannot_escape_the_store(store: Store, name: str) -> None:
    with pytest.raises(StoreError):
        store.publish(name, lambda folder, fs: None)


def test_missing_version(store: Store) -> None:
    with pytest.raises(StoreError, match="no version v7"):
        store.path("ds", 7)


def test_a_publisher_built_on_an_older_parent_gets_a_conflict(store: Store) -> None:
    store.publish("ds", lambda folder, fs: fs.pipe(f"{folder}/x", b"x"), parent=None)
    with pytest.raises(VersionConflict, match="built on no version, but v1 is the latest now"):
        store.publish("ds", lambda folder, fs: fs.pipe(f"{folder}/x", b"y"), parent=None)
    assert store.publish("ds", lambda folder, fs: fs.pipe(f"{folder}/x", b"z"), parent=1) == 2
    assert store.versions("ds") == [1, 2]
    assert [p for p in store.fs.ls(f"{store.root}/ds", detail=False) if ".staging" in p] == []


def test_a_killed_publishers_lock_and_staging_folder_are_cleared(store: Store) -> None:
    import time

    folder = f"{store.root}/ds"
    store.fs.makedirs(folder, exist_ok=True)
    old = int(time.time()) - 2 * 24 * 3600
    for name, file in ((f".staging-{old}-abc123", "half.txt"), (f".staging-{int(time.time())}-def456", "live.txt")):
        store.fs.makedirs(f"{folder}/{name}", exist_ok=True)  # a publisher killed mid-write; one still writing
        store.fs.pipe(f"{folder}/{name}/{file}", b"x")
    store.fs.pipe(f"{folder}/.publish.lock", f"{time.time() - 300} deadbeef".encode())  # killed while renaming
    start = time.monotonic()
    assert store.publish("ds", lambda f, fs: fs.pipe(f"{f}/data.txt", b"1"), lock_timeout_s=5) == 1
    assert time.monotonic() - start < 4  # the stale lock was broken, not waited out
    names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in store.fs.ls(folder, detail=False))
    assert names == [f".staging-{int(names[0].split('-')[1])}-def456", "latest", "v1"]


def test_a_live_lock_is_waited_for_then_reported(store: Store) -> None:
    import time

    folder = f"{store.root}/ds"
    store.fs.makedirs(folder, exist_ok=True)
    store.fs.pipe(f"{folder}/.publish.lock", f"{time.time()} cafe".encode())
    with pytest.raises(StoreError, match="another publisher holds the lock"):
        store.publish("ds", lambda f, fs: fs.pipe(f"{f}/data.txt", b"1"), lock_timeout_s=0.3)
    assert store.versions("ds") == []


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xff\xfe not a time"])
def test_an_empty_or_unparsable_lock_is_judged_stale_by_its_age(tmp_path: Path, content: bytes) -> None:
    import os
    import time

    store = Store(str(tmp_path / "store"))
    lock = tmp_path / "store" / "ds" / ".publish.lock"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(content)  # a publisher killed while writing its lock
    old = time.time() - 120
    os.utime(lock, (old, old))
    start = time.monotonic()
    assert store.publish("ds", lambda f, fs: fs.pipe(f"{f}/data.txt", b"1"), lock_timeout_s=5) == 1
    assert time.monotonic() - start < 4


def test_a_fresh_unparsable_lock_is_waited_for(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    lock = tmp_path / "store" / "ds" / ".publish.lock"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b"")
    with pytest.raises(StoreError, match="another publisher holds the lock"):
        store.publish("ds", lambda f, fs: fs.pipe(f"{f}/data.txt", b"1"), lock_timeout_s=0.3)


def test_shared_files_are_hard_links_on_a_local_store(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    store.publish("ds", lambda f, fs: fs.pipe(f"{f}/data.txt", b"v1 data"))
    parent = store.path("ds", 1)
    store.publish("ds", lambda f, fs: store.share(f"{parent}/data.txt", f"{f}/data.txt"))
    first, second = Path(parent) / "data.txt", Path(store.path("ds", 2)) / "data.txt"
    assert second.read_bytes() == b"v1 data" and first.stat().st_ino == second.stat().st_ino
    import shutil

    shutil.rmtree(parent)  # removing a version never breaks a later one
    assert second.read_bytes() == b"v1 data"


WRITE_BITS = 0o222


def test_version_files_are_read_only_and_a_store_can_still_be_removed(tmp_path: Path) -> None:
    import shutil

    store = Store(str(tmp_path / "store"))
    store.publish("ds", lambda f, fs: (fs.makedirs(f"{f}/sub"), fs.pipe(f"{f}/sub/data.txt", b"v1 data")))
    data = Path(store.path("ds", 1)) / "sub" / "data.txt"
    assert not data.stat().st_mode & WRITE_BITS  # (the mode, not an open(): root may write anyway)
    shutil.rmtree(tmp_path / "store")  # folders stay writable: rm -rf of a store or workdir works
    assert not (tmp_path / "store").exists()


def test_sharing_a_writable_file_of_an_older_version_seals_it_first(tmp_path: Path) -> None:
    """A version published before versions were sealed has writable files: sharing one must not leave a writable
    link through which an edit of one version changes another."""
    store = Store(str(tmp_path / "store"))
    store.publish("ds", lambda f, fs: fs.pipe(f"{f}/data.txt", b"v1 data"))
    first = Path(store.path("ds", 1)) / "data.txt"
    first.chmod(0o644)  # as an earlier pairforge left it
    store.publish("ds", lambda f, fs: store.share(str(first), f"{f}/data.txt"))
    second = Path(store.path("ds", 2)) / "data.txt"
    assert first.stat().st_ino == second.stat().st_ino
    assert not first.stat().st_mode & WRITE_BITS and not second.stat().st_mode & WRITE_BITS


def test_a_dead_publishers_lock_is_stale_at_once(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys
    import time

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / "store" / "ds" / ".publish.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(f"{time.time()} cafe {socket.gethostname()} {int(gone.stdout)}")  # fresh, but its owner is dead
    start = time.monotonic()
    assert Store(str(tmp_path / "store")).publish("ds", lambda f, fs: fs.pipe(f"{f}/x", b"1"), lock_timeout_s=5) == 1
    assert time.monotonic() - start < 2


KILLED_BETWEEN_RENAME_AND_LATEST = """
import os, signal, sys
from pairforge.store import Store
store = Store(sys.argv[1])
store.publish("ds", lambda f, fs: fs.pipe(f"{f}/x", b"1"))
store.point = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed after the rename, before the swap
store.publish("ds", lambda f, fs: fs.pipe(f"{f}/x", b"2"))
"""


def test_latest_is_repaired_after_a_kill_between_rename_and_swap(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pairforge.store.catalog import repair_pointers

    root = str(tmp_path / "store")
    done = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_RENAME_AND_LATEST, root], timeout=60, check=False)
    assert done.returncode == -9
    store = Store(root)
    assert store.versions("ds") == [1, 2] and store.pointer("ds", "latest") == 1  # left behind ...
    assert (tmp_path / "store" / "ds" / ".publish.lock").exists()  # ... with the dead publisher's lock
    assert repair_pointers(store, "ds") == {"latest": 2}
    assert store.resolve("ds", "latest") == 2 and (tmp_path / "store" / "ds" / "latest" / "x").read_bytes() == b"2"
    assert not (tmp_path / "store" / "ds" / ".publish.lock").exists()
    assert repair_pointers(store, "ds") == {}
    assert store.publish("ds", lambda f, fs: fs.pipe(f"{f}/x", b"3"), lock_timeout_s=2) == 3


def test_repair_leaves_pointers_to_a_live_publisher(tmp_path: Path) -> None:
    import time

    from pairforge.store import catalog

    store = Store(str(tmp_path / "store"))
    store.publish("ds", lambda f, fs: fs.pipe(f"{f}/x", b"1"))
    store.fs.mv(f"{store.root}/ds/v1", f"{store.root}/ds/v2")  # as if a publisher had just renamed its v2
    with store.lock("ds", 1):  # and still held its lock (this process: alive)
        started = time.monotonic()
        assert catalog.repair_pointers(store, "ds") == {}
        assert time.monotonic() - started < catalog.REPAIR_LOCK_S + 1


def test_on_an_object_store_the_manifest_arrives_last(tmp_path: Path) -> None:
    """There a version folder is moved file by file: one without its manifest.json is never a complete one."""
    store = Store(f"memory://{tmp_path.name}-order")
    moved: list[str] = []
    mv = store.fs.mv
    store.fs.mv = lambda a, b, **kw: (moved.append(b.rsplit("/", 1)[-1]), mv(a, b, **kw))[1]  # type: ignore[method-assign]

    def write(folder: str, fs) -> None:
        for name in ("manifest.json", "a.txt", "z.txt"):
            fs.pipe(f"{folder}/{name}", name.encode())

    assert store.publish("ds", write) == 1
    assert moved[:3] == ["a.txt", "z.txt", "manifest.json"]
    assert sorted(p.rsplit("/", 1)[-1] for p in store.fs.find(store.path("ds", 1))) == [
        "a.txt",
        "manifest.json",
        "z.txt",
    ]
