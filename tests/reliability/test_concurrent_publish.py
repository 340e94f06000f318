"""Two OS processes publish the same dataset at once: two complete distinct versions (or one and a lock error),
never a torn or overwritten one, and ``latest`` names the last; and dataset names cannot reach outside the store."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from pairforge.store import Store, StoreError
from tests.reliability.publisher import FILES, payload, publish


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_two_processes_publishing_at_once_get_distinct_complete_versions(tmp_path: Path) -> None:
    root = (tmp_path / "store").as_uri()  # file:///...
    ctx = multiprocessing.get_context("spawn")
    store = Store(root)
    published: list[int] = []
    for _round in range(3):
        start, results = ctx.Barrier(2), ctx.Queue()  # both children start writing together
        procs = [ctx.Process(target=publish, args=(root, "ds", name, start, results)) for name in ("a", "b")]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
            assert proc.exitcode == 0
        versions = {v: name for name, v, _ in outcomes if v is not None}
        errors = [error for _, v, error in outcomes if v is None]
        assert len(versions) == 2 or (len(versions) == 1 and "holds the lock" in errors[0]), outcomes
        for version, name in versions.items():  # each version is whole and holds only its publisher's files
            folder = Path(store.path("ds", version))
            assert sorted(p.name for p in folder.iterdir()) == [f"part-{i}.bin" for i in range(FILES)]
            for i in range(FILES):
                assert (folder / f"part-{i}.bin").read_bytes() == payload(name, i)
        published += sorted(versions)
        assert store.versions("ds") == published == list(range(1, len(published) + 1))
        latest = tmp_path / "store" / "ds" / "latest"  # a symlink, swapped atomically: a usable path
        assert latest.is_symlink() and os.readlink(latest) == f"v{published[-1]}"
        assert store.latest("ds") == store.resolve("ds", "latest") == published[-1]
        assert (latest / "part-0.bin").read_bytes() == payload(versions[published[-1]], 0)
        leftovers = [p.name for p in (tmp_path / "store" / "ds").iterdir() if p.name not in ("latest",)]
        assert all(name.startswith("v") for name in leftovers), leftovers  # no staging folder, no lock left


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "/abs", "..", "", ".", "ds\n", "ds/../../x", "a\\b", "x\x00", "~", "名字", "x" * 65]
)
@pytest.mark.parametrize("kind", ["folder", "file_url"])
def test_names_that_are_paths_raise_and_create_nothing(name: str, kind: str, tmp_path: Path) -> None:
    root = tmp_path / "sandbox" / "store"
    root.mkdir(parents=True)
    store = Store(str(root) if kind == "folder" else root.as_uri())
    before = tree(tmp_path)
    with pytest.raises(StoreError):
        store.publish(name, lambda folder, fs: fs.pipe(f"{folder}/data.txt", b"x"))
    for call in (store.versions, store.latest, lambda n: store.path(n, 1)):
        with pytest.raises(StoreError):
            call(name)
    assert tree(tmp_path) == before
    assert not Path("/abs").exists()
