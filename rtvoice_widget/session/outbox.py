"""The session's outbox: client events waiting for the socket, bounded, with stale audio dropped.

Contract: events leave in the order they were put (``first=True`` puts one ahead, for a renewal's
summary or an append that lost the race to the direct path). The head entry being written
(:attr:`Outbox.writing`) is never dropped. Past :data:`MAX_OUTBOX_EVENTS` events or
:data:`MAX_OUTBOX_AUDIO_MS` of mic audio the oldest audio append goes first (it is the first to
turn stale), then the oldest event. :meth:`Outbox.drop_stale_audio` drops mic audio whose last
sample is older than ``stale_audio_ms``: a new server session would answer speech nobody waits
for any more. Every drop is counted and reported as ``connection.outbox_dropped`` (``reason``
``stale`` or ``overflow``, with the appends, audio ms and other events by type): at a
reconnect, at close, and at most once a second while the queue overflows.

Owned by the loop thread. ``send_audio``'s direct path reads its length from another thread
under the connection's ``wire_lock`` only (see :mod:`.core`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable

from ..pcm import BYTES_PER_MS

__all__ = ["MAX_APPEND_BYTES", "MAX_OUTBOX_AUDIO_MS", "MAX_OUTBOX_EVENTS", "Entry", "Outbox"]

# One append carries at most this much audio: hosted servers cap event size (OpenAI: 15 MiB) and
# a huge single frame would stall the socket for everything queued behind it.
MAX_APPEND_MS = 1000
MAX_APPEND_BYTES = int(MAX_APPEND_MS * BYTES_PER_MS)
#: Events the outbox holds at most (queued while reconnecting, or behind a full socket).
MAX_OUTBOX_EVENTS = 4096
#: Mic audio the outbox holds at most: 5 min (about 34 MB with its base64), what the local
#: server keeps uncommitted too. A live mic queues 50 frames a second, so only a server that
#: stopped reading for minutes, or a caller pushing audio far faster than real time, reaches it.
MAX_OUTBOX_AUDIO_MS = 5 * 60 * 1000
MAX_OUTBOX_AUDIO_BYTES = int(MAX_OUTBOX_AUDIO_MS * BYTES_PER_MS)
#: An outbox entry: (event, pcm16 or None, captured_ms or None, session ms when it was queued).
Entry = tuple[dict, bytes | None, float | None, float]


class Outbox:
    """Queued client events (see the module docstring).

    ``counters``: the session's counters (``outbox_dropped``, ``outbox_dropped_audio_ms`` are
    added to). ``report(type, text, **fields)`` logs a local event. ``now_ms()`` is the session
    clock. ``stale_audio_ms``: ``None`` keeps all audio.
    """

    def __init__(self, counters: dict[str, Any], report: Callable[..., None], now_ms: Callable[[], float],
                 stale_audio_ms: float | None) -> None:
        self.entries: deque[Entry] = deque()
        self.audio_bytes = 0  # PCM16 bytes in the queue
        self.writing: Entry | None = None  # the head entry being written: never dropped
        self.stale_audio_ms = stale_audio_ms
        # Set when something is queued; the writer (reconnect.Supervisor) waits on it. Made on the
        # loop by bind(), since an asyncio.Event belongs to the loop that first waits on it.
        self.ready: asyncio.Event | None = None
        self._counters = counters
        self._report = report
        self._now_ms = now_ms
        # Drops not logged yet: reason -> [appends, audio ms, {event type: count}].
        self._drops: dict[str, list] = {}
        self._report_due = False

    def bind(self) -> None:
        """Make :attr:`ready` (on the loop thread)."""
        self.ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def wake(self) -> None:
        """Tell the writer something is queued (loop thread)."""
        assert self.ready is not None
        self.ready.set()

    def put(self, entry: Entry, first: bool = False) -> None:
        """Add an entry (at the head with ``first``), then keep the queue within its caps."""
        if entry[1] is not None:
            self.audio_bytes += len(entry[1])
        if first:
            self.entries.appendleft(entry)
        else:
            self.entries.append(entry)
        if len(self.entries) > MAX_OUTBOX_EVENTS or self.audio_bytes > MAX_OUTBOX_AUDIO_BYTES:
            self._make_room()

    def remove(self, entry: Entry) -> None:
        """Take ``entry`` out (by identity: two appends of the same silence are equal, and only
        this one goes); nothing when it is already gone."""
        entries = self.entries
        if entries and entries[0] is entry:
            entries.popleft()
        else:
            for index, queued in enumerate(entries):
                if queued is entry:
                    del entries[index]
                    break
            else:
                return
        if entry[1] is not None:
            self.audio_bytes -= len(entry[1])

    def _make_room(self) -> None:
        entries = self.entries
        for entry in list(entries):
            if len(entries) <= MAX_OUTBOX_EVENTS and self.audio_bytes <= MAX_OUTBOX_AUDIO_BYTES:
                return
            if entry[1] is not None and entry is not self.writing:
                self._drop(entry, "overflow")
        for entry in list(entries):
            if len(entries) <= MAX_OUTBOX_EVENTS:
                return
            if entry is not self.writing:
                self._drop(entry, "overflow")

    def drop_stale_audio(self) -> None:
        """Drop queued mic audio whose last sample is older than ``stale_audio_ms``."""
        if self.stale_audio_ms is None or not self.audio_bytes:
            return
        oldest_fresh = self._now_ms() - self.stale_audio_ms
        for entry in list(self.entries):
            event, pcm16, captured_ms, queued_ms = entry
            if pcm16 is None or entry is self.writing:
                continue
            end_ms = queued_ms if captured_ms is None else captured_ms + len(pcm16) / BYTES_PER_MS
            if end_ms < oldest_fresh:
                self._drop(entry, "stale")

    def _drop(self, entry: Entry, reason: str) -> None:
        self.remove(entry)
        event, pcm16 = entry[0], entry[1]
        counts = self._drops.setdefault(reason, [0, 0.0, {}])
        self._counters["outbox_dropped"] += 1
        if pcm16 is not None:
            counts[0] += 1
            counts[1] += len(pcm16) / BYTES_PER_MS
            self._counters["outbox_dropped_audio_ms"] += len(pcm16) / BYTES_PER_MS
        else:
            type_ = str(event.get("type"))
            counts[2][type_] = counts[2].get(type_, 0) + 1
        if reason == "overflow" and not self._report_due:
            # One row a second at most while it overflows, not one per dropped frame.
            self._report_due = True
            asyncio.get_running_loop().call_later(1.0, self.report_drops)

    def report_drops(self) -> None:
        """Log the drops not reported yet, one ``connection.outbox_dropped`` per reason."""
        self._report_due = False
        drops, self._drops = self._drops, {}
        for reason, (appends, audio_ms, events) in drops.items():
            why = (f"older than stale_audio_ms={self.stale_audio_ms:g} when the connection came back"
                   if reason == "stale" else
                   f"over the outbox cap ({MAX_OUTBOX_EVENTS} events, {MAX_OUTBOX_AUDIO_MS} ms of audio)")
            parts = [f"{audio_ms:.0f} ms of mic audio ({appends} appends)"] if appends else []
            parts += [f"{n} {type_}" for type_, n in events.items()]
            self._report("connection.outbox_dropped", text=f"dropped {', '.join(parts)} queued to send: {why}",
                         reason=reason, appends=appends, audio_ms=audio_ms, events=events)
