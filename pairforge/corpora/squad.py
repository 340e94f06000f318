"""SQuAD-style files (CMRC 2018): each paragraph context is a Document and each human question a pair with it.
The file is one JSON value; articles are streamed one at a time with ijson."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson

from pairforge.config import SquadCorpus
from pairforge.corpora.files import get_text, stopped_reading
from pairforge.corpora.streams import READ_ERRORS, open_utf8
from pairforge.records import Document, HumanPair, Record, Rejected


def read_squad(path: str, corpus: SquadCorpus) -> Iterator[Record]:
    """Yield a Document per paragraph and a HumanPair (question → context) per question."""
    index = 0
    try:
        with open_utf8(path, corpus.encoding) as raw:
            for index, article in enumerate(ijson.items(raw, "data.item", use_float=True), start=1):
                yield from _read_article(path, corpus, article, index)
    except (ijson.JSONError, UnicodeDecodeError, *READ_ERRORS) as exc:
        # One JSON value: past an error nothing more can be read from this shard.
        yield stopped_reading(path, exc, corpus.encoding, record=index + 1)


def _read_article(path: str, corpus: SquadCorpus, article: Any, index: int) -> Iterator[Record]:
    if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
        yield Rejected(path, None, "missing_field", "paragraphs", record=index)
        return
    name = Path(path).name
    title = get_text(article, "title") or ""
    for number, para in enumerate(article["paragraphs"]):
        context = get_text(para, "context") if isinstance(para, dict) else None
        if context is None:
            yield Rejected(path, None, "missing_field", f"paragraphs[{number}].context", record=index)
            continue
        para_id = get_text(para, "id") or f"{index}.{number}"
        yield Document(f"{name}:{para_id}", corpus.source, title, context, {"file": path, "record": index})
        for qa in para.get("qas") or []:
            question = get_text(qa, "question") if isinstance(qa, dict) else None
            if question is None:
                yield Rejected(path, None, "missing_field", f"{para_id}: qas[].question", record=index)
                continue
            qa_id = get_text(qa, "id") or f"{para_id}.{question[:8]}"
            given = qa.get("answers")
            answers = [
                a["text"]
                for a in (given if isinstance(given, list) else [])
                if isinstance(a, dict) and isinstance(a.get("text"), str)
            ]
            yield HumanPair(
                f"{name}:{qa_id}", corpus.source, "positive", question, context, role=corpus.role, answers=answers
            )
