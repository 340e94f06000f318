"""One line's bytes to text in the corpus's encoding, or the quarantine reason and a detail that says how to
fix the config when the line is in another encoding (GBK read as UTF-8, UTF-8 read as GB18030)."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
SAMPLE_CHARS = 20  # characters of the line, decoded the other way, shown in the hint


def decode_line(line: bytes, encoding: str) -> str | tuple[str, str]:
    """The text of ``line`` (any leading BOM removed), or ``(reason, detail)`` when it cannot be taken:

    - ``invalid_utf8``: not UTF-8; the detail says when the line decodes as GB18030 (into Chinese) and
      names the setting that reads it (``encoding: gb18030``);
    - ``wrong_encoding``: a corpus declared in a legacy encoding (gb18030, big5, ...) whose line is UTF-8
      Chinese; decoded as declared it would become other characters (mojibake) without any error;
    - ``invalid_encoding``: not valid in the declared legacy encoding.
    """
    if encoding == "utf-8":
        try:
            return line.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            return "invalid_utf8", str(exc) + _hint(line, "gb18030", "GB18030")
    if not line.isascii() and _hint(line, "utf-8", "UTF-8"):
        return "wrong_encoding", f"this line is UTF-8 Chinese, not {encoding}{_hint(line, 'utf-8', 'UTF-8')}"
    try:
        return line.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        return "invalid_encoding", f"not valid {encoding}: {exc}"


def gb18030_hint(exc: UnicodeDecodeError) -> str:
    """The GB18030 hint for the bytes where a UTF-8 decoder failed (in a one-value file, where there is no line
    to decode): up to 60 bytes from the failure, the last few dropped until they end on a character."""
    stretch = exc.object[exc.start : exc.start + 60]
    return next((h for cut in range(4) if (h := _hint(stretch[: len(stretch) - cut], "gb18030", "GB18030"))), "")


def _hint(line: bytes, encoding: str, label: str) -> str:
    """``; this line decodes as LABEL ("..."): set encoding: ...`` when ``line`` is Chinese in ``encoding``."""
    try:
        text = line.decode(encoding).removeprefix("\ufeff").strip()
    except UnicodeDecodeError:
        return ""
    if not _CJK.search(text):
        return ""
    return f"; this line decodes as {label} (“{text[:SAMPLE_CHARS]}”): set encoding: {encoding} for this corpus"
