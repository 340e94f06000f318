"""Strings that follow a JSON schema's ``pattern``, for the fake LLM: a text is first reshaped (its end mark made a
question or statement mark, characters the pattern refuses dropped, or cut into space-separated keywords), and only
when no reshaping matches is a string built from the pattern itself (``example_of``), preferring the characters of a
given text, so it still reads like the passage.

JSON Schema patterns are ECMA-262 regular expressions searched anywhere in the string; the common subset (classes,
ranges, repeats, groups, alternation, anchors) reads the same in Python's ``re``, which is what ``fits`` uses.
"""

from __future__ import annotations

import re
from functools import lru_cache
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

END_MARKS = "。！？!?"
_QUESTION_MARKS = ("？", "。", "！")
_STATEMENT_MARKS = ("。", "！", "？")
_CJK_RUN = re.compile(r"[0-9\u3400-\u9fff·]+")
_KEYWORD_CHARS = 4  # a keyword is a short word, not a clause
_SPARE = "的一是在中文0a "  # tried after the preferred text when a class accepts none of its characters
_CATEGORIES = {
    sre.CATEGORY_DIGIT: re.compile(r"\d"),
    sre.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    sre.CATEGORY_SPACE: re.compile(r"\s"),
    sre.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    sre.CATEGORY_WORD: re.compile(r"\w"),
    sre.CATEGORY_NOT_WORD: re.compile(r"\W"),
}
MAX_REPEAT = 64  # an open-ended repeat with a larger minimum is cut here (the result then fails ``fits``)


def fits(text: str, schema: dict[str, Any]) -> bool:
    """Whether ``text`` meets the string schema's ``minLength``, ``maxLength`` and ``pattern``."""
    if len(text) < int(schema.get("minLength", 0)) or len(text) > int(schema.get("maxLength", len(text))):
        return False
    pattern = schema.get("pattern")
    return not isinstance(pattern, str) or _compiled(pattern).search(text) is not None


def reshape(text: str, schema: dict[str, Any], sources: list[str], *, question: bool, turn: int = 0) -> str | None:
    """``text`` (else a reshaping of it, else keywords from ``sources``) that ``fits`` the schema; None if none
    does. ``question`` says which end mark to try first; ``turn`` varies the keywords picked."""
    core = text.rstrip(END_MARKS + " ")
    cleaned = "".join(_CJK_RUN.findall(core))
    marks = _QUESTION_MARKS if question else _STATEMENT_MARKS
    for candidate in (text, *(core + m for m in marks), cleaned, *(cleaned + m for m in marks)):
        if candidate and fits(candidate, schema):
            return candidate
    for count in (3, 2, 4):
        candidate = " ".join(keywords(sources, count, turn))
        if fits(candidate, schema):
            return candidate
    return None


def keywords(sources: list[str], count: int, turn: int = 0) -> list[str]:
    """``count`` distinct short words cut from the CJK runs of ``sources`` (up to _KEYWORD_CHARS characters each,
    every other one, starting at ``turn``), fewer when the sources hold fewer."""
    pieces = [run[i : i + _KEYWORD_CHARS] for s in sources for run in _CJK_RUN.findall(s)
              for i in range(0, len(run), _KEYWORD_CHARS)]  # fmt: skip
    pieces = list(dict.fromkeys(p for p in pieces if len(p) >= 2))
    if not pieces:
        return []
    picked = [pieces[(turn + 2 * i) % len(pieces)] for i in range(count)]
    return list(dict.fromkeys(picked))


def example_of(pattern: str, preferred: str) -> str:
    """A string the ``pattern`` matches, built from its parse: each repeat at its minimum, the first branch of an
    alternation, each character class filled with the next character of ``preferred`` that it accepts."""
    state = _Cursor(preferred)
    return "".join(_emit(sre_parse.parse(pattern), state, {}))


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class _Cursor:
    """Walks the preferred text: consecutive class picks take consecutive accepted characters."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def pick(self, accepts: Any, members: str = "") -> str:
        """The next preferred character ``accepts`` takes, else a spare one, else the first of ``members``."""
        n = len(self.text)
        for step in range(n):
            ch = self.text[(self.at + step) % n]
            if accepts(ch):
                self.at = (self.at + step + 1) % n
                return ch
        return next((ch for ch in _SPARE + members if accepts(ch)), "")


def _emit(items: Any, state: _Cursor, groups: dict[int, str]) -> list[str]:
    out: list[str] = []
    for op, arg in items:
        if op == sre.LITERAL:
            out.append(chr(arg))
        elif op == sre.NOT_LITERAL:
            out.append(state.pick(lambda ch, arg=arg: ord(ch) != arg and ch != "\n"))
        elif op == sre.ANY:
            out.append(state.pick(lambda ch: ch != "\n"))
        elif op == sre.IN:
            out.append(state.pick(lambda ch, arg=arg: _in_class(ch, arg), _members(arg)))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, _, body = arg
            for _ in range(min(low, MAX_REPEAT)):
                out.extend(_emit(body, state, groups))
        elif op == sre.SUBPATTERN:
            text = "".join(_emit(arg[-1], state, groups))
            if arg[0] is not None:
                groups[arg[0]] = text
            out.append(text)
        elif op == sre.ATOMIC_GROUP:
            out.extend(_emit(arg, state, groups))
        elif op == sre.BRANCH:
            out.extend(_emit(arg[1][0], state, groups))
        elif op == sre.GROUPREF:
            out.append(groups.get(arg, ""))
        # AT (anchors) and lookarounds add no characters
    return out


def _members(items: Any) -> str:
    """A few characters a class names (its literals, range starts, a digit, a letter, a space), to try last."""
    named = [chr(arg) if op == sre.LITERAL else chr(arg[0]) for op, arg in items if op in (sre.LITERAL, sre.RANGE)]
    return "".join(named) + "0aA _-~"


def _in_class(ch: str, items: Any) -> bool:
    negate, hit = False, False
    for op, arg in items:
        if op == sre.NEGATE:
            negate = True
        elif op == sre.LITERAL:
            hit = hit or ord(ch) == arg
        elif op == sre.RANGE:
            hit = hit or arg[0] <= ord(ch) <= arg[1]
        elif op == sre.CATEGORY:
            hit = hit or bool(_CATEGORIES[arg].match(ch)) if arg in _CATEGORIES else hit
    return (not hit and ch != "\n") if negate else hit  # a negated class: a line break is never wanted
