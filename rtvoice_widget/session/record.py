"""What the session did, in its event log, counters and recording, without ever dying of them.

Contract: :meth:`Record.sent` counts, logs and records an event just written to the socket; its
callers hold the connection's ``wire_lock``, so the log and the recording follow the wire
order (the direct audio path and the outbox writer both call it). :meth:`~Record.local` logs a
local event. A row the event log refuses (memory, a bug) is counted
(``metrics()["events_unlogged"]``) and reported with :mod:`logging` at most once a second;
the failures the session must report (``connection.failed``, ``protocol.error``, a tool call
that could not be answered) go through :meth:`~Record.last_resort`, to :mod:`logging` in full
when the log refuses them. Nothing here raises.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..pcm import BYTES_PER_MS as _BYTES_PER_MS

if TYPE_CHECKING:
    from .core import RealtimeSession

__all__ = ["Record"]

_log = logging.getLogger("rtvoice_widget.session")


class Record:
    """The reporting of one session (see the module docstring); reads ``session.events`` and
    ``session.recording`` at each call (a caller may replace the log before connecting)."""

    def __init__(self, session: "RealtimeSession") -> None:
        self._session = session
        self._counters = session._counters
        self._quiet_until = 0.0  # time.monotonic() before which log failures stay quiet

    def sent(self, event: dict, pcm16: bytes | None, size: int, captured_ms: float | None) -> None:
        """Count, log and record an event just written (holding the connection's wire_lock, so
        the log and the recording follow the wire order)."""
        t_ms = self._session.now_ms()
        self._counters["frames_sent"] += 1
        self._counters["bytes_sent"] += size
        try:
            if captured_ms is None:
                self._session.events.append("client", event, t_ms)
            else:
                # Logged as sent (the log stays in send order), with when it was captured.
                self._session.events.append("client", {**event, "captured_ms": captured_ms}, t_ms)
        except Exception as exc:  # it went out all the same: count and record it
            self.unlogged(event.get("type"), exc)
        if pcm16 is not None:
            self._counters["audio_sent_ms"] += len(pcm16) / _BYTES_PER_MS
            self._session.recording.add_user(pcm16, t_ms if captured_ms is None else max(0.0, min(captured_ms, t_ms)))
        elif event.get("type") == "conversation.item.truncate":
            self._session.recording.truncate(event["item_id"], event["audio_end_ms"])

    def local(self, type: str, text: str | None = None, **fields: Any) -> None:
        try:
            self._session.events.local(type, self._session.now_ms(), text=text, **fields)
        except Exception as exc:  # the log failing must not take the session with it
            self.unlogged(type, exc)

    def unlogged(self, what: Any, exc: Exception) -> None:
        """A row the event log refused: counted, and reported with logging once a second."""
        self._counters["events_unlogged"] += 1
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + 1.0
            _log.error("the event log refused a %s row (%s: %s); %d rows unlogged so far", what,
                       type(exc).__name__, exc, self._counters["events_unlogged"])

    def protocol_error(self, message: str, **fields: Any) -> None:
        self._counters["protocol_errors"] += 1
        self.last_resort("protocol.error", message, **fields)

    def last_resort(self, type: str, text: str, **fields: Any) -> None:
        """Log a failure in the event log, or, should the log itself fail, with :mod:`logging`
        (never rate-limited): the handlers of last resort must never die of the thing they
        report, nor depend on it."""
        try:
            self._session.events.local(type, self._session.now_ms(), text=text, **fields)
        except Exception as exc:
            self._counters["events_unlogged"] += 1
            _log.error("%s: %s (the event log refused it: %s: %s)", type, text, exc.__class__.__name__, exc)
