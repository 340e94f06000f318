"""The export stage: publish the next immutable version of the dataset — the parent's segments this run did not
redo (shared, not copied), plus a segment per processed input shard — with its training formats, dataset card,
delta against the parent, and manifest, written aside and renamed. Zero examples is no version."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.export.card import render_card, sample_examples
from pairforge.export.formats import FormatCounts
from pairforge.export.heldout import write_heldout
from pairforge.export.manifest import build_manifest, generation_info
from pairforge.export.plots import render_plots
from pairforge.export.segments import share_segment, write_new_segment
from pairforge.export.writer import VersionWriter
from pairforge.human_counts import count_human_pairs
from pairforge.plan import RunPlan
from pairforge.stats import StageStats
from pairforge.store import Store, layout
from pairforge.store.catalog import read_manifest
from pairforge.store.local import fetch_version
from pairforge.workdir import Workdir

STAGE = "export"


class NothingToPublish(RuntimeError):
    """A run whose version would hold no example: no version is published."""


@dataclass(frozen=True)
class ExportInputs:
    """The run plan (processed shards, parent, carried segments) and this run's stage stats (the funnel)."""

    plan: RunPlan
    funnel: list[StageStats] = field(default_factory=list)


def run_export(config: RunConfig, inputs: ExportInputs, output: Workdir) -> StageStats:
    """Publish the version; a ``VersionConflict`` when another run published after this run's parent (redo the
    run against the new latest), ``NothingToPublish`` when it would hold no example."""
    started = time.perf_counter()
    store = Store(config.store)
    plan = inputs.plan
    carried_examples = sum(sum(s["examples"].values()) for s in plan.carried)
    new_examples = sum(pq.read_metadata(f).num_rows for s in plan.keys for f in _examples(output, s))
    if carried_examples + new_examples == 0:
        raise NothingToPublish(f"nothing to publish: {why_empty(inputs.funnel)}")
    stats = StageStats(STAGE, "examples", input=new_examples, output=carried_examples + new_examples)
    version = (plan.parent or 0) + 1

    def write(folder: str, fs: fsspec.AbstractFileSystem) -> bool:
        gate = write_version(VersionWriter(fs, folder), config, inputs, output, store, version, stats)
        return bool(gate and gate["promoted"])

    published = store.publish(config.name, write, parent=plan.parent)
    assert published == version  # publish checked the parent under the lock
    stats.details.update(version=version, path=version_url(store, config.name, version), parent=plan.parent)
    stats.seconds = time.perf_counter() - started
    return stats


def write_version(
    writer: VersionWriter, config: RunConfig, inputs: ExportInputs, output: Workdir, store: Store, version: int,
    stats: StageStats,
) -> dict[str, Any] | None:  # fmt: skip
    """Fill a staging folder: segments, plots, delta, the gate's verdict (returned; None without a gate), card,
    and the manifest (hashes of everything else) last."""
    plan = inputs.plan
    counts = FormatCounts()
    segments: list[dict[str, Any]] = []
    if plan.parent is not None:
        parent_path = store.path(config.name, plan.parent)
        parent_files = {f["path"]: f for f in read_manifest(store, config.name, plan.parent)["files"]}
        for segment in plan.carried:
            share_segment(store, parent_path, segment, writer, parent_files)
            segments.append(segment)
    shard_plans = {s.shard.key: s for s in plan.todo}
    for key in plan.keys:
        segments.append(write_new_segment(config, shard_plans[key], output, writer, counts, version))
    local = _local_files(store, config, plan, output)
    examples, passages = local(layout.EXAMPLES), local(layout.PASSAGES)
    for relative, png in render_plots(examples, passages).items():
        writer.write_bytes(relative, png)
    delta = write_delta(writer, examples, _parent_examples(store, config, plan, output), plan.parent)
    stats.details.update(new_segments=len(plan.keys), carried_segments=len(plan.carried), delta=delta,
                         formats=counts.rows, format_drops=counts.dropped)  # fmt: skip
    heldout_files = local(layout.HELDOUT)  # the eval split, written before the gate, which evaluates on it
    heldout = write_heldout(writer, heldout_files, examples) if heldout_files else None
    gate = _run_gate(config, writer, store, plan.parent, output)
    stats.details["promoted"] = gate["promoted"] if gate else None
    humans = count_human_pairs(inputs.funnel)  # a row of its own: what became of the human pairs
    funnel = [s.to_dict() for s in [*inputs.funnel, *([humans] if humans else []), stats]]
    parts = {
        "segments": segments,
        "examples": _sum_kinds(segments),
        "delta": delta,
        "generation": generation_info(local(layout.PAIRS), inputs.funnel),
        "formats": _formats(segments),
        "dropped": counts.dropped,
        "funnel": funnel,
        "gate": gate,
        **({"heldout": heldout} if heldout else {}),
    }
    manifest = build_manifest(config, version=version, parent=plan.parent, parts=parts, files=[])
    sample = sample_examples(examples, config.export.card_examples, config.export.seed)
    writer.write_text("README.md", render_card(manifest, sample, config.export.card_text_chars))
    writer.check_complete()
    manifest["files"] = writer.listing()
    writer.fs.pipe(writer.path(layout.MANIFEST), json.dumps(manifest, ensure_ascii=False, indent=2).encode())
    return gate


