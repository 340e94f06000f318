"""Ingest: read every corpus, normalise once, quarantine bad records, window documents into passages,
sample by length, and write ``workdir/passages/*.parquet`` plus ``workdir/human_pairs/human-*.parquet``."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.corpora import expand_paths, read_shard
from pairforge.quarantine import Quarantine
from pairforge.records import Document, HumanPair, Rejected
from pairforge.shards import HUMAN_PAIR_SCHEMA, PASSAGE_SCHEMA, ShardWriter
from pairforge.text import normalize_text
from pairforge.window import WindowStats, window_document

HISTOGRAM_EDGES = (0, 128, 256, 512, 768, 1024, 2048)

ProgressFn = Callable[[str, int, int], None]  # (shard path, documents so far, bytes of the shard)


@dataclass
class IngestSummary:
    """Counts from one ingest run; ``--json`` prints this."""

    documents: int = 0
    passages: int = 0
    long_passages: int = 0
    short_passages: int = 0
    human_pairs: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    too_short_windows: int = 0
    sampled_out: int = 0
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    length_histogram: dict[str, int] = field(default_factory=dict)
    input_bytes: int = 0
    inputs: list[dict[str, Any]] = field(default_factory=list)  # {path, source, bytes, sha256, complete}
    skipped_inputs: int = 0  # shards an earlier version already covers (the watermark)
    seconds: float = 0.0
    workdir: str = ""
    config_fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_ingest(
    config: RunConfig,
    *,
    strict: bool = False,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    covered: Collection[str] = (),
) -> IngestSummary:
    """Ingest every corpus of ``config``; bad records are quarantined (or, with ``strict``, raise).

    Shards whose content sha256 is in ``covered`` (an earlier version's watermark) are skipped. The same
    two steps run shard-parallel under the Prefect flow: ``ingest_shard`` per shard, then ``publish_ingest``."""
    started = time.perf_counter()
    shards = list_shards(config)
    tokenizer = load_tokenizer(config.window.tokenizer)
    staging = Path(config.workdir) / ".ingest-staging"
    shutil.rmtree(staging, ignore_errors=True)
    results, documents = [], 0
    for n, (corpus_index, path) in enumerate(shards):
        if limit is not None and documents >= limit:
            break
        left = None if limit is None else limit - documents
        result = ingest_shard(
            config, corpus_index, path, staging / f"{n:05d}", strict=strict, limit=left, covered=covered,
            tokenizer=tokenizer, progress=progress,
        )  # fmt: skip
        documents += result["documents"]
        results.append(result)
    return publish_ingest(config, results, started=started)


def list_shards(config: RunConfig) -> list[tuple[int, str]]:
    """(corpus index, file) for every input shard, in config order; an error if a corpus path matches nothing."""
    return [(i, path) for i, corpus in enumerate(config.corpora) for path in expand_paths(corpus.path)]


def ingest_shard(
    config: RunConfig,
    corpus_index: int,
    path: str,
    out: Path,
    *,
    strict: bool = False,
    limit: int | None = None,
    covered: Collection[str] = (),
    tokenizer: Any | None = None,
    progress: ProgressFn | None = None,
    digest: str | None = None,
) -> dict[str, Any]:
    """Read, normalise and window one shard into ``out/`` (windows, human pairs, quarantine). Returns its
    counts as plain JSON: the unit of work (and of caching) of the flow."""
    corpus = config.corpora[corpus_index]
    digest = digest or file_sha256(path)
    size = Path(path).stat().st_size
    result: dict[str, Any] = {"path": path, "source": corpus.source, "bytes": size, "sha256": digest, "out": str(out),
                              "skipped": digest in covered, "complete": False, "documents": 0}  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if result["skipped"]:
        return result
    if tokenizer is None and config.window.tokenizer:
        tokenizer = load_tokenizer(config.window.tokenizer)
    quarantine = Quarantine(out / "quarantine.jsonl", strict=strict)
    passages = ShardWriter(out / "windows", "passages", PASSAGE_SCHEMA, config.ingest.shard_rows)
    pairs = ShardWriter(out / "human_pairs", "human", HUMAN_PAIR_SCHEMA, config.ingest.shard_rows)
    stats, counts = WindowStats(), Counter[str]()
    try:
        for doc in _documents(path, corpus, config, quarantine, pairs, counts):
            result["documents"] += 1
            for passage in window_document(doc, config.window, tokenizer, stats):
                passages.add(_passage_row(passage))
                counts["windows"] += 1
            if progress and result["documents"] % 500 == 0:
                progress(path, result["documents"], size)
            if limit is not None and result["documents"] >= limit:
                break
        else:
            result["complete"] = True  # a shard cut short by --limit is not covered
    finally:
        quarantine.close()
    # A cut or damaged shard was not read whole: like one cut by --limit, it is not covered.
    result["complete"] = result["complete"] and not quarantine.counts["unreadable"]
    pairs.close()
    passages.close()
    if progress:
        progress(path, result["documents"], size)
    result.update(counts=dict(counts), too_short=stats.too_short, quarantine=dict(quarantine.counts))
    return result


def publish_ingest(config: RunConfig, results: list[dict[str, Any]], *, started: float | None = None) -> IngestSummary:
    """Merge the shards' outputs, sample short passages, and swap ``passages/`` and ``human_pairs/`` into place."""
    started = time.perf_counter() if started is None else started
    workdir = Path(config.workdir)
    staging = workdir / ".ingest-staging"
    summary = IngestSummary(workdir=str(workdir), config_fingerprint=config.fingerprint())
    by_source: dict[str, Counter[str]] = {}
    (workdir / "quarantine").mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging / "human_pairs", ignore_errors=True)
    (staging / "human_pairs").mkdir(parents=True)
    windows: list[Path] = []
    reasons: Counter[str] = Counter()
    with (workdir / "quarantine" / "ingest.jsonl").open("w", encoding="utf-8") as quarantined:
        for n, r in enumerate(results):
            if r["skipped"]:
                summary.skipped_inputs += 1
                continue
            counts = by_source.setdefault(r["source"], Counter())
            counts["documents"] += r["documents"]
            counts.update(r["counts"])
            summary.documents += r["documents"]
            summary.input_bytes += r["bytes"]
            summary.too_short_windows += r["too_short"]
            reasons.update(r["quarantine"])
            summary.inputs.append({k: r[k] for k in ("path", "source", "bytes", "sha256", "complete")})
            out = Path(r["out"])
            windows += sorted((out / "windows").glob("*.parquet"))
            for shard in sorted((out / "human_pairs").glob("*.parquet")):  # shard outputs stay (cached by flows)
                shutil.copyfile(shard, staging / "human_pairs" / f"{n:05d}-{shard.name}")
            if (out / "quarantine.jsonl").exists():
                quarantined.write((out / "quarantine.jsonl").read_text(encoding="utf-8"))
    summary.human_pairs = sum(c["human_pairs"] for c in by_source.values())
    summary.quarantined, summary.quarantine_reasons = sum(reasons.values()), dict(reasons)
    summary.by_source = {source: dict(c) for source, c in by_source.items()}
    _sample_and_publish(windows, staging, workdir, config, summary)
    summary.seconds = round(time.perf_counter() - started, 3)
    (workdir / "ingest_summary.json").write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    return summary


