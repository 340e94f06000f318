"""SQuAD-style files (CMRC 2018), the one reader of them: ``read_squad_paragraphs`` parses a file into paragraphs
with their questions and answers (offsets as given); ``read_squad`` makes each paragraph context a Document and each
human question a pair with it. The file is one JSON value; articles are streamed one at a time with ijson."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson

from pairforge.config import SquadCorpus
from pairforge.corpora.files import get_text, stopped_reading
from pairforge.corpora.streams import READ_ERRORS, open_utf8
from pairforge.records import Document, HumanPair, Record, Rejected


@dataclass(slots=True)
class SquadQuestion:
    """One question and its annotated answers: (text, ``answer_start`` as the file gives it, None when absent)."""

    id: str
    question: str
    answers: list[tuple[str, int | None]] = field(default_factory=list)


@dataclass(slots=True)
class SquadParagraph:
    """One paragraph of article number ``record`` (1-based), with the questions on it that could be read."""

    id: str
    title: str
    context: str
    record: int
    questions: list[SquadQuestion] = field(default_factory=list)


def read_squad(path: str, corpus: SquadCorpus) -> Iterator[Record]:
    """Yield a Document per paragraph and a HumanPair (question → context) per question."""
    name = Path(path).name
    for item in read_squad_paragraphs(path, corpus.encoding):
        if isinstance(item, Rejected):
            yield item
            continue
        meta = {"file": path, "record": item.record}
        yield Document(f"{name}:{item.id}", corpus.source, item.title, item.context, meta)
        for qa in item.questions:
            answers = [text for text, _ in qa.answers]
            yield HumanPair(
                f"{name}:{qa.id}", corpus.source, "positive", qa.question, item.context, role=corpus.role,
                answers=answers,
            )  # fmt: skip


def read_squad_paragraphs(path: str, encoding: str = "utf-8") -> Iterator[SquadParagraph | Rejected]:
    """Every paragraph of a SQuAD-style file in order; what cannot be read (an article without paragraphs, a
    paragraph without context, a question without text, a damaged file) is a Rejected naming the file and article."""
    index = 0
    try:
        with open_utf8(path, encoding) as raw:
            for index, article in enumerate(ijson.items(raw, "data.item", use_float=True), start=1):
                yield from _read_article(path, article, index)
    except (ijson.JSONError, UnicodeDecodeError, *READ_ERRORS) as exc:
        # One JSON value: past an error nothing more can be read from this shard.
        yield stopped_reading(path, exc, encoding, record=index + 1)


def _read_article(path: str, article: Any, index: int) -> Iterator[SquadParagraph | Rejected]:
    if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
        yield Rejected(path, None, "missing_field", "paragraphs", record=index)
        return
    title = get_text(article, "title") or ""
    for number, para in enumerate(article["paragraphs"]):
        context = get_text(para, "context") if isinstance(para, dict) else None
        if context is None:
            yield Rejected(path, None, "missing_field", f"paragraphs[{number}].context", record=index)
            continue
        para_id = get_text(para, "id") or f"{index}.{number}"
        paragraph = SquadParagraph(para_id, title, context, index)
        rejected = []
        for qa in para.get("qas") or []:
            question = get_text(qa, "question") if isinstance(qa, dict) else None
            if question is None:
                rejected.append(Rejected(path, None, "missing_field", f"{para_id}: qas[].question", record=index))
                continue
            qa_id = get_text(qa, "id") or f"{para_id}.{question[:8]}"
            paragraph.questions.append(SquadQuestion(qa_id, question, _answers(qa.get("answers"))))
        yield paragraph
        yield from rejected


def _answers(given: Any) -> list[tuple[str, int | None]]:
    """The answers with a text, each with its ``answer_start`` when that is an integer."""
    return [
        (a["text"], a["answer_start"] if isinstance(a.get("answer_start"), int) else None)
        for a in (given if isinstance(given, list) else [])
        if isinstance(a, dict) and isinstance(a.get("text"), str)
    ]
