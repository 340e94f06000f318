"""A stage's output written as the stage writes it (schema-checked shards in the ``Workdir``'s folder, the shard's
completion record last), for tests of the stage after it on rows they choose (a planted near-twin, a pair asked of
the wrong passage) rather than on what the earlier stages would make of a corpus."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pairforge.config import RunConfig
from pairforge.dedup.index import dedup_signatures, write_index
from pairforge.records import FILTERED_PAIR_SCHEMA, PAIR_SCHEMA, PASSAGE_SCHEMA
from pairforge.shards import ShardWriter
from pairforge.stats import StageStats
from pairforge.workdir import Workdir


def passage_row(pid: str, text: str, source: str = "cmrc2018") -> dict[str, Any]:
    return {"id": pid, "doc_id": pid, "source": source, "text": text, "start": 0, "end": len(text),
            "char_len": len(text)}  # fmt: skip


def pair_row(pid: str, query: str, passage_id: str, positive: str, evidence: str | None = None, **extra: Any) -> dict:
    """A generated pair (``PAIR_SCHEMA``); the evidence is located in the positive when given."""
    at = positive.find(evidence) if evidence else -1
    row = dict.fromkeys(PAIR_SCHEMA.names)
    row.update(id=pid, kind="qp", query=query, passage_id=passage_id, positive=positive, query_type="factoid",
               evidence=evidence, evidence_start=at if at >= 0 else None,
               evidence_end=at + len(evidence) if evidence and at >= 0 else None,
               evidence_method="exact" if at >= 0 else None, source="cmrc2018", sample=0)  # fmt: skip
    row.update(extra)
    return row


def write_deduplicated(config: RunConfig, workdir: Workdir, shard: str, rows: list[dict[str, Any]]) -> None:
    """``rows`` as dedup-passages leaves them: the kept passages and their MinHash index part."""
    writer = ShardWriter(workdir.passages, shard, PASSAGE_SCHEMA)
    writer.add_table(pa.Table.from_pylist(rows, schema=PASSAGE_SCHEMA))
    writer.close()
    texts = [r["text"] for r in rows]
    write_index(workdir.passage_index / shard, [r["id"] for r in rows], dedup_signatures(texts, config.dedup),
                config.dedup)  # fmt: skip
    mark(workdir, "dedup-passages", shard, len(rows), len(rows))


def write_generated(workdir: Workdir, shard: str, pairs: list[dict[str, Any]]) -> None:
    """``pairs`` as generate leaves them."""
    writer = ShardWriter(workdir.generated, shard, PAIR_SCHEMA)
    writer.add_table(pa.Table.from_pylist(pairs, schema=PAIR_SCHEMA))
    writer.close()
    mark(workdir, "generate", shard, len(pairs), len(pairs))


def write_unique_pairs(workdir: Workdir, shard: str, pairs: list[dict[str, Any]]) -> None:
    """``pairs`` as dedup-pairs leaves them (filtered, without near-duplicate queries)."""
    writer = ShardWriter(workdir.pairs, shard, FILTERED_PAIR_SCHEMA)
    rows = [{"consistency_rank": None, "consistency_score": None, **p} for p in pairs]
    writer.add_table(pa.Table.from_pylist(rows, schema=FILTERED_PAIR_SCHEMA))
    writer.close()
    mark(workdir, "dedup-pairs", shard, len(pairs), len(pairs))


def mark(workdir: Workdir, stage: str, shard: str, n_in: int, n_out: int) -> None:
    workdir.mark_done(stage, shard, f"{stage}-{shard}-written-by-the-test", StageStats(stage, "rows", n_in, n_out))
