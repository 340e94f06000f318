"""Checking a published version against its manifest (``pairforge versions verify``): every listed file is there
with the recorded size and sha256, no file is there that the manifest does not list, and the counts the manifest
shows agree with the files (rows per Parquet file, examples per segment). What a version shares with a later one
is checked the same way before it is shared (``check_file``), and training reads only listed, checked files."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.store import layout
from pairforge.store.versions import Store

_CHUNK = 1 << 20


def verify_version(store: Store, dataset: str, version: int) -> dict[str, Any]:
    """``{version, path, files, bytes, problems}``: each problem one line naming the file (empty: the version
    is what its manifest says)."""
    folder = store.path(dataset, version)
    report: dict[str, Any] = {"version": version, "path": folder, "files": 0, "bytes": 0, "problems": []}
    problems: list[str] = report["problems"]
    try:
        manifest = json.loads(store.fs.cat(f"{folder}/{layout.MANIFEST}"))
        listed = {f["path"]: f for f in manifest["files"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"{layout.MANIFEST}: unreadable ({type(exc).__name__}: {exc})")
        return report
    report["files"], report["bytes"] = len(listed), sum(int(f.get("bytes", 0)) for f in listed.values())
    for relative, meta in sorted(listed.items()):
        if relative.startswith("/") or ".." in relative.split("/"):
            problems.append(f"{relative}: not a path inside the version (an edited manifest)")
            continue
        problem = check_file(store.fs, f"{folder}/{relative}", meta)
        if problem:
            problems.append(f"{relative}: {problem}")
    present = {p[len(folder) + 1 :].lstrip("/") for p in store.fs.find(folder)}
    problems += [f"{extra}: not listed in the manifest" for extra in sorted(present - set(listed) - {layout.MANIFEST})]
    bad = {line.split(": ", 1)[0] for line in problems}
    problems += _count_problems(store.fs, folder, manifest, skip=bad)
    return report


def check_file(fs: fsspec.AbstractFileSystem, path: str, meta: dict[str, Any]) -> str | None:
    """None when ``path`` has the size and sha256 ``meta`` records, else what differs, in words."""
    try:
        size = int(fs.size(path))
    except FileNotFoundError:
        return "missing"
    if size != int(meta["bytes"]):
        return f"{size:,} bytes, the manifest records {int(meta['bytes']):,}"
    digest = file_sha256(fs, path)
    if digest != meta["sha256"]:
        return f"sha256 {digest[:16]}…, the manifest records {str(meta['sha256'])[:16]}… (edited in place)"
    return None


def file_sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _count_problems(fs: fsspec.AbstractFileSystem, folder: str, manifest: dict[str, Any], skip: set[str]) -> list[str]:
    """The manifest's counts against the files: each segment's rows per Parquet file, and the version's examples
    by kind as the sum of its segments' (an edited count is shown as truth by ``versions show`` otherwise)."""
    problems = []
    totals: dict[str, int] = {}
    for segment in manifest.get("segments", []):
        for kind, n in segment.get("examples", {}).items():
            totals[kind] = totals.get(kind, 0) + int(n)
        for relative, rows in segment.get("rows", {}).items():
            if not relative.endswith(".parquet") or relative in skip:
                continue
            try:
                with fs.open(f"{folder}/{relative}", "rb") as handle:
                    found = pq.ParquetFile(handle).metadata.num_rows
            except (OSError, pa.ArrowException) as exc:
                problems.append(f"{relative}: not a readable Parquet file ({exc})")
                continue
            if found != int(rows):
                problems.append(f"{relative}: {found:,} rows, the manifest records {int(rows):,}")
    if {k: v for k, v in totals.items() if v} != {k: int(v) for k, v in manifest.get("examples", {}).items() if v}:
        problems.append(f"{layout.MANIFEST}: examples {manifest.get('examples')} are not its segments' sum {totals}")
    return problems
