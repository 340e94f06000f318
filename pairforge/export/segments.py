"""A version's segments: one per input shard, holding everything that shard contributed — passages, pairs, human
pairs, candidates, examples, the MinHash index part and the training-format files. New segments are written from
the workdir's stage outputs; carried segments (the parent's, for shards this run did not redo) are shared from the
parent version, not copied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.export.cosent import write_cosent
from pairforge.export.formats import FormatCounts, write_formats
from pairforge.export.writer import VersionWriter
from pairforge.plan import ShardPlan
from pairforge.store import DamagedVersion, Store, layout
from pairforge.store.verify import check_file
from pairforge.workdir import Workdir, shard_files

DATA = {  # version folder ← the Workdir attribute naming the stage output it is copied from
    layout.PASSAGES: "passages",
    layout.PAIRS: "pairs",
    layout.HUMAN_PAIRS: "human_pairs",
    layout.CANDIDATES: "candidates",
    layout.EXAMPLES: "examples",
    layout.HELDOUT: "heldout",  # examples held out of training (only with mine.heldout_share)
}


def write_new_segment(
    config: RunConfig, plan: ShardPlan, workdir: Workdir, writer: VersionWriter, counts: FormatCounts, version: int
) -> dict[str, Any]:
    """Copy one processed shard's stage outputs into the version and write its training formats; returns its
    manifest entry (coverage, rows, files)."""
    key = plan.shard.key
    before = set(writer.files)
    rows: dict[str, int] = {}  # rows per data and format file of the segment
    for target, attr in DATA.items():
        for path in shard_files(getattr(workdir, attr), key):
            writer.put_file(f"{target}/{path.name}", path)
            rows[f"{target}/{path.name}"] = pq.read_metadata(path).num_rows
    index = workdir.passage_index / key
    if (index / "meta.json").is_file():
        writer.put_tree(f"{layout.INDEX}/{key}", index)
    examples = shard_files(workdir.examples, key)
    write_formats(examples, key, config, writer, counts)
    if config.export.cosent:
        write_cosent(shard_files(workdir.human_pairs, key), key, writer, counts)
    files = sorted(set(writer.files) - before)
    rows.update({f: counts.rows[f] for f in files if f in counts.rows})
    complete, incomplete = completeness(workdir, key)
    return {
        "key": key,
        "input": {k: plan.shard.to_dict()[k] for k in ("path", "source", "sha256", "bytes")},
        "fingerprint": plan.fingerprint,
        "settings": plan.settings,
        "complete": complete,
        "incomplete": incomplete,
        "version": version,
        "examples": count_kinds(examples),
        "rows": rows,
        "files": files,
    }


def completeness(workdir: Workdir, key: str) -> tuple[bool, dict[str, int]]:
    """Whether a processed shard is covered: read whole, and every one of its requests answered (and not cut by
    ``--limit``); else what is missing, by reason."""
    why: dict[str, int] = {}
    ingest, generate = workdir.finished_any("ingest", key), workdir.finished_any("generate", key)
    if ingest is None:
        why["not_ingested"] = 1
    elif ingest.dropped.get("unreadable"):
        why["unreadable"] = ingest.dropped["unreadable"]
    elif not ingest.details.get("complete", False):
        why["input_cut_short"] = 1
    if generate is None:
        why["not_generated"] = 1
    else:
        for name in ("unanswered", "passages_left_by_limit"):
            if generate.details.get(name):
                why[name] = int(generate.details[name])
    judge = workdir.finished_any("judge", key)
    if judge is not None and judge.details.get("unanswered"):  # pairs the judge has not scored yet
        why["judge_unanswered"] = int(judge.details["unanswered"])
    return not why, why


def share_segment(store: Store, parent_path: str, segment: dict[str, Any], writer: VersionWriter,
                  files: dict[str, dict[str, Any]]) -> None:  # fmt: skip
    """Put a carried segment's files into the version, shared with the parent, each checked first against the
    parent's manifest (size and sha256, computed here): a damaged file is a ``DamagedVersion`` naming it, never
    carried with the parent's hash."""
    for relative in segment["files"]:
        source = f"{parent_path}/{relative}"
        meta = files.get(relative)
        problem = "not listed in its manifest" if meta is None else check_file(store.fs, source, meta)
        if problem or meta is None:
            raise DamagedVersion(
                f"{source}: {problem}: the parent version is damaged and nothing of it is carried into the next "
                "(`pairforge versions verify NAME --all` lists every damaged file)"
            )
        store.share(source, writer.path(relative))
        writer.record(relative, meta)


def count_kinds(examples: list[Path]) -> dict[str, int]:
    """Examples per kind in one segment's example files."""
    counts: dict[str, int] = {}
    for path in examples:
        for kind in pq.read_table(path, columns=["kind"])["kind"].to_pylist():
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))
