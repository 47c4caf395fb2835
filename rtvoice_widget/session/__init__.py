"""The live connection: a Realtime WebSocket client on its own thread and event loop.

:class:`RealtimeSession` wires the pure pieces to a socket: :class:`~rtvoice_widget.protocol.
ClientProtocol` builds client events and turns server events into actions,
:class:`~rtvoice_widget.events.EventLog` records every event (client, server, local) on the
session clock, :class:`~rtvoice_widget.audio.Recorder` keeps both audio tracks and
:class:`~rtvoice_widget.tools.ToolRegistry` runs function calls. One module per concept:

- :mod:`.core` -- :class:`RealtimeSession`: the public methods, option checks, which part does
  what.
- :mod:`.runner` -- :class:`LoopThread` (the session's thread and asyncio loop, the hops onto
  it) and :class:`SessionClosedError`.
- :mod:`.transport` -- :class:`RealtimeConnection`, websockets' client connection that delivers
  messages inline and writes audio from the caller's thread; opening one; event JSON.
- :mod:`.reconnect` -- :class:`Supervisor`: connect, serve, reconnect with backoff, renewal
  replay, shutdown; the writer that drains the outbox.
- :mod:`.outbox` -- :class:`Outbox`: the bounded queue of client events, stale-audio drops.
- :mod:`.audio_path` -- :class:`AudioPath`: ``send_audio``'s frames from any thread to the wire.
- :mod:`.dispatch` -- :class:`Dispatcher`: server frames into the log and the protocol, the
  protocol's actions carried out.
- :mod:`.record` -- :class:`Record`: what was sent and what happened, in the log, counters and
  recording, never raising.
- :mod:`.talk` -- ``talk()`` and :class:`TalkReply` (headless: say a WAV, get the reply).
- :mod:`.tool_runner` -- :class:`ToolRunner`: the model's function calls, run and answered.
- :mod:`.hooks` -- :class:`Hooks`: ``on()`` subscriptions, stream hooks, ``wait_for``.
- :mod:`.voice_gaps` -- :class:`VoiceGaps`: end of voice to first audio, per turn, cached.

Threading model. ``connect()`` starts a daemon thread running an asyncio loop that owns the
socket, the protocol state and the recorder. A Jupyter cell can block the kernel's main thread
(``time.sleep``, a long computation): the session keeps sending and receiving regardless. Public
methods may be called from any thread; they validate their input on the caller's thread (so bad
input raises right there), then hand the work to the loop. Commands (``commit``,
``create_response``, ...) wait until the loop has built and queued their event; ``send_audio``
and ``playback_progress`` do not wait, so a 50 Hz caller never blocks on the loop.

Outgoing events go through the outbox and are logged when they were really written to the
socket; while the connection is down they stay queued (bounded, stale mic audio dropped at the
reconnect: :mod:`.outbox`) and go out after the session config has been re-sent. The exception
is the 50 Hz audio path: ``send_audio`` writes its append to the socket itself, from the
caller's thread, when nothing is queued ahead of it and the connection allows it (plain
``ws://``, open, greeted, socket not full; :mod:`.transport`), which spares the loop a wake-up
per frame (:mod:`.audio_path`). Both paths log, count and record under the connection's
``wire_lock``, so the log follows the wire order. Server events are handled on the loop thread right where the transport
delivers them.

Reconnection and renewal: :mod:`.reconnect`. Cost: ``prices=`` (USD per 1M tokens by kind) and
``max_cost_usd=`` go to the protocol's cost meter; reaching the cap logs ``cost.error``
(category ``error``), switches automatic responses off, and makes ``create_response`` /
``send_text`` / ``talk`` raise :class:`~rtvoice_widget.protocol.CostLimitError`.

Bad input from the server (malformed JSON, binary frames, events without a type, events the
protocol cannot handle) becomes a local ``protocol.error`` event; unknown event types are logged
like any other. Nothing tears the session down but the connection itself. Tools:
:mod:`.tool_runner`.

A failing event log (it cannot take a row: memory, a bug) never stops the session: the row is
counted (``metrics()["events_unlogged"]``) and reported with :mod:`logging` (at most once a
second), and the failures the session must report (``connection.failed``, ``protocol.error``)
go to :mod:`logging` in full, so a session that gave up still raises
:class:`SessionClosedError` with its reason and ``close()`` still stops it.
"""

from .core import RealtimeSession
from .outbox import MAX_OUTBOX_AUDIO_MS, MAX_OUTBOX_EVENTS
from .runner import SessionClosedError
from .talk import Reply, TalkReply

__all__ = ["MAX_OUTBOX_AUDIO_MS", "MAX_OUTBOX_EVENTS", "RealtimeSession", "Reply", "SessionClosedError", "TalkReply"]
