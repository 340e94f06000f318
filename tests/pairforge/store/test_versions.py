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
