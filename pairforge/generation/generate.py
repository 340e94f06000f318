"""``pairforge generate``: send the passages' requests the ledger lacks, then turn every ledger row into
pairs with located evidence: ``workdir/pairs/generated-*.parquet`` and ``workdir/ledger.sqlite``."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pairforge.config import RunConfig
from pairforge.generation.evidence import locate_evidence
from pairforge.generation.ledger import Ledger, LedgerRow
from pairforge.generation.requests import PlannedRequest, plan_requests, sampling_dict
from pairforge.llm import Backend, create_backend
from pairforge.models import resolve_model
from pairforge.shards import ShardWriter

PAIR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("query", pa.string()),
        ("passage_id", pa.string()),
        ("positive", pa.string()),
        ("query_type", pa.string()),
        ("evidence", pa.string()),
        ("evidence_start", pa.int64()),
        ("evidence_end", pa.int64()),
        ("evidence_method", pa.string()),
        ("source", pa.string()),
        ("doc_id", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt_sha256", pa.string()),
        ("model", pa.string()),
        ("sampling", pa.string()),
        ("request_key", pa.string()),
        ("sample", pa.int32()),
    ]
)

PAIRS_PER_SHARD = 50_000
ProgressFn = Callable[[int, int], None]  # (requests done, requests to send)


@dataclass
class GenerateSummary:
    """Counts from one generate run; ``--json`` prints this."""

    passages: int = 0
    requests: int = 0
    sent: int = 0
    cached: int = 0
    backend_errors: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    pairs: int = 0
    pairs_by_kind: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    dropped_items: dict[str, int] = field(default_factory=dict)
    evidence_found: int = 0
    evidence_past_512: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_out_sent: int = 0
    seconds: float = 0.0
    generate_seconds: float = 0.0
    model: str = ""
    backend: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_passages(workdir: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The passages ``ingest`` wrote, in shard order."""
    folder = workdir / "passages"
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{folder}: no passages; run `pairforge ingest` first")
    rows: list[dict[str, Any]] = []
    for shard in shards:
        rows.extend(pq.read_table(shard, columns=["id", "doc_id", "source", "text"]).to_pylist())
        if limit is not None and len(rows) >= limit:
            return rows[:limit]
    return rows


def run_generate(
    config: RunConfig, *, limit: int | None = None, progress: ProgressFn | None = None, backend: Backend | None = None
) -> GenerateSummary:
    """Generate pairs for the ingested passages; only requests missing from the ledger are sent."""
    started = time.perf_counter()
    gen = config.generate
    workdir = Path(config.workdir)
    passages = read_passages(workdir, limit)
    model_id = gen.served_model_name or gen.model
    planned = plan_requests(passages, gen, model_id, long_chars=config.window.long_chars)
    summary = GenerateSummary(passages=len(passages), requests=len(planned), model=gen.model, backend=gen.backend)
    ledger = Ledger(workdir / "ledger.sqlite")
    try:
        missing = set(ledger.missing(p.key for p in planned))
        to_send = [p for p in planned if p.key in missing]
        summary.cached = summary.requests - len(to_send)
        if to_send:
            owned = backend is None
            backend = backend or create_backend(gen, resolve_model(gen.model), log_path=workdir / "logs" / "vllm.log")
            t0 = time.perf_counter()
            try:
                _send(to_send, backend, ledger, gen.chunk_size, summary, progress, model_id, sampling_dict(gen))
            finally:
                if owned:
                    backend.close()
            summary.generate_seconds = round(time.perf_counter() - t0, 3)
        _write_pairs(planned, ledger, workdir, summary)
    finally:
        ledger.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    (workdir / "generate_summary.json").write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    return summary


