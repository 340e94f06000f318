"""Pairs rebuilt from a ledger of evidence-first answers carry their targets as evidence, by construction."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from pairforge.generation.generate import read_passages, run_generate
from pairforge.generation.ledger import Ledger, LedgerRow
from pairforge.generation.requests import PlannedRequest, plan_requests
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
    config = ingest_cmrc(shared_data, tmp_path / "w", limit=6, generate=GENERATE)
    planned = plan_requests(read_passages(tmp_path / "w"), config.generate, "m", long_chars=config.window.long_chars)
    ledger = Ledger(tmp_path / "w" / "ledger.sqlite")
    sampling = config.generate.sampling.model_dump()
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
    summary = run_generate(config)  # every key is in the ledger: nothing is sent, no backend is started
    assert (summary.sent, summary.cached, summary.samples) == (0, len(planned), len(planned))
    assert summary.pairs == len(planned) - sum(summary.failures.values()) > 0.8 * len(planned)
    rows = pq.read_table(tmp_path / "w" / "pairs").to_pylist()
    targets = {p.key: p for p in planned}
    assert summary.evidence_found == len(rows) == summary.pairs
    for row in rows:
        p = targets[row["request_key"]]
        assert (row["evidence_start"], row["evidence_end"], row["evidence"]) == (
            p.target.start,
            p.target.end,
            p.target.text,
        )
        assert row["evidence_method"] == "target" and row["kind"] == p.kind
        assert row["query_type"] == (p.query_type or "sp")
