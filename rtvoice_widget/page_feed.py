"""What the kernel sends the page in batches: log rows and transcript entries.

Rows arrive on the session thread one by one; :class:`PageFeed` collects them (and the
transcript entries they change) and a pump thread sends them at most every
``BATCH_INTERVAL_S``, so a busy session never waits on the comm. It takes no widget reference:
the widget hands it a ``send`` function and a stats function.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any, Callable

from rtvoice_widget.transcript_view import TranscriptView

__all__ = ["BATCH_INTERVAL_S", "HISTORY_ROWS", "PageFeed", "rows_json", "session_stats"]

BATCH_INTERVAL_S = 0.1  # events/transcript to the browser at most 10 times a second
STATS_INTERVAL_S = 0.5
HISTORY_ROWS = 2000  # rows replayed to a view that (re)opens; the log itself keeps everything


_ROW_FIELDS = ("seq", "t_ms", "source", "type", "category", "event_id", "item_id", "response_id", "text",
               "audio_ms", "payload")


def rows_json(rows: list[dict[str, Any]]) -> str:
    """Log rows as the browser gets them: one JSON array, without the wall-clock datetime.

    Serialised once per batch on the pump thread (not per event on the session thread); odd
    payload values (numpy scalars, bytes) become text instead of breaking the comm.
    """
    return json.dumps([{k: row.get(k) for k in _ROW_FIELDS} for row in rows], default=str,
                      separators=(",", ":"))


class PageFeed:
    """Log rows and transcript changes on their way to the page, and the history a view that
    (re)opens gets.

    :meth:`add` runs on the session thread and only queues. The pump thread (:meth:`start`)
    sends what piled up every ``BATCH_INTERVAL_S`` with ``send(content)`` and calls
    ``on_stats()`` every ``STATS_INTERVAL_S``; when sending raises it stops quietly if
    ``closed()`` (the comm went away), else reports through ``on_error(text)`` and goes on.
    """

    def __init__(self, send: Callable[[dict[str, Any]], None], on_stats: Callable[[], None],
                 closed: Callable[[], bool], on_error: Callable[[str], None]) -> None:
        self._send = send
        self._on_stats = on_stats
        self._closed = closed
        self._on_error = on_error
        self._lock = threading.Lock()  # the batches are shared with the session thread
        self._pending_rows: list[dict[str, Any]] = []
        self._pending_entries: dict[str, dict[str, Any]] = {}
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY_ROWS)
        self._transcript = TranscriptView()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtvoice-widget-pump", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def add(self, row: dict[str, Any]) -> None:
        """Session thread: keep it short; the pump sends batches."""
        changed = self._transcript.consume(row)
        with self._lock:
            self._pending_rows.append(row)
            self._history.append(row)
            for entry in changed:
                self._pending_entries[entry["id"]] = entry

    def reset(self) -> None:
        """A new session: nothing of the old one is sent or replayed any more."""
        self._transcript = TranscriptView()
        with self._lock:
            self._pending_rows.clear()
            self._pending_entries.clear()
            self._history.clear()

    def send_history(self) -> None:
        """The history so far, to a view that (re)opens: it replaces what the view shows."""
        with self._lock:
            rows = list(self._history)
        self._send({"type": "events", "reset": True, "rows_json": rows_json(rows)})
        self._send({"type": "transcript", "reset": True, "entries": self._transcript.snapshot()})

    def _take(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self._lock:
            rows, self._pending_rows = self._pending_rows, []
            entries = list(self._pending_entries.values())
            self._pending_entries.clear()
        return rows, entries

    def _run(self) -> None:
        next_stats = 0.0
        while not self._stop.wait(BATCH_INTERVAL_S):
            rows, entries = self._take()
            try:
                if rows:
                    self._send({"type": "events", "rows_json": rows_json(rows)})
                if entries:
                    self._send({"type": "transcript", "entries": entries})
                now = time.monotonic()
                if now >= next_stats:
                    next_stats = now + STATS_INTERVAL_S
                    self._on_stats()
            except Exception as exc:  # the comm went away (widget closed): stop quietly
                if self._closed():
                    return
                self._on_error(f"widget update failed: {type(exc).__name__}: {exc}")


def session_stats(session: Any) -> dict[str, Any]:
    """The ``stats`` trait: the session's headline counters and latencies.

    Headline: end of the user's voice -> first reply audio (what a person waits through); the
    server's speech_stopped -> first audio beside it shows how much of that is the turn
    detection's wait.
    """
    m = session.metrics()
    turns = list(session.protocol.turns)
    latencies = [t.speech_to_first_audio_ms for t in turns if t.speech_to_first_audio_ms is not None]
    gaps = [g for g in session.voice_gaps() if g is not None]
    return {
        "voice_gap_last_ms": gaps[-1] if gaps else None,
        "voice_gap_median_ms": m.get("median_voice_to_first_audio_ms"),
        "voice_gap_p90_ms": m.get("p90_voice_to_first_audio_ms"),
        "latency_last_ms": latencies[-1] if latencies else None,
        "latency_median_ms": m.get("median_speech_to_first_audio_ms"),
        "turns": m.get("turns", 0),
        "interruptions": m.get("interrupted_turns", 0),
        "audio_in_s": round(m.get("audio_sent_ms", 0.0) / 1000, 2),
        "audio_out_s": round(m.get("audio_received_ms", 0.0) / 1000, 2),
        "events": m.get("events", 0),
    }