def _send(
    to_send: list[PlannedRequest],
    backend: Backend,
    ledger: Ledger,
    chunk_size: int,
    summary: GenerateSummary,
    progress: ProgressFn | None,
    model_id: str,
    sampling: dict[str, Any],
) -> None:
    run_id = uuid.uuid4().hex[:12]
    errors: Counter[str] = Counter()
    for i in range(0, len(to_send), chunk_size):
        chunk = to_send[i : i + chunk_size]
        completions = backend.generate([p.chat_request() for p in chunk])
        rows = []
        for planned, done in zip(chunk, completions, strict=True):
            if done.error is not None:
                errors[done.error] += 1  # not stored: the next run sends it again
                continue
            rows.append(
                LedgerRow(
                    done.key,
                    planned.kind,
                    planned.passage["id"],
                    planned.prompt.id,
                    planned.prompt.sha256,
                    model_id,
                    sampling,
                    done.outputs,
                    done.finish_reasons,
                    done.tokens_in,
                    done.tokens_out,
                    run_id,
                )
            )
            summary.tokens_out_sent += done.tokens_out
        ledger.add(rows)  # one transaction per chunk: a crash loses at most the chunk in flight
        summary.sent += len(chunk)
        if progress:
            progress(min(i + chunk_size, len(to_send)), len(to_send))
    summary.backend_errors = dict(errors)


def _write_pairs(planned: list[PlannedRequest], ledger: Ledger, workdir: Path, summary: GenerateSummary) -> None:
    """Parse every ledger row of ``planned`` into pairs, reading and writing in bounded chunks."""
    failures: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    staging = workdir / ".pairs-staging"
    shutil.rmtree(staging, ignore_errors=True)
    writer = ShardWriter(staging, "generated", PAIR_SCHEMA, PAIRS_PER_SHARD)
    for i in range(0, len(planned), 1000):
        chunk = planned[i : i + 1000]
        rows = {row.key: row for row in ledger.get(p.key for p in chunk)}
        for p in chunk:
            row = rows.get(p.key)
            if row is None:  # failed in the backend this run; the next run sends it again
                continue
            summary.tokens_in += row.tokens_in
            summary.tokens_out += row.tokens_out
            for sample, (text, reason) in enumerate(zip(row.outputs, row.finish_reasons, strict=True)):
                summary.samples += 1
                parsed = p.parse(text, reason)
                dropped.update(parsed.dropped)
                if parsed.failure:
                    failures[parsed.failure] += 1
                    continue
                for item in parsed.items:
                    writer.add(_pair_row(p, row, sample, item, summary))
                    by_kind[p.kind] += 1
    if not writer.close():  # an empty table still tells readers the schema
        pq.write_table(PAIR_SCHEMA.empty_table(), staging / "generated-00000.parquet")
    summary.pairs = sum(by_kind.values())
    summary.pairs_by_kind, summary.failures, summary.dropped_items = dict(by_kind), dict(failures), dict(dropped)
    shutil.rmtree(workdir / "pairs", ignore_errors=True)
    staging.rename(workdir / "pairs")


def _pair_row(p: PlannedRequest, row: LedgerRow, sample: int, item: Any, summary: GenerateSummary) -> dict[str, Any]:
    passage = p.passage
    if item.start is not None and item.end is not None:  # evidence-first: the target, by construction
        found: tuple[int, int, str] | None = (item.start, item.end, "target")
    else:
        found = locate_evidence(passage["text"], item.evidence)
    if found:
        summary.evidence_found += 1
        summary.evidence_past_512 += found[0] >= p.long_chars
    pair_id = hashlib.sha1(f"{row.key}\x1f{sample}\x1f{item.text}".encode()).hexdigest()[:20]
    return {
        "id": pair_id,
        "kind": p.kind,
        "query": item.text,
        "passage_id": passage["id"],
        "positive": passage["text"],
        "query_type": item.type or p.kind,
        "evidence": item.evidence,
        "evidence_start": found[0] if found else None,
        "evidence_end": found[1] if found else None,
        "evidence_method": found[2] if found else None,
        "source": passage["source"],
        "doc_id": passage["doc_id"],
        "prompt_id": p.prompt.id,
        "prompt_sha256": p.prompt.sha256,
        "model": row.model,
        "sampling": json.dumps(row.sampling, sort_keys=True),
        "request_key": row.key,
        "sample": sample,
    }
