"""``pairforge export``: publish the workdir's outputs as the next immutable version of the dataset:
``data/``, the training formats, plots, the dataset card and the manifest, written aside and renamed."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from pairforge.config import RunConfig
from pairforge.export.card import render_card, sample_examples
from pairforge.export.cosent import write_cosent
from pairforge.export.data import write_data
from pairforge.export.formats import write_formats
from pairforge.export.funnel import build_funnel, read_summaries
from pairforge.export.manifest import MANIFEST, build_manifest, generation_info
from pairforge.export.plots import render_plots
from pairforge.export.writer import VersionWriter
from pairforge.store import Store, VersionConflict
from pairforge.store.catalog import read_manifest

ATTEMPTS = 3  # a concurrent publisher taking our version number makes us write again, this often


@dataclass
class ExportSummary:
    """What one export published; ``--json`` prints this."""

    dataset: str = ""
    version: int = 0
    path: str = ""
    parent: int | None = None
    examples: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_export(
    config: RunConfig, *, parent: int | None = None, watermark: list[dict[str, Any]] | None = None
) -> ExportSummary:
    """Publish ``config.workdir`` as the next version of ``config.name`` in ``config.store``.

    ``parent`` defaults to the latest version; the new version's watermark is the parent's plus ``watermark``
    (default: the input shards this run's ingest read completely)."""
    started = time.perf_counter()
    workdir = Path(config.workdir)
    if not workdir.is_dir():
        raise FileNotFoundError(f"{workdir}: no workdir here (run the pipeline's stages first)")
    store = Store(config.store)
    summaries = read_summaries(workdir)
    if watermark is None:
        inputs = summaries.get("ingest", {}).get("inputs", [])
        watermark = [{"path": i["path"], "sha256": i["sha256"], "bytes": i["bytes"]} for i in inputs if i["complete"]]
    for attempt in range(ATTEMPTS):
        try:
            summary = _publish_once(store, config, summaries, parent, watermark)
            break
        except VersionConflict:
            if attempt == ATTEMPTS - 1:
                raise
    summary.path = version_url(store, config.name, summary.version)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _publish_once(
    store: Store,
    config: RunConfig,
    summaries: dict[str, dict[str, Any]],
    parent: int | None,
    watermark: list[dict[str, Any]],
) -> ExportSummary:
    """One try: write the version numbered latest + 1; a VersionConflict when another publisher took it."""
    latest = store.latest(config.name)
    base = parent if parent is not None else latest
    earlier = read_manifest(store, config.name, base).get("watermark", []) if base else []
    summary = ExportSummary(dataset=config.name, version=(latest or 0) + 1, parent=base)
    marks = merge_watermarks(earlier, watermark)

    def write(folder: str, fs: fsspec.AbstractFileSystem) -> None:
        write_version(VersionWriter(fs, folder), config, summaries, summary, marks)

    store.publish(config.name, write, expect=summary.version)
    return summary


def write_version(
    writer: VersionWriter,
    config: RunConfig,
    summaries: dict[str, dict[str, Any]],
    summary: ExportSummary,
    watermark: list[dict[str, Any]],
) -> None:
    """Fill a staging folder: data, formats, plots, card, and the manifest (hashes of everything else) last."""
    workdir = Path(config.workdir)
    examples = workdir / "examples" / "examples.parquet"
    rows = write_data(workdir, writer)
    counts = write_formats(examples, config, writer)
    if config.export.cosent:
        write_cosent(sorted(workdir.glob("human_pairs/*.parquet")), writer, counts)
    summary.examples = count_by_kind(examples)
    stages = {stage: {k: v for k, v in s.items() if k != "inputs"} for stage, s in summaries.items()}
    parts = {
        "inputs": summaries.get("ingest", {}).get("inputs", []),
        "watermark": watermark,
        "generation": generation_info(sorted(workdir.glob("pairs/*.parquet")), summaries),
        "examples": summary.examples,
        "formats": dict(sorted({**rows, **counts.rows}.items())),
        "dropped": counts.dropped,
        "funnel": build_funnel(summaries, sum(summary.examples.values()), counts),
        "stages": stages,
    }
    manifest = build_manifest(config, version=summary.version, parent=summary.parent, parts=parts, files=[])
    for relative, png in render_plots(examples, sorted(workdir.glob("passages/*.parquet"))).items():
        writer.write_bytes(relative, png)
    sample = sample_examples(examples, config.export.card_examples, config.export.seed)
    writer.write_text("README.md", render_card(manifest, sample, config.export.card_text_chars))
    writer.check_complete()
    manifest["files"] = writer.listing()
    writer.fs.pipe(writer.path(MANIFEST), json.dumps(manifest, ensure_ascii=False, indent=2).encode())
    summary.files = [f["path"] for f in manifest["files"]] + [MANIFEST]
    summary.dropped = counts.dropped


def version_url(store: Store, dataset: str, version: int) -> str:
    """Where a version is, as a user passes it on: a plain path on the local disk, else a URL (s3://...)."""
    path = store.path(dataset, version)
    return path if isinstance(store.fs, LocalFileSystem) else str(store.fs.unstrip_protocol(path))


def count_by_kind(examples: Path) -> dict[str, int]:
    """Examples per kind (``qp``, ``sp``, ``human``)."""
    if not examples.is_file():
        return {}
    counts = pc.value_counts(pq.read_table(examples, columns=["kind"])["kind"]).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


def merge_watermarks(earlier: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parent's covered shards plus this run's, one entry per sha256 (the first path seen)."""
    merged: dict[str, dict[str, Any]] = {}
    for entry in [*earlier, *new]:
        merged.setdefault(entry["sha256"], entry)
    return list(merged.values())


def read_watermark(store_url: str, dataset: str) -> set[str]:
    """The sha256 of every input shard the latest version covers (empty before the first version): what the
    next incremental ingest skips."""
    store = Store(store_url)
    latest = store.latest(dataset)
    if latest is None:
        return set()
    return {entry["sha256"] for entry in read_manifest(store, dataset, latest).get("watermark", [])}
