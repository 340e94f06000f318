"""Versions of a dataset under a store root (a local folder or any fsspec URL such as ``s3://bucket/x``).

A version is written aside (``<dataset>/.staging-<token>/``) and renamed to ``v<N>`` only when complete, so a crash
never leaves a visible partial version; a lock file makes concurrent publishers take turns, and a publisher that
built on another parent than the latest gets a ``VersionConflict`` (it must redo its dedup). Versions are never
rewritten, and on a local store their files are made read-only before the rename. Files a version shares with its
parent are hard links on a local store (no copy; only to files made read-only, so an edit cannot reach another
version) and server-side copies on object stores. ``latest`` is a symlink on a local store (swapped atomically, so
``store/<name>/latest/...`` is a path a training job can use) and a small text file elsewhere (``Store.resolve``).
A publisher killed between the rename and the swap leaves ``latest`` behind and its lock in place: the lock names its
host and process, so a dead owner's lock is stale at once, and ``catalog.repair_pointers`` moves the pointers.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pairforge.store import layout

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^v?(\d+)$")
_STAGING = re.compile(r"^\.staging-(\d+)-[0-9a-f]+$")
STALE_LOCK_S = 60.0  # the lock is held only for a check, a rename and a small write
STALE_STAGING_S = 24 * 3600.0
POINTERS = ("latest", "latest-promoted")


class StoreError(RuntimeError):
    """A store operation that cannot go ahead (bad name, lock held too long, missing version)."""


class DamagedVersion(StoreError):
    """A published version's file differs from what its manifest records (truncated, deleted or edited)."""


class VersionConflict(StoreError):
    """Another publisher published after the version a writer built on (see ``Store.publish(parent=)``)."""


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
        self.local = isinstance(self.fs, LocalFileSystem)

    def _dataset(self, dataset: str) -> str:
        return f"{self.root.rstrip('/')}/{validate_name(dataset)}"

    def versions(self, dataset: str) -> list[int]:
        """Published version numbers, ascending."""
        folder = self._dataset(dataset)
        if not self.fs.exists(folder):
            return []
        names = (Path(entry.rstrip("/")).name for entry in self.fs.ls(folder, detail=False))
        return sorted(int(n[1:]) for n in names if re.fullmatch(r"v\d+", n))

    def latest(self, dataset: str) -> int | None:
        versions = self.versions(dataset)
        return versions[-1] if versions else None

    def path(self, dataset: str, version: int) -> str:
        """The folder of a published version (an error if it is not published)."""
        if version not in self.versions(dataset):
            raise StoreError(f"{dataset}: no version v{version} in {self.url}")
        return f"{self._dataset(dataset)}/v{version}"

    def resolve(self, dataset: str, ref: str | int) -> int:
        """A version number from ``3``, ``v3``, ``latest`` or ``latest-promoted``."""
        if isinstance(ref, int) or _VERSION.fullmatch(ref):
            version = int(ref if isinstance(ref, int) else ref.lstrip("v"))
            self.path(dataset, version)
            return version
        if ref not in POINTERS:
            raise StoreError(f"{ref!r} is not a version: use N, vN, latest or latest-promoted")
        pointer = f"{self._dataset(dataset)}/{ref}"
        if not self.fs.exists(pointer):
            raise StoreError(f"{dataset}: no {ref} version in {self.url}")
        target = os.readlink(pointer) if self.local and os.path.islink(pointer) else self.fs.cat(pointer).decode()
        return self.resolve(dataset, target.strip())

    def publish(
        self,
        dataset: str,
        write: Callable[[str, fsspec.AbstractFileSystem], bool | None],
        *,
        parent: int | str | None = "latest",
        lock_timeout_s: float = 600,
    ) -> int:
        """Create the next version: ``write(folder, fs)`` fills a staging folder, which is renamed to ``v<N>``
        under the lock; ``latest`` moves to it, and ``latest-promoted`` too when ``write`` returns True (the
        version passed its training-effect gate). With ``parent`` a version number (or None for the first), the
        latest version must still be that one, else ``VersionConflict``: whoever built on it must redo its work
        against the new latest."""
        folder = self._dataset(dataset)
        self.fs.makedirs(folder, exist_ok=True)
        self._sweep_staging(folder)
        staging = f"{folder}/.staging-{int(time.time())}-{uuid.uuid4().hex[:12]}"
        self.fs.makedirs(staging, exist_ok=True)
        try:
            promoted = write(staging, self.fs)
            self._seal(staging)
            with self.lock(dataset, lock_timeout_s):
                latest = self.latest(dataset)
                if parent != "latest" and latest != parent:
                    raise VersionConflict(
                        f"{dataset}: built on {_name(parent)}, but {_name(latest)} is the latest now"
                    )
                version = (latest or 0) + 1
                self._rename(staging, f"{folder}/v{version}")
                self.point(dataset, "latest", version)
                if promoted:
                    self.point(dataset, "latest-promoted", version)
        except BaseException:
            if self.fs.exists(staging):
                self.fs.rm(staging, recursive=True)
            raise
        return version

    def _rename(self, staging: str, target: str) -> None:
        """Move a written version into place: one atomic rename on a local store; elsewhere file by file with the
        manifest last, so a version folder without its manifest is one still arriving (or cut short), never
        one that looks complete."""
        if self.local:
            self.fs.mv(staging, target, recursive=True)
            return
        files = sorted(self.fs.find(staging), key=lambda p: p.rsplit("/", 1)[-1] == layout.MANIFEST)
        for path in files:
            self.fs.mv(path, f"{target}{path[len(staging) :]}")
        if self.fs.exists(staging):
            self.fs.rm(staging, recursive=True)

    def pointer(self, dataset: str, pointer: str) -> int | None:
        """The version ``pointer`` (``latest``, ``latest-promoted``) names now, or None (absent, or naming
        something that is not ``v<N>``); unlike ``resolve``, the version need not exist."""
        path = f"{self._dataset(dataset)}/{pointer}"
        try:
            if self.local:
                target = os.readlink(path) if os.path.islink(path) else Path(path).read_text(encoding="utf-8")
            else:
                target = self.fs.cat(path).decode("utf-8", errors="replace")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError):
            return None
        match = re.fullmatch(r"v(\d+)", target.strip())
        return int(match.group(1)) if match else None

    def point(self, dataset: str, pointer: str, version: int) -> None:
        """Make ``pointer`` (``latest``, ``latest-promoted``) name ``version``, atomically."""
        folder = self._dataset(dataset)
        tmp = f"{folder}/.{pointer}.{uuid.uuid4().hex[:8]}"
        if self.local:
            os.symlink(f"v{version}", tmp)  # relative: the store can move
            os.replace(tmp, f"{folder}/{pointer}")
        else:
            self.fs.pipe(tmp, f"v{version}\n".encode())
            self.fs.mv(tmp, f"{folder}/{pointer}")

    def share(self, source: str, target: str) -> None:
        """Put the immutable file ``source`` (of an earlier version) at ``target`` without copying its bytes
        through this process: a hard link on a local store, a server-side copy elsewhere. A local source is made
        read-only first (a version written before versions were sealed), so no edit through one link can reach
        another version."""
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        if self.local:
            _make_read_only(source)
            try:
                os.link(source, target)
                return
            except OSError:  # another filesystem, or no hard links there
                pass
        self.fs.copy(source, target)

    def _seal(self, folder: str) -> None:
        """Make every file of a written version read-only (local stores; folders stay writable, so ``rm -rf`` of a
        store still works). Object stores have no modes: their versions are checked by ``versions verify``."""
        if not self.local:
            return
        for top, _dirs, names in os.walk(folder):
            for name in names:
                _make_read_only(os.path.join(top, name))

    def _sweep_staging(self, folder: str) -> None:
        """Remove staging folders a killed publisher left behind (named with their start time; a day old is
        long dead: a live publisher renames its folder as soon as it is written)."""
        for entry in self.fs.ls(folder, detail=False):
            match = _STAGING.match(Path(entry.rstrip("/")).name)
            if match and time.time() - int(match.group(1)) > STALE_STAGING_S:
                self.fs.rm(entry, recursive=True)

    def lock(self, dataset: str, timeout_s: float = 600) -> _Lock:
        """The dataset's publish lock."""
        return _Lock(self.fs, f"{self._dataset(dataset)}/.publish.lock", timeout_s)


