"""Prompt templates: one Jinja2 file per prompt and version (``prompts/<name>/<version>.<lang>.j2``), each with
the JSON schema of its answer beside it (``<version>.schema.json``). A template never changes once used: a new
wording is a new version, so ledger keys and dataset manifests can name exactly what the LLM saw.

A template's variables say what it asks for (``Prompt.mode``): ``count`` items quoting their own evidence
(``items``, the v1 prompts), or one answer about a target sentence the pipeline marks in the passage
(``target``: the template shows ``marked_passage``)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

PROMPTS_DIR = Path(__file__).resolve().parent
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
DELIMITERS = ("<passage>", "</passage>")
# The delimiters and their look-alikes (any case, spaces inside the brackets): what a passage must not contain.
_DELIMITER_LIKE = re.compile(r"<(\s*/?\s*passage\s*)>", re.I)
TARGET_MARKS = ("<target>", "</target>")
_TARGET_LIKE = re.compile(r"<(\s*/?\s*target\s*)>", re.I)
_ROLE_LINE = re.compile(r"^\[\[(system|user|assistant)\]\]\n", re.M)


@dataclass(frozen=True)
class Prompt:
    """A loaded template: its text, the variables it uses, its sha256 and its answer schema."""

    name: str
    version: str
    lang: str
    text: str
    variables: frozenset[str]
    sha256: str
    schema: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.name}/{self.version}.{self.lang}"

    @property
    def mode(self) -> str:
        """``target`` (one answer about a sentence marked in the passage) or ``items`` (``count`` items)."""
        return "target" if "marked_passage" in self.variables else "items"

    @property
    def list_key(self) -> str:
        """The schema's one array property (``queries`` for qp, ``sentences`` for sp); empty for one answer."""
        return next((k for k, v in self.schema["properties"].items() if v.get("type") == "array"), "")

    def schema_for(self, count: int, query_type: str | None = None) -> dict[str, Any]:
        """The answer schema asking for exactly ``count`` items (a one-answer schema as it is). A schema whose
        ``$defs`` are named by query type gets its ``query`` property from the one ``query_type`` names (the
        grammar then holds the answer to that type's shape); the ``$defs`` themselves are left out."""
        schema = copy.deepcopy(self.schema)
        defs = schema.pop("$defs", {})
        if query_type in defs:
            schema["properties"]["query"] = defs[query_type]
        if self.list_key:
            schema["properties"][self.list_key].update(minItems=count, maxItems=count)
        return schema


@lru_cache(maxsize=32)
def load_prompt(name: str, version: str = "v1", lang: str = "zh") -> Prompt:
    """Load ``prompts/<name>/<version>.<lang>.j2`` and its schema; a clear error names what is missing."""
    path = PROMPTS_DIR / name / f"{version}.{lang}.j2"
    if not path.is_file():
        available = sorted(p.relative_to(PROMPTS_DIR).as_posix() for p in PROMPTS_DIR.glob("*/*.j2"))
        raise FileNotFoundError(f"prompt {name}/{version}.{lang} not found; available: {', '.join(available)}")
    text = path.read_text(encoding="utf-8")
    schema = json.loads((PROMPTS_DIR / name / f"{version}.schema.json").read_text(encoding="utf-8"))
    variables = frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(text)))
    return Prompt(name, version, lang, text, variables, hashlib.sha256(text.encode()).hexdigest(), schema)


def render_messages(
    prompt: Prompt,
    passage: str,
    *,
    count: int = 1,
    long_chars: int = 512,
    target: tuple[int, int] | None = None,
    query_type: str | None = None,
) -> list[dict[str, str]]:
    """The chat messages for one passage. A template is one user message, or several messages, each begun by a
    role line (``[[system]]``, ``[[user]]``, ``[[assistant]]``: worked examples as earlier turns). The template
    is split at its own role lines before the passage is put in, so passage text cannot start a message.

    The passage goes inside the delimiters; delimiter look-alikes in the passage are neutralised so the text
    cannot close the data block and speak as instructions. ``target`` (start, end) marks a sentence for a
    ``target`` prompt: the passage shows it between ``<target>`` and ``</target>``, and look-alikes of those
    marks in the passage are neutralised the same way, so the one marked sentence is the pipeline's choice.
    ``query_type`` names the query wanted.
    """
    safe = _DELIMITER_LIKE.sub(r"‹\1›", passage)  # same length: offsets into the passage still hold
    long_passage = len(passage) > long_chars
    marked = quote = ""
    if target is not None:
        start, end = target
        if not 0 <= start < end <= len(passage):
            raise ValueError(f"target {target} is outside the passage (length {len(passage)})")
        unmarked = _TARGET_LIKE.sub(r"‹\1›", safe)
        quote = TARGET_MARKS[0] + unmarked[start:end] + TARGET_MARKS[1]
        marked = unmarked[:start] + quote + unmarked[end:]
    elif prompt.mode == "target":
        raise ValueError(f"prompt {prompt.id} marks a target sentence; render it with target=(start, end)")
    values = {
        "passage": safe,
        "marked_passage": marked,
        "target_quote": quote,  # the marked sentence again, marks included, after the passage
        "count": count,
        "query_type": query_type or "",
        "long_passage": long_passage,
        "long_chars": long_chars,
        "tail_start": safe[long_chars : long_chars + 12] if long_passage else "",  # quoted outside the delimiters
    }
    return [{"role": role, "content": template.render(**values)} for role, template in _segments(prompt.text)]


def render_values(prompt: Prompt, **values: str) -> list[dict[str, str]]:
    """The chat messages of a template that takes its own ``values`` (the judge's passage and pair), split at its
    role lines like ``render_messages``. Every value has the delimiter look-alikes neutralised, so no value can
    close the data block it is shown in."""
    safe = {name: _DELIMITER_LIKE.sub(r"‹\1›", value) for name, value in values.items()}
    return [{"role": role, "content": template.render(**safe)} for role, template in _segments(prompt.text)]


def render_prompt(prompt: Prompt, passage: str, **options: Any) -> str:
    """The message that carries the passage (the last one): the whole prompt for a one-message template.
    ``options`` are ``render_messages``'s."""
    return render_messages(prompt, passage, **options)[-1]["content"]


@lru_cache(maxsize=32)
def _segments(text: str) -> tuple[tuple[str, jinja2.Template], ...]:
    """(role, template) per message of a template's text; no role line: one user message."""
    parts = _ROLE_LINE.split(text)
    if len(parts) == 1:
        return (("user", _ENV.from_string(text)),)
    if parts[0].strip():
        raise ValueError("a template with role lines must start with one")
    return tuple(
        (role, _ENV.from_string(body.strip("\n"))) for role, body in zip(parts[1::2], parts[2::2], strict=True)
    )
