"""The live connection: a Realtime WebSocket client on its own thread and event loop.

:class:`RealtimeSession` wires the pure pieces to a socket: :class:`~rtvoice_widget.protocol.
ClientProtocol` builds client events and turns server events into actions,
:class:`~rtvoice_widget.events.EventLog` records every event (client, server, local) on the
session clock, :class:`~rtvoice_widget.audio.Recorder` keeps both audio tracks and
:class:`~rtvoice_widget.tools.ToolRegistry` runs function calls.

Threading model. ``connect()`` starts a daemon thread running an asyncio loop that owns the
socket, the protocol state and the recorder. A Jupyter cell can block the kernel's main thread
(``time.sleep``, a long computation): the session keeps sending and receiving regardless. Public
methods may be called from any thread; they validate their input on the caller's thread (so bad
input raises right there), then hand the work to the loop (``send_audio`` usually writes itself,
see below). Commands (``commit``,
``create_response``, ...) wait until the loop has built and queued their event; ``send_audio``
and ``playback_progress`` do not wait, so a 50 Hz caller never blocks on the loop.

Outgoing events go through one queue and are logged when they were really written to the socket.
While the connection is down (between a loss and a successful reconnect) they stay queued and
go out after the session config has been re-sent. The queue is bounded: at most
:data:`MAX_OUTBOX_EVENTS` events and :data:`MAX_OUTBOX_AUDIO_MS` of mic audio; past either the
oldest audio append is dropped first, then the oldest event. When the connection comes back,
mic audio older than ``stale_audio_ms`` (its last sample captured, or handed to ``send_audio``
without ``captured_ms``, that long before) is dropped instead of sent: the new session would
answer speech nobody waits for any more. Drops are logged as ``connection.outbox_dropped``
(``reason`` ``stale`` or ``overflow``, with the appends, audio ms and other events by type), at
the reconnect, at close, and at most once a second while the queue overflows.

The exception to the queue is the 50 Hz audio path:
``send_audio`` writes its append to the socket itself, from the caller's thread, when nothing is
queued ahead of it and the connection allows it (plain ``ws://``, open, greeted, socket not
full; see :mod:`rtvoice_widget.wire`), which spares the loop a wake-up per frame. Both paths
log, count and record under the connection's ``wire_lock``, so the log follows the wire order.
Server events are handled on the loop thread right where the transport delivers them.

Reconnection. Any close the session did not ask for (server close, network drop, a frame over
``max_frame_bytes``) is logged as ``connection.lost``; the session then retries with exponential
backoff (``reconnect_delay`` doubling up to ``max_reconnect_delay``), logging
``connection.reconnecting`` per attempt and ``connection.restored`` on success, and re-sends
``session.update``. After ``max_reconnect_attempts`` consecutive failures (or a rejected
handshake such as HTTP 401/403) it logs ``connection.failed`` (category ``error``) and closes;
later calls raise :class:`SessionClosedError` with the reason. A local server this process
started that died (a native crash, the out-of-memory killer) is not retried: ``connection.failed``
then carries the crash report (signal, stage or engine, what to try) at once, and the next
``connect()`` of a new session starts a fresh server.

Renewal. Each connection's ``session.created`` carries the server session's id. When a
reconnect lands in a *new* server session (another id, or none: the server forgot the
conversation, e.g. a hosted session hit its time cap), the session replays a compact summary of
the conversation (the recent turns' user and assistant text as conversation items, see
:meth:`ClientProtocol.conversation_summary`) right after the config, ahead of anything queued
during the outage, and logs ``connection.renewed``. Queued events wait for ``session.created``
(up to ``connect_timeout``) so that the summary goes first.

Cost. ``prices=`` (USD per 1M tokens by kind) and ``max_cost_usd=`` go to the protocol's cost
meter (:class:`ClientProtocol`); reaching the cap logs ``cost.error`` (category ``error``),
switches automatic responses off, and makes ``create_response`` / ``send_text`` / ``talk``
raise :class:`~rtvoice_widget.protocol.CostLimitError`.

Bad input from the server (malformed JSON, binary frames, events without a type, events the
protocol cannot handle) becomes a local ``protocol.error`` event; unknown event types are logged
like any other. Nothing tears the session down but the connection itself.

Tools. A call runs off the loop (:meth:`ToolRegistry.run_async`); an exception in the tool, or
anything failing while its output is handed to the protocol, is logged as ``tool.error``
(category ``error``) and never ends the session. What goes back to the model for a failed
call is ``{"error": "Type: message"}``, no traceback unless ``tool_tracebacks=True``; the
session's credentials (the API key, the local server's token) are replaced by ``***`` in tool
outputs and in the log.

A failing event log (it cannot take a row: memory, a bug) never stops the session: the row is
counted (``metrics()["events_unlogged"]``) and reported with :mod:`logging` (at most once a
second), and the failures the session must report (``connection.failed``, ``protocol.error``)
go to :mod:`logging` in full, so a session that gave up still raises
:class:`SessionClosedError` with its reason and ``close()`` still stops it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import math
import os
import threading
import time
from collections import deque
from glob import escape as glob_escape
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from rtvoice_widget.audio import Recorder, pcm16_to_float32, read_wav, to_pcm16
from rtvoice_widget.backends import Endpoint, resolve_endpoint
from rtvoice_widget.config import SessionConfig
from rtvoice_widget.events import CATEGORIES, EventLog
from rtvoice_widget.history import history_events, seeded_summary
from rtvoice_widget.pcm import BYTES_PER_MS as _BYTES_PER_MS, SAMPLE_RATE
from rtvoice_widget.protocol import ClientProtocol, CostCapReached, FlushPlayback, PlayAudio, RunTool, Send
from rtvoice_widget.tools import ToolRegistry
from rtvoice_widget.wire import RealtimeConnection

__all__ = ["MAX_OUTBOX_AUDIO_MS", "MAX_OUTBOX_EVENTS", "Reply", "RealtimeSession", "SessionClosedError"]

# One append carries at most this much audio: hosted servers cap event size (OpenAI: 15 MiB) and
# a huge single frame would stall the socket for everything queued behind it.
_MAX_APPEND_MS = 1000
_MAX_APPEND_BYTES = int(_MAX_APPEND_MS * _BYTES_PER_MS)
#: Events the outbox holds at most (queued while reconnecting, or behind a full socket).
MAX_OUTBOX_EVENTS = 4096
#: Mic audio the outbox holds at most: 5 min (about 34 MB with its base64), what the local
#: server keeps uncommitted too. A live mic queues 50 frames a second, so only a server that
#: stopped reading for minutes, or a caller pushing audio far faster than real time, reaches it.
MAX_OUTBOX_AUDIO_MS = 5 * 60 * 1000
_MAX_OUTBOX_AUDIO_BYTES = int(MAX_OUTBOX_AUDIO_MS * _BYTES_PER_MS)
# One encoder for every event: json.dumps(..., separators=...) builds a new one per call.
_encode_json = json.JSONEncoder(separators=(",", ":")).encode
# An outbox entry: (event, pcm16 or None, captured_ms or None, session ms when it was queued).
_Entry = tuple[dict, bytes | None, float | None, float]
# Handshake statuses that no retry will fix.
_FATAL_STATUSES = frozenset({400, 401, 403, 404})


# websockets logs handshake headers (the Authorization / api-key header included) at DEBUG level.
# Its connections get this logger, pinned at INFO, so turning on DEBUG logging in a notebook
# can never print the key.
_wire_logger = logging.getLogger("rtvoice_widget.session.websocket")
_log = logging.getLogger("rtvoice_widget.session")
_wire_logger.setLevel(logging.INFO)


class SessionClosedError(ConnectionError):
    """The session is not connected (never connected, closed, or gave up reconnecting)."""


@dataclass
class Reply:
    """What :meth:`RealtimeSession.talk` returns: the assistant's answer to one utterance.

    ``audio`` is float32 mono at ``sample_rate`` (24 kHz), the concatenated audio of every
    response in the turn (a tool call's follow-up response included). Times are on the session
    clock (ms): ``input_end_ms`` when the utterance's last audio was sent (before the commit
    or the trailing silence that ends the turn),
    ``first_audio_ms`` when the first reply audio arrived, ``done_ms`` when the final
    ``response.done`` arrived.
    """

    audio: np.ndarray
    transcript: str
    user_transcript: str | None
    response_ids: list[str]
    status: str | None
    input_started_ms: float
    input_end_ms: float
    first_audio_ms: float | None
    done_ms: float
    sample_rate: int = SAMPLE_RATE

    @property
    def latency_ms(self) -> float | None:
        """End of input → first reply audio (``None`` when the reply had no audio)."""
        return None if self.first_audio_ms is None else self.first_audio_ms - self.input_end_ms

    @property
    def duration_ms(self) -> float:
        return len(self.audio) * 1000 / self.sample_rate


class RealtimeSession:
    """A Realtime conversation over a WebSocket, running on its own thread.

    Connection options (see :func:`rtvoice_widget.backends.resolve_endpoint`): ``url`` (any
    ``ws://``/``wss://`` URL), ``backend`` (``"auto"``, ``"openai"``, ``"azure"``, ``"local"``,
    ``"url"``), ``model``, ``api_key``, ``azure_endpoint``, ``azure_deployment``, ``api_version``.
    ``config`` is a :class:`SessionConfig` (default: the project defaults); ``tools`` callables
    to offer the model (also: ``@session.tool``).

    Robustness knobs: ``max_reconnect_attempts`` (consecutive failed attempts before giving up;
    0 disables reconnecting), ``reconnect_delay`` / ``max_reconnect_delay`` (seconds, doubling),
    ``connect_timeout`` (seconds for the handshake plus ``session.created``),
    ``max_frame_bytes`` (largest server frame accepted; a larger one drops the connection and
    triggers a reconnect), ``max_events`` (event log pruning), ``replay_turns`` /
    ``replay_chars`` (how much conversation a renewal replays; 0 turns replays none),
    ``stale_audio_ms`` (mic audio older than this when a lost connection comes back is dropped,
    not sent; ``None`` sends it all; ``VoiceChat`` passes its ``stale_frame_ms``).

    Resume: ``history`` (a saved session, its path, or a list of ``(role, text)``) is sent as
    ``conversation.item.create`` text items right after ``session.created`` of each new server
    session, before anything else, and logged as ``history.seeded``; what each backend keeps of
    it is in :mod:`rtvoice_widget.history`.

    Tools: ``tool_tracebacks=True`` adds the traceback to the error text a failing tool sends
    back to the model (default: ``"Type: message"`` only). Credentials are redacted either way.

    Cost meter: ``prices`` (USD per 1M tokens by kind, no defaults; see
    :func:`rtvoice_widget.protocol.check_prices`) and ``max_cost_usd`` (stop creating responses
    once reached); tokens and cost show in :meth:`metrics` and on each turn
    (``session.protocol.turns``).

    Player: ``live_player=True`` when a real player (the widget's browser) plays the audio and
    answers each flush with ``playback_progress(item_id, ms, flushed=True)``; a barge-in's
    truncation then waits for that exact position, at most ``flush_timeout`` seconds (then the
    estimate goes out, so a dead player never blocks it). Headless (default): the truncation
    goes out at once, at the estimate.

    Use ``with RealtimeSession(...) as s:`` (or ``async with`` from asyncio code), or call
    :meth:`connect` and :meth:`close` yourself.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        backend: str = "auto",
        model: str | None = None,
        api_key: str | None = None,
        config: SessionConfig | None = None,
        tools: Iterable[Callable[..., Any]] = (),
        azure_endpoint: str | None = None,
        azure_deployment: str | None = None,
        api_version: str | None = None,
        max_reconnect_attempts: int = 5,
        reconnect_delay: float = 0.25,
        max_reconnect_delay: float = 8.0,
        connect_timeout: float = 15.0,
        max_frame_bytes: int = 16 * 2**20,
        max_events: int | None = None,
        replay_turns: int = 8,
        replay_chars: int = 4000,
        prices: dict[str, float] | None = None,
        max_cost_usd: float | None = None,
        live_player: bool = False,
        flush_timeout: float = 0.3,
        stale_audio_ms: float | None = 500.0,
        tool_tracebacks: bool = False,
        history: Any = None,
    ) -> None:
        if config is None:
            config = SessionConfig() if model is None else SessionConfig(model=model)
        elif not isinstance(config, SessionConfig):
            raise TypeError(f"config must be a SessionConfig, got {type(config).__name__}")
        elif model is not None and model != config.model:
            config = config.replace(model=model)
        for name, value in (("reconnect_delay", reconnect_delay),
                            ("max_reconnect_delay", max_reconnect_delay),
                            ("connect_timeout", connect_timeout),
                            ("flush_timeout", flush_timeout)):
            _check_seconds(name, value)
        _check_int("max_reconnect_attempts", max_reconnect_attempts, minimum=0)
        _check_int("max_frame_bytes", max_frame_bytes, minimum=2**16)
        _check_int("replay_turns", replay_turns, minimum=0)
        _check_int("replay_chars", replay_chars, minimum=0)
        if stale_audio_ms is not None:
            _check_seconds("stale_audio_ms", stale_audio_ms)  # same rule: a positive number
        if not isinstance(tool_tracebacks, bool):
            raise ValueError(f"tool_tracebacks must be True or False, got {tool_tracebacks!r}")

        self._connect_options = dict(
            url=url, backend=backend, model=model or config.model, api_key=api_key,
            azure_endpoint=azure_endpoint, azure_deployment=azure_deployment, api_version=api_version,
        )
        self.tools = ToolRegistry(tracebacks=tool_tracebacks)
        for fn in config.tools:
            if callable(fn):
                self.tools.add(fn)
        for fn in tools:
            self.tools.add(fn)
        config = self._with_registry_tools(config)
        self.config: SessionConfig = config
        # history.py: the saved conversation to seed each new server session with (checked here).
        self._history = history_events(history)
        self.protocol = ClientProtocol(config, prices=prices, max_cost_usd=max_cost_usd,
                                       live_player=live_player)
        self.flush_timeout = float(flush_timeout)
        self.events = EventLog(max_events=max_events)
        self.recording = Recorder(SAMPLE_RATE)
        self._voice_gaps: dict = {}  # response id -> voice_to_first_audio_ms (see metrics)
        self.endpoint: Endpoint | None = None

        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnect_delay = float(reconnect_delay)
        self.max_reconnect_delay = float(max_reconnect_delay)
        self.connect_timeout = float(connect_timeout)
        self.max_frame_bytes = max_frame_bytes
        self.replay_turns = replay_turns
        self.replay_chars = replay_chars
        self.stale_audio_ms = None if stale_audio_ms is None else float(stale_audio_ms)
        self._secrets: tuple[str, ...] = ()  # the endpoint's credentials, redacted from tool text

        self._t0 = time.perf_counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._supervisor: asyncio.Task | None = None
        self._ws: RealtimeConnection | None = None
        # The connection send_audio may write to from the caller's thread (see _send_now): set
        # once the server greeted it, cleared when it is lost.
        self._direct: RealtimeConnection | None = None
        self._ready: concurrent.futures.Future[None] | None = None
        self._closing = False
        self._closed_reason: str | None = None
        # Outgoing (event, pcm16 or None, captured_ms or None, session ms when queued); owned by
        # the loop thread, bounded by MAX_OUTBOX_EVENTS / MAX_OUTBOX_AUDIO_MS (_queue).
        self._outbox: deque[_Entry] = deque()
        self._outbox_audio = 0  # PCM16 bytes in the outbox
        self._writing: _Entry | None = None  # the head entry being written: never dropped
        # Drops not logged yet: reason -> [appends, audio ms, {event type: count}].
        self._drops: dict[str, list] = {}
        self._drop_report_due = False
        self._unlogged_report_at = 0.0  # time.monotonic() before which log failures stay quiet
        # Audio handed over by send_audio (any thread) and one pending wakeup of the loop for it:
        # frames that pile up while the loop is busy cost one wakeup, not one each.
        # (pcm16, captured_ms or None, session ms of the call)
        self._audio_in: deque[tuple[bytes, float | None, float]] = deque()
        self._audio_wakeup_pending = False
        self._outbox_ready: asyncio.Event | None = None
        # Set by the current connection's session.created; the writer waits for it (renewal).
        self._server_greeted: asyncio.Event | None = None
        self._server_session_id: str | None = None
        self._reconnected = False
        self._tool_tasks: set[asyncio.Task] = set()
        self._audio_hooks: list[Callable[[str, str, bytes], Any]] = []
        self._flush_hooks: list[Callable[[str], Any]] = []
        self._counters = dict(
            frames_sent=0, frames_received=0, bytes_sent=0, bytes_received=0,
            audio_sent_ms=0.0, audio_received_ms=0.0, reconnects=0, protocol_errors=0,
            outbox_dropped=0, outbox_dropped_audio_ms=0.0, events_unlogged=0,
        )

    # -- clock ------------------------------------------------------------------------------

    def now_ms(self) -> float:
        """Milliseconds on the session clock (0 = when the session object was made)."""
        return (time.perf_counter() - self._t0) * 1000.0

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a WebSocket is open (False during a reconnect and after close)."""
        return self._ws is not None and not self._closing

    def connect(self, timeout: float | None = None) -> "RealtimeSession":
        """Open the connection; return once the server's ``session.created`` arrived.

        Raises :class:`ValueError` for bad connection options (e.g. a missing API key),
        :class:`ConnectionError` when the server cannot be reached or rejects the handshake, and
        :class:`TimeoutError` when ``session.created`` does not come within ``timeout`` seconds
        (default ``connect_timeout``). On failure nothing keeps running.
        """
        if self._thread is not None:
            raise RuntimeError("connect() was already called on this session; make a new one")
        timeout = self.connect_timeout if timeout is None else timeout
        try:
            self.endpoint = resolve_endpoint(**self._connect_options)
        except Exception as exc:  # a missing key, a local server that crashed while starting
            self._local("connection.failed", text=str(exc))
            raise
        # Short values ("local", a placeholder key) are no secret, and replacing them would
        # mangle ordinary words in tool outputs.
        self._secrets = tuple(sorted((s for s in self.endpoint.secrets() if len(s) >= 8), key=len, reverse=True))
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="rtvoice-session", daemon=True)
        self._thread.start()
        self._ready = concurrent.futures.Future()

        def start() -> None:
            self._outbox_ready = asyncio.Event()
            self._server_greeted = asyncio.Event()
            self._supervisor = loop.create_task(self._supervise())

        loop.call_soon_threadsafe(start)
        try:
            self._ready.result(timeout)
        except concurrent.futures.TimeoutError:
            self.close()
            raise TimeoutError(
                f"no session.created from {self.endpoint.label} within {timeout:g} s"
            ) from None
        except BaseException:
            self.close()
            raise
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``), close the socket, stop the thread.

        Idempotent; safe from any thread but the session's own (callbacks must not close).
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or self._closing and not thread.is_alive():
            return
        if threading.current_thread() is thread:
            raise RuntimeError("close() cannot be called from a session callback")
        if not loop.is_closed() and thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), loop)
            try:
                future.result(timeout + 2)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            except Exception as exc:  # a bug of ours: the thread must stop all the same
                _log.error("closing the session failed: %s: %s", type(exc).__name__, exc)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout + 2)
        if not thread.is_alive() and not loop.is_closed():
            loop.close()
        self._closing = True
        self._closed_reason = self._closed_reason or "closed by the user"

    def __enter__(self) -> "RealtimeSession":
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> "RealtimeSession":
        await asyncio.to_thread(self.connect)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        label = self.endpoint.label if self.endpoint else "not connected"
        state = "connected" if self.connected else ("closed" if self._closing else "idle")
        return f"<RealtimeSession {label} {state} events={len(self.events)}>"

    # -- sending (any thread) ---------------------------------------------------------------

    def send_audio(self, audio: Any, sample_rate: int = SAMPLE_RATE, *,
                   captured_ms: float | None = None) -> float:
        """Append user audio to the server's input buffer; return its duration in ms.

        ``captured_ms``: when the audio's first sample was captured, on the session clock
        (:meth:`now_ms`). The recording places the audio there and the log row of its append
        carries it as ``captured_ms``; without it, both use the time the append was sent.

        ``audio`` is mono int16 bytes or a numpy int16/float32/float64 array (mono or
        ``(n, 2)`` stereo) at ``sample_rate``, resampled to 24 kHz with soxr
        (:func:`rtvoice_widget.audio.to_pcm16`). Wrong dtypes, NaN/inf, empty or wrongly shaped
        input raise ``TypeError``/``ValueError`` here and send nothing, and so does a call of more
        than :data:`MAX_OUTBOX_AUDIO_MS` (5 min: it could never fit the queue; stream it in
        parts, as :meth:`talk` does). Does not wait for the
        loop; the audio goes out in order with everything else, one append per call (a call
        over 1 s is split). Calls that queue up while the loop is busy cost it one wakeup.
        """
        if self._closing or self._loop is None:
            self._require_open()  # raises with the reason
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
        if len(pcm16) > _MAX_OUTBOX_AUDIO_BYTES:
            raise ValueError(f"send_audio takes at most {MAX_OUTBOX_AUDIO_MS // 1000} s per call, got "
                             f"{len(pcm16) / _BYTES_PER_MS / 1000:.1f} s: send it in parts (talk() streams it)")
        if captured_ms is not None:
            captured_ms = float(captured_ms)
        if self._direct is not None and self._send_now(pcm16, captured_ms):
            return len(pcm16) / _BYTES_PER_MS
        # deque.append is atomic; the flag may be stale, which costs at most a spare wakeup
        # (it is cleared on the loop *before* the deque is drained, so no frame is stranded).
        self._audio_in.append((pcm16, captured_ms, self.now_ms()))
        if not self._audio_wakeup_pending:
            self._audio_wakeup_pending = True
            self._call_soon(self._take_audio)
        return len(pcm16) / _BYTES_PER_MS

    def _send_now(self, pcm16: bytes, captured_ms: float | None) -> bool:
        """Write one append from this (the caller's) thread, without waking the loop; False
        when it must take the queue: the wire is busy, something is queued ahead of it, the
        connection cannot be written from here (TLS, closing, a full socket), or it is too big.

        Half the session's CPU per frame went into waking the loop (the self-pipe write, an
        epoll return, a task); the frame also reaches the server sooner.
        """
        ws = self._direct
        if ws is None or len(pcm16) > _MAX_APPEND_BYTES or not ws.wire_lock.acquire(blocking=False):
            return False
        try:
            if self._audio_in or self._outbox or self._closing or not ws.can_write_now():
                return False
            event = self.protocol.append_audio(pcm16)
            text = _event_text(event, pcm16)
            if not ws.write_now(text):  # closed just now: the queue keeps it for the next connection
                self._direct = None
                self._call_soon(self._enqueue_append, event, pcm16, captured_ms, self.now_ms())
                return True
            self._sent(event, pcm16, len(text), captured_ms)
            return True
        finally:
            ws.wire_lock.release()

    def commit(self) -> None:
        """Commit the input audio buffer (push-to-talk / manual turn detection)."""
        self._command(lambda p: [p.commit()])

    def clear_audio(self) -> None:
        """Drop the uncommitted input audio on the server."""
        self._command(lambda p: [p.clear()])

    def create_response(self, **overrides: Any) -> None:
        """Ask the model to respond; ``overrides`` go in the ``response`` object."""
        self._command(lambda p: [p.create_response(**overrides)])

    def cancel(self) -> None:
        """Cancel the active response (``response.cancel``)."""
        self._command(lambda p: [p.cancel_response()])

    def send_text(self, text: str, respond: bool = True) -> None:
        """Add a user text message; ask for a response unless ``respond=False``.

        Over the cost cap (``max_cost_usd``) with ``respond=True`` it raises
        :class:`~rtvoice_widget.protocol.CostLimitError` and sends nothing.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty string, got {text!r:.80}")
        self._command(lambda p: [p.user_text(text), *([p.create_response()] if respond else [])])

    def update(self, **changes: Any) -> SessionConfig:
        """Change the session config (``SessionConfig`` fields) and send ``session.update``.

        Invalid fields or values raise ``ValueError`` here, before anything is sent. Returns the
        new config. The model cannot change on a live session.
        """
        if "model" in changes and changes["model"] != self.config.model:
            raise ValueError("model: cannot change on a live session; make a new RealtimeSession")
        new_config = self._with_registry_tools(self.config.replace(**changes))

        def apply(protocol: ClientProtocol) -> list[dict]:
            self.config = new_config
            return [protocol.session_update(new_config)]

        if self._loop is None:  # not connected yet: the config goes out on connect
            self.config = new_config
            self.protocol.config = new_config
            return new_config
        self._command(apply)
        return new_config

    def tool(self, fn: Callable[..., Any] | None = None, *, name: str | None = None,
             description: str | None = None) -> Any:
        """Register a Python callable as a function tool (decorator, with or without arguments).

        The schema comes from type hints and the docstring (:mod:`rtvoice_widget.tools`); on a
        live session the new tool list is sent with ``session.update``.
        """
        if fn is None:
            return lambda f: self.tool(f, name=name, description=description)
        self.tools.add(fn, name=name, description=description)
        self.update()
        return fn

    def playback_progress(self, item_id: str, played_ms: float, *, flushed: bool = False) -> None:
        """Report how much of ``item_id`` the player really played (for barge-in truncation).

        ``flushed=True``: the player's final position after a flush; with ``live_player`` it
        sends the truncation that waited for it.
        """
        if not isinstance(item_id, str) or not item_id:
            raise ValueError(f"item_id must be a non-empty string, got {item_id!r}")
        if isinstance(played_ms, bool) or not isinstance(played_ms, (int, float, np.number)) \
                or not math.isfinite(played_ms) or played_ms < 0:
            raise ValueError(f"played_ms must be a finite number >= 0, got {played_ms!r}")
        self._require_open()
        self._call_soon(self._report_progress, item_id, float(played_ms), bool(flushed))

    def interrupt(self) -> None:
        """Stop the assistant now: flush its playback, truncate what was heard at the played
        position and cancel the active response; parts that do not apply are skipped.

        The widget's Interrupt button calls this. Returns once the events are queued.
        """
        self._require_open()
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                now = self.now_ms()
                for action in self.protocol.interrupt(now):
                    self._perform(action, now)
            except BaseException as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

        if threading.current_thread() is self._thread:
            run()
        else:
            self._call_soon(run)
        done.result(timeout=30)

    # -- callbacks --------------------------------------------------------------------------

    def on(self, name: str, fn: Callable[..., Any]) -> Callable[[], None]:
        """Call ``fn`` on matching events; return a function that unregisters it.

        ``name`` is an event type (``"response.done"``), a category (``"error"``, ...) or
        ``"*"``: ``fn(row)`` gets the log row dict. Stream hooks: ``"output_audio"`` →
        ``fn(item_id, response_id, pcm16)`` for each assistant audio chunk, ``"flush"`` →
        ``fn(item_id)`` when playback must stop (barge-in). Callbacks run on the session thread:
        keep them short. An exception in one is logged as an ``error``-category local event
        (the event log's subscriber error, or ``callback.error`` for stream hooks) and does not
        affect the session.
        """
        if not callable(fn):
            raise TypeError(f"callback must be callable, got {fn!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be an event type, a category, '*', 'output_audio' or 'flush'; got {name!r}")
        if name in ("output_audio", "flush"):
            hooks: list = self._audio_hooks if name == "output_audio" else self._flush_hooks
            hooks.append(fn)
            return lambda: hooks.remove(fn) if fn in hooks else None
        if name == "*":
            return self.events.subscribe(fn)

        def matching(row: dict) -> None:
            if row["type"] == name or row["category"] == name:
                fn(row)

        matching.__qualname__ = getattr(fn, "__qualname__", repr(fn))
        return self.events.subscribe(matching)

    def wait_for(self, name: str, *, after: int = -1, timeout: float = 30.0) -> dict:
        """Block until an event of type or category ``name`` (or ``"*"``) with ``seq > after``
        is logged; return the first such row (a dict with the log's columns).

        Take ``after=session.last_seq`` *before* triggering what you wait for. Raises
        :class:`TimeoutError`. Looks at the log once, then listens only while waiting, so the
        session pays nothing for it otherwise.
        """
        arrived: list[dict] = []
        signal = threading.Event()

        def watch(row: dict) -> None:
            if row["seq"] > after and (name == "*" or row["type"] == name or row["category"] == name):
                arrived.append(row)
                signal.set()

        unsubscribe = self.events.subscribe(watch)
        try:
            if name == "*":
                logged = self.events.to_pandas()
            elif name in CATEGORIES:
                logged = self.events.filter(category=name)
            else:
                logged = self.events.filter(type=glob_escape(name))
            logged = logged[logged["seq"] > after]
            if len(logged):
                row = logged.iloc[0].to_dict()
                return {key: (str(value) if key in ("source", "type", "category") else value)
                        for key, value in row.items()}
            if not signal.wait(timeout):
                raise TimeoutError(f"no {name!r} event after seq {after} within {timeout:g} s")
            return arrived[0]
        finally:
            unsubscribe()

    @property
    def last_seq(self) -> int:
        """The seq of the newest logged event (-1 when none)."""
        return self.events.pruned + len(self.events) - 1

    # -- headless conversation --------------------------------------------------------------

    def talk(
        self,
        audio: Any,
        sample_rate: int = SAMPLE_RATE,
        *,
        realtime: bool = True,
        timeout: float = 60.0,
        chunk_ms: int = 20,
    ) -> Reply:
        """Say ``audio`` (a WAV path or an array/bytes as for :meth:`send_audio`) and return the reply.

        Streams the utterance in ``chunk_ms`` frames, paced in real time unless
        ``realtime=False``. With server-side turn detection it then streams silence (the
        config's ``silence_duration_ms`` plus 300 ms) so the server hears the end of the turn;
        with manual turn detection it commits and asks for a response. Waits for the final
        ``response.done`` of the turn (tool calls and their follow-up responses included).
        Raises ``TimeoutError`` after ``timeout`` seconds, ``SessionClosedError`` if the
        session closes meanwhile.
        """
        if isinstance(audio, (str, os.PathLike)):
            audio, sample_rate = read_wav(audio)
        pcm16 = to_pcm16(audio, sample_rate)
        if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, int) or not 10 <= chunk_ms <= 1000:
            raise ValueError(f"chunk_ms must be an int between 10 and 1000, got {chunk_ms!r}")
        self._require_open()
        collector = _ReplyCollector()
        unsubscribe = self.events.subscribe(collector.on_row)
        self._audio_hooks.append(collector.on_audio)
        try:
            input_started_ms = self.now_ms()
            self._stream(pcm16, chunk_ms, realtime)
            # Before the commit or the trailing silence: a fast server answers while they are
            # still going out, and the latency is the listener's, from the end of the words.
            input_end_ms = self.now_ms()
            turn_detection = self.config.turn_detection
            if turn_detection.type is None:
                self._command(lambda p: [p.commit(), p.create_response()])
            else:
                silence_ms = turn_detection.silence_duration_ms + 300
                self._stream(bytes(int(silence_ms * _BYTES_PER_MS) // 2 * 2), chunk_ms, realtime)
            deadline = time.monotonic() + timeout
            while not collector.finished.wait(0.05):
                if self._closing or (self._thread is not None and not self._thread.is_alive()):
                    raise SessionClosedError(f"session closed while waiting for a reply: {self._closed_reason}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no complete reply within {timeout:g} s (got {collector.summary()})")
        finally:
            unsubscribe()
            if collector.on_audio in self._audio_hooks:
                self._audio_hooks.remove(collector.on_audio)
        return collector.reply(input_started_ms, input_end_ms)

    def _stream(self, pcm16: bytes, chunk_ms: int, realtime: bool) -> None:
        step = int(chunk_ms * _BYTES_PER_MS)
        started = time.monotonic()
        for index, start in enumerate(range(0, len(pcm16), step)):
            if realtime:
                # Pace against the start time, not the previous frame, so sleeps do not drift.
                delay = started + index * chunk_ms / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.send_audio(pcm16[start : start + step])

    # -- introspection ----------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """Counters and timing of this session so far (a plain dict, cheap to call).

        The headline latency, ``median_voice_to_first_audio_ms`` and ``p90_voice_to_first_audio_ms``
        (end of the user's recorded voice → first reply audio, see :meth:`voice_gaps`); the
        protocol's summary (``turns``, ``interrupted_turns``, median latencies in ms, token
        usage ``input_tokens`` / ``output_tokens`` / ``total_tokens`` and ``tokens_<kind>``,
        ``cost_usd`` / ``max_cost_usd`` / ``cost_capped``, ``errors``, ``tool_calls``) plus the
        connection's: ``endpoint`` (redacted label),
        ``connected``, ``uptime_s``, ``events`` / ``events_pruned`` (the log), ``outbox`` (events
        queued, e.g. during a reconnect), ``tool_calls_running``, ``frames_sent`` /
        ``frames_received``, ``bytes_sent`` / ``bytes_received`` (JSON text on the wire),
        ``audio_sent_ms`` / ``audio_received_ms``, ``reconnects``, ``protocol_errors``,
        ``outbox_dropped`` / ``outbox_dropped_audio_ms`` (queued events dropped: stale audio at a
        reconnect, overflow), ``events_unlogged`` (rows the event log refused).
        """
        return {
            **self.protocol.metrics(),  # turns, latencies, tokens (protocol state)
            **self._voice_gap_stats(),  # median_/p90_voice_to_first_audio_ms
            "endpoint": self.endpoint.label if self.endpoint else None,
            "connected": self.connected,
            "uptime_s": self.now_ms() / 1000,
            "events": len(self.events),
            "events_pruned": self.events.pruned,
            "outbox": len(self._outbox),
            "tool_calls_running": len(self._tool_tasks),
            **self._counters,
        }

    def voice_gaps(self) -> list[float | None]:
        """Per reply, in turn order: the gap from the end of the user's recorded voice to its
        first audio (the turns table's ``voice_to_first_audio_ms``), None where there is none
        (no recorded voice, or no audio yet). Each turn's value is computed once, from the 30 s
        of recording before its first audio, and cached by response id, so this stays cheap
        to call every second (the widget's stats do)."""
        from rtvoice_widget.turns import voice_end_ms

        cache = self._voice_gaps
        gaps: list[float | None] = []
        for turn in list(self.protocol.turns):
            key = turn.response_id or turn.index
            if key not in cache:
                if turn.first_audio_ms is None or turn.user_done_ms is None:
                    continue  # not final yet: asked again next time
                start = max(0.0, (turn.first_audio_ms - 30_000.0) // 20 * 20)  # frames stay on the session grid
                window = self.recording.user_pcm16(start, turn.first_audio_ms)
                end = voice_end_ms(window, self.recording.sample_rate, turn.first_audio_ms - start)
                cache[key] = turn.first_audio_ms - (start + end) if end == end else None
            gaps.append(cache[key])
        return gaps

    def _voice_gap_stats(self) -> dict[str, float | None]:
        gaps = [g for g in self.voice_gaps() if g is not None]
        if not gaps:
            return {"median_voice_to_first_audio_ms": None, "p90_voice_to_first_audio_ms": None}
        p50, p90 = np.percentile(gaps, [50, 90])
        return {"median_voice_to_first_audio_ms": float(p50), "p90_voice_to_first_audio_ms": float(p90)}

    def transcript(self):
        """The turns table (:func:`rtvoice_widget.turns.turns_table`) of the conversation so far,
        with the ``voice_*`` columns: the user's recorded track gives the end of voice."""
        user = self.recording.user_pcm16(0.0, self.now_ms())
        return self.events.transcript(user, self.recording.sample_rate)

    # -- loop side: connection lifetime -------------------------------------------------------

    async def _supervise(self) -> None:
        """Connect, serve, and reconnect until closed or out of attempts."""
        assert self._ready is not None
        try:
            await self._connect_and_serve()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: say so instead of dying silently
            reason = f"internal error: {type(exc).__name__}: {exc}"
            self._give_up(reason)
            if not self._ready.done():
                self._ready.set_exception(ConnectionError(reason))

    async def _connect_and_serve(self) -> None:
        assert self.endpoint is not None and self._ready is not None
        first = True
        failures = 0
        while not self._closing:
            if not first:
                failures += 1
                if failures > self.max_reconnect_attempts:
                    self._give_up(f"gave up after {self.max_reconnect_attempts} reconnect attempts")
                    return
                delay = min(self.max_reconnect_delay, self.reconnect_delay * 2 ** (failures - 1))
                self._local("connection.reconnecting", attempt=failures, delay_s=delay,
                            max_attempts=self.max_reconnect_attempts)
                await asyncio.sleep(delay)
                if self._closing:
                    return
            try:
                ws = await ws_connect(
                    self.endpoint.url,
                    additional_headers=dict(self.endpoint.headers),
                    max_size=self.max_frame_bytes,
                    open_timeout=self.connect_timeout,
                    # Base64 PCM barely compresses; deflate would only cost CPU on both ends.
                    compression=None,
                    logger=_wire_logger,
                    create_connection=RealtimeConnection,
                )
            except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
                reason = _describe_connect_error(exc)
                if first:
                    self._local("connection.failed", text=reason, endpoint=self.endpoint.label)
                    self._closed_reason = reason
                    self._ready.set_exception(ConnectionError(f"cannot connect to {self.endpoint.label}: {reason}"))
                    return
                if isinstance(exc, InvalidStatus) and exc.response.status_code in _FATAL_STATUSES:
                    self._give_up(f"reconnect rejected: {reason}")
                    return
                self._local("connection.error", text=reason, attempt=failures)
                continue
            if not first:
                self._counters["reconnects"] += 1
                self._local("connection.restored", attempt=failures, endpoint=self.endpoint.label)
                failures = 0
            await self._serve(ws, first)
            first = False
            if not self._ready.done():
                # Closed before session.created: connect() reports it instead of reconnecting.
                self._closed_reason = f"connection closed before session.created ({_close_info(ws)})"
                self._ready.set_exception(ConnectionError(self._closed_reason))
                return

    async def _serve(self, ws: RealtimeConnection, first: bool) -> None:
        assert self.endpoint is not None and self._outbox_ready is not None
        self._local("connection.opened", endpoint=self.endpoint.label, reconnect=not first)
        self._ws = ws
        self._reconnected = not first
        assert self._server_greeted is not None
        self._server_greeted.clear()
        writer: asyncio.Task | None = None
        try:
            # The config goes first on every connection, ahead of anything queued meanwhile.
            await self._write(ws, self.protocol.session_update(), None)
            writer = asyncio.get_running_loop().create_task(self._drain_outbox(ws, reconnected=not first))
            # Server events are handled where the transport delivers them (no reader task).
            ws.on_message = self._on_message
            ws.deliver()
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            self._ws = self._direct = None
            if writer is not None:
                writer.cancel()
        if not self._closing:
            info = _close_info(ws)
            sent = ws.protocol.close_sent
            if sent is not None and sent.code == 1009:  # we closed it: "message too big"
                self._local("protocol.error", text=f"server frame larger than max_frame_bytes={self.max_frame_bytes}")
            self._local("connection.lost", text=info, code=ws.close_code,
                        reason=ws.close_reason or None, queued=len(self._outbox))
            crash = await self._server_crash(wait_s=2.0)
            if crash is not None:
                self._give_up(crash)

    async def _server_crash(self, wait_s: float) -> str | None:
        """Why the server died, when it is one this process runs and it did (see
        ``Endpoint.crash_report``): reconnecting to it would only fail, so the caller gives up
        with this message, and the next ``connect()`` starts a fresh server."""
        report = self.endpoint.crash_report if self.endpoint is not None else None
        if report is None:
            return None
        return await asyncio.get_running_loop().run_in_executor(None, report, wait_s)

    async def _drain_outbox(self, ws: RealtimeConnection, reconnected: bool) -> None:
        assert self._outbox_ready is not None and self._server_greeted is not None
        try:
            # A renewal puts the conversation summary ahead of the queue at session.created.
            await asyncio.wait_for(self._server_greeted.wait(), self.connect_timeout)
        except asyncio.TimeoutError:
            pass  # a server that never greets still gets what is queued
        if reconnected:
            # Nothing was written to this connection yet but the config: decide now, as late
            # as possible, what is too old to go out.
            self._drop_stale_audio()
            self._report_drops()
        while True:
            while not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
            entry = self._writing = self._outbox[0]
            try:
                await self._write(ws, entry[0], entry[1], entry[2])
            except ConnectionClosed:
                return  # the event stays queued for the next connection; _serve reports the loss
            finally:
                self._writing = None
            self._unqueue(entry)  # the head, unless a renewal's summary was put in front meanwhile

    async def _write(self, ws: RealtimeConnection, event: dict, pcm16: bytes | None,
                     captured_ms: float | None = None) -> None:
        text = _event_text(event, pcm16)
        await ws.send(text)  # framed and written under wire_lock (RealtimeConnection.send_context)
        # Between the send and the log no direct write can come in: the event is still at the
        # head of the outbox, which sends send_audio's direct path to the queue (_send_now).
        with ws.wire_lock:
            self._sent(event, pcm16, len(text), captured_ms)

    def _sent(self, event: dict, pcm16: bytes | None, size: int, captured_ms: float | None) -> None:
        """Count, log and record an event just written (holding the connection's wire_lock, so
        the log and the recording follow the wire order)."""
        t_ms = self.now_ms()
        self._counters["frames_sent"] += 1
        self._counters["bytes_sent"] += size
        try:
            if captured_ms is None:
                self.events.append("client", event, t_ms)
            else:
                # Logged as sent (the log stays in send order), with when it was captured.
                self.events.append("client", {**event, "captured_ms": captured_ms}, t_ms)
        except Exception as exc:  # it went out all the same: count and record it
            self._unlogged(event.get("type"), exc)
        if pcm16 is not None:
            self._counters["audio_sent_ms"] += len(pcm16) / _BYTES_PER_MS
            self.recording.add_user(pcm16, t_ms if captured_ms is None else max(0.0, min(captured_ms, t_ms)))
        elif event.get("type") == "conversation.item.truncate":
            self.recording.truncate(event["item_id"], event["audio_end_ms"])

    async def _shutdown(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ws = self._ws
        if ws is not None and not self._closing:
            # Let queued events (a last commit, a tool output) reach the server.
            while self._outbox and self._ws is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        self._closing = True
        self._direct = None
        for task in list(self._tool_tasks):
            task.cancel()
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(1000, "client closed"), max(0.1, deadline - time.monotonic()))
            except (asyncio.TimeoutError, WebSocketException, OSError):
                pass
        if self._supervisor is not None and not self._supervisor.done():
            self._supervisor.cancel()
            try:
                await self._supervisor
            except (asyncio.CancelledError, Exception):
                pass
        self._report_drops()
        if self._outbox:
            self._local("connection.closed", text=f"closed with {len(self._outbox)} unsent events",
                        unsent=len(self._outbox))
        else:
            self._local("connection.closed")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(SessionClosedError("closed before session.created"))

    def _give_up(self, reason: str) -> None:
        self._closed_reason = reason
        self._closing = True  # first: the session ends even if logging it fails
        self._last_resort("connection.failed", reason, unsent=len(self._outbox))

    # -- loop side: receiving ---------------------------------------------------------------

    def _on_message(self, frame: str | bytes) -> None:
        try:
            self._receive(frame)
        except Exception as exc:  # a bug of ours must not end the connection
            self._protocol_error(f"internal error handling a server frame: {type(exc).__name__}: {exc}")

    def _receive(self, frame: str | bytes) -> None:
        t_ms = self.now_ms()
        self._counters["frames_received"] += 1
        self._counters["bytes_received"] += len(frame)
        if isinstance(frame, bytes):
            self._protocol_error(f"unexpected binary frame of {len(frame)} bytes (Realtime events are JSON text)")
            return
        try:
            event = json.loads(frame)
        except ValueError as exc:
            self._protocol_error(f"malformed JSON from server: {exc}", frame=frame[:200])
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._protocol_error("server event is not a JSON object with a string 'type'", frame=frame[:200])
            return
        try:
            self.events.append("server", event, t_ms)
        except Exception as exc:  # the protocol must see the event whether or not it is logged
            self._unlogged(event["type"], exc)
        type_ = event["type"]
        if type_ == "session.created":
            self._on_session_created(event)
        try:
            actions = self.protocol.receive(event, t_ms)
        except Exception as exc:  # the protocol must not take the connection down with it
            self._protocol_error(f"could not handle {type_}: {type(exc).__name__}: {exc}")
            return
        for action in actions:
            self._perform(action, t_ms)

    def _on_session_created(self, event: dict) -> None:
        session = event.get("session")
        session_id = session.get("id") if isinstance(session, dict) else None
        previous, self._server_session_id = self._server_session_id, session_id
        if self._reconnected and (session_id is None or session_id != previous):
            summary = self.protocol.conversation_summary(self.replay_turns, self.replay_chars)
            # Ahead of what was queued during the outage: it continues this conversation.
            for replayed in reversed(summary):
                self._queue((replayed, None, None, 0.0), first=True)
            self._local("connection.renewed",
                        text=f"the server started a new session ({session_id or 'no id'}, was "
                             f"{previous or 'no id'}): config re-sent, {len(summary)} conversation "
                             f"items replayed",
                        session_id=session_id, previous_session_id=previous, replayed_items=len(summary))
        # history.py: a new server session gets the saved conversation first (ahead of a summary).
        if self._history and (not self._reconnected or session_id is None or session_id != previous):
            for seeded in reversed(self._history):
                self._queue((seeded, None, None, 0.0), first=True)
            self._local("history.seeded", **seeded_summary(self._history))
        self._reconnected = False
        # From now on send_audio may write to this connection itself (once the queue is empty).
        self._direct = self._ws
        if self._server_greeted is not None:
            self._server_greeted.set()
        if self._outbox and self._outbox_ready is not None:
            self._outbox_ready.set()
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _perform(self, action: Any, t_ms: float) -> None:
        if isinstance(action, PlayAudio):
            self._counters["audio_received_ms"] += len(action.pcm16) / _BYTES_PER_MS
            self.recording.add_assistant(action.item_id, action.pcm16, t_ms)
            for hook in list(self._audio_hooks):
                self._call_hook("output_audio", hook, action.item_id, action.response_id, action.pcm16)
        elif isinstance(action, Send):
            self._enqueue(action.event)
        elif isinstance(action, FlushPlayback):
            self._local("playback.flushed", item_id=action.item_id)
            for hook in list(self._flush_hooks):
                self._call_hook("flush", hook, action.item_id)
            if action.item_id in self.protocol.truncations_due:
                # The player's final position normally comes first; this is for one that never
                # answers (no browser open, a dead page).
                asyncio.get_running_loop().call_later(self.flush_timeout, self._truncate_overdue, action.item_id)
        elif isinstance(action, RunTool):
            self._start_tool(action)
        elif isinstance(action, CostCapReached):
            self._local("cost.error", text=f"cost cap reached: ${action.cost_usd:.4f} >= max_cost_usd="
                        f"${action.max_cost_usd:g}; no more responses will be created",
                        cost_usd=action.cost_usd, max_cost_usd=action.max_cost_usd)
        # TurnDone needs nothing here: the turn lives in protocol.turns and the log has its events.

    def _call_hook(self, name: str, hook: Callable[..., Any], *args: Any) -> None:
        try:
            hook(*args)
        except Exception as exc:
            self._local("callback.error", text=f"{name} hook {getattr(hook, '__qualname__', hook)!s} "
                        f"raised {type(exc).__name__}: {exc}")

    def _protocol_error(self, message: str, **fields: Any) -> None:
        self._counters["protocol_errors"] += 1
        self._last_resort("protocol.error", message, **fields)

    def _last_resort(self, type: str, text: str, **fields: Any) -> None:
        """Log a failure in the event log, or, should the log itself fail, with :mod:`logging`
        (never rate-limited): the handlers of last resort must never die of the thing they
        report, nor depend on it."""
        try:
            self.events.local(type, self.now_ms(), text=text, **fields)
        except Exception as exc:
            self._counters["events_unlogged"] += 1
            _log.error("%s: %s (the event log refused it: %s: %s)", type, text, exc.__class__.__name__, exc)

    # -- loop side: tools -------------------------------------------------------------------

    def _start_tool(self, call: RunTool) -> None:
        self._local("tool.call", call_id=call.call_id, name=call.name, arguments=call.arguments)
        task = asyncio.get_running_loop().create_task(self._run_tool(call))
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    async def _run_tool(self, call: RunTool) -> None:
        # The task's exception would only reach asyncio's "never retrieved" warning: whatever
        # fails here is logged, and the session goes on.
        try:
            # Sync tools run in the loop's executor, async ones on this loop (ToolRegistry.run_async).
            result = await self.tools.run_async(call.name, call.arguments)
            output = self._redact(result.output)
            self._local("tool.result", text=output[:2000], call_id=call.call_id, name=call.name, ok=result.ok)
            if not result.ok:
                self._local("tool.error", text=self._redact(result.error or ""), call_id=call.call_id, name=call.name)
            # tool_output adds response.create once the calling response is over and all of its
            # calls are answered; otherwise the protocol sends it at that response.done.
            events = self.protocol.tool_output(call.call_id, output)
        except Exception as exc:
            self._last_resort("tool.error", self._redact(
                f"could not answer tool call {call.call_id!r} ({call.name!r}): {type(exc).__name__}: {exc}"),
                call_id=call.call_id, name=call.name)
            return
        for event in events:
            self._enqueue(event)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    # -- loop side: helpers -----------------------------------------------------------------

    def _take_audio(self) -> None:
        self._audio_wakeup_pending = False
        pending = self._audio_in
        if self._closing:
            pending.clear()
            return
        # One append per send_audio call (callers and tests see their frames 1:1 on the wire),
        # however many piled up for this wakeup; only a call over 1 s is split. Moved under the
        # wire lock: send_audio's direct path must not see both queues empty meanwhile.
        direct = self._direct  # read once: _send_now may clear it meanwhile, on another thread
        with direct.wire_lock if direct is not None else contextlib.nullcontext():
            self._queue_audio()
        assert self._outbox_ready is not None
        self._outbox_ready.set()

    def _queue_audio(self) -> None:
        pending = self._audio_in
        while pending:
            pcm16, captured_ms, queued_ms = pending.popleft()
            for start in range(0, len(pcm16), _MAX_APPEND_BYTES):
                chunk = pcm16 if len(pcm16) <= _MAX_APPEND_BYTES else pcm16[start : start + _MAX_APPEND_BYTES]
                event = self.protocol.append_audio(chunk)
                self._queue((event, chunk, None if captured_ms is None else captured_ms + start / _BYTES_PER_MS,
                             queued_ms))

    def _enqueue_append(self, event: dict, pcm16: bytes, captured_ms: float | None, queued_ms: float) -> None:
        # It was meant to go before anything queued since.
        self._queue((event, pcm16, captured_ms, queued_ms), first=True)
        assert self._outbox_ready is not None
        self._outbox_ready.set()

    def _enqueue(self, event: dict) -> None:
        self._queue((event, None, None, self.now_ms()))
        assert self._outbox_ready is not None
        self._outbox_ready.set()

    def _queue(self, entry: _Entry, first: bool = False) -> None:
        """Add an entry to the outbox, then keep it within its caps: the oldest audio goes
        first (it is the first to turn stale), then the oldest event."""
        if entry[1] is not None:
            self._outbox_audio += len(entry[1])
        if first:
            self._outbox.appendleft(entry)
        else:
            self._outbox.append(entry)
        if len(self._outbox) > MAX_OUTBOX_EVENTS or self._outbox_audio > _MAX_OUTBOX_AUDIO_BYTES:
            self._make_room()

    def _make_room(self) -> None:
        outbox = self._outbox
        for entry in list(outbox):
            if len(outbox) <= MAX_OUTBOX_EVENTS and self._outbox_audio <= _MAX_OUTBOX_AUDIO_BYTES:
                return
            if entry[1] is not None and entry is not self._writing:
                self._drop(entry, "overflow")
        for entry in list(outbox):
            if len(outbox) <= MAX_OUTBOX_EVENTS:
                return
            if entry is not self._writing:
                self._drop(entry, "overflow")

    def _drop_stale_audio(self) -> None:
        """Drop queued mic audio whose last sample is older than ``stale_audio_ms``."""
        if self.stale_audio_ms is None or not self._outbox_audio:
            return
        oldest_fresh = self.now_ms() - self.stale_audio_ms
        for entry in list(self._outbox):
            event, pcm16, captured_ms, queued_ms = entry
            if pcm16 is None or entry is self._writing:
                continue
            end_ms = queued_ms if captured_ms is None else captured_ms + len(pcm16) / _BYTES_PER_MS
            if end_ms < oldest_fresh:
                self._drop(entry, "stale")

    def _drop(self, entry: _Entry, reason: str) -> None:
        self._unqueue(entry)
        event, pcm16 = entry[0], entry[1]
        counts = self._drops.setdefault(reason, [0, 0.0, {}])
        self._counters["outbox_dropped"] += 1
        if pcm16 is not None:
            counts[0] += 1
            counts[1] += len(pcm16) / _BYTES_PER_MS
            self._counters["outbox_dropped_audio_ms"] += len(pcm16) / _BYTES_PER_MS
        else:
            type_ = str(event.get("type"))
            counts[2][type_] = counts[2].get(type_, 0) + 1
        if reason == "overflow" and not self._drop_report_due:
            # One row a second at most while it overflows, not one per dropped frame.
            self._drop_report_due = True
            asyncio.get_running_loop().call_later(1.0, self._report_drops)

    def _unqueue(self, entry: _Entry) -> None:
        outbox = self._outbox
        if outbox and outbox[0] is entry:
            outbox.popleft()
        else:
            # By identity: two appends of the same silence are equal, and only this one goes.
            for index, queued in enumerate(outbox):
                if queued is entry:
                    del outbox[index]
                    break
            else:
                return  # already gone
        if entry[1] is not None:
            self._outbox_audio -= len(entry[1])

    def _report_drops(self) -> None:
        self._drop_report_due = False
        drops, self._drops = self._drops, {}
        for reason, (appends, audio_ms, events) in drops.items():
            why = (f"older than stale_audio_ms={self.stale_audio_ms:g} when the connection came back"
                   if reason == "stale" else
                   f"over the outbox cap ({MAX_OUTBOX_EVENTS} events, {MAX_OUTBOX_AUDIO_MS} ms of audio)")
            parts = [f"{audio_ms:.0f} ms of mic audio ({appends} appends)"] if appends else []
            parts += [f"{n} {type_}" for type_, n in events.items()]
            self._local("connection.outbox_dropped", text=f"dropped {', '.join(parts)} queued to send: {why}",
                        reason=reason, appends=appends, audio_ms=audio_ms, events=events)

    def _report_progress(self, item_id: str, played_ms: float, flushed: bool = False) -> None:
        try:
            if flushed:
                actions = self.protocol.playback_flushed(item_id, played_ms, self.now_ms())
            else:
                actions = self.protocol.playback_progress(item_id, played_ms, self.now_ms())
        except Exception as exc:
            self._protocol_error(f"playback_progress({item_id!r}, {played_ms}) failed: {type(exc).__name__}: {exc}")
            return
        for action in actions or ():
            self._perform(action, self.now_ms())

    def _truncate_overdue(self, item_id: str) -> None:
        if self._closing:
            return
        for action in self.protocol.truncate_now(item_id):
            self._perform(action, self.now_ms())

    def _local(self, type: str, text: str | None = None, **fields: Any) -> None:
        try:
            self.events.local(type, self.now_ms(), text=text, **fields)
        except Exception as exc:  # the log failing must not take the session with it
            self._unlogged(type, exc)

    def _unlogged(self, what: Any, exc: Exception) -> None:
        """A row the event log refused: counted, and reported with logging once a second."""
        self._counters["events_unlogged"] += 1
        now = time.monotonic()
        if now >= self._unlogged_report_at:
            self._unlogged_report_at = now + 1.0
            _log.error("the event log refused a %s row (%s: %s); %d rows unlogged so far", what,
                       type(exc).__name__, exc, self._counters["events_unlogged"])

    def _with_registry_tools(self, config: SessionConfig) -> SessionConfig:
        """The config with every registered Python tool as its schema dict (dict tools kept)."""
        registered = set(self.tools)
        kept = [t for t in config.tools if not callable(t) and dict(t).get("name") not in registered]
        tools = tuple(kept) + tuple(self.tools.schemas)
        return config if tools == tuple(config.tools) else config.replace(tools=tools)

    def _require_open(self) -> None:
        if self._loop is None or self._thread is None:
            raise SessionClosedError("the session is not connected: call connect() (or use `with`)")
        if self._closing or not self._thread.is_alive():
            raise SessionClosedError(f"the session is closed: {self._closed_reason or 'closed'}")

    def _command(self, build: Callable[[ClientProtocol], list[dict]]) -> None:
        """Build events on the loop thread (protocol state lives there), queue them, and return
        once queued; exceptions from ``build`` are raised to the caller."""
        self._require_open()
        assert self._loop is not None
        if threading.current_thread() is self._thread:
            for event in build(self.protocol):
                self._enqueue(event)
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                for event in build(self.protocol):
                    self._enqueue(event)
            except BaseException as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

        self._call_soon(run)
        done.result(timeout=30)

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed between _require_open() and now
            raise SessionClosedError(f"the session is closed: {self._closed_reason or 'closed'}") from None


class _ReplyCollector:
    """Gathers one turn's reply from log rows and audio hooks (both on the session thread)."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.response_ids: list[str] = []
        self.chunks: list[bytes] = []
        self.text: list[str] = []
        self.user_transcript: str | None = None
        self.first_audio_ms: float | None = None
        self.done_ms = 0.0
        self.status: str | None = None

    def on_row(self, row: dict) -> None:
        type_ = row["type"]
        if row["source"] != "server":
            return
        if type_ == "response.created" and row["response_id"]:
            self.response_ids.append(row["response_id"])
        elif row["response_id"] not in self.response_ids:
            if type_ == "conversation.item.input_audio_transcription.completed":
                self.user_transcript = row["text"]
            return
        elif type_ in ("response.output_audio_transcript.delta", "response.output_text.delta"):
            self.text.append(row["text"] or "")
        elif type_ == "response.output_audio.delta" and self.first_audio_ms is None:
            self.first_audio_ms = row["t_ms"]
        elif type_ == "response.done":
            response = row["payload"].get("response") or {}
            self.status = response.get("status")
            self.done_ms = row["t_ms"]
            calls_tool = any(item.get("type") == "function_call" for item in response.get("output") or ())
            if not calls_tool:
                self.finished.set()

    def on_audio(self, item_id: str, response_id: str, pcm16: bytes) -> None:
        if response_id in self.response_ids:
            self.chunks.append(pcm16)

    def summary(self) -> str:
        return f"{len(self.response_ids)} responses, {len(self.chunks)} audio chunks, status {self.status}"

    def reply(self, input_started_ms: float, input_end_ms: float) -> Reply:
        pcm16 = b"".join(self.chunks)
        return Reply(
            audio=pcm16_to_float32(pcm16) if pcm16 else np.zeros(0, np.float32),
            transcript="".join(self.text),
            user_transcript=self.user_transcript,
            response_ids=list(self.response_ids),
            status=self.status,
            input_started_ms=input_started_ms,
            input_end_ms=input_end_ms,
            first_audio_ms=self.first_audio_ms,
            done_ms=self.done_ms,
        )


def _event_text(event: dict, pcm16: bytes | None) -> str:
    if pcm16 is not None and len(event) == 2:
        # append_audio's {type, audio}, 50 per second: base64 needs no JSON escaping, so skip
        # the encoder's scan of the ~1.3 kB string.
        return '{"type":"input_audio_buffer.append","audio":"' + event["audio"] + '"}'
    return _encode_json(event)


def _check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _describe_connect_error(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"handshake rejected with HTTP {exc.response.status_code}"
    if isinstance(exc, asyncio.TimeoutError):
        return "handshake timed out"
    if isinstance(exc, InvalidURI):
        return "invalid WebSocket URL"  # the exception text would repeat the URL, token and all
    return f"{type(exc).__name__}: {exc}"


def _close_info(ws: RealtimeConnection) -> str:
    code = ws.close_code
    if code is None:
        return "connection dropped without a close frame"
    return f"close code {code}" + (f" ({ws.close_reason})" if ws.close_reason else "")