class _Lock:
    """A lock file created exclusively; held only for the check and the rename, so waiting is short."""

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str, timeout_s: float) -> None:
        self.fs, self.path, self.timeout_s = fs, path, timeout_s
        self.token = uuid.uuid4().hex

    def __enter__(self) -> _Lock:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                with self.fs.open(self.path, "xb") as handle:
                    handle.write(f"{time.time()} {self.token} {socket.gethostname()} {os.getpid()}".encode())
                return self
            except FileExistsError:
                self._break_if_stale()
                if time.monotonic() > deadline:
                    raise StoreError(f"{self.path}: another publisher holds the lock") from None
                time.sleep(0.05)

    def _break_if_stale(self) -> None:
        """A lock older than ``STALE_LOCK_S``, or one whose owner (host and pid written in it) is a process of this
        host that is gone, belongs to a publisher killed while it held it: remove it (only if it is still the same
        lock, so two waiters do not both break one). Its age is the time written in it, or, for an empty or
        unparsable file (a publisher killed mid-write), the file's modification time."""
        try:
            content = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return
        try:
            taken = float(content.split()[0])
        except (ValueError, IndexError):
            taken = _mtime(self.fs, self.path)
        if time.time() - taken > STALE_LOCK_S or _owner_is_gone(content):
            try:
                if self.fs.cat_file(self.path) == content:
                    self.fs.rm(self.path)
            except FileNotFoundError:
                pass

    def __exit__(self, *exc: object) -> None:
        self.fs.rm(self.path)


def _owner_is_gone(content: bytes) -> bool:
    """Whether the lock's owner is a process of this host that no longer runs (a lock from another host, or from
    a pairforge that wrote no owner, is judged by its age alone)."""
    parts = content.split()
    if len(parts) < 4 or parts[2].decode(errors="replace") != socket.gethostname():
        return False
    try:
        os.kill(int(parts[3]), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):  # alive under another user (EPERM), or not a pid: not ours to judge
        return False
    return False


def _make_read_only(path: str) -> None:
    mode = os.stat(path).st_mode
    if mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _mtime(fs: fsspec.AbstractFileSystem, path: str) -> float:
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return time.time()
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value) if value else time.time()


def _name(version: int | str | None) -> str:
    return "no version" if version is None else f"v{version}"
