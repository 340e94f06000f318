"""A BEIR-format eval set (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``) as a ``LongTextSet``: what a
version's held-out split is, and what the gate scores students on. Local folders or fsspec URLs."""

from __future__ import annotations

import json

import fsspec

from pairforge.evaluate.longtext import LongTextSet


def load_beir(folder: str) -> LongTextSet:
    """The corpus as passages, each query with its relevant passage (the first in qrels order when several); no
    query counts as long (the split has no answer offsets). Errors name the file and line."""
    fs, root = fsspec.core.url_to_fs(folder.rstrip("/"))
    corpus = _jsonl(fs, f"{root}/corpus.jsonl")
    queries = {row["_id"]: row["text"] for row in _jsonl(fs, f"{root}/queries.jsonl")}
    position = {row["_id"]: i for i, row in enumerate(corpus)}
    data = LongTextSet([row["text"] for row in corpus], [], [], [])
    relevant: dict[str, int] = {}
    qrels = f"{root}/qrels/test.tsv"
    for number, line in enumerate(fs.cat_file(qrels).decode("utf-8").splitlines()[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3 or fields[0] not in queries or fields[1] not in position:
            raise ValueError(f"{qrels}:{number}: not a (query-id, corpus-id, score) row of known ids: {line[:80]!r}")
        if int(fields[2]) > 0:
            relevant.setdefault(fields[0], position[fields[1]])
    for query_id, gold in relevant.items():
        data.queries.append(queries[query_id])
        data.gold.append(gold)
        data.long.append(False)
    return data


def _jsonl(fs: fsspec.AbstractFileSystem, path: str) -> list[dict[str, str]]:
    rows = []
    for number, line in enumerate(fs.cat_file(path).decode("utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
        if not isinstance(row, dict) or not isinstance(row.get("_id"), str) or not isinstance(row.get("text"), str):
            raise ValueError(f"{path}:{number}: a row needs string `_id` and `text`")
        rows.append(row)
    return rows
