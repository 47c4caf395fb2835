"""Callbacks on a session: event-log subscriptions by type or category, and the stream hooks.

Contract: :meth:`Hooks.on` returns an unsubscribe function. Names: an event type
(``"response.done"``), a category (``"error"``, ...) or ``"*"`` get the log row dict; the stream
hooks ``"output_audio"`` get ``(item_id, response_id, pcm16)`` and ``"flush"`` get
``(item_id)``. Every callback runs on the session thread. An exception in a log subscriber is
the event log's to report (a subscriber error row); one in a stream hook becomes a
``callback.error`` local event through ``report``. Neither affects the session.

``turn_done`` hooks (``fn(turn)``, a :class:`~rtvoice_widget.protocol.Turn`) are for the
session's own parts (:mod:`.talk`); ``on()`` does not offer them.
"""

from __future__ import annotations

import threading
from glob import escape as glob_escape
from typing import Any, Callable

from ..events import CATEGORIES, EventLog

__all__ = ["STREAM_HOOKS", "Hooks"]

#: The names :meth:`Hooks.on` takes besides event types, categories and ``"*"``.
STREAM_HOOKS = ("output_audio", "flush")


class Hooks:
    """The session's callbacks; ``events()`` gives the session's current log (a caller may
    replace ``session.events`` before connecting), ``report(type, text)`` logs a local event."""

    def __init__(self, events: Callable[[], EventLog], report: Callable[..., None]) -> None:
        self._events = events
        self._report = report
        self._lists: dict[str, list[Callable[..., Any]]] = {"output_audio": [], "flush": [], "turn_done": []}

    def on(self, name: str, fn: Callable[..., Any]) -> Callable[[], None]:
        """Call ``fn`` on matching events (see the module docstring); return its unsubscribe."""
        if not callable(fn):
            raise TypeError(f"callback must be callable, got {fn!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be an event type, a category, '*', 'output_audio' or 'flush'; got {name!r}")
        if name in STREAM_HOOKS:
            return self.add(name, fn)
        if name == "*":
            return self._events().subscribe(fn)

        def matching(row: dict) -> None:
            if row["type"] == name or row["category"] == name:
                fn(row)

        matching.__qualname__ = getattr(fn, "__qualname__", repr(fn))
        return self._events().subscribe(matching)

    def add(self, name: str, fn: Callable[..., Any]) -> Callable[[], None]:
        """Add a stream hook (``output_audio``, ``flush``, ``turn_done``); return its removal."""
        hooks = self._lists[name]
        hooks.append(fn)
        return lambda: hooks.remove(fn) if fn in hooks else None

    def fire(self, name: str, *args: Any) -> None:
        """Call every ``name`` hook with ``args`` (session thread); a failing one is reported."""
        for hook in list(self._lists[name]):
            try:
                hook(*args)
            except Exception as exc:
                self._report("callback.error", text=f"{name} hook {getattr(hook, '__qualname__', hook)!s} "
                             f"raised {type(exc).__name__}: {exc}")

    def wait_for(self, name: str, *, after: int = -1, timeout: float = 30.0) -> dict:
        """Block until an event of type or category ``name`` (or ``"*"``) with ``seq > after``
        is logged; return the first such row (a dict with the log's columns).

        Looks at the log once, then listens only while waiting, so the session pays nothing
        for it otherwise. Raises :class:`TimeoutError`.
        """
        arrived: list[dict] = []
        signal = threading.Event()

        def watch(row: dict) -> None:
            if row["seq"] > after and (name == "*" or row["type"] == name or row["category"] == name):
                arrived.append(row)
                signal.set()

        unsubscribe = self._events().subscribe(watch)
        try:
            logged = self._logged_after(name, after)
            if logged is not None:
                return logged
            if not signal.wait(timeout):
                raise TimeoutError(f"no {name!r} event after seq {after} within {timeout:g} s")
            return arrived[0]
        finally:
            unsubscribe()

    def _logged_after(self, name: str, after: int) -> dict | None:
        events = self._events()
        if name == "*":
            logged = events.to_pandas()
        elif name in CATEGORIES:
            logged = events.filter(category=name)
        else:
            logged = events.filter(type=glob_escape(name))
        logged = logged[logged["seq"] > after]
        if not len(logged):
            return None
        row = logged.iloc[0].to_dict()
        return {key: (str(value) if key in ("source", "type", "category") else value) for key, value in row.items()}
