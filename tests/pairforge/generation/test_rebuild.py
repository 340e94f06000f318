"""Pairs rebuilt from a ledger of evidence-first answers carry their targets as evidence, by construction."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from pairforge.generation.ledger import Ledger, LedgerRow
from pairforge.generation.requests import PlannedRequest
from pairforge.workdir import shard_files
from tests.pairforge.llm.helpers import ingest_cmrc

GENERATE = {"prompt_versions": {"qp": "v2", "sp": "v2"}, "counts": {"qp": 2, "sp": 1}, "model": "m"}


def answer(p: PlannedRequest) -> str:
    """A well-formed answer about the target: its first characters, asked about or restated."""
    assert p.target is not None
    head = "".join(ch for ch in p.target.text if "\u4e00" <= ch <= "\u9fff")[:6]
    if p.kind == "sp":
        return json.dumps({"sentence": f"{head}这件事换一种说法来讲。"}, ensure_ascii=False)
    query = f"{head[:3]} {head[3:]}" if p.query_type == "keyword" else f"{head}指的是什么？"
    return json.dumps({"query": query}, ensure_ascii=False)


def test_rebuilt_pairs_carry_their_targets_offsets(shared_data: Path, tmp_path: Path) -> None:
    prepared = ingest_cmrc(shared_data, tmp_path / "w", limit=6, generate=GENERATE)
    planned = prepared.planned()
    assert planned and all(p.target is not None for p in planned)
    ledger = Ledger(prepared.workdir.ledger)
    sampling = prepared.config.generate.sampling.model_dump()
    ledger.add(
        LedgerRow(
            p.key,
            p.kind,
            p.passage["id"],
            p.prompt.id,
            p.prompt.sha256,
            "m",
            sampling,
            [answer(p)],
            ["stop"],
            0,
            0,
            "r",
        )
        for p in planned
    )
    ledger.close()
    stats = prepared.generate()  # every key is in the ledger: nothing is sent, no backend is started
    d = stats.details
    assert (d["sent"], d["answered"], d["requests"]) == (0, len(planned), len(planned))
    assert stats.output == len(planned) - sum(d["failures"].values()) > 0.8 * len(planned)
    files = [f for s in prepared.shards for f in shard_files(prepared.workdir.generated, s)]
    rows = pq.read_table(files).to_pylist()
    targets = {p.key: p for p in planned}
    assert d["evidence_found"] == len(rows) == stats.output
    for row in rows:
        p = targets[row["request_key"]]
        assert p.target is not None
        assert (row["evidence_start"], row["evidence_end"], row["evidence"]) == (p.target.start, p.target.end,
                                                                                 p.target.text)  # fmt: skip
        assert row["evidence_method"] == "target" and row["kind"] == p.kind
        assert row["query_type"] == (p.query_type or "sp")
