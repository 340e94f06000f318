"""Reading published versions back: manifests, a listing, and the difference between two versions
(counts by kind, examples added and removed by pair id, config changes as dotted keys); and repairing the
``latest`` pointers from the versions there are."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.parquet as pq

from pairforge.store import layout
from pairforge.store.versions import Store, StoreError

REPAIR_LOCK_S = 2.0  # a live publisher holds the lock for a rename and two pointer swaps, and moves them itself


def read_manifest(store: Store, dataset: str, version: int) -> dict[str, Any]:
    """The manifest.json of a published version."""
    path = f"{store.path(dataset, version)}/manifest.json"
    if not store.fs.exists(path):
        raise StoreError(f"{dataset} v{version}: no manifest.json in {store.url}")
    manifest: dict[str, Any] = json.loads(store.fs.cat(path))
    return manifest


def list_versions(store: Store, dataset: str) -> list[dict[str, Any]]:
    """One row per version, oldest first: version, created_at, examples (total and by kind), parent."""
    rows = []
    for version in store.versions(dataset):
        manifest = read_manifest(store, dataset, version)
        rows.append(
            {
                "version": version,
                "created_at": manifest.get("created_at"),
                "examples": sum(manifest.get("examples", {}).values()),
                "by_kind": manifest.get("examples", {}),
                "parent": manifest.get("parent"),
                "config_fingerprint": manifest.get("config_fingerprint"),
            }
        )
    return rows


def show_version(store: Store, dataset: str, version: int) -> dict[str, Any]:
    """The manifest without its bulky parts (config, file list, raw stage summaries): what a person reads."""
    manifest = read_manifest(store, dataset, version)
    summary = {k: v for k, v in manifest.items() if k not in ("config", "files", "stages")}
    summary["path"] = store.path(dataset, version)
    summary["files"] = len(manifest.get("files", []))
    summary["bytes"] = sum(f["bytes"] for f in manifest.get("files", []))
    return summary


def diff_versions(store: Store, dataset: str, a: int, b: int, show: int = 20) -> dict[str, Any]:
    """What changed from version ``a`` to ``b``: example counts by kind, pair ids added and removed (the first
    ``show`` of each, sorted), and every config key whose value differs."""
    first, second = read_manifest(store, dataset, a), read_manifest(store, dataset, b)
    ids_a, ids_b = _pair_ids(store, dataset, a), _pair_ids(store, dataset, b)
    added, removed = sorted(ids_b - ids_a), sorted(ids_a - ids_b)
    kinds = sorted(set(first.get("examples", {})) | set(second.get("examples", {})))
    flat_a, flat_b = flatten(first.get("config", {})), flatten(second.get("config", {}))
    return {
        "dataset": dataset,
        "a": a,
        "b": b,
        "examples": {k: {"a": first["examples"].get(k, 0), "b": second["examples"].get(k, 0)} for k in kinds},
        "added": len(added),
        "removed": len(removed),
        "added_ids": added[:show],
        "removed_ids": removed[:show],
        "config": {
            key: {"a": flat_a.get(key), "b": flat_b.get(key)}
            for key in sorted(set(flat_a) | set(flat_b))
            if flat_a.get(key) != flat_b.get(key)
        },
    }


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}``; lists are leaves."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def repair_pointers(store: Store, dataset: str) -> dict[str, int]:
    """Point ``latest`` at the newest published version and ``latest-promoted`` at the newest one its gate
    promoted, where a publisher killed between its rename and the swap left them behind; returns the pointers
    moved. A fresh lock (a publisher at work, which moves them itself) leaves them as they are; a dead
    publisher's lock is broken."""
    if not store.versions(dataset):
        return {}
    if all(store.pointer(dataset, p) == v for p, v in _wanted_pointers(store, dataset).items()):
        return {}
    moved = {}
    try:
        with store.lock(dataset, REPAIR_LOCK_S):
            for pointer, version in _wanted_pointers(store, dataset).items():  # again: the store may have moved
                if store.pointer(dataset, pointer) != version:
                    store.point(dataset, pointer, version)
                    moved[pointer] = version
    except (StoreError, OSError):  # the lock is held by a live publisher, or this user may only read the store
        return {}
    return moved


def _wanted_pointers(store: Store, dataset: str) -> dict[str, int]:
    versions = store.versions(dataset)
    wanted = {"latest": versions[-1]}
    for version in reversed(versions):
        try:
            gate = read_manifest(store, dataset, version).get("gate") or {}
        except (StoreError, ValueError):
            continue
        if gate.get("promoted"):
            wanted["latest-promoted"] = version
            break
    return wanted


def example_files(store: Store, dataset: str, version: int) -> list[str]:
    """The paths of a version's example files, as its manifest lists them (never a glob: a deleted file is an
    error, not a smaller dataset)."""
    folder = store.path(dataset, version)
    listed = [f["path"] for f in read_manifest(store, dataset, version)["files"]]
    return [f"{folder}/{p}" for p in listed if p.startswith(f"{layout.EXAMPLES}/") and p.endswith(".parquet")]


def _pair_ids(store: Store, dataset: str, version: int) -> set[str]:
    ids: set[str] = set()
    for path in example_files(store, dataset, version):
        try:
            with store.fs.open(path, "rb") as handle:
                ids.update(pq.read_table(handle, columns=["pair_id"])["pair_id"].to_pylist())
        except FileNotFoundError:
            raise StoreError(f"{path}: missing (listed in the manifest of {dataset} v{version})") from None
    return ids
