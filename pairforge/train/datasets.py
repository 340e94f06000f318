"""Training data per kind, the stella way ("one iterator per data type"): ``qp``, ``sp`` and ``human`` rows
``(anchor, positive, negative_1..n)`` for MultipleNegativesRankingLoss from a version's ``data/examples/``
segments, and ``scored`` rows ``(sentence1, sentence2, score)`` for CoSENTLoss from its ``cosent/`` segments.
Several versions are merged; a row present in more than one (a version holds its parent's examples) counts once,
as the first version given has it. A published version is read as its manifest lists it, never by glob: each file
is checked against its recorded size and sha256, and a missing or damaged one is an error naming it."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from pairforge.records import HumanPair
from pairforge.store import layout

EXAMPLES, COSENT, MANIFEST = layout.EXAMPLES, "cosent", layout.MANIFEST
SCORED = "scored"
_LATEST = re.compile(r"^v(\d+)$")


@dataclass
class TrainData:
    """Rows per kind (column name → values), each kind's query instruction, and rows left out by reason."""

    rows: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    _seen: set[tuple[str, ...]] = field(default_factory=set, repr=False)

    def counts(self) -> dict[str, int]:
        """Rows per kind."""
        return {kind: len(next(iter(columns.values()))) for kind, columns in sorted(self.rows.items())}

    def drop(self, kind: str, reason: str) -> None:
        self.dropped.setdefault(kind, {}).setdefault(reason, 0)
        self.dropped[kind][reason] += 1

    def add(self, kind: str, row: dict[str, Any]) -> None:
        """Append a row to its kind, unless a row with the same first two texts (anchor and positive, or the
        sentence pair) is there already: the first one read stays, the later one is counted."""
        key = (kind, *(str(v) for v in list(row.values())[:2]))
        if key in self._seen:
            self.drop(kind, "duplicate")
            return
        self._seen.add(key)
        columns = self.rows.setdefault(kind, {name: [] for name in row})
        if list(columns) != list(row):
            raise ValueError(f"{kind}: rows with columns {list(row)} after rows with {list(columns)}")
        for name, value in row.items():
            columns[name].append(value)

    def only(self, kinds: Sequence[str] | None) -> TrainData:
        """The same data restricted to ``kinds`` (None: all)."""
        if kinds is None:
            return self
        unknown = set(kinds) - set(self.rows)
        if unknown:
            raise ValueError(f"no training rows of kind {sorted(unknown)}; the data has {sorted(self.rows)}")
        return TrainData({k: v for k, v in self.rows.items() if k in kinds}, self.prompts, self.dropped, self.sources)


def resolve_version(path: str) -> str:
    """A version folder; ``STORE/NAME/latest`` resolves to the version it names, once (a symlink on a local store,
    a file naming ``v<N>`` elsewhere), so a publish during training does not change the data."""
    fs, root = fsspec.core.url_to_fs(path)
    if isinstance(fs, LocalFileSystem) and os.path.islink(root):
        return os.path.realpath(root)
    if fs.isfile(root):
        name = fs.cat_file(root).decode("utf-8").strip()
        if not _LATEST.fullmatch(name):
            raise ValueError(
                f"{path}: not a version folder, and not a `latest` file naming v<N> (found {name[:40]!r})"
            )
        path = f"{path.rstrip('/').rsplit('/', 1)[0]}/{name}"
    fs, root = fsspec.core.url_to_fs(path)
    if not fs.isfile(f"{root}/{MANIFEST}"):
        raise FileNotFoundError(f"{path}: no {MANIFEST} here (not a published version)")
    return path


def read_versions(paths: Sequence[str], num_negatives: int, data: TrainData | None = None) -> TrainData:
    """The per-kind rows of the versions at ``paths`` (added to ``data`` when given)."""
    data = data or TrainData()
    for path in paths:
        version = resolve_version(path)
        fs, root = fsspec.core.url_to_fs(version)
        manifest = json.loads(fs.cat_file(f"{root}/{MANIFEST}"))
        instructions = manifest.get("config", {}).get("export", {}).get("query_instructions", {})
        listed = {f["path"]: f for f in manifest.get("files", [])}
        read_folder(version, instructions, num_negatives, data, listed)
    return data