def file_sha256(path: str) -> str:
    """The sha256 of a shard's bytes: its identity in the watermark (renaming it does not make it new)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _documents(
    path: str, corpus: Any, config: RunConfig, quarantine: Quarantine, pairs: ShardWriter, counts: Counter[str]
) -> Iterator[Document]:
    """Normalised documents of one shard; pairs go to ``pairs``, bad records to quarantine."""
    norm = config.normalize
    max_chars = config.ingest.max_document_chars
    seen: set[int] = set()
    for record in read_shard(path, corpus):
        if isinstance(record, Rejected):
            quarantine.add(record)
            continue
        if isinstance(record, HumanPair):
            pair = _normalize_pair(record, norm.t2s, norm.fold_punctuation)
            if pair is None:
                quarantine.add(Rejected(path, _line_of(record.id), "empty_text", f"pair {record.id}"))
                continue
            pairs.add(_pair_row(pair))
            counts["human_pairs"] += 1
            if getattr(corpus, "documents", False):
                yield from _pair_documents(pair, seen)
            continue
        if len(record.text) > max_chars:
            quarantine.add(
                Rejected(
                    path,
                    record.meta.get("line"),
                    "document_too_long",
                    f"{len(record.text)} characters > {max_chars}",
                    record.text[:200],
                    record.meta.get("record"),
                )
            )
            continue
        record.text = normalize_text(record.text, t2s=norm.t2s, fold_punctuation=norm.fold_punctuation)
        record.title = normalize_text(record.title, t2s=norm.t2s, fold_punctuation=norm.fold_punctuation)
        if not record.text:
            quarantine.add(
                Rejected(
                    path,
                    record.meta.get("line"),
                    "empty_text",
                    f"document {record.id}",
                    record=record.meta.get("record"),
                )
            )
            continue
        yield record


def _normalize_pair(pair: HumanPair, t2s: bool, fold_punctuation: bool) -> HumanPair | None:
    def norm(text: str) -> str:
        return normalize_text(text, t2s=t2s, fold_punctuation=fold_punctuation)

    pair.text1, pair.text2 = norm(pair.text1), norm(pair.text2)
    pair.negatives = [n for n in map(norm, pair.negatives) if n]
    return pair if pair.text1 and pair.text2 else None


def _pair_documents(pair: HumanPair, seen: set[int]) -> Iterator[Document]:
    """Documents from a pair's texts, each distinct text once per shard. Positive pairs give their passage
    side (positive and negatives; queries are not documents); scored pairs are symmetric, so both sides."""
    texts = [pair.text1, pair.text2] if pair.kind == "scored" else [pair.text2, *pair.negatives]
    for i, text in enumerate(texts):
        key = hash(text)
        if key not in seen:
            seen.add(key)
            yield Document(id=f"{pair.id}#{i}", source=pair.source, title="", text=text)


def _line_of(record_id: str) -> int | None:
    match = re.search(r":L(\d+)", record_id)
    return int(match.group(1)) if match else None


def _passage_row(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "doc_id": p.doc_id,
        "source": p.source,
        "text": p.text,
        "start": p.start,
        "end": p.end,
        "char_len": len(p.text),
    }


def _pair_row(p: HumanPair) -> dict[str, Any]:
    return {
        "id": p.id,
        "source": p.source,
        "kind": p.kind,
        "text1": p.text1,
        "text2": p.text2,
        "negatives": p.negatives,
        "label": p.label,
        "role": p.role,
        "answers": p.answers,
    }


def _sample_and_publish(
    windows: list[Path], staging: Path, workdir: Path, config: RunConfig, summary: IngestSummary
) -> None:
    """Keep every long passage and at most one short one per ``long_short_ratio`` long ones, chosen by a
    seeded hash of the id (deterministic, streaming); then swap the staged folders into place."""
    long_chars, ratio = config.window.long_chars, config.window.long_short_ratio
    lengths = [pq.read_table(p, columns=["char_len"])["char_len"] for p in windows]
    n_long = sum(pc.sum(pc.greater(c, long_chars)).as_py() or 0 for c in lengths)
    n_short = sum(len(c) for c in lengths) - n_long
    keep_short = 1.0 if ratio is None or n_long == 0 else min(1.0, n_long / ratio / max(n_short, 1))
    out = staging / "passages"
    out.mkdir(parents=True, exist_ok=True)
    bins: Counter[str] = Counter()
    kept_long = 0
    for n, path in enumerate(windows):
        table = pq.read_table(path)
        keep = [
            n > long_chars or _unit_hash(config.window.seed, i) < keep_short
            for i, n in zip(table["id"].to_pylist(), table["char_len"].to_pylist(), strict=True)
        ]
        table = table.filter(keep)
        pq.write_table(table, out / f"passages-{n:05d}.parquet")
        for n in table["char_len"].to_pylist():
            bins[_bin_label(n)] += 1
            kept_long += n > long_chars
    summary.passages = sum(bins.values())
    summary.long_passages = kept_long
    summary.short_passages = summary.passages - summary.long_passages
    summary.sampled_out = n_short - summary.short_passages
    summary.length_histogram = {label: bins.get(label, 0) for label in _bin_labels()}
    for name in ("passages", "human_pairs"):
        shutil.rmtree(workdir / name, ignore_errors=True)
        (staging / name).rename(workdir / name)
    shutil.rmtree(staging)


def _unit_hash(seed: int, key: str) -> float:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big") / 2.0**64


def _bin_labels() -> list[str]:
    edges = HISTOGRAM_EDGES
    return [f"{a}-{b}" for a, b in itertools.pairwise(edges)] + [f"{edges[-1]}+"]


def _bin_label(n: int) -> str:
    for a, b in itertools.pairwise(HISTOGRAM_EDGES):
        if a <= n < b:
            return f"{a}-{b}"
    return f"{HISTOGRAM_EDGES[-1]}+"


def load_tokenizer(name: str | None) -> Any | None:
    """A local fast Hugging Face tokenizer (offsets are needed to cut on token boundaries), or None."""
    if name is None:
        return None
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except OSError as exc:
        raise ValueError(f"window.tokenizer: cannot load a tokenizer from {name!r}: {exc}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"window.tokenizer: {name!r} has no fast tokenizer (tokenizer.json); offsets are needed")
    return tokenizer
