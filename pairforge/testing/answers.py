"""Valid, deterministic answers for the fake LLM, driven by the JSON schema the request asks for.

The schema is read from ``response_format.json_schema.schema`` (or vLLM's ``guided_json``). Without one, it is
inferred from a one-line JSON example in the prompt (outside the passage; the qp/sp prompts end with one); with
neither, the answer is ``{}``. Filling rules:

- objects get their ``required`` properties (all declared properties when there is no ``required`` list);
- arrays get ``minItems`` items (at least 1, at most ``maxItems`` and MAX_ITEMS); each item quotes the next
  sentence of the passage (see ``passage.pick_sentences``);
- ``enum`` values are taken round robin per property name, ``const`` as given;
- a string property named ``evidence`` (or ``*_evidence``, ``quote``) is a passage sentence verbatim; one whose
  name contains ``query``/``question`` is a short Chinese question, ``sentence``/``paraphrase``/``statement``/
  ``claim``/``summary`` a short Chinese statement, both built from fragments of that sentence and distinct within
  one answer; other strings are a fragment; ``minLength``/``maxLength`` are honoured, and so is ``pattern``: a
  text it refuses is reshaped (end mark, refused characters, space-separated keywords), else built from the
  pattern itself from the passage's characters (``pairforge.testing.pattern``);
- integers and numbers take their minimum (else 0), booleans true, ``$ref``/``allOf``/``anyOf``/``oneOf`` are
  resolved (the first non-null option), nesting is bounded by MAX_DEPTH.

The same request and seed always give the same answer; ``choice`` (the index among ``n`` choices) varies it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pairforge.testing.passage import Picker, fragment, pick_sentences, prompt_of, split_prompt
from pairforge.testing.pattern import example_of, fits, reshape

MAX_ITEMS = 64
MAX_DEPTH = 16
QUESTIONS = (
    "{a}是什么",
    "{a}指的是什么",
    "{a}和{b}有什么关系",
    "关于{a}有哪些说法",
    "{a}的具体情况如何",
    "为什么说{a}",
    "{a}有什么特点",
    "{a}是怎么回事",
)
STATEMENTS = (
    "文中提到{a}。",
    "这里讲的是{a}，也涉及{b}。",
    "{a}与{b}有关。",
    "段落说明了{a}。",
    "其中谈到{a}的情况。",
)
_STATEMENT_WORDS = ("sentence", "paraphrase", "statement", "claim", "summary")
_FORMATS = {"date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "email": "fake@example.com"}
_IDENT = re.compile(r"[a-z][a-z0-9_]*")
_PLAIN = re.compile(r"[^\w]")  # what a copy check ignores: punctuation and spaces


@dataclass(slots=True)
class _Context:
    root: dict[str, Any]  # the whole schema, for $ref
    sentences: list[str]
    salt: int
    item: int = 0  # the array element being filled: the sentence its strings use
    items: int = 0  # array elements started so far in this answer
    turns: Counter[str] = field(default_factory=Counter)  # enum turns by property name
    used: set[str] = field(default_factory=set)  # composed texts so far: items stay distinct


def fill_answer(request: dict[str, Any], *, seed: int = 0, choice: int = 0, picker: Picker = pick_sentences) -> str:
    """The answer text (JSON) for a chat-completion ``request``, following its schema (see the module doc)."""
    prompt = prompt_of(request)
    salt = int.from_bytes(hashlib.blake2b(f"{seed}\0{choice}\0{prompt}".encode(), digest_size=8).digest(), "big")
    passage, rest = split_prompt(prompt)
    schema = request_schema(request) or example_schema(rest)
    if schema is None:
        return "{}"
    context = _Context(schema, picker(passage, salt) or pick_sentences("", 0), salt)
    return json.dumps(_fill(schema, context, "", 0), ensure_ascii=False)


def request_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks for, or None."""
    fmt = request.get("response_format")
    schema = fmt.get("json_schema", {}).get("schema") if isinstance(fmt, dict) else None
    schema = schema if schema is not None else request.get("guided_json")
    return schema if isinstance(schema, dict) else None


