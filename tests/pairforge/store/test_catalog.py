"""Reading versions back: manifests, listings and diffs, on hand-written manifests in a memory store."""

from __future__ import annotations

import hashlib
import io
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairforge.store import Store, StoreError
from pairforge.store.catalog import diff_versions, flatten, list_versions, read_manifest, show_version


@pytest.mark.parametrize(
    ("value", "flat"),
    [
        ({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}}, {"a": 1, "b.c": [1, 2], "b.d.e": None}),
        ({}, {}),
        ({"x": {}}, {}),
    ],
)
def test_flatten(value: dict, flat: dict) -> None:
    assert flatten(value) == flat


def publish(store: Store, manifest: dict, pair_ids: list[str] | None) -> int:
    def write(folder: str, fs) -> None:
        manifest["files"] = []
        if pair_ids is not None:
            buffer = io.BytesIO()
            pq.write_table(pa.table({"pair_id": pair_ids}), buffer)
            data = buffer.getvalue()
            fs.pipe(f"{folder}/data/examples/segment-00000.parquet", data)
            manifest["files"] = [{"path": "data/examples/segment-00000.parquet", "bytes": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest()}]  # fmt: skip
        fs.pipe(f"{folder}/manifest.json", json.dumps(manifest).encode())

    return store.publish("ds", write)


@pytest.fixture
def store() -> Store:
    store = Store(f"memory://catalog-{uuid.uuid4().hex[:8]}")
    config = {"mine": {"num_negatives": 7, "range_max": 50}, "export": {"uniem": False}}
    publish(store, {"created_at": "t1", "examples": {"qp": 3}, "parent": None, "config": config}, ["a", "b", "c"])
    changed = {"mine": {"num_negatives": 5, "range_max": 50}, "export": {"uniem": True, "seed": 1}}
    publish(
        store, {"created_at": "t2", "examples": {"qp": 2, "human": 1}, "parent": 1, "config": changed}, ["b", "c", "d"]
    )
    return store


def test_list_and_show(store: Store) -> None:
    rows = list_versions(store, "ds")
    assert [(r["version"], r["examples"], r["parent"], r["created_at"]) for r in rows] == [
        (1, 3, None, "t1"),
        (2, 3, 1, "t2"),
    ]
    shown = show_version(store, "ds", 2)
    assert "config" not in shown and shown["files"] == 1 and shown["path"] == store.path("ds", 2)


def test_diff(store: Store) -> None:
    diff = diff_versions(store, "ds", 1, 2)
    assert (diff["added"], diff["removed"], diff["added_ids"], diff["removed_ids"]) == (1, 1, ["d"], ["a"])
    assert diff["examples"] == {"human": {"a": 0, "b": 1}, "qp": {"a": 3, "b": 2}}
    assert diff["config"] == {
        "export.seed": {"a": None, "b": 1},
        "export.uniem": {"a": False, "b": True},
        "mine.num_negatives": {"a": 7, "b": 5},
    }
    assert (
        diff_versions(store, "ds", 2, 2)["config"] == {}
        and diff_versions(store, "ds", 1, 2, show=0)["added_ids"] == []
    )


def test_a_version_without_a_manifest(store: Store) -> None:
    store.publish("ds", lambda folder, fs: fs.pipe(f"{folder}/x", b"x"))
    with pytest.raises(StoreError, match=r"no manifest\.json"):
        read_manifest(store, "ds", 3)
    with pytest.raises(StoreError, match="no version v9"):
        read_manifest(store, "ds", 9)


def test_diff_reads_the_files_the_manifest_lists(store: Store) -> None:
    """A deleted example file is an error naming it, not a version with fewer examples."""
    store.fs.rm(f"{store.path('ds', 2)}/data/examples/segment-00000.parquet")
    with pytest.raises(StoreError, match=r"v2/data/examples/segment-00000\.parquet: missing"):
        diff_versions(store, "ds", 1, 2)
