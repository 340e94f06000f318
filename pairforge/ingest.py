"""Ingest: read each input shard, normalise once, quarantine bad records, window documents into passages, and
sample by length. One input shard at a time; writes ``ingest/passages``, ``ingest/human_pairs`` and
``ingest/quarantine`` under the shard's key."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.corpora import read_shard
from pairforge.corpora.files import lost_the_rest
from pairforge.inputs import InputShard, list_input_shards
from pairforge.mapping import Mapper, serial_map
from pairforge.quarantine import Quarantine, raise_first_quarantined
from pairforge.records import HUMAN_PAIR_SCHEMA, PASSAGE_SCHEMA, Document, HumanPair, Rejected
from pairforge.shard_task import StageRun, run_shard_task
from pairforge.shards import ShardWriter, write_table
from pairforge.stages import get_stage, stage_settings
from pairforge.stats import StageStats
from pairforge.text import normalize_text
from pairforge.window import WindowStats, window_document
from pairforge.workdir import Workdir, shard_files

STAGE = "ingest"
UNIT = get_stage(STAGE).unit
HISTOGRAM_EDGES = (0, 128, 256, 512, 768, 1024, 2048)
ProgressFn = Callable[[str, int, int], None]  # (shard path, documents so far, bytes of the shard)


def run_ingest(
    config: RunConfig,
    inputs: Sequence[InputShard] | None = None,
    output: Workdir | None = None,
    *,
    strict: bool = False,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    fresh: bool = False,
    map_shards: Mapper = serial_map,
) -> StageStats:
    """Ingest ``inputs`` (default: every shard of the config) into ``output`` (default: the config's workdir).
    ``limit`` reads at most that many documents in all (one shard after another); a shard it cuts is not
    complete. Bad records are quarantined, or with ``strict`` raise at the first."""
    output = output or Workdir(config.workdir)
    stage_run = StageRun(STAGE, output)
    shards = list(inputs) if inputs is not None else list_input_shards(config)
    if limit is not None:  # a budget across shards is sequential by nature
        parts, left = [], limit
        for shard in shards:
            parts.append(
                ingest_shard(config, shard, output, strict=strict, limit=left, progress=progress, fresh=fresh)
            )
            left = max(0, left - parts[-1].details["documents"])
    else:
        by_key = {s.key: s for s in shards}
        run = functools.partial(_ingest_key, config, by_key, output, strict, progress, fresh)
        parts = map_shards(STAGE, run, list(by_key))
    return stage_run.save(stage_run.combine(parts))


def _ingest_key(
    config: RunConfig, shards: dict[str, InputShard], output: Workdir, strict: bool, progress: ProgressFn | None,
    fresh: bool, key: str,
) -> StageStats:  # fmt: skip
    return ingest_shard(config, shards[key], output, strict=strict, progress=progress, fresh=fresh)


def ingest_shard(
    config: RunConfig,
    shard: InputShard,
    output: Workdir,
    *,
    strict: bool = False,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    fresh: bool = False,
) -> StageStats:
    """Read, normalise, window and sample one input shard. Its output is skipped when already complete under the
    same content, reading options and settings."""
    corpus = config.corpora[shard.corpus_index].model_dump(mode="json")
    corpus.pop("path")
    work = functools.partial(_ingest, config, shard, output, strict, limit, progress)
    depends_on = (shard.sha256, corpus, stage_settings(config, STAGE), limit)
    stats = run_shard_task(output, STAGE, shard.key, depends_on, work, fresh=fresh)
    if strict and stats.details.get("quarantined"):  # recorded by an earlier run that was not strict
        raise_first_quarantined(output.quarantine / f"{shard.key}.jsonl", shard.path)
    return stats


def _ingest(
    config: RunConfig, shard: InputShard, output: Workdir, strict: bool, limit: int | None,
    progress: ProgressFn | None,
) -> StageStats:  # fmt: skip
    stats = StageStats(STAGE, UNIT)
    windows = _read_windows(config, shard, output, stats, strict=strict, limit=limit, progress=progress)
    _sample(config, shard.key, windows, output, stats)
    return stats


def _read_windows(
    config: RunConfig, shard: InputShard, output: Workdir, stats: StageStats, *, strict: bool, limit: int | None,
    progress: ProgressFn | None,
) -> list[Path]:  # fmt: skip
    """Pass 1: documents → windows in scratch files, human pairs and quarantine to their folders."""
    corpus = config.corpora[shard.corpus_index]
    tokenizer = load_tokenizer(config.window.tokenizer)
    scratch = output.scratch(STAGE) / shard.key
    quarantine = Quarantine(output.quarantine / f"{shard.key}.jsonl", strict=strict)
    (output.quarantine / f"{shard.key}.jsonl").unlink(missing_ok=True)
    windows = ShardWriter(scratch, shard.key, PASSAGE_SCHEMA, config.ingest.shard_rows)
    pairs = ShardWriter(output.human_pairs, shard.key, HUMAN_PAIR_SCHEMA, config.ingest.shard_rows)
    window_stats, counts = WindowStats(), Counter[str]()
    documents, complete = 0, False
    records = _documents(shard.path, corpus, config, quarantine, pairs, counts) if limit != 0 else iter(())
    try:
        for doc in records:
            documents += 1
            for passage in window_document(doc, config.window, tokenizer, window_stats):
                windows.add(_passage_row(passage))
                counts["windows"] += 1
            if progress and documents % 500 == 0:
                progress(shard.path, documents, shard.bytes)
            if limit is not None and documents >= limit:
                break
        else:
            complete = limit != 0  # a shard cut short (or never read) by --limit is not covered
    finally:
        quarantine.close()
    pairs.close()
    if progress:
        progress(shard.path, documents, shard.bytes)
    # A shard whose reading stopped early (cut, damaged, or a dump past a record that could not be recovered)
    # was not read whole: records were lost, so like one cut by --limit it is not covered.
    complete = complete and not quarantine.counts.get("unreadable") and not counts["stopped_reading"]
    stats.input = documents + counts["human_pairs"] + quarantine.total
    for reason, n in quarantine.counts.items():
        stats.drop(reason, n)
    stats.drop("too_short_window", window_stats.too_short)
    stats.details.update(
        documents=documents, human_pairs=counts["human_pairs"], windows=counts["windows"],
        quarantined=quarantine.total, complete=complete, input_bytes=shard.bytes,
        stopped_reading=counts["stopped_reading"],
        by_source={corpus.source: {"documents": documents, "windows": counts["windows"],
                                   "human_pairs": counts["human_pairs"]}},
        human={"read": counts["human_read"], "train": counts["human_train"], "eval": counts["human_eval"],
               "scored": counts["human_scored"], "empty_text": counts["human_empty_text"]},
        inputs=[{**shard.to_dict(), "complete": complete}],
    )  # fmt: skip
    return windows.close()


def _sample(config: RunConfig, key: str, windows: list[Path], output: Workdir, stats: StageStats) -> None:
    """Pass 2: keep every long passage and at most one short one per ``long_short_ratio`` long ones of this shard,
    chosen by a seeded hash of the id (deterministic, and the same whichever shards run together)."""
    long_chars, ratio = config.window.long_chars, config.window.long_short_ratio
    lengths = [pq.read_table(p, columns=["char_len"])["char_len"] for p in windows]
    n_long = sum(pc.sum(pc.greater(c, long_chars)).as_py() or 0 for c in lengths)
    n_short = sum(len(c) for c in lengths) - n_long
    keep_short = 1.0 if ratio is None or n_long == 0 else min(1.0, n_long / ratio / max(n_short, 1))
    for old in shard_files(output.ingested, key):
        old.unlink()
    bins: Counter[str] = Counter()
    kept = kept_long = 0
    for part, path in enumerate(windows):
        table = pq.read_table(path)
        ids, sizes = table["id"].to_pylist(), table["char_len"].to_pylist()
        keep = [
            n > long_chars or unit_hash(config.window.seed, i) < keep_short for i, n in zip(ids, sizes, strict=True)
        ]
        table = table.filter(pa.array(keep, pa.bool_()))
        write_table(table, PASSAGE_SCHEMA, output.ingested / f"{key}-{part:05d}.parquet")
        path.unlink()
        for n in table["char_len"].to_pylist():
            bins[_bin_label(n)] += 1
            kept_long += n > long_chars
        kept += table.num_rows
    stats.output = kept
    stats.drop("sampled_out", n_short - (kept - kept_long))
    stats.details.update(
        passages=kept, long_passages=kept_long, short_passages=kept - kept_long,
        length_histogram={label: bins.get(label, 0) for label in _bin_labels()},
    )  # fmt: skip


def _documents(
    path: str, corpus: Any, config: RunConfig, quarantine: Quarantine, pairs: ShardWriter, counts: Counter[str]
) -> Iterator[Document]:
    """Normalised documents of one shard; pairs go to ``pairs``, bad records to quarantine."""
    norm = config.normalize
    max_chars = config.ingest.max_document_chars
    seen: set[int] = set()
    for record in read_shard(path, corpus):
        if isinstance(record, Rejected):
            counts["stopped_reading"] += lost_the_rest(record)
            quarantine.add(record)
            continue
        if isinstance(record, HumanPair):
            counts["human_read"] += 1
            pair = _normalize_pair(record, norm.t2s, norm.fold_punctuation)
            if pair is None:
                counts["human_empty_text"] += record.kind == "positive"
                quarantine.add(Rejected(path, _line_of(record.id), "empty_text", f"pair {record.id}"))
                continue
            pairs.add(_pair_row(pair))
            counts["human_pairs"] += 1
            counts["human_scored" if pair.kind == "scored" else f"human_{pair.role}"] += 1
            if getattr(corpus, "documents", False):
                yield from _pair_documents(pair, seen)
            continue
        line, number = record.meta.get("line"), record.meta.get("record")
        if len(record.text) > max_chars:
            detail = f"{len(record.text)} characters > {max_chars}"
            quarantine.add(Rejected(path, line, "document_too_long", detail, record.text[:200], number))
            continue
        record.text = normalize_text(record.text, t2s=norm.t2s, fold_punctuation=norm.fold_punctuation)
        record.title = normalize_text(record.title, t2s=norm.t2s, fold_punctuation=norm.fold_punctuation)
        if not record.text:
            quarantine.add(Rejected(path, line, "empty_text", f"document {record.id}", record=number))
            continue
        yield record


def _normalize_pair(pair: HumanPair, t2s: bool, fold_punctuation: bool) -> HumanPair | None:
    """Every text field normalised as the passages are: an answer left traditional beside its converted passage
    would never be found in a negative by the answer guard."""

    def norm(text: str) -> str:
        return normalize_text(text, t2s=t2s, fold_punctuation=fold_punctuation)

    pair.text1, pair.text2 = norm(pair.text1), norm(pair.text2)
    pair.negatives = [n for n in map(norm, pair.negatives) if n]
    pair.answers = [a for a in map(norm, pair.answers) if a]
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
    return {"id": p.id, "doc_id": p.doc_id, "source": p.source, "text": p.text, "start": p.start, "end": p.end,
            "char_len": len(p.text)}  # fmt: skip


def _pair_row(p: HumanPair) -> dict[str, Any]:
    return {"id": p.id, "source": p.source, "kind": p.kind, "text1": p.text1, "text2": p.text2,
            "negatives": p.negatives, "label": p.label, "role": p.role, "answers": p.answers}  # fmt: skip


def unit_hash(seed: int, key: str) -> float:
    """A uniform number in [0, 1) from ``seed`` and ``key`` (seeded, order-free sampling)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big") / 2.0**64


def _bin_labels() -> list[str]:
    edges = HISTOGRAM_EDGES
    return [f"{a}-{b}" for a, b in itertools.pairwise(edges)] + [f"{edges[-1]}+"]


def _bin_label(n: int) -> str:
    for a, b in itertools.pairwise(HISTOGRAM_EDGES):
        if a <= n < b:
            return f"{a}-{b}"
    return f"{HISTOGRAM_EDGES[-1]}+"


@functools.lru_cache(maxsize=4)
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
