"""The filter contract: a filter looks at a batch of pairs and gives each a snake_case drop reason or None; the base
applies it to the pairs no earlier filter dropped and counts what it drops, by reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pairforge.config import FilterConfig

Pair = dict[str, Any]  # a pair row: at least id, kind, query, passage_id, positive (see pairforge.records)
CheckFn = Callable[[Pair, FilterConfig], str | None]


class PairFilter:
    """Subclasses set ``reasons`` and implement ``check`` (batch filters) or ``check_one`` (per pair)."""

    reasons: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.dropped: Counter[str] = Counter()

    def check_one(self, pair: Pair) -> str | None:
        raise NotImplementedError

    def details(self) -> dict[str, int]:
        """Counts beyond the drops, for the filter stage's details (none by default)."""
        return {}

    def check(self, pairs: Sequence[Pair]) -> list[str | None]:
        """A drop reason (one of ``reasons``) or None for each pair."""
        return [self.check_one(p) for p in pairs]

    def apply(self, pairs: Sequence[Pair], why: list[str | None]) -> None:
        """Give every pair still kept (``why[i] is None``) this filter's verdict, and count the drops."""
        todo = [i for i, reason in enumerate(why) if reason is None]
        if not todo:
            return
        for i, reason in zip(todo, self.check([pairs[i] for i in todo]), strict=True):
            if reason is not None:
                if reason not in self.reasons:
                    raise ValueError(f"{type(self).__name__} gave an undeclared drop reason {reason!r}")
                why[i] = reason
                self.dropped[reason] += 1


class CheckFilter(PairFilter):
    """A per-pair check function ``check(pair, config) -> reason | None`` as a filter."""

    def __init__(self, check: CheckFn, config: FilterConfig, reasons: tuple[str, ...]) -> None:
        super().__init__()
        self.fn, self.config, self.reasons = check, config, reasons

    def check_one(self, pair: Pair) -> str | None:
        return self.fn(pair, self.config)
