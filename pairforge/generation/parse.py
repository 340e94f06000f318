"""Parse what the LLM wrote into (text, evidence) items, or say exactly why not.

Two answer shapes: a list of items that quote their own evidence (the v1 prompts), or one answer
(``{"query": ...}`` / ``{"sentence": ...}``) about a target the pipeline chose, whose evidence and offsets
are the target's. A targeted answer is checked against its target: a query or restatement that merely
copies it is ``copies_target``; one sharing no character bigram with it is ``off_target``.

Recovery is tolerant (code fences, prose around the JSON, raw control characters inside strings,
traditional characters), but every failure has a kind and is counted, never a silent None:
``empty``, ``truncated``, ``refusal``, ``invalid_json``, ``schema``, ``not_chinese``, ``copies_target``,
``off_target``. Schemas are compiled into validators once (not re-checked per item).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema

from pairforge.generation.targets import Target
from pairforge.text import is_chinese, normalize_text, strip_punctuation

_CONTENT_FAILURES = ("not_chinese", "copies_target", "off_target")  # the answer had the right shape
FAILURE_KINDS = ("empty", "truncated", "refusal", "invalid_json", "schema", *_CONTENT_FAILURES)
ITEM_DROP_REASONS = ("schema", "empty", "duplicate", *_CONTENT_FAILURES)  # why one item of an answer is dropped
# Characters too common to tie an answer to its target: particles, copulas, pronouns, measure words.
_FUNCTION_CHARACTERS = frozenset("的了是在和与及也都而之其这那一个有为于以就不吗呢吧啊哪什么谁怎如何多少年月日 ")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
REFUSAL = re.compile(
    r"抱歉|对不起|我无法|无法(?:回答|提供|完成)|我不能|作为(?:一个)?(?:AI|人工智能)"
    r"|I'?m sorry|I cannot|I can'?t|As an AI",
    re.I,
)


@dataclass(slots=True)
class Item:
    """One generated query or sentence with its evidence: quoted by the model, or the target (with offsets)."""

    text: str
    evidence: str
    type: str = ""
    start: int | None = None
    end: int | None = None


@dataclass(slots=True)
class ParseResult:
    """The kept items; ``failure`` is set when none could be kept; ``dropped`` counts items dropped by kind."""

    items: list[Item] = field(default_factory=list)
    failure: str | None = None
    dropped: Counter[str] = field(default_factory=Counter)


def parse_generation(
    raw: str,
    *,
    schema: dict[str, Any],
    finish_reason: str = "stop",
    target: Target | None = None,
    query_type: str | None = None,
) -> ParseResult:
    """Parse one completion against ``schema`` (a prompt's answer schema).

    With a ``target``, each item's evidence is the target (its text and offsets) and the item is checked
    against it; ``query_type`` is the type the request asked for (items that name their own keep theirs).
    """
    text = raw.strip()
    if not text:
        return ParseResult(failure="empty")
    obj = extract_json(text)
    if obj is None:
        if finish_reason == "length":
            return ParseResult(failure="truncated")
        return ParseResult(failure="refusal" if REFUSAL.search(text) else "invalid_json")
    list_key = next((k for k, v in schema["properties"].items() if v.get("type") == "array"), "")
    if list_key:
        raw_items = obj.get(list_key) if isinstance(obj, dict) else None
        item_schema = schema["properties"][list_key]["items"]
    else:
        raw_items, item_schema = [obj], schema  # one answer: the object is the item
    if not isinstance(raw_items, list) or not raw_items:
        return ParseResult(failure="schema")
    validator = _validator(json.dumps(item_schema, sort_keys=True))
    result = ParseResult()
    for raw_item in raw_items:
        kept = _check_item(raw_item, validator, target, query_type)
        if not isinstance(kept, str) and any(kept.text == item.text for item in result.items):
            kept = "duplicate"  # the same text twice in one answer would be the same pair (and pair id) twice
        if isinstance(kept, str):
            result.dropped[kept] += 1
        else:
            result.items.append(kept)
    if not result.items:
        reasons = set(result.dropped)
        result.failure = reasons.pop() if len(reasons) == 1 and reasons <= set(_CONTENT_FAILURES) else "schema"
    return result


def check_against_target(text: str, target: str, *, field: str, query_type: str | None = None) -> str | None:
    """``copies_target``, ``off_target`` or None for an answer (``field`` ``query`` or ``sentence``).

    Punctuation aside, a copy contains the whole target, or is a piece of it: a restatement always, a
    query unless it is a keyword query (keywords are the target's own words by nature; the copy filter bounds
    how long a lifted span may be). An answer sharing no character with its target but function words
    (的, 是, 在, ...) is about something else.
    """
    answer, source = strip_punctuation(text), strip_punctuation(target)
    if source in answer or (answer in source and (field == "sentence" or query_type != "keyword")):
        return "copies_target"
    if not (set(answer) & set(source)) - _FUNCTION_CHARACTERS:
        return "off_target"
    return None


def extract_json(text: str) -> Any | None:
    """The first JSON object in ``text``: the whole text, a fenced block, or the first balanced {...}."""
    candidates = [text, *(m.group(1) for m in _FENCE.finditer(text))]
    start = text.find("{")
    if start >= 0:
        end = _balanced_end(text, start)
        if end is not None:
            candidates.append(text[start:end])
    for candidate in candidates:
        try:
            # strict=False accepts raw control characters inside strings, which small models emit.
            obj = json.loads(candidate.strip(), strict=False)
        except (json.JSONDecodeError, RecursionError):  # nested past the recursion limit: not an answer either
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _balanced_end(text: str, start: int) -> int | None:
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    """A compiled validator per distinct schema: building one costs milliseconds, using it microseconds."""
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)


def _check_item(raw_item: Any, validator: Any, target: Target | None, query_type: str | None) -> Item | str:
    if not validator.is_valid(raw_item):
        return "schema"
    field = next(k for k in ("query", "sentence") if k in raw_item)
    text = normalize_text(raw_item[field], t2s=True)
    evidence = target.text if target is not None else normalize_text(raw_item["evidence"], t2s=True)
    if not strip_punctuation(text) or not evidence:
        return "empty"
    if not is_chinese(text):
        return "not_chinese"
    item_type = raw_item.get("type") or query_type or ""
    if target is None:
        return Item(text=text, evidence=evidence, type=item_type)
    reason = check_against_target(text, target.text, field=field, query_type=item_type)
    if reason:
        return reason
    return Item(text=text, evidence=evidence, type=item_type, start=target.start, end=target.end)