def _run_gate(
    config: RunConfig, writer: VersionWriter, store: Store, parent: int | None, output: Workdir
) -> dict[str, Any] | None:
    """The gate's record for the staging folder against the parent version (None when no gate is configured)."""
    if config.gate is None:
        return None
    from pairforge.export.gate import run_gate

    folder = writer.folder if store.local else str(writer.fs.unstrip_protocol(writer.folder))
    parent_path = version_url(store, config.name, parent) if parent is not None else None
    output.logs.mkdir(parents=True, exist_ok=True)
    with (output.logs / "gate.log").open("a", encoding="utf-8") as log:  # training lines, a failure's traceback
        return run_gate(config.gate, folder, config.export.query_instructions, parent_path, output.scratch("gate"),
                        lambda line: print(line, file=log, flush=True))  # fmt: skip


def write_delta(
    writer: VersionWriter, examples: list[Path], parent_examples: list[Path], parent: int | None
) -> dict[str, Any]:
    """The examples added and removed against the parent, by pair id (``delta/added.parquet``, ``removed``)."""
    now, before = _pair_ids(examples), _pair_ids(parent_examples)
    added, removed = sorted(now - before), sorted(set(before) - now)
    for name, ids in (("added", added), ("removed", removed)):
        with writer.open(f"delta/{name}.parquet") as handle:
            pq.write_table(pa.table({"pair_id": pa.array(ids, type=pa.string())}), handle)
    return {"parent": parent, "added": len(added), "removed": len(removed)}


def why_empty(funnel: list[StageStats]) -> str:
    """One line: the first stage that let nothing through, with its drop reasons (and the human questions held out
    as evaluation data, which would have been examples with ``role: train``)."""
    why = "no input produced an example"
    for stats in funnel:
        if stats.output == 0 and stats.input > 0:
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.dropped.items(), key=lambda kv: -kv[1]))
            why = f"0 {stats.unit.split(' → ')[-1]} survived {stats.stage} ({reasons or 'no reason recorded'})"
            break
    humans = count_human_pairs(funnel)
    if humans and humans.dropped.get("held_out_eval"):
        why += (f"; {humans.dropped['held_out_eval']:,} human questions held out as evaluation data (`role: eval`):"
                " set `role: train` on their corpus entry to train on them")  # fmt: skip
    return why


def version_url(store: Store, dataset: str, version: int) -> str:
    """Where a version is, as a user passes it on: a plain path on the local disk, else a URL (s3://...)."""
    path = store.path(dataset, version)
    return path if store.local else str(store.fs.unstrip_protocol(path))


def _examples(output: Workdir, key: str) -> list[Path]:
    from pairforge.workdir import shard_files

    return shard_files(output.examples, key)


def _local_files(store: Store, config: RunConfig, plan: RunPlan, output: Workdir) -> Any:
    """``files(folder)``: the version's files of a data folder as local paths (this run's from the workdir, the
    carried ones from the parent on a local store, else fetched once into the workdir)."""
    from pairforge.export.segments import DATA
    from pairforge.workdir import shard_files

    parent = fetch_version(store, config.name, plan.parent, output) if plan.parent is not None else None

    def files(folder: str) -> list[Path]:
        found = []
        for segment in plan.carried:
            assert parent is not None
            found += [parent / f for f in segment["files"] if f.startswith(f"{folder}/") and f.endswith(".parquet")]
        for key in plan.keys:
            found += shard_files(getattr(output, DATA[folder]), key)
        return found

    return files


def _parent_examples(store: Store, config: RunConfig, plan: RunPlan, output: Workdir) -> list[Path]:
    if plan.parent is None:
        return []
    folder = fetch_version(store, config.name, plan.parent, output)
    listed = read_manifest(store, config.name, plan.parent)["files"]  # the manifest's files, never a glob
    return [folder / f["path"] for f in listed if f["path"].startswith(f"{layout.EXAMPLES}/")]


def _pair_ids(files: list[Path]) -> set[str]:
    ids: set[str] = set()
    for path in files:
        ids.update(pq.read_table(path, columns=["pair_id"])["pair_id"].to_pylist())
    return ids


def _sum_kinds(segments: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for segment in segments:
        for kind, n in segment["examples"].items():
            total[kind] = total.get(kind, 0) + n
    return dict(sorted(total.items()))


def _formats(segments: list[dict[str, Any]]) -> dict[str, int]:
    """Rows per data and format file of the version (each segment's entry records its own)."""
    return dict(sorted((path, n) for segment in segments for path, n in segment.get("rows", {}).items()))
