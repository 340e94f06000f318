"""Figures for the closing note of an issue: a titled block that tests print (``pytest -s``, or ``-rP`` for
passed tests) and append to the file ``$PAIRFORGE_FIGURES`` names, when set."""

from __future__ import annotations

import os


def figure(title: str, text: str) -> None:
    """A figure for the closing note: printed, and appended to $PAIRFORGE_FIGURES when set."""
    block = f"\n===== {title} =====\n{text.rstrip()}\n"
    print(block)
    target = os.environ.get("PAIRFORGE_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(block)
