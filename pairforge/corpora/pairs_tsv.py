"""Tab-separated sentence pairs without a header (AFQMC, LCQMC, Chinese-STS-B): s1, s2[, label]."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pairforge.config import PairsTsvCorpus
from pairforge.corpora.files import RAW_KEEP, iter_lines
from pairforge.corpora.m3e import parse_label
from pairforge.records import HumanPair, Record, Rejected


def read_pairs_tsv(path: str, corpus: PairsTsvCorpus) -> Iterator[Record]:
    """Yield a scored HumanPair per row; rows of an unlabelled split (two columns) carry ``label=None``."""
    name = Path(path).name
    for item in iter_lines(path, corpus.encoding):
        if isinstance(item, Rejected):
            yield item
            continue
        line, text = item
        cols = text.split("\t")
        if len(cols) not in (2, 3):
            yield Rejected(path, line, "wrong_column_count", f"{len(cols)} columns, expected 2 or 3", text[:RAW_KEEP])
            continue
        label = parse_label(cols[2]) if len(cols) == 3 else None
        if len(cols) == 3 and label is None:
            yield Rejected(path, line, "invalid_label", repr(cols[2][:50]), text[:RAW_KEEP])
            continue
        pair = HumanPair(f"{name}:L{line}", corpus.source, "scored", cols[0], cols[1], label=label)
        yield pair
