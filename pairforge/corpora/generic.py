"""Generic JSON Lines and Parquet corpora with configurable text, title and id fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pairforge.config import JsonlCorpus, ParquetCorpus
from pairforge.corpora.files import REST_NOT_READ, get_text, iter_json_lines, json_excerpt
from pairforge.corpora.streams import READ_ERRORS
from pairforge.records import Document, Record, Rejected


def read_jsonl(path: str, corpus: JsonlCorpus) -> Iterator[Record]:
    """Yield a Document per JSON Lines record."""
    for item in iter_json_lines(path, corpus.encoding):
        if isinstance(item, Rejected):
            yield item
        else:
            yield _to_document(path, corpus, item[1], item[0])


def read_parquet(path: str, corpus: ParquetCorpus) -> Iterator[Record]:
    """Yield a Document per Parquet row, reading one record batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = [f for f in (corpus.text_field, corpus.title_field, corpus.id_field) if f]
    row = 0
    try:
        parquet = pq.ParquetFile(path)
        columns = [c for c in wanted if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=4096, columns=columns):
            for obj in batch.to_pylist():
                row += 1
                yield _to_document(path, corpus, obj, row)
    except (pa.ArrowException, *READ_ERRORS) as exc:
        # A damaged file (cut short, not Parquet at all): past the error nothing more can be read from it.
        yield Rejected(path, None, "invalid_parquet", f"{exc} {REST_NOT_READ}", record=row + 1)


def _to_document(path: str, corpus: JsonlCorpus | ParquetCorpus, obj: dict[str, Any], line: int) -> Record:
    text = get_text(obj, corpus.text_field)
    if text is None:
        reason = "wrong_type" if obj.get(corpus.text_field) is not None else "missing_field"
        return Rejected(path, line, reason, corpus.text_field, json_excerpt(obj))
    raw_id = get_text(obj, corpus.id_field) if corpus.id_field else None
    title = (get_text(obj, corpus.title_field) if corpus.title_field else None) or ""
    doc_id = f"{Path(path).name}:{raw_id if raw_id else f'L{line}'}"
    return Document(doc_id, corpus.source, title, text, {"file": path, "line": line})
