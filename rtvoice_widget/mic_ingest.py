"""Mic frames from the page to the session: in capture order, once each, fresh, on time.

The page sends 20 ms frames of 24 kHz PCM16 (``{"type": "audio", "stream", "seq", "t"}`` + one
buffer) through Jupyter, the audio link, or around a switch both (see :mod:`rtvoice_widget.
audio_link`). :class:`MicIngest` puts them back in capture order (:class:`~rtvoice_widget.
audio_link.MicFrameOrder`), gives up on a frame that does not come within half of
``stale_frame_ms`` (logged as ``mic.gap``), drops late bursts (:class:`StaleFrameFilter`, logged
as ``mic.stale_dropped``), maps each frame's capture time to the session clock and hands it to
``session.send_audio``. An action that must follow the frames the page numbered before it (the
end of a push-to-talk turn) waits for them the same way.

It knows the session (through a getter: the widget starts a new one on each reconnect) and a
log function, not the widget.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

from rtvoice_widget.audio_link import Gap, MicFrameOrder
from rtvoice_widget.pcm import BYTES_PER_MS as _PCM_BYTES_PER_MS
from rtvoice_widget.session import RealtimeSession, SessionClosedError

__all__ = ["FRAME_MS", "MicIngest", "StaleFrameFilter"]

FRAME_MS = 20  # the page sends the mic in frames of this length

Frame = tuple[dict[str, Any], bytes]


def is_uint32(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 32


class StaleFrameFilter:
    """Decides whether a mic frame is too old to be worth sending.

    The browser stamps each frame with its capture time (page clock) and the kernel receives it
    on its own clock; the two clocks may differ by any constant (another machine). The smallest
    ``receive - capture`` seen is taken as the baseline transit; a frame is stale when it arrived
    more than ``max_delay_ms`` later than that baseline, which is what happens when a busy cell
    held the messages back: they then arrive as a burst, far faster than real time.

    A delay that lasts is different: stale frames that keep arriving at real-time pace for
    ``rebase_after_ms`` (a loaded kernel, a slower network path) become the new baseline, so the
    assistant is never left deaf by an old, unusually fast frame.
    """

    def __init__(self, max_delay_ms: float = 500.0, rebase_after_ms: float = 2000.0) -> None:
        self.max_delay_ms = max_delay_ms
        self.rebase_after_ms = rebase_after_ms
        self.baseline: float | None = None
        self.dropped = 0
        self.rebased = 0
        self._stale_since: float | None = None

    def is_stale(self, capture_ms: float, receive_ms: float) -> bool:
        transit = receive_ms - capture_ms
        if self.baseline is None or transit < self.baseline:
            self.baseline = transit
        if transit - self.baseline <= self.max_delay_ms:
            self._stale_since = None
            return False
        if self._stale_since is None:
            self._stale_since = receive_ms
        elif receive_ms - self._stale_since >= self.rebase_after_ms:
            self.baseline = transit
            self._stale_since = None
            self.rebased += 1
            return False
        self.dropped += 1
        return True

    def reset(self) -> None:
        self.baseline = None
        self._stale_since = None


class MicIngest:
    """The page's mic frames, from either transport (any thread), to the current session.

    ``session()`` returns the session to deliver to; ``log(type, text=None, **fields)`` writes a
    local event to its log. Frames waiting for a missing one wait half of ``stale_frame_ms`` at
    most: a missing frame later than that is nearly stale itself, and the waiting ones must
    still be fresh enough to pass the stale filter once they go on.
    """

    def __init__(self, session: Callable[[], RealtimeSession], log: Callable[..., None],
                 stale_frame_ms: float = 500.0) -> None:
        self._session = session
        self._log = log
        self.stale = StaleFrameFilter(stale_frame_ms)
        self._lock = threading.Lock()  # order + delivery: one frame at a time, in order
        self.order: MicFrameOrder[Frame | None] = MicFrameOrder(max(1, math.ceil(stale_frame_ms / 2 / FRAME_MS)))
        self._wait_s = stale_frame_ms / 2 / 1000
        self._held_since: float | None = None
        # An action (the end of a push-to-talk turn) waiting until the session has the frames
        # the page numbered before it: (stream, last seq, action, since when).
        self._then: tuple[int, int, Callable[[], None], float] | None = None
        self._timer: threading.Timer | None = None
        self._stale_burst = 0.0
        self.frames_in = 0
        self.frames_via_link = 0

    def metrics(self) -> dict[str, int]:
        order = self.order
        return {"mic_frames_in": self.frames_in, "mic_frames_via_link": self.frames_via_link,
                "mic_frames_stale_dropped": self.stale.dropped, "mic_frames_duplicate": order.duplicates,
                "mic_frames_late": order.late, "mic_frames_missing": order.missing}

    def reset_clock(self) -> None:
        """A new connection: the page's transit is measured afresh."""
        self.stale.reset()

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()

    def page_to_session_ms(self, page_ms: float) -> float | None:
        """A page-clock time on the session clock, mapped as the frames' capture times are (the
        fastest transit seen counts as zero); None before any frame gave a mapping."""
        baseline = self.stale.baseline
        if baseline is None:
            return None
        # Both clocks read together, as in _send.
        received_ms, session_ms = time.time() * 1000, self._session().now_ms()
        return page_ms + baseline + (session_ms - received_ms)

    def push(self, content: dict[str, Any], buffers: list[Any]) -> None:
        """A mic frame: into capture order, then delivered with whatever it released."""
        stream, seq = content.get("stream", 0), content.get("seq")
        for name, value in (("stream", stream), ("seq", seq)):
            if not is_uint32(value):
                raise ValueError(f"audio message with a bad {name} {value!r:.40}: a uint32 is required")
        pcm = bytes(buffers[0]) if buffers else b""
        problem = ("audio message without a buffer" if not buffers else "empty audio frame" if not pcm
                   else f"audio frame of {len(pcm)} bytes: PCM16 needs an even count" if len(pcm) % 2 else None)
        with self._lock:
            # A bad frame still takes its place, so the frames after it need not wait for it.
            self._deliver(*self.order.push(stream, seq, None if problem else (content, pcm)))
        if problem:
            raise ValueError(problem)

    def after(self, content: dict[str, Any], action: Callable[[], None]) -> None:
        """Run ``action`` once the session has every frame the page numbered before it asked
        (``stream``, ``through``: the last one; frames still on their way over the link may
        arrive after the request that came through Jupyter), waiting at most half of
        ``stale_frame_ms``. Without them (an older page), deliver what waits and run it now."""
        stream, through = content.get("stream"), content.get("through")
        with self._lock:
            if self._then is not None:  # an earlier request still waiting: it goes first
                earlier, self._then = self._then, None
                self._deliver(*self.order.skip_through(earlier[0], earlier[1]))
                self._run(earlier[2])
            if not (is_uint32(stream) and isinstance(through, int) and not isinstance(through, bool)
                    and -1 <= through < 2 ** 32):
                self._deliver(*self.order.give_up())
                self._run(action)
                return
            self._then = (stream, through, action, time.monotonic())
            self._deliver([], [])  # runs it at once if those frames are all here

    def flush(self) -> None:
        """Deliver every frame still waiting for a missing one, before the turn ends or clears."""
        with self._lock:
            self._deliver(*self.order.give_up())

    def end_turn_with_silence(self, silence_ms: int) -> None:
        """Muted mid-sentence: the frames still waiting, then ``silence_ms`` of silence, so the
        server's VAD ends the turn now instead of waiting for a silence that never comes
        (logged as ``mic.muted_mid_speech``; nothing when the session closed)."""
        self.flush()  # the last words first, then the silence
        try:
            self._session().send_audio(bytes(_PCM_BYTES_PER_MS * silence_ms))
        except SessionClosedError:
            return
        self._log("mic.muted_mid_speech",
                  text=f"muted while speaking: sent {silence_ms} ms of silence to end the turn")

    def _deliver(self, frames: list[Frame | None], gaps: list[Gap]) -> None:
        """Hand ordered frames to the session (holds _lock); keep a timer while some wait."""
        for gap in gaps:
            self._log("mic.gap", text=f"{gap.count * FRAME_MS} ms of mic audio never arrived "
                      f"(frames {gap.first}..{gap.first + gap.count - 1}); went on without it",
                      stream=gap.stream, first_seq=gap.first, missing_frames=gap.count,
                      missing_ms=gap.count * FRAME_MS)
        for frame in frames:
            if frame is None:
                continue
            try:
                self._send(*frame)
            except SessionClosedError:
                pass  # late frames after a disconnect: nothing to deliver them to
            except (TypeError, ValueError) as exc:
                self._log("widget.error", text=f"bad audio message from the browser: {exc}")
        then = self._then
        if then is not None and self.order.covers(then[0], then[1]):
            self._then = None
            self._run(then[2])
        if not self.order.held:
            self._held_since = None
        elif self._held_since is None:
            self._held_since = time.monotonic()
        waiting = [t for t in (self._held_since, self._then and self._then[3]) if t is not None]
        if waiting and self._timer is None:
            wait = self._wait_s - (time.monotonic() - min(waiting))
            self._timer = threading.Timer(max(0.0, wait), self._on_wait_over)
            self._timer.daemon = True
            self._timer.start()

    def _on_wait_over(self) -> None:
        # Timer thread: frames the page sent did not come within half of stale_frame_ms (the mic
        # may have gone quiet since, so no later frame would push the waiting ones out): go on
        # without them. Then re-arm for whatever still waits.
        with self._lock:
            self._timer = None
            now = time.monotonic()
            then = self._then
            if then is not None and now - then[3] >= self._wait_s:
                self._deliver(*self.order.skip_through(then[0], then[1]))
            since = self._held_since
            if since is not None and now - since >= self._wait_s:
                self._deliver(*self.order.give_up())
            self._deliver([], [])

    def _run(self, action: Callable[[], None]) -> None:
        # Holds _lock, on whichever thread delivered the last frame it waited for.
        try:
            action()
        except SessionClosedError:
            pass
        except Exception as exc:  # e.g. the cost limit: the session logged it; keep the link alive
            self._log("widget.error", text=f"{getattr(action, '__name__', 'action')} failed: "
                      f"{type(exc).__name__}: {exc}")

    def _send(self, content: dict[str, Any], pcm: bytes) -> None:
        session = self._session()
        if not session.connected:
            return
        capture_ms = content.get("t")
        rebased = self.stale.rebased
        captured_ms = None
        if isinstance(capture_ms, (int, float)) and not isinstance(capture_ms, bool) and math.isfinite(capture_ms):
            # Both clocks read together: a thread switch between them would shift captured_ms.
            received_ms, session_ms = time.time() * 1000, session.now_ms()
            if self.stale.is_stale(float(capture_ms), received_ms):
                self._stale_burst += len(pcm) / _PCM_BYTES_PER_MS
                return
            captured_ms = self._captured_on_session_clock(float(capture_ms), received_ms, session_ms, len(pcm))
        if self.stale.rebased != rebased:
            self._log("mic.delay_adopted", text="mic audio keeps arriving late: accepting the longer "
                      "delay instead of dropping it", transit_ms=self.stale.baseline)
        if self._stale_burst:
            self._log("mic.stale_dropped", text=f"dropped {self._stale_burst:.0f} ms of mic audio that "
                      "arrived late (the kernel was busy)", dropped_ms=self._stale_burst)
            self._stale_burst = 0
        self.frames_in += 1
        if content.get("via") == "link":
            self.frames_via_link += 1
        session.send_audio(pcm, captured_ms=captured_ms)

    def _captured_on_session_clock(self, capture_ms: float, received_ms: float, session_ms: float,
                                   nbytes: int) -> float:
        """When a frame's first sample was captured, on the session clock.

        ``t`` is the frame's end on the page clock. As in :class:`StaleFrameFilter`, the fastest
        transit seen counts as zero: a frame that took longer than that was captured that much
        before it arrived. ``received_ms`` (page-comparable clock) and ``session_ms`` are the
        same moment on the two clocks.
        """
        assert self.stale.baseline is not None  # set by is_stale() just before
        extra_transit = (received_ms - capture_ms) - self.stale.baseline
        return session_ms - extra_transit - nbytes / _PCM_BYTES_PER_MS
