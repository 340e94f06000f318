"""CoSENT scored pairs ``(sentence1, sentence2, score)`` from the graded human pairs (SimCLUE, AFQMC, LCQMC:
0/1; STS-B: 0..5), scores scaled to [0, 1] as sentence-transformers' CoSENTLoss and uniem expect. Parquet, like
every folder the card names as a config, so ``load_dataset(version, "cosent")`` loads it by name."""

from __future__ import annotations

from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pairforge.export.formats import FormatCounts
from pairforge.export.writer import VersionWriter

STS_MAX = 5.0
SCHEMA = pa.schema([("sentence1", pa.string()), ("sentence2", pa.string()), ("score", pa.float64())])


def label_scales(shards: list[Path]) -> dict[str, float]:
    """Per source, the top of its label scale: 1 for 0/1 labels, 5 for STS-B's 0..5 grades (any label above 1),
    the largest label for a source graded on a wider scale still."""
    top: dict[str, float] = defaultdict(float)
    for shard in shards:
        table = pq.read_table(shard, columns=["source", "kind", "label"])
        table = table.filter(pc.and_(pc.equal(table["kind"], "scored"), pc.is_valid(table["label"])))
        for source, label in zip(table["source"].to_pylist(), table["label"].to_pylist(), strict=True):
            top[source] = max(top[source], label)
    return {source: 1.0 if m <= 1 else max(STS_MAX, m) for source, m in top.items()}


def cosent_row(pair: dict[str, Any], scale: float) -> dict[str, Any]:
    """One scored pair with its label scaled to [0, 1]."""
    return {"sentence1": pair["text1"], "sentence2": pair["text2"], "score": min(max(pair["label"] / scale, 0.0), 1.0)}


def write_cosent(human_pairs: list[Path], segment: str, writer: VersionWriter, counts: FormatCounts) -> None:
    """Write one segment's scored training pairs (``role: train``) to ``cosent/train-<segment>.parquet``, one row
    group per human-pair shard; unlabelled pairs (a test split) and held-out ones are counted, not written. No
    scored pairs: no file."""
    cosent = f"cosent/train-{segment}.parquet"
    scales = label_scales(human_pairs)
    with ExitStack() as stack:
        table_writer = None
        for shard in human_pairs:
            table = pq.read_table(shard, columns=["source", "kind", "text1", "text2", "label", "role"])
            rows: list[dict[str, Any]] = []
            for pair in table.filter(pc.equal(table["kind"], "scored")).to_pylist():
                if pair["label"] is None:
                    counts.drop("cosent", "unlabelled")
                elif pair["role"] != "train":
                    counts.drop("cosent", "held_out")
                else:
                    rows.append(cosent_row(pair, scales[pair["source"]]))
            if not rows:
                continue
            if table_writer is None:
                table_writer = pq.ParquetWriter(stack.enter_context(writer.open(cosent)), SCHEMA)
                stack.callback(table_writer.close)  # closes before the file (LIFO)
            table_writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            counts.rows[cosent] = counts.rows.get(cosent, 0) + len(rows)
