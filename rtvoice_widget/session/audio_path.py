"""The 50 Hz mic path: ``send_audio``'s PCM from any thread to the wire, in order, one append each.

Contract: :meth:`AudioPath.send` takes checked PCM16 on the caller's thread and either writes its
append to the socket right there (the direct path) or hands it to the loop, which queues it in the
outbox. Order, one append per call (a call over 1 s is split), log rows in wire order and nothing
lost hold on both paths (``tests/test_session_wire.py``).

The direct path is taken when nothing is queued ahead of the frame and the connection allows it
(plain ``ws://``, open, greeted by ``session.created``, socket not full; see
:meth:`RealtimeConnection.can_write_now`): half the session's CPU per frame went into waking the
loop (the self-pipe write, an epoll return, a task), and the frame reaches the server sooner.
Otherwise frames that pile up while the loop is busy cost it one wake-up, not one each.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import Any
from typing import TYPE_CHECKING

import numpy as np

from ..audio import to_pcm16
from ..pcm import BYTES_PER_MS
from .outbox import MAX_APPEND_BYTES, MAX_OUTBOX_AUDIO_BYTES, MAX_OUTBOX_AUDIO_MS
from .transport import event_text

if TYPE_CHECKING:
    from .core import RealtimeSession

__all__ = ["AudioPath", "checked_audio"]


class AudioPath:
    """``send_audio``'s way to the wire for one session (see the module docstring)."""

    def __init__(self, session: "RealtimeSession") -> None:
        self._session = session
        # Audio handed over by send (any thread) and one pending wake-up of the loop for it:
        # (pcm16, captured_ms or None, session ms of the call).
        self._pending: deque[tuple[bytes, float | None, float]] = deque()
        self._wakeup_pending = False

    def send(self, pcm16: bytes, captured_ms: float | None) -> None:
        """Send one append's audio (any thread; ``pcm16`` already checked and converted)."""
        s = self._session
        if s._direct is not None and self._send_now(pcm16, captured_ms):
            return
        # deque.append is atomic; the flag may be stale, which costs at most a spare wake-up
        # (it is cleared on the loop *before* the deque is drained, so no frame is stranded).
        self._pending.append((pcm16, captured_ms, s.now_ms()))
        if not self._wakeup_pending:
            self._wakeup_pending = True
            s._call_soon(self._take)

    def _send_now(self, pcm16: bytes, captured_ms: float | None) -> bool:
        """Write one append from this (the caller's) thread, without waking the loop; False
        when it must take the queue: the wire is busy, something is queued ahead of it, the
        connection cannot be written from here (TLS, closing, a full socket), or it is too big."""
        s = self._session
        supervisor = s._supervisor
        ws = supervisor.direct if supervisor is not None else None
        if ws is None or len(pcm16) > MAX_APPEND_BYTES or not ws.wire_lock.acquire(blocking=False):
            return False
        try:
            if self._pending or s._outbox or s._closing or not ws.can_write_now():
                return False
            event = s.protocol.append_audio(pcm16)
            text = event_text(event, pcm16)
            if not ws.write_now(text):  # closed just now: the queue keeps it for the next connection
                supervisor.direct = None
                s._call_soon(self._queue_first, event, pcm16, captured_ms, s.now_ms())
                return True
            s._sent(event, pcm16, len(text), captured_ms)
            return True
        finally:
            ws.wire_lock.release()

    def _take(self) -> None:
        """Queue what :meth:`send` handed over (loop thread)."""
        self._wakeup_pending = False
        s = self._session
        if s._closing:
            self._pending.clear()
            return
        # Moved under the wire lock: the direct path must not see both queues empty meanwhile.
        direct = s._direct  # read once: _send_now may clear it meanwhile, on another thread
        with direct.wire_lock if direct is not None else contextlib.nullcontext():
            self._queue_pending()
        s._outbox.wake()

    def _queue_pending(self) -> None:
        # One append per send_audio call (callers and tests see their frames 1:1 on the wire),
        # however many piled up for this wake-up; only a call over 1 s is split.
        s = self._session
        pending = self._pending
        while pending:
            pcm16, captured_ms, queued_ms = pending.popleft()
            for start in range(0, len(pcm16), MAX_APPEND_BYTES):
                chunk = pcm16 if len(pcm16) <= MAX_APPEND_BYTES else pcm16[start : start + MAX_APPEND_BYTES]
                event = s.protocol.append_audio(chunk)
                s._outbox.put((event, chunk, None if captured_ms is None else captured_ms + start / BYTES_PER_MS,
                               queued_ms))

    def _queue_first(self, event: dict, pcm16: bytes, captured_ms: float | None, queued_ms: float) -> None:
        # It was meant to go before anything queued since.
        s = self._session
        s._outbox.put((event, pcm16, captured_ms, queued_ms), first=True)
        s._outbox.wake()


def checked_audio(audio: Any, sample_rate: int, captured_ms: Any) -> tuple[bytes, float | None]:
    """``send_audio``'s input as 24 kHz PCM16 and a float capture time, on the caller's thread.

    Raises ``TypeError`` / ``ValueError`` for what :func:`rtvoice_widget.audio.to_pcm16`
    refuses, a capture time that is not a finite number, and more than
    :data:`MAX_OUTBOX_AUDIO_MS` of audio (it could never fit the outbox).
    """
    if captured_ms is not None and (
            isinstance(captured_ms, bool) or not isinstance(captured_ms, (int, float, np.number))
            or not math.isfinite(captured_ms)):
        raise ValueError(f"captured_ms must be a finite number of ms on the session clock, got {captured_ms!r}")
    # Refused before converting it too (a 10-minute array took a second to resample).
    if isinstance(audio, np.ndarray) and audio.ndim and isinstance(sample_rate, int) and sample_rate > 0 \
            and audio.shape[0] * 1000 > MAX_OUTBOX_AUDIO_MS * sample_rate:
        raise ValueError(f"send_audio takes at most {MAX_OUTBOX_AUDIO_MS // 1000} s per call, got "
                         f"{audio.shape[0] / sample_rate:.1f} s: send it in parts (talk() streams it)")
    pcm16 = to_pcm16(audio, sample_rate)
    if len(pcm16) > MAX_OUTBOX_AUDIO_BYTES:
        raise ValueError(f"send_audio takes at most {MAX_OUTBOX_AUDIO_MS // 1000} s per call, got "
                         f"{len(pcm16) / BYTES_PER_MS / 1000:.1f} s: send it in parts (talk() streams it)")
    if captured_ms is not None:
        captured_ms = float(captured_ms)
    return pcm16, captured_ms