def example_schema(prompt: str) -> dict[str, Any] | None:
    """A schema inferred from the last line of ``prompt`` that is a JSON object, or None: every key required,
    arrays as long as the example, lower-case identifiers that differ across items as an enum."""
    for line in reversed(prompt.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                example = json.loads(line)
            except ValueError:
                continue
            if isinstance(example, dict):
                return _schema_of([example])
    return None


def _schema_of(values: list[Any]) -> dict[str, Any]:
    first = values[0]
    if isinstance(first, dict):
        keys = list(first)
        properties = {k: _schema_of([v[k] for v in values if isinstance(v, dict) and k in v]) for k in keys}
        return {"type": "object", "properties": properties, "required": keys}
    if isinstance(first, list):
        items = [x for v in values if isinstance(v, list) for x in v]
        return {"type": "array", "minItems": len(first), "items": _schema_of(items) if items else {}}
    if isinstance(first, str) and len(values) > 1 and all(isinstance(v, str) and _IDENT.fullmatch(v) for v in values):
        return {"enum": list(dict.fromkeys(values))}
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    return {"type": kinds.get(type(first), "string")}


def _fill(schema: Any, ctx: _Context, name: str, depth: int) -> Any:
    schema = _resolve(schema, ctx.root)
    if depth > MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        ctx.turns[name] += 1
        return schema["enum"][(ctx.turns[name] - 1) % len(schema["enum"])]
    kind = _type_of(schema)
    if kind == "object":
        wanted = schema.get("required", list(schema.get("properties", {})))
        properties = schema.get("properties", {})
        return {key: _fill(properties.get(key, {}), ctx, key, depth + 1) for key in wanted}
    if kind == "array":
        return _fill_array(schema, ctx, name, depth)
    if kind in ("integer", "number"):
        return _fill_number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _fill_string(schema, ctx, name)


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with $ref followed, allOf merged and anyOf/oneOf reduced to their first non-null option."""
    for _ in range(MAX_DEPTH):
        if not isinstance(schema, dict):
            return {}
        if isinstance(schema.get("$ref"), str):
            schema = _pointer(root, schema["$ref"])
        elif isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in (_resolve(p, root) for p in schema["allOf"]):
                merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *part.get("required", [])]))
                merged.update({k: v for k, v in part.items() if k not in merged})
            schema = merged
        elif isinstance(options := schema.get("anyOf", schema.get("oneOf")), list):
            schema = next((o for o in options if isinstance(o, dict) and o.get("type") != "null"), {})
        else:
            return schema
    return {}


def _pointer(root: dict[str, Any], ref: str) -> Any:
    """The node a local reference (``#/$defs/Item``) names; {} (anything) for any other reference."""
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        if node is None:
            return {}
    return node


def _fill_number(schema: dict[str, Any], kind: str) -> int | float:
    """The minimum (one past an exclusive minimum), else 0, kept under the maximum."""
    low: float = 0
    if isinstance(schema.get("minimum"), int | float):
        low = schema["minimum"]
    elif isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + (1 if kind == "integer" else 0.5)
    high = schema.get("maximum")
    value = min(low, high) if isinstance(high, int | float) else low
    return int(value) if kind == "integer" else float(value)


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else "array" if "items" in schema or "prefixItems" in schema else ""


def _fill_array(schema: dict[str, Any], ctx: _Context, name: str, depth: int) -> list[Any]:
    high = min(int(schema.get("maxItems", MAX_ITEMS)), MAX_ITEMS)
    prefix: list[Any] = schema["prefixItems"] if isinstance(schema.get("prefixItems"), list) else []
    count = min(max(int(schema.get("minItems", 1)), 1, len(prefix)), high)
    outer, values = ctx.item, []
    for i in range(count):
        ctx.item, ctx.items = ctx.items, ctx.items + 1
        values.append(_fill(prefix[i] if i < len(prefix) else schema.get("items", {}), ctx, name, depth + 1))
    ctx.item = outer
    return values


def _fill_string(schema: dict[str, Any], ctx: _Context, name: str) -> str:
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    sentence = ctx.sentences[ctx.item % len(ctx.sentences)]
    lowered = name.lower()
    if lowered in ("evidence", "quote") or lowered.endswith("_evidence"):
        text = _fit(sentence, schema, ctx)
    else:
        for words, templates in ((("query", "question"), QUESTIONS), (_STATEMENT_WORDS, STATEMENTS)):
            if any(word in lowered for word in words):
                return _compose(templates, schema, ctx, question=templates is QUESTIONS)
        text = _fit(fragment(sentence, ctx.item), schema, ctx)
    return text if fits(text, schema) else _conform(text, schema, ctx, question=False, turn=ctx.item)


def _compose(templates: tuple[str, ...], schema: dict[str, Any], ctx: _Context, *, question: bool) -> str:
    """A text from a template and fragments of the item's sentence (and the next), unlike any before it and
    following the schema's pattern and lengths (reshaped if need be; built from the pattern only when no
    template can be reshaped to it)."""
    n = len(ctx.sentences)
    sentence, following = ctx.sentences[ctx.item % n], ctx.sentences[(ctx.item + 1) % n]
    text, chosen = "", None
    for variant in range(4 * len(templates)):
        template = templates[(ctx.salt + ctx.item + variant) % len(templates)]
        k = ctx.item // n + variant // len(templates)
        text = _fit(template.format(a=_part(sentence, k), b=_part(following, k + 1)), schema, ctx)
        shaped = text if fits(text, schema) else reshape(text, schema, [sentence, following], question=question,
                                                          turn=k + variant)  # fmt: skip
        # Reshaping may drop a fragment whole (a Latin one, for a pattern refusing Latin): then try the next.
        if shaped is not None and shaped not in ctx.used and (set(shaped) - set(template)) & set(sentence):
            chosen = shaped
            break
    if chosen is None:
        chosen = _conform(text, schema, ctx, question=question, turn=ctx.item)
    if chosen in ctx.used:  # only past every variant: a counter keeps it distinct
        chosen = _conform(_fit(f"{text}之{ctx.items}", schema, ctx), schema, ctx, question=question, turn=ctx.item)
    ctx.used.add(chosen)
    return chosen


def _part(sentence: str, k: int) -> str:
    """``fragment(sentence, k)``, shortened when it would be the whole sentence: a text holding its whole target
    sentence is a copy of it (``copies_target``), not a restatement or a question."""
    piece = fragment(sentence, k)
    if _PLAIN.sub("", piece) != _PLAIN.sub("", sentence) or len(piece) < 3:
        return piece
    size = max(2, len(piece) - 2)
    start = k % (len(piece) - size + 1)
    return piece[start : start + size]


def _conform(text: str, schema: dict[str, Any], ctx: _Context, *, question: bool, turn: int) -> str:
    """``text`` reshaped to the schema's pattern, else a string built from the pattern out of the passage's
    characters (left as it is when even that fails: the pipeline then counts a ``schema`` failure)."""
    n = len(ctx.sentences)
    sources = [ctx.sentences[ctx.item % n], ctx.sentences[(ctx.item + 1) % n]]
    shaped = reshape(text, schema, sources, question=question, turn=turn)
    if shaped is not None:
        return shaped
    pattern = schema.get("pattern")
    built = example_of(pattern, "".join(sources)) if isinstance(pattern, str) else text
    return built if fits(built, schema) else text


def _fit(text: str, schema: dict[str, Any], ctx: _Context) -> str:
    """``text`` padded with passage sentences to ``minLength`` (bounded), cut to ``maxLength``."""
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    for i in range(8):
        if len(text) >= low:
            break
        text += ctx.sentences[(ctx.item + 1 + i) % len(ctx.sentences)]
    return text if high is None else text[: int(high)]
