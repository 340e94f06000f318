"""Progress from tasks to whoever listens in this process (the CLI's progress bars). Tasks on other
processes (Dask workers) report nothing here; their stage still completes."""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[str, str, int, int | None], None]  # (stage, unit, done, total)
_listeners: list[Listener] = []


def listen(listener: Listener) -> Callable[[], None]:
    """Register ``listener``; returns the function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def report(stage: str, unit: str, done: int, total: int | None = None) -> None:
    """Tell every listener how far ``stage`` is."""
    for listener in list(_listeners):
        listener(stage, unit, done, total)
