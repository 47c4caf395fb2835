"""Server frames into the log and the protocol, and the protocol's actions carried out.

Contract (loop thread): :meth:`Dispatcher.on_message` takes each frame where the transport
delivers it. A frame the session cannot use (binary, malformed JSON, no string ``type``, an
event the protocol rejects) is a ``protocol.error`` local event, never the end of the
connection. Every event is logged before the protocol sees it (the protocol sees it even when
the log refuses it). ``session.created`` first goes to the supervisor (renewal, the direct audio
path). :meth:`~Dispatcher.perform` carries out one :mod:`~rtvoice_widget.protocol.actions`
action: audio to the recording and the ``output_audio`` hooks, sends to the outbox, flushes to
``playback.flushed`` and the ``flush`` hooks (with ``flush_timeout`` for a truncation held for a
live player that never answers), tool calls to the tool runner, the cost cap to ``cost.error``,
a finished turn to the ``turn_done`` hooks.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from ..pcm import BYTES_PER_MS as _BYTES_PER_MS
from ..protocol import CostCapReached, FlushPlayback, PlayAudio, RunTool, Send, TurnDone

if TYPE_CHECKING:
    from .core import RealtimeSession

__all__ = ["Dispatcher"]


class Dispatcher:
    """Receiving and acting for one session (see the module docstring)."""

    def __init__(self, session: "RealtimeSession") -> None:
        self._session = session

    def on_message(self, frame: str | bytes) -> None:
        try:
            self._receive(frame)
        except Exception as exc:  # a bug of ours must not end the connection
            self._session._protocol_error(f"internal error handling a server frame: {type(exc).__name__}: {exc}")

    def _receive(self, frame: str | bytes) -> None:
        s = self._session
        t_ms = s.now_ms()
        s._counters["frames_received"] += 1
        s._counters["bytes_received"] += len(frame)
        if isinstance(frame, bytes):
            s._protocol_error(f"unexpected binary frame of {len(frame)} bytes (Realtime events are JSON text)")
            return
        try:
            event = json.loads(frame)
        except ValueError as exc:
            s._protocol_error(f"malformed JSON from server: {exc}", frame=frame[:200])
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            s._protocol_error("server event is not a JSON object with a string 'type'", frame=frame[:200])
            return
        try:
            s.events.append("server", event, t_ms)
        except Exception as exc:  # the protocol must see the event whether or not it is logged
            s._unlogged(event["type"], exc)
        type_ = event["type"]
        if type_ == "session.created" and s._supervisor is not None:
            s._supervisor.greeted(event)
        try:
            actions = s.protocol.receive(event, t_ms)
        except Exception as exc:  # the protocol must not take the connection down with it
            s._protocol_error(f"could not handle {type_}: {type(exc).__name__}: {exc}")
            return
        for action in actions:
            self.perform(action, t_ms)

    def perform(self, action: Any, t_ms: float) -> None:
        s = self._session
        if isinstance(action, PlayAudio):
            s._counters["audio_received_ms"] += len(action.pcm16) / _BYTES_PER_MS
            s.recording.add_assistant(action.item_id, action.pcm16, t_ms)
            s._hooks.fire("output_audio", action.item_id, action.response_id, action.pcm16)
        elif isinstance(action, Send):
            s._enqueue(action.event)
        elif isinstance(action, FlushPlayback):
            s._local("playback.flushed", item_id=action.item_id)
            s._hooks.fire("flush", action.item_id)
            if action.item_id in s.protocol.truncations_due:
                # The player's final position normally comes first; this is for one that never
                # answers (no browser open, a dead page).
                asyncio.get_running_loop().call_later(s.flush_timeout, self.truncate_overdue, action.item_id)
        elif isinstance(action, RunTool):
            s._tools.start(action)
        elif isinstance(action, CostCapReached):
            s._local("cost.error", text=f"cost cap reached: ${action.cost_usd:.4f} >= max_cost_usd="
                     f"${action.max_cost_usd:g}; no more responses will be created",
                     cost_usd=action.cost_usd, max_cost_usd=action.max_cost_usd)
        elif isinstance(action, TurnDone):
            # The turn itself lives in protocol.turns; this is for the session's own parts (talk).
            s._hooks.fire("turn_done", action.turn)

    def report_progress(self, item_id: str, played_ms: float, flushed: bool = False) -> None:
        s = self._session
        try:
            if flushed:
                actions = s.protocol.playback_flushed(item_id, played_ms, s.now_ms())
            else:
                actions = s.protocol.playback_progress(item_id, played_ms, s.now_ms())
        except Exception as exc:
            s._protocol_error(f"playback_progress({item_id!r}, {played_ms}) failed: {type(exc).__name__}: {exc}")
            return
        for action in actions or ():
            self.perform(action, s.now_ms())

    def truncate_overdue(self, item_id: str) -> None:
        s = self._session
        if s._closing:
            return
        for action in s.protocol.truncate_now(item_id):
            self.perform(action, s.now_ms())
