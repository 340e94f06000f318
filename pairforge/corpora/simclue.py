"""SimCLUE: JSON Lines (despite the .json name) of {sentence1, sentence2, label}, {query, title} and
{query, title, neg_title}; the plain-text sentence corpus (corpus_*.txt) gives one document per line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pairforge.config import SimclueCorpus
from pairforge.corpora.files import get_text, iter_lines, read_json_records
from pairforge.corpora.m3e import parse_label
from pairforge.records import Document, HumanPair, Record, Rejected


def read_simclue(path: str, corpus: SimclueCorpus) -> Iterator[Record]:
    """Yield the pairs (or, for the sentence corpus, the documents) of one SimCLUE file."""
    name = Path(path).name
    if name.removesuffix(".gz").removesuffix(".zst").endswith(".txt"):
        for sentence in iter_lines(path, corpus.encoding):
            if isinstance(sentence, Rejected):
                yield sentence
            else:
                number, text = sentence
                yield Document(f"{name}:L{number}", corpus.source, "", text, {"file": path, "line": number})
        return
    yield from read_json_records(
        path, lambda obj, line: _to_pair(obj, f"{name}:L{line}", corpus.source), corpus.encoding
    )


def _to_pair(obj: dict, pair_id: str, source: str) -> HumanPair | str:
    if "sentence1" in obj:
        a, b = get_text(obj, "sentence1"), get_text(obj, "sentence2")
        if a is None or b is None:
            return "missing_field" if "sentence2" not in obj else "wrong_type"
        label = parse_label(obj.get("label"))
        return "invalid_label" if label is None else HumanPair(pair_id, source, "scored", a, b, label=label)
    if "query" in obj:
        query, title = get_text(obj, "query"), get_text(obj, "title")
        if query is None or title is None:
            return "missing_field" if "title" not in obj else "wrong_type"
        negative = get_text(obj, "neg_title")
        return HumanPair(pair_id, source, "positive", query, title, [negative] if negative else [])
    return "unknown_layout"
