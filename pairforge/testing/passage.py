"""What the fake LLM reads in a request: the prompt (the last user message), the passage in it (the text between
a line ``<passage>`` and a line ``</passage>``), the passage's sentences in the order answers quote them, and short
fragments of a sentence to build new text from.

Which sentence an answer quotes is pluggable (a ``Picker``). The default, ``pick_sentences``, quotes marked target
sentences first: text inside ``【…】`` or ``<target>…</target>`` in the passage (marks removed), for prompts that
tell the model which sentence to use (``<target>`` only where there is one: a news passage may begin with
``【…报道】``); then it walks the other sentences from a start chosen by the salt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Picker = Callable[[str, int], list[str]]  # (passage, salt) -> sentences to quote, in order, each verbatim
FALLBACK_SENTENCE = "这段文字没有可以引用的句子。"  # quoted only when the passage has no sentence at all
_PASSAGE = re.compile(r"^<passage>[ \t]*\r?\n(.*?)\r?\n</passage>[ \t]*$", re.M | re.S)
_MARKS = re.compile(r"【(.+?)】|<target>(.+?)</target>", re.S)
_TAGS = re.compile(r"<target>(.+?)</target>", re.S)  # where a prompt tags its target, 【…】 is the passage's text
_SENTENCE = re.compile(r"[^。！？!?\n]+(?:[。！？!?]+[”’」』）)\"']*)?")
_CONTENT = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")
_CLAUSE = re.compile(r"[^，,、；;：:。！？!?“”\"‘’'（）()《》【】<>\s]{2,}")
FRAGMENT_CHARS = 8  # under filter.max_copy_chars (12): a query built from fragments is not dropped as a copy


def prompt_of(request: dict[str, Any]) -> str:
    """The text of the last user message (string content, or the text parts of a content list); "" if none."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return content if isinstance(content, str) else ""
    return ""


def split_prompt(prompt: str) -> tuple[str, str]:
    """(passage, the rest of the prompt): the passage is the text between a line ``<passage>`` and the next line
    ``</passage>``; without such a block it is the whole prompt (the fake then quotes the prompt itself)."""
    match = _PASSAGE.search(prompt)
    if not match:
        return prompt, prompt
    return match.group(1), prompt[: match.start()] + prompt[match.end() :]


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each a verbatim substring (outer spaces stripped), ending at 。！？!? or a line end."""
    sentences = (s.strip() for s in _SENTENCE.findall(text))
    return [s for s in sentences if len(s) >= 2 and _CONTENT.search(s)]


def pick_sentences(passage: str, salt: int) -> list[str]:
    """Marked targets first (in passage order), then every other sentence, walking from ``salt``'s start.

    Marked segments are cut out before the other sentences are split, so every sentence returned is verbatim in
    both the marked and the unmarked passage.
    """
    marks = _TAGS if _TAGS.search(passage) else _MARKS
    targets = [t.strip() for m in marks.finditer(passage) for t in m.groups() if t and t.strip()]
    rest = [s for s in split_sentences(marks.sub("\n", passage)) if s not in targets]
    start = salt % len(rest) if rest else 0
    return targets + rest[start:] + rest[:start] or [FALLBACK_SENTENCE]


def fragment(sentence: str, k: int) -> str:
    """The ``k``-th short fragment of ``sentence``: clause ``k`` (cyclically), at most FRAGMENT_CHARS long,
    moving along longer clauses as ``k`` wraps around."""
    clauses = _CLAUSE.findall(sentence) or [sentence]
    clause = clauses[k % len(clauses)]
    starts = range(0, max(1, len(clause) - FRAGMENT_CHARS + 1), FRAGMENT_CHARS // 2)
    start = starts[(k // len(clauses)) % len(starts)]
    return clause[start : start + FRAGMENT_CHARS]
