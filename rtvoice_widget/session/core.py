"""RealtimeSession: the public face of the live connection, and what ties its parts together.

The parts each own one concept (see the package docstring). What stays here: the constructor's
option checks, the public methods (each validates its input on the caller's thread, then hands
the work to the loop: :meth:`RealtimeSession._command` for events built from protocol state,
:meth:`RealtimeSession._act` for protocol actions), and the one place that makes every part
and hands each the session's clock, log and counters. The parts read the session's private
state (the outbox, the supervisor, the closing flag) by name: they work for this one class.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from typing import Any, Callable, Iterable

import numpy as np

from ..audio import Recorder
from ..backends import Endpoint, resolve_endpoint
from ..config import SessionConfig
from ..events import EventLog
from ..history import history_events
from ..pcm import BYTES_PER_MS as _BYTES_PER_MS, SAMPLE_RATE
from ..agents import AgentRunner
from ..approval import Approvals
from ..guardrails import GuardrailRunner
from ..protocol import ClientProtocol
from ..tools import ToolRegistry
from .audio_path import AudioPath, checked_audio
from .dispatch import Dispatcher
from .hooks import Hooks
from .outbox import Outbox
from .reconnect import Supervisor
from .record import Record
from .runner import LoopThread, SessionClosedError
from .talk import TalkReply, talk
from .tool_runner import ToolRunner
from .voice_gaps import VoiceGaps

__all__ = ["RealtimeSession"]


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

    Agents (issue 16): ``agent`` (an :class:`~rtvoice_widget.agents.Agent`: instructions, tools,
    voice and handoffs to other agents; ``session.agents``), ``output_guardrails`` (checks of
    the assistant's transcript as it streams, :mod:`rtvoice_widget.guardrails`;
    ``session.guardrails``), ``approve`` / ``approval_timeout`` (who decides the calls of
    ``needs_approval`` tools, and how long it may take, :mod:`rtvoice_widget.approval`;
    ``session.approvals``).

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
        agent: Any = None,
        output_guardrails: Iterable[Any] = (),
        approve: Callable[..., Any] | None = None,
        approval_timeout: float | None = None,
        history: Any = None,
    ) -> None:
        config = _checked_config(config, model)
        _check_options(reconnect_delay=reconnect_delay, max_reconnect_delay=max_reconnect_delay,
                       connect_timeout=connect_timeout, flush_timeout=flush_timeout,
                       max_reconnect_attempts=max_reconnect_attempts, max_frame_bytes=max_frame_bytes,
                       replay_turns=replay_turns, replay_chars=replay_chars, stale_audio_ms=stale_audio_ms,
                       tool_tracebacks=tool_tracebacks)
        self._connect_options = dict(
            url=url, backend=backend, model=model or config.model, api_key=api_key,
            azure_endpoint=azure_endpoint, azure_deployment=azure_deployment, api_version=api_version,
        )
        self.tools = ToolRegistry(tracebacks=tool_tracebacks)
        for fn in (*(t for t in config.tools if callable(t)), *tools):
            self.tools.add(fn)
        self.config: SessionConfig = self._with_registry_tools(config)
        # history.py: the saved conversation to seed each new server session with (checked here).
        self._history = history_events(history)
        self.protocol = ClientProtocol(self.config, prices=prices, max_cost_usd=max_cost_usd,
                                       live_player=live_player)
        self.flush_timeout = float(flush_timeout)
        self.events = EventLog(max_events=max_events)
        self.recording = Recorder(SAMPLE_RATE)
        self.endpoint: Endpoint | None = None
        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnect_delay = float(reconnect_delay)
        self.max_reconnect_delay = float(max_reconnect_delay)
        self.connect_timeout = float(connect_timeout)
        self.max_frame_bytes = max_frame_bytes
        self.replay_turns = replay_turns
        self.replay_chars = replay_chars
        self._init_parts(None if stale_audio_ms is None else float(stale_audio_ms))
        # Agents, output guardrails and tool approval work through the public API (tools, update,
        # on, interrupt, events): agents.py, guardrails.py, approval.py.
        self.approvals = Approvals(self, approve, timeout=approval_timeout)
        self.agents = AgentRunner(self, agent) if agent is not None else None
        self.guardrails = GuardrailRunner(
            self, output_guardrails,
            active=None if self.agents is None else (lambda: self.agents.current.output_guardrails),
            watch_active=self.agents is not None and self.agents.has_guardrails)

    def _init_parts(self, stale_audio_ms: float | None) -> None:
        self._t0 = time.perf_counter()
        self._closing = False
        self._closed_reason: str | None = None
        self._counters = dict(
            frames_sent=0, frames_received=0, bytes_sent=0, bytes_received=0,
            audio_sent_ms=0.0, audio_received_ms=0.0, reconnects=0, protocol_errors=0,
            outbox_dropped=0, outbox_dropped_audio_ms=0.0, events_unlogged=0,
        )
        record = Record(self)
        # Under the names every part calls them by: they run on any thread, and never raise.
        self._sent, self._local, self._last_resort = record.sent, record.local, record.last_resort
        self._unlogged, self._protocol_error = record.unlogged, record.protocol_error
        self._voice_gaps = VoiceGaps()
        self._runner = LoopThread(lambda: self._closed_reason)
        self._supervisor: Supervisor | None = None  # made by connect()
        self._outbox = Outbox(self._counters, self._local, self.now_ms, stale_audio_ms)
        self._hooks = Hooks(lambda: self.events, self._local)
        self._tools = ToolRunner(self.tools, lambda: self.protocol, self._enqueue, self._local, self._last_resort)
        self._audio = AudioPath(self)
        self._dispatch = Dispatcher(self)

    @property
    def stale_audio_ms(self) -> float | None:
        """Queued mic audio older than this (ms) when a lost connection comes back is dropped."""
        return self._outbox.stale_audio_ms

    @stale_audio_ms.setter
    def stale_audio_ms(self, value: float | None) -> None:
        self._outbox.stale_audio_ms = value

    @property
    def _thread(self):  # the loop's thread (tests join it)
        return self._runner.thread

    @property
    def _direct(self):
        """The connection ``send_audio`` may write to from the caller's thread (:mod:`.audio_path`),
        or None: not greeted yet, lost, closing."""
        supervisor = self._supervisor
        return supervisor.direct if supervisor is not None else None

    def _still_open(self) -> bool:
        """False once the session closed or gave up, or its loop thread died."""
        return not self._closing and (self._runner.thread is None or self._runner.alive)

    # -- clock ------------------------------------------------------------------------------

    def now_ms(self) -> float:
        """Milliseconds on the session clock (0 = when the session object was made)."""
        return (time.perf_counter() - self._t0) * 1000.0

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a WebSocket is open (False during a reconnect and after close)."""
        supervisor = self._supervisor
        return supervisor is not None and supervisor.ws is not None and not self._closing

    def connect(self, timeout: float | None = None) -> "RealtimeSession":
        """Open the connection; return once the server's ``session.created`` arrived.

        Raises :class:`ValueError` for bad connection options (e.g. a missing API key),
        :class:`ConnectionError` when the server cannot be reached or rejects the handshake, and
        :class:`TimeoutError` when ``session.created`` does not come within ``timeout`` seconds
        (default ``connect_timeout``). On failure nothing keeps running.
        """
        if self._runner.thread is not None:
            raise RuntimeError("connect() was already called on this session; make a new one")
        timeout = self.connect_timeout if timeout is None else timeout
        try:
            self.endpoint = resolve_endpoint(**self._connect_options)
        except Exception as exc:  # a missing key, a local server that crashed while starting
            self._local("connection.failed", text=str(exc))
            raise
        self._tools.set_secrets(self.endpoint.secrets())
        supervisor = self._supervisor = Supervisor(self)

        def start() -> None:
            self._outbox.bind()
            supervisor.start()

        self._runner.start().call_soon_threadsafe(start)
        try:
            supervisor.ready.result(timeout)
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
        runner, supervisor = self._runner, self._supervisor
        if not runner.started or supervisor is None or self._closing and not runner.alive:
            return
        if runner.is_current():
            raise RuntimeError("close() cannot be called from a session callback")
        runner.stop(lambda: supervisor.shutdown(timeout), timeout)
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
        than :data:`~rtvoice_widget.session.MAX_OUTBOX_AUDIO_MS` (5 min: it could never fit the queue; stream it in
        parts, as :meth:`talk` does). Does not wait for the
        loop; the audio goes out in order with everything else, one append per call (a call
        over 1 s is split). Calls that queue up while the loop is busy cost it one wakeup.
        """
        if self._closing or not self._runner.started:
            self._require_open()  # raises with the reason
        pcm16, captured_ms = checked_audio(audio, sample_rate, captured_ms)
        self._audio.send(pcm16, captured_ms)
        return len(pcm16) / _BYTES_PER_MS

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

        if not self._runner.started:  # not connected yet: the config goes out on connect
            self.config = new_config
            self.protocol.config = new_config
            return new_config
        self._command(apply)
        return new_config

    def tool(self, fn: Callable[..., Any] | None = None, *, name: str | None = None,
             description: str | None = None, needs_approval: bool = False) -> Any:
        """Register a Python callable as a function tool (decorator, with or without arguments).

        The schema comes from type hints and the docstring (:mod:`rtvoice_widget.tools`); on a
        live session the new tool list is sent with ``session.update``. ``needs_approval=True``:
        each call waits for a decision (:mod:`rtvoice_widget.approval`, ``session.approvals``).
        """
        if fn is None:
            return lambda f: self.tool(f, name=name, description=description, needs_approval=needs_approval)
        self.tools.add(fn, name=name, description=description, needs_approval=needs_approval)
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
        self._call_soon(self._dispatch.report_progress, item_id, float(played_ms), bool(flushed))

    def interrupt(self) -> None:
        """Stop the assistant now: flush its playback, truncate what was heard at the played
        position and cancel the active response; parts that do not apply are skipped.

        The widget's Interrupt button calls this. Returns once the events are queued.
        """
        self._act(lambda protocol, now: protocol.interrupt(now))

    def clear_output_audio(self) -> None:
        """Cut off the assistant's audio, and only that: flush its playback and truncate what
        was heard at the played position; the response goes on without sound (its text still
        arrives). What ``output_audio_buffer.clear`` does on WebRTC, done the WebSocket way (see
        :meth:`ClientProtocol.clear_output_audio`). Returns once the events are queued.
        """
        self._act(lambda protocol, now: protocol.clear_output_audio(now))

    def _act(self, decide: Callable[[ClientProtocol, float], list]) -> None:
        """Carry out the actions ``decide(protocol, now_ms)`` returns, on the loop thread; wait."""
        self._require_open()

        def run() -> None:
            now = self.now_ms()
            for action in decide(self.protocol, now):
                self._dispatch.perform(action, now)

        self._runner.run(run)

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
        return self._hooks.on(name, fn)

    def wait_for(self, name: str, *, after: int = -1, timeout: float = 30.0) -> dict:
        """Block until an event of type or category ``name`` (or ``"*"``) with ``seq > after``
        is logged; return the first such row (a dict with the log's columns).

        Take ``after=session.last_seq`` *before* triggering what you wait for. Raises
        :class:`TimeoutError`. Looks at the log once, then listens only while waiting, so the
        session pays nothing for it otherwise.
        """
        return self._hooks.wait_for(name, after=after, timeout=timeout)

    @property
    def last_seq(self) -> int:
        """The seq of the newest logged event (-1 when none)."""
        return self.events.pruned + len(self.events) - 1

    def talk(self, audio: Any, sample_rate: int = SAMPLE_RATE, *, realtime: bool = True, timeout: float = 60.0,
             chunk_ms: int = 20) -> TalkReply:
        """Say ``audio`` (a WAV path or an array/bytes as for :meth:`send_audio`) and return the reply.

        Streams the utterance in ``chunk_ms`` frames, paced in real time unless
        ``realtime=False``. With server-side turn detection it then streams silence (the
        config's ``silence_duration_ms`` plus 300 ms) so the server hears the end of the turn;
        with manual turn detection it commits and asks for a response. Waits for the final
        ``response.done`` of the turn (tool calls and their follow-up responses included).
        Raises ``TimeoutError`` after ``timeout`` seconds, ``SessionClosedError`` if the
        session closes meanwhile. See :mod:`.talk`.
        """
        return talk(self, audio, sample_rate, realtime=realtime, timeout=timeout, chunk_ms=chunk_ms)

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
            **self._voice_gaps.stats(self.protocol.turns, self.recording),  # median_/p90_voice_to_first_audio_ms
            "endpoint": self.endpoint.label if self.endpoint else None,
            "connected": self.connected,
            "uptime_s": self.now_ms() / 1000,
            "events": len(self.events),
            "events_pruned": self.events.pruned,
            "outbox": len(self._outbox),
            "tool_calls_running": len(self._tools.tasks),
            **self._counters,
        }

    def voice_gaps(self) -> list[float | None]:
        """Per reply, in turn order: the gap from the end of the user's recorded voice to its
        first audio (the turns table's ``voice_to_first_audio_ms``), None where there is none
        (no recorded voice, or no audio yet). Cheap to call every second (the widget's stats
        do): see :class:`~.voice_gaps.VoiceGaps`."""
        return self._voice_gaps.gaps(self.protocol.turns, self.recording)

    def transcript(self):
        """The turns table (:func:`rtvoice_widget.turn_table.turns_table`) of the conversation so far,
        with the ``voice_*`` columns: the user's recorded track gives the end of voice."""
        user = self.recording.user_pcm16(0.0, self.now_ms())
        return self.events.transcript(user, self.recording.sample_rate)

    # -- loop side: helpers -----------------------------------------------------------------

    def _enqueue(self, event: dict) -> None:
        self._outbox.put((event, None, None, self.now_ms()))
        self._outbox.wake()

    def _with_registry_tools(self, config: SessionConfig) -> SessionConfig:
        """The config with every registered Python tool as its schema dict (dict tools kept)."""
        registered = set(self.tools)
        kept = [t for t in config.tools if not callable(t) and dict(t).get("name") not in registered]
        tools = tuple(kept) + tuple(self.tools.schemas)
        return config if tools == tuple(config.tools) else config.replace(tools=tools)

    def _require_open(self) -> None:
        runner = self._runner
        if not runner.started:
            raise SessionClosedError("the session is not connected: call connect() (or use `with`)")
        if self._closing or not runner.alive:
            raise SessionClosedError(f"the session is closed: {self._closed_reason or 'closed'}")

    def _command(self, build: Callable[[ClientProtocol], list[dict]]) -> None:
        """Build events on the loop thread (protocol state lives there), queue them, and return
        once queued; exceptions from ``build`` are raised to the caller."""
        self._require_open()

        def run() -> None:
            for event in build(self.protocol):
                self._enqueue(event)

        self._runner.run(run)

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._runner.call_soon(fn, *args)


def _checked_config(config: SessionConfig | None, model: str | None) -> SessionConfig:
    if config is None:
        return SessionConfig() if model is None else SessionConfig(model=model)
    if not isinstance(config, SessionConfig):
        raise TypeError(f"config must be a SessionConfig, got {type(config).__name__}")
    return config.replace(model=model) if model is not None and model != config.model else config


def _check_options(*, stale_audio_ms: Any, tool_tracebacks: Any, **options: Any) -> None:
    """Raise ``ValueError`` naming the first constructor option out of range."""
    for name in ("reconnect_delay", "max_reconnect_delay", "connect_timeout", "flush_timeout"):
        _check_seconds(name, options[name])
    _check_int("max_reconnect_attempts", options["max_reconnect_attempts"], minimum=0)
    _check_int("max_frame_bytes", options["max_frame_bytes"], minimum=2**16)
    _check_int("replay_turns", options["replay_turns"], minimum=0)
    _check_int("replay_chars", options["replay_chars"], minimum=0)
    if stale_audio_ms is not None:
        _check_seconds("stale_audio_ms", stale_audio_ms)  # same rule: a positive number
    if not isinstance(tool_tracebacks, bool):
        raise ValueError(f"tool_tracebacks must be True or False, got {tool_tracebacks!r}")


def _check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
