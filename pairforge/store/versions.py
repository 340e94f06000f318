"""Versions of a dataset under a store root (a local folder or any fsspec URL such as ``s3://bucket/x``).

A version is written aside (``<dataset>/.staging-<token>/``) and renamed to ``v<N>`` only when complete,
so a crash never leaves a visible partial version; a lock file makes concurrent publishers take turns;
``latest`` is a small text file naming the newest version. Versions are never rewritten.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import fsspec

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^v(\d+)$")
_STAGING = re.compile(r"^\.staging-(\d+)-[0-9a-f]+$")
STALE_LOCK_S = 60.0  # the lock is held only for a rename and a small write
STALE_STAGING_S = 24 * 3600.0


class StoreError(RuntimeError):
    """A store operation that cannot go ahead (bad name, lock held too long, missing version)."""


class VersionConflict(StoreError):
    """Another publisher created the version number a writer had prepared (see ``Store.publish(expect=)``)."""


def validate_name(name: str) -> str:
    """A dataset name: letters, digits, ``.``, ``_``, ``-``; never a path (nothing can escape the store)."""
    if not _NAME.fullmatch(name) or ".." in name:  # fullmatch: `$` would let a trailing newline through
        raise StoreError(f"invalid dataset name {name!r}: use letters, digits, '.', '_' and '-' (no '..')")
    return name


class Store:
    """Publish and find dataset versions under ``root``."""

    def __init__(self, root: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.url = root

    def _dataset(self, dataset: str) -> str:
        return f"{self.root.rstrip('/')}/{validate_name(dataset)}"

    def versions(self, dataset: str) -> list[int]:
        """Published version numbers, ascending."""
        folder = self._dataset(dataset)
        if not self.fs.exists(folder):
            return []
        found = (_VERSION.match(Path(entry.rstrip("/")).name) for entry in self.fs.ls(folder, detail=False))
        return sorted(int(m.group(1)) for m in found if m)

    def latest(self, dataset: str) -> int | None:
        versions = self.versions(dataset)
        return versions[-1] if versions else None

    def path(self, dataset: str, version: int) -> str:
        """The folder of a published version (an error if it is not published)."""
        if version not in self.versions(dataset):
            raise StoreError(f"{dataset}: no version v{version} in {self.url}")
        return f"{self._dataset(dataset)}/v{version}"

    def publish(
        self,
        dataset: str,
        write: Callable[[str, fsspec.AbstractFileSystem], None],
        lock_timeout_s: float = 600,
        expect: int | None = None,
    ) -> int:
        """Create the next version: ``write(folder, fs)`` fills a staging folder, which is then renamed to
        ``v<N>`` atomically. Returns N. With ``expect``, a version that would not be numbered ``expect`` (another
        publisher came first, so what was written names the wrong version or parent) is a ``VersionConflict``."""
        folder = self._dataset(dataset)
        self.fs.makedirs(folder, exist_ok=True)
        self._sweep_staging(folder)
        staging = f"{folder}/.staging-{int(time.time())}-{uuid.uuid4().hex[:12]}"
        self.fs.makedirs(staging, exist_ok=True)
        try:
            write(staging, self.fs)
            with self._lock(folder, lock_timeout_s):
                version = (self.latest(dataset) or 0) + 1
                if expect is not None and version != expect:
                    raise VersionConflict(f"{dataset}: expected to publish v{expect}, but v{version - 1} exists")
                self.fs.mv(staging, f"{folder}/v{version}", recursive=True)
                self.fs.pipe(f"{folder}/.latest.tmp", f"v{version}\n".encode())  # written aside, then renamed
                self.fs.mv(f"{folder}/.latest.tmp", f"{folder}/latest")
        except BaseException:
            if self.fs.exists(staging):
                self.fs.rm(staging, recursive=True)
            raise
        return version

    def _sweep_staging(self, folder: str) -> None:
        """Remove staging folders a killed publisher left behind (named with their start time; a day old is
        long dead: a live publisher renames its folder as soon as it is written)."""
        for entry in self.fs.ls(folder, detail=False):
            match = _STAGING.match(Path(entry.rstrip("/")).name)
            if match and time.time() - int(match.group(1)) > STALE_STAGING_S:
                self.fs.rm(entry, recursive=True)

    def _lock(self, folder: str, timeout_s: float) -> _Lock:
        return _Lock(self.fs, f"{folder}/.publish.lock", timeout_s)


class _Lock:
    """A lock file created exclusively; held only for the rename, so waiting is short."""

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str, timeout_s: float) -> None:
        self.fs, self.path, self.timeout_s = fs, path, timeout_s

    def __enter__(self) -> _Lock:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                with self.fs.open(self.path, "xb") as handle:
                    handle.write(f"{time.time()} {uuid.uuid4().hex}".encode())
                return self
            except FileExistsError:
                self._break_if_stale()
                if time.monotonic() > deadline:
                    raise StoreError(f"{self.path}: another publisher holds the lock") from None
                time.sleep(0.05)

    def _break_if_stale(self) -> None:
        """A lock older than ``STALE_LOCK_S`` belongs to a publisher killed during its rename: remove it (only if
        it is still the same lock, so two waiters do not both break one)."""
        try:
            content = self.fs.cat_file(self.path)
            taken = float(content.split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return
        if time.time() - taken > STALE_LOCK_S and self.fs.cat_file(self.path) == content:
            self.fs.rm(self.path)

    def __exit__(self, *exc: object) -> None:
        self.fs.rm(self.path)
