"""Parse what the LLM wrote into (text, evidence) items, or say exactly why not.

Recovery is tolerant (code fences, prose around the JSON, raw control characters inside strings,
traditional characters), but every failure has a kind and is counted, never a silent None:
``empty``, ``truncated``, ``refusal``, ``invalid_json``, ``schema``, ``not_chinese``.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from pairforge.text import normalize_text

FAILURE_KINDS = ("empty", "truncated", "refusal", "invalid_json", "schema", "not_chinese")
ITEM_DROP_REASONS = ("schema", "empty", "not_chinese", "duplicate")  # why one item of a parsed answer is dropped
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
REFUSAL = re.compile(
    r"抱歉|对不起|我无法|无法(?:回答|提供|完成)|我不能|作为(?:一个)?(?:AI|人工智能)"
    r"|I'?m sorry|I cannot|I can'?t|As an AI",
    re.I,
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]+")  # a Latin word weighs as much as one CJK character


@dataclass(slots=True)
class Item:
    """One generated query or sentence with the evidence the model quoted."""

    text: str
    evidence: str
    type: str = ""


@dataclass(slots=True)
class ParseResult:
    """The kept items; ``failure`` is set when none could be kept; ``dropped`` counts items dropped by kind."""

    items: list[Item] = field(default_factory=list)
    failure: str | None = None
    dropped: Counter[str] = field(default_factory=Counter)


def parse_generation(raw: str, *, schema: dict[str, Any], finish_reason: str = "stop") -> ParseResult:
    """Parse one completion against ``schema`` (a prompt's answer schema)."""
    text = raw.strip()
    if not text:
        return ParseResult(failure="empty")
    obj = extract_json(text)
    if obj is None:
        if finish_reason == "length":
            return ParseResult(failure="truncated")
        return ParseResult(failure="refusal" if REFUSAL.search(text) else "invalid_json")
    list_key = next((k for k, v in schema["properties"].items() if v.get("type") == "array"), "")
    raw_items = obj.get(list_key) if isinstance(obj, dict) else None
    if not isinstance(raw_items, list) or not raw_items:
        return ParseResult(failure="schema")
    item_schema = schema["properties"][list_key]["items"]
    result = ParseResult()
    for raw_item in raw_items:
        kept = _check_item(raw_item, item_schema)
        if not isinstance(kept, str) and any(kept.text == item.text for item in result.items):
            kept = "duplicate"  # the same text twice in one answer would be the same pair (and pair id) twice
        if isinstance(kept, str):
            result.dropped[kept] += 1
        else:
            result.items.append(kept)
    if not result.items:
        result.failure = "not_chinese" if set(result.dropped) == {"not_chinese"} else "schema"
    return result


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


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    """The validator of a schema, checked and built once: ``jsonschema.validate`` re-checks the schema against its
    meta-schema on every call, which was most of the time of a rebuild from a full ledger."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _check_item(raw_item: Any, item_schema: dict[str, Any]) -> Item | str:
    try:
        _validator(json.dumps(item_schema, sort_keys=True)).validate(raw_item)
    except jsonschema.ValidationError:
        return "schema"
    text_key = next(k for k in ("query", "sentence") if k in raw_item)
    text = normalize_text(raw_item[text_key], t2s=True)
    evidence = normalize_text(raw_item["evidence"], t2s=True)
    if not text or not evidence:
        return "empty"
    if not is_chinese(text):
        return "not_chinese"
    return Item(text=text, evidence=evidence, type=raw_item.get("type", ""))


def is_chinese(text: str, min_share: float = 0.5) -> bool:
    """At least one CJK character, and CJK characters at least ``min_share`` of CJK characters + Latin words."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    return cjk > 0 and cjk / (cjk + latin) >= min_share