def read_folder(
    folder: str, instructions: dict[str, str], num_negatives: int, data: TrainData,
    listed: dict[str, dict[str, Any]] | None = None,
) -> TrainData:  # fmt: skip
    """The rows of one version folder's ``data/examples/`` and ``cosent/``, with ``instructions`` as its query
    instructions: the files ``listed`` (a published version's manifest: path → bytes, sha256), each checked, or,
    for a version being written (no manifest yet: the export gate trains on it), the files there are."""
    fs, root = fsspec.core.url_to_fs(folder)
    _merge_prompts(data, instructions, folder)
    if listed is None:
        listed = {
            p[len(root) + 1 :]: {} for p in fs.glob(f"{root}/{EXAMPLES}/*.parquet") + fs.glob(f"{root}/{COSENT}/*")
        }
    segments = sorted(p for p in listed if p.startswith(f"{EXAMPLES}/") and p.endswith(".parquet"))
    if not segments:
        raise FileNotFoundError(f"{folder}: no {EXAMPLES}/ (a version without examples cannot be trained on)")
    for segment in segments:
        table = _read_parquet(fs, root, folder, segment, listed[segment], ["kind", "query", "pos", "neg"])
        for example in table.to_pylist():
            add_example(data, example["kind"], example["query"], example["pos"], example["neg"], num_negatives)
    if any(p.startswith(f"{COSENT}/") and p.endswith(".jsonl") for p in listed):  # refused, never skipped
        raise ValueError(f"{folder}: {COSENT}/ holds JSONL from an earlier pairforge; re-export it (--fresh)")
    for segment in sorted(p for p in listed if p.startswith(f"{COSENT}/") and p.endswith(".parquet")):
        blob = _read_checked(fs, root, folder, segment, listed[segment])
        for row in _scored_rows(pa.BufferReader(blob), f"{folder}/{segment}"):
            add_scored(data, *row)
    data.sources.append(folder)
    return data


def _read_checked(fs: fsspec.AbstractFileSystem, root: str, folder: str, relative: str, meta: dict[str, Any]) -> bytes:
    """A version file's bytes, checked against the size and sha256 its manifest records (when it records them)."""
    try:
        blob: bytes = fs.cat_file(f"{root}/{relative}")
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder}/{relative}: missing (the version's manifest lists it)") from None
    if meta and len(blob) != int(meta["bytes"]):
        raise ValueError(f"{folder}/{relative}: damaged: {len(blob):,} bytes, the manifest records {meta['bytes']:,}")
    if meta and hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise ValueError(f"{folder}/{relative}: damaged: its sha256 is not the one the manifest records")
    return blob


def _read_parquet(
    fs: fsspec.AbstractFileSystem, root: str, folder: str, relative: str, meta: dict[str, Any], columns: list[str]
) -> pa.Table:
    """A checked Parquet file of a version; an unreadable one is an error naming it (pyarrow names a buffer)."""
    blob = _read_checked(fs, root, folder, relative, meta)
    try:
        return pq.read_table(pa.BufferReader(blob), columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{folder}/{relative}: not a readable Parquet file: {exc}") from None


def read_human_pairs(
    pairs: Iterable[HumanPair], num_negatives: int, kind: str = "human", data: TrainData | None = None
) -> TrainData:
    """Rows from human pairs as the corpus readers yield them: positives (with the negatives their set ships)
    to ``kind``, graded pairs to ``scored`` (0/1 labels as they are, a 0..5 grade divided by 5). Pairs marked
    ``role="eval"`` are never training rows."""
    data = data or TrainData()
    for pair in pairs:
        if pair.role != "train":
            data.drop(kind if pair.kind == "positive" else SCORED, "eval_role")
        elif pair.kind == "positive":
            add_example(data, kind, pair.text1, [pair.text2], pair.negatives, num_negatives)
        elif pair.label is None:
            data.drop(SCORED, "unlabelled")
        else:
            add_scored(data, pair.text1, pair.text2, pair.label / (1.0 if pair.label <= 1 else 5.0))
    return data


def add_example(data: TrainData, kind: str, query: str, pos: list[str], neg: list[str], num_negatives: int) -> None:
    """One MNRL row ``anchor, positive, negative_1..n`` (the first n negatives: the hardest, as mined)."""
    if not pos:
        data.drop(kind, "no_positive")
    elif len(neg) < num_negatives:
        data.drop(kind, f"fewer_than_{num_negatives}_negatives")
    else:
        row = {"anchor": query, "positive": pos[0]}
        row.update({f"negative_{i + 1}": text for i, text in enumerate(neg[:num_negatives])})
        data.add(kind, row)


def add_scored(data: TrainData, sentence1: str, sentence2: str, score: float) -> None:
    """One CoSENT row; the score is clipped to [0, 1]."""
    data.add(SCORED, {"sentence1": sentence1, "sentence2": sentence2, "score": min(max(float(score), 0.0), 1.0)})


def _scored_rows(handle: Any, where: str) -> list[tuple[str, str, float]]:
    """The (sentence1, sentence2, score) rows of one CoSENT file; anything else is an error naming the file."""
    try:
        table = pq.read_table(handle, columns=["sentence1", "sentence2", "score"])
        first, second, scores = (table[name].to_pylist() for name in ("sentence1", "sentence2", "score"))
        return [(str(a), str(b), float(s)) for a, b, s in zip(first, second, scores, strict=True)]
    except (pa.ArrowException, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{where}: not a (sentence1, sentence2, score) file: {exc}") from None


def _merge_prompts(data: TrainData, instructions: dict[str, str], version: str) -> None:
    """Each kind's query instruction; two versions that disagree are an error (the model can keep only one)."""
    for kind, text in instructions.items():
        if data.prompts.setdefault(kind, text) != text:
            raise ValueError(
                f"{version}: the query instruction for {kind!r} is {text!r}, "
                f"an earlier version's is {data.prompts[kind]!r}"
            )
