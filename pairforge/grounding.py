"""Grounding: the checkable facts of a generated text (numbers, Latin-script words, quoted names) that its passage
does not hold.

A small model that invents a year, a river's English name or a book title writes exactly these tokens, and they
can be checked without a model. Both sides are compared in normalised forms: NFKC (full-width digits and letters
fold to ASCII), case-folded Latin, thousands separators removed, and the passage's Chinese numerals read as numbers
too (二〇二〇 and 两千零二十 as 2020, 十 as 10), so a number the passage writes in another form is supported. The
text's own Chinese numerals are not checked, except digit-by-digit years with a zero (二〇二一): reading
"一个" or "统一" as 1 would flag ordinary words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DIGITS = dict(zip("〇零一二三四五六七八九", "00123456789", strict=True))
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SCALED = re.compile(r"(\d+(?:\.\d+)?)([万亿])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_LATIN_WORD = re.compile(r"[a-zß-öø-ÿ]+")  # after casefold; Latin-1 letters too (é in café)
# Digit-by-digit with a zero and another digit, three or more: 二〇二〇, 一九〇八; not 孤零零 or 零零星星.
_SPELLED_DIGITS = re.compile(r"(?=.*[一二三四五六七八九])[〇零一二三四五六七八九]*[〇零][〇零一二三四五六七八九]*")
_CHINESE_NUMBER = re.compile(r"[〇零一二两三四五六七八九十百千万亿]+")
_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG_UNITS = {"万": 10**4, "亿": 10**8}
_UNITS = set(_SMALL_UNITS) | set(_BIG_UNITS)
# Quotes and title marks around a name; ASCII quotes pair up in order.
_QUOTED = re.compile(r"「([^」]+)」|『([^』]+)』|“([^”]+)”|‘([^’]+)’|《([^》]+)》|〈([^〉]+)〉|\"([^\"]+)\"")
# Longer quoted text is a quotation, which a restatement may fairly paraphrase; a name is short.
_MAX_NAME_CHARS = 20
_IGNORED_IN_NAMES = re.compile(r"[\s·・•‧.\-—_]")


def find_unsupported(text: str, passage: str, *, names: bool = True) -> list[str]:
    """The numbers, Latin-script words and (with ``names``) quoted names of ``text`` that ``passage`` does not
    hold, in order (normalised: ``"2021"``, ``"aston"``, ``"《天问》"``); empty when every such token is supported."""
    facts = _passage_facts(passage)
    normal = _normalise(text)
    missing = [n for n in _numbers(normal) if n not in facts.numbers]
    missing += [w for w in _LATIN_WORD.findall(normal) if w not in facts.words]
    if names:
        missing += [f"《{name}》" for name in _quoted_names(normal) if _fold_name(name) not in facts.folded]
    return list(dict.fromkeys(missing))


class _Facts:
    __slots__ = ("folded", "numbers", "words")

    def __init__(self, passage: str) -> None:
        normal = _normalise(passage)
        self.numbers = set(_numbers(normal)) | set(chinese_numbers(normal)) | set(_scaled_numbers(normal))
        self.words = set(_LATIN_WORD.findall(normal))
        self.folded = _fold_name(normal)


@lru_cache(maxsize=256)
def _passage_facts(passage: str) -> _Facts:
    """Cached: a passage is checked once per pair, and a passage has several pairs."""
    return _Facts(passage)


def chinese_numbers(text: str) -> list[str]:
    """Every number written in Chinese numerals in ``text``, as Arabic digits: positional (两千零二十, 十五,
    三万五千) and digit-by-digit (二〇二〇); generous by design (一 in 统一 reads as 1), for the passage side."""
    found = []
    for run in _CHINESE_NUMBER.findall(text):
        if set(run) & _UNITS:
            found.append(str(_positional_value(run)))
        else:  # digit by digit: 二〇二〇, 一九九八; a single 一 or 两 too
            found.append("".join("2" if c == "两" else _DIGITS[c] for c in run))
    return found


def _positional_value(run: str) -> int:
    """一千零二十 → 1020, 十五 → 15, 三万五千 → 35000 (a run with at least one unit)."""
    total = section = digit = 0
    for c in run:
        if c in _SMALL_UNITS:
            section += (digit or 1) * _SMALL_UNITS[c]
            digit = 0
        elif c in _BIG_UNITS:
            total += (section + digit or 1) * _BIG_UNITS[c]
            section = digit = 0
        else:
            digit = 2 if c == "两" else int(_DIGITS[c])
    return total + section + digit


def _numbers(normal: str) -> list[str]:
    """Arabic numbers (integers and decimals) and digit-by-digit Chinese years of a normalised text."""
    runs = _CHINESE_NUMBER.findall(normal)
    spelled = ["".join(_DIGITS[c] for c in r) for r in runs if len(r) >= 3 and _SPELLED_DIGITS.fullmatch(r)]
    return [_canonical(n) for n in _NUMBER.findall(normal)] + spelled


def _scaled_numbers(normal: str) -> list[str]:
    """1.5万 is also 15000, 3亿 also 300000000: a text may write the number out."""
    found = []
    for number, unit in _SCALED.findall(normal):
        whole, _, fraction = number.partition(".")
        value = int(whole + fraction) * _BIG_UNITS[unit] // 10 ** len(fraction)
        found.append(str(value))
    return found


def _canonical(number: str) -> str:
    """3.50 and 3.5 are one number; 007 and 7 too."""
    whole, _, fraction = number.partition(".")
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def _quoted_names(normal: str) -> list[str]:
    names = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(normal)]
    return [n.strip() for n in names if n.strip() and len(n.strip()) <= _MAX_NAME_CHARS]


def _fold_name(text: str) -> str:
    """Names compare without spaces and separators (哈利·波特 = 哈利波特)."""
    return _IGNORED_IN_NAMES.sub("", text)


def _normalise(text: str) -> str:
    return _THOUSANDS.sub("", unicodedata.normalize("NFKC", text).casefold())
