"""Building pairs: every planned request of one input shard, answered from the ledger, parsed into pairs with
located evidence. Costs no LLM time, so changing the parser or the evidence matching reruns only this."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from typing import Any

from pairforge.config import RunConfig
from pairforge.generation.evidence import locate_evidence
from pairforge.generation.ledger import Ledger, LedgerRow
from pairforge.generation.requests import PlannedRequest
from pairforge.records import PAIR_SCHEMA
from pairforge.shards import ShardWriter
from pairforge.stats import StageStats
from pairforge.workdir import Workdir

STAGE = "generate"
READ_BATCH = 1000


def build_shard(
    config: RunConfig, output: Workdir, shard: str, planned: list[PlannedRequest], unanswered: list[str] | None = None,
    retryable: list[str] | None = None,
) -> StageStats:  # fmt: skip
    """Pairs of one input shard into ``generate/pairs``. The shard is complete when every planned request has an
    answer in the ledger; the keys of those that had none are appended to ``unanswered`` when given, and those
    whose answer gave nothing and will be asked again (fewer than ``generate.max_attempts`` asks) to
    ``retryable``, each with its attempt count."""
    started = time.perf_counter()
    stats = StageStats(STAGE, "requests → pairs", input=len(planned))
    failures: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    writer = ShardWriter(output.generated, shard, PAIR_SCHEMA, config.ingest.shard_rows)
    ledger = Ledger(output.ledger)
    try:
        for i in range(0, len(planned), READ_BATCH):
            chunk = planned[i : i + READ_BATCH]
            rows = {row.key: row for row in ledger.get(p.key for p in chunk)}
            for p in chunk:
                row = rows.get(p.key)
                if row is None:  # the backend never answered it: the next run sends it again
                    counts["unanswered"] += 1
                    if unanswered is not None:
                        unanswered.append(p.key)
                    continue
                counts["tokens_in"] += row.tokens_in
                counts["tokens_out"] += row.tokens_out
                gave = 0
                for sample, (text, reason) in enumerate(zip(row.outputs, row.finish_reasons, strict=True)):
                    parsed = p.parse(text, reason)
                    if parsed.failure:  # an answer that gave nothing is counted once, by its failure
                        failures[parsed.failure] += 1
                        continue
                    dropped.update(parsed.dropped)  # items dropped from an answer that gave pairs
                    for item in parsed.items:
                        writer.add(_pair_row(p, row, sample, item, counts, config.window.long_chars))
                        by_kind[p.kind] += 1
                        gave += 1
                if not gave and row.attempts < config.generate.max_attempts and retryable is not None:
                    retryable.append(f"{p.key}:{row.attempts}")
    finally:
        ledger.close()
    writer.close()
    for reason, n in failures.items():
        stats.drop(reason, n)
    for reason, n in dropped.items():
        stats.drop(f"item_{reason}", n)
    stats.output = sum(by_kind.values())
    stats.details.update(
        passages=len({p.passage["id"] for p in planned}), requests=len(planned),
        answered=len(planned) - counts["unanswered"], unanswered=counts["unanswered"],
        complete=counts["unanswered"] == 0, pairs_by_kind=dict(by_kind), failures=dict(failures),
        dropped_items=dict(dropped), evidence_found=counts["evidence_found"],
        evidence_past_long=counts["evidence_past_long"], tokens_in=counts["tokens_in"],
        tokens_out=counts["tokens_out"],
    )  # fmt: skip
    stats.seconds = time.perf_counter() - started
    return stats


def _pair_row(
    p: PlannedRequest, row: LedgerRow, sample: int, item: Any, counts: Counter[str], long_chars: int
) -> dict[str, Any]:
    passage = p.passage
    if item.start is not None and item.end is not None:  # evidence-first: the target, by construction
        found: tuple[int, int, str] | None = (item.start, item.end, "target")
    else:
        found = locate_evidence(passage["text"], item.evidence)
    if found:
        counts["evidence_found"] += 1
        counts["evidence_past_long"] += found[0] >= long_chars
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
