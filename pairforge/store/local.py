"""Published versions as local files: a local store's versions are used in place; a remote store's are copied once
into the workdir (MinHash indexes and the pool are memory-mapped, and memory maps need local files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pairforge.pool import PoolPart
from pairforge.store import layout
from pairforge.store.versions import Store
from pairforge.workdir import Workdir


def fetch_version(store: Store, dataset: str, version: int, workdir: Workdir) -> Path:
    """A published version as a local folder: itself on a local store, else a copy in the workdir's cache."""
    remote = store.path(dataset, version)
    if store.local:
        return Path(remote)
    local = workdir.fetched / dataset / f"v{version}"
    if not (local / layout.MANIFEST).is_file():
        store.fs.get(remote, str(local), recursive=True)
    return local


def segment_index(version: Path, segment: dict[str, Any]) -> Path:
    """A segment's MinHash index part in a version folder."""
    return version / layout.INDEX / segment["key"]


def pool_part(version: Path, segment: dict[str, Any]) -> PoolPart:
    """A segment's passages and index part in a version folder, as a pool part."""
    passages = [version / f for f in segment["files"] if f.startswith(f"{layout.PASSAGES}/")]
    return PoolPart(segment["key"], passages, segment_index(version, segment))
