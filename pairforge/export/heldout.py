"""The version's held-out split in BEIR format (``heldout/corpus.jsonl``, ``heldout/queries.jsonl``,
``heldout/qrels/test.tsv``), from the examples the select stage held out (``mine.heldout_share``). The corpus is
the held-out positives plus the mined negatives of the held-out queries (training passages, as distractors); a
held-out query whose text is also a training query is left out and counted, so nothing evaluated was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pairforge.export.writer import VersionWriter

FOLDER = "heldout"


def write_heldout(writer: VersionWriter, heldout: list[Path], examples: list[Path]) -> dict[str, Any]:
    """Write the BEIR files of the held-out example files ``heldout``; ``examples`` are the
    version's training example files. Returns the manifest's record ``{queries, corpus, qrels, dropped}``."""
    trained = {q for f in examples for q in pq.read_table(f, columns=["query"])["query"].to_pylist()}
    corpus: dict[str, str] = {}
    queries: dict[str, str] = {}  # query text → id (a query asked of two held-out passages is one query)
    qrels: set[tuple[str, str]] = set()
    dropped: dict[str, int] = {}
    for f in heldout:
        columns = ["pair_id", "query", "pos", "positive_id", "neg", "negative_ids"]
        for row in pq.read_table(f, columns=columns).to_pylist():
            if row["query"] in trained:
                dropped["query_in_training"] = dropped.get("query_in_training", 0) + 1
                continue
            corpus[row["positive_id"]] = row["pos"][0]
            corpus.update(zip(row["negative_ids"], row["neg"], strict=True))
            qrels.add((queries.setdefault(row["query"], row["pair_id"]), row["positive_id"]))
    writer.write_text(f"{FOLDER}/corpus.jsonl", _jsonl({"_id": i, "title": "", "text": t} for i, t in corpus.items()))
    writer.write_text(f"{FOLDER}/queries.jsonl", _jsonl({"_id": i, "text": q} for q, i in queries.items()))
    lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{c}\t1" for q, c in sorted(qrels))]
    writer.write_text(f"{FOLDER}/qrels/test.tsv", "\n".join(lines) + "\n")
    return {"queries": len(queries), "corpus": len(corpus), "qrels": len(qrels), "dropped": dropped}


def _jsonl(rows: Any) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
