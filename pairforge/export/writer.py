"""Writes the files of a version into its staging folder through fsspec, hashing every byte on the way, so the
manifest's sha256 list needs no second read (on s3:// that would be a second download)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

_CHUNK = 1 << 20


class HashingFile:
    """A write-only file that hashes and counts what passes through (pyarrow needs ``tell``)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner, self.digest, self.size, self.closed = inner, hashlib.sha256(), 0, False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += len(view)
        self.inner.write(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.inner.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True  # the owner closes ``inner``; pyarrow may close this one early


class VersionWriter:
    """Files under ``folder`` on ``fs``; ``files`` maps each relative path to its size and sha256."""

    def __init__(self, fs: fsspec.AbstractFileSystem, folder: str) -> None:
        self.fs, self.folder = fs, folder.rstrip("/")
        self.files: dict[str, dict[str, Any]] = {}

    def path(self, relative: str) -> str:
        return f"{self.folder}/{relative}"

    @contextmanager
    def open(self, relative: str) -> Iterator[HashingFile]:
        """A binary file to write; recorded once closed without an error."""
        if relative in self.files:
            raise ValueError(f"{relative}: written twice")
        target = self.path(relative)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(target, "wb") as inner:
            handle = HashingFile(inner)
            yield handle
        self.files[relative] = {"bytes": handle.size, "sha256": handle.digest.hexdigest()}

    def write_bytes(self, relative: str, data: bytes) -> None:
        with self.open(relative) as handle:
            handle.write(data)

    def write_text(self, relative: str, text: str) -> None:
        self.write_bytes(relative, text.encode("utf-8"))

    def put_file(self, relative: str, local: Path) -> None:
        """Put a local file in: a hard link on a local store (the workdir's stage outputs are replaced by rename,
        never edited in place, and the file is made read-only first, so no second copy of the pool's passages
        lands on the same disk), else a copy, in chunks."""
        if isinstance(self.fs, LocalFileSystem) and self._link(relative, local):
            return
        with self.open(relative) as handle, local.open("rb") as source:
            for block in iter(lambda: source.read(_CHUNK), b""):
                handle.write(block)

    def _link(self, relative: str, local: Path) -> bool:
        """Hard-link ``local`` at ``relative`` and record its size and sha256; False where no link can be made."""
        if relative in self.files:
            raise ValueError(f"{relative}: written twice")
        target = self.path(relative)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        mode = local.stat().st_mode
        local.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            os.link(local, target)
        except OSError:  # another file system, or none with hard links
            return False
        digest, size = hashlib.sha256(), 0
        with local.open("rb") as source:
            for block in iter(lambda: source.read(_CHUNK), b""):
                digest.update(block)
                size += len(block)
        self.files[relative] = {"bytes": size, "sha256": digest.hexdigest()}
        return True

    def put_tree(self, relative: str, local: Path) -> None:
        """Copy every file under a local folder in, keeping the relative layout."""
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            self.put_file(f"{relative}/{path.relative_to(local).as_posix()}", path)

    def record(self, relative: str, meta: dict[str, Any]) -> None:
        """Record a file placed in the folder by other means (shared from a parent version) with its known size
        and sha256."""
        if relative in self.files:
            raise ValueError(f"{relative}: written twice")
        self.files[relative] = {"bytes": meta["bytes"], "sha256": meta["sha256"]}

    def listing(self) -> list[dict[str, Any]]:
        """``[{path, bytes, sha256}]`` of every file written, sorted by path."""
        return [{"path": rel, **meta} for rel, meta in sorted(self.files.items())]

    def check_complete(self, ignore: tuple[str, ...] = ()) -> None:
        """Every file in the folder was written through this writer (so the manifest misses none)."""
        found = {p[len(self.folder) + 1 :] for p in self.fs.find(self.folder)}
        found = {p.lstrip("/") for p in found} - set(ignore)
        if found != set(self.files):
            raise RuntimeError(f"unrecorded files in the version: {sorted(found ^ set(self.files))}")
