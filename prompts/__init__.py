"""Prompt templates: one Jinja2 file per prompt and version (``prompts/<name>/<version>.<lang>.j2``), each with
the JSON schema of its answer beside it (``<version>.schema.json``). A template never changes once used: a new
wording is a new version, so ledger keys and dataset manifests can name exactly what the LLM saw."""

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
    def list_key(self) -> str:
        """The schema's one array property (``queries`` for qp, ``sentences`` for sp)."""
        return next(k for k, v in self.schema["properties"].items() if v.get("type") == "array")

    def schema_for(self, count: int) -> dict[str, Any]:
        """The answer schema asking for exactly ``count`` items."""
        schema = copy.deepcopy(self.schema)
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


def render_prompt(prompt: Prompt, passage: str, *, count: int, long_chars: int = 512) -> str:
    """The user message for one passage. The passage goes inside the delimiters; delimiter look-alikes in
    the passage are neutralised so the text cannot close the data block and speak as instructions."""
    safe = _DELIMITER_LIKE.sub(r"‹\1›", passage)  # same length: offsets into the passage still hold
    long_passage = len(passage) > long_chars
    return _template(prompt.text).render(
        passage=safe,
        count=count,
        long_passage=long_passage,
        long_chars=long_chars,
        tail_start=safe[long_chars : long_chars + 12] if long_passage else "",  # quoted outside the delimiters
    )


@lru_cache(maxsize=32)
def _template(text: str) -> jinja2.Template:
    return _ENV.from_string(text)
