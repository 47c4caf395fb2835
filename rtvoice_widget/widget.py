"""``VoiceChat``: the anywidget that puts a live voice conversation in a notebook cell.

The widget only moves things between the browser and a :class:`~rtvoice_widget.session.
RealtimeSession`; it never builds Realtime protocol JSON and never sees the socket. It keeps the
traits and the wiring; mic frames go through :class:`~rtvoice_widget.mic_ingest.MicIngest`
(order, gaps, stale drops, capture times) and the player's audio through
:class:`~rtvoice_widget.player_route.PlayerRoute` (link or Jupyter, and the hand-over marker).
The front end is one esbuild bundle (``js/`` -> ``rtvoice_widget/static``); the widget state
holds only a small loader (``_esm``), which asks for the bundle (see ``front_end`` below), so a
saved notebook carries state, not code.

Browser -> kernel custom messages (``on_msg``, kernel main thread):

- ``{"type": "audio", "stream", "seq", "t"}`` + one buffer: 20 ms of 24 kHz mono PCM16; ``t`` is
  the capture time on the page clock (ms since the epoch); ``stream`` (a uint32 per mic start,
  default 0) and ``seq`` (0, 1, ... per stream) number the frames the page sends, whichever way:
  frames reach the session in that order, once each (:class:`~rtvoice_widget.audio_link.
  MicFrameOrder`; a frame that does not come within half of ``stale_frame_ms`` is given up,
  logged as ``mic.gap``). Forwarded with ``session.send_audio``, with the
  capture time mapped to the session clock (``captured_ms``). Frames that
  arrive late as a burst (the kernel was busy running a cell, see :class:`~rtvoice_widget.
  mic_ingest.StaleFrameFilter`) are
  dropped, counted and logged as one ``mic.stale_dropped`` event: replaying seconds-old speech
  would start a turn nobody is waiting for.
- ``{"type": "played", "item_id", "ms", "flushed"}``: what the player really rendered (for
  truncation); ``flushed: true`` marks its final position after a flush, which the truncation
  of a barge-in waits for (the session has ``live_player=True``). Also, for benchmarks and
  debugging (page clock, ms since the epoch; see ``js/lib/player.js``): ``t``, ``arrived_t``,
  ``started_t``, ``flush_arrived_t``, ``silent_t``, ``underruns`` and the AudioContext's
  ``output_latency_ms`` / ``base_latency_ms``. The first ``started_t`` of an item is logged as
  ``playback.started`` with ``started_ms`` on the session clock (the turns table's
  ``voice_to_first_sound_ms``, see :class:`~rtvoice_widget.page_messages.FirstSound`).
- ``{"type": "mic", "state", "detail", "reads"?}``: mic started / denied / no device / ..., and
  the mic link opening or closing (``link_open`` / ``link_closed``); logged as ``mic.<state>``.
  With ``live``, ``reads`` says where the page reads the mic: ``track`` (a worker reading the
  track, Chromium: the voice reaches the kernel ~100 ms sooner) or ``graph`` (the Web Audio
  graph's input, elsewhere).
- ``{"type": "playback", "state": "overflow", "buffer", "dropped", "dropped_ms", "detail"}``: a
  browser buffer of assistant audio hit its cap and dropped audio (``buffer``: ``pending``
  before the player is ready, ``playback`` the player's queue, ``handover`` link audio waiting
  for its marker; see ``js/lib``); at most once a second per buffer; logged as
  ``playback.overflow``.
- ``{"type": "duplex", "state", "return_loss_db", "playback_dbfs", "mic_dbfs", "measured_ms"}``:
  the page's echo check decided (``js/lib/echo-check.js``): ``full`` keeps the mic open while
  the assistant talks, ``half`` holds it; logged as ``echo.full_duplex`` / ``echo.half_duplex``,
  and a fallback to half-duplex is said in :attr:`~VoiceChat.notice`.
- ``{"type": "echo", "return_loss_db", "playback_dbfs", "mic_dbfs", "measured_ms"}``: in full
  duplex, the same measure over one run of playback (a reply) as it ends; logged as
  ``echo.measured`` (a double talk lowers it: the person's voice counts as echo there).
- ``{"type": "barge_in", "t", "onset_ms"}``: in full duplex, the page's double-talk detector
  heard the person over the assistant while the canceller still held their voice down, and
  sends the unprocessed mic from ``onset_ms`` before ``t`` (page clock) until the assistant is
  no longer audible (``js/worklets/capture.js``); logged as ``mic.double_talk`` with
  ``detected_ms`` on the session clock.
- ``{"type": "text", "text"}``: a typed user message.
- ``{"type": "front_end"}``: the loader (``_esm``) asks for the front-end bundle; answered with
  ``{"type": "front_end", "hash"}`` + the bundle's UTF-8 text as one buffer (also sent unasked
  as the widget is made). ``hash`` is the ``_front_end`` trait.
- ``{"type": "control", "action"}``: ``connect``, ``disconnect``, ``interrupt``, ``ptt_start``,
  ``ptt_end``, ``hello`` (a view asks for the history so far, and the audio link's address),
  ``download`` with ``format`` ``md`` | ``json`` | ``wav`` (the transcript panel's buttons; see
  :mod:`rtvoice_widget.export`).
  ``ptt_end`` carries ``stream`` and ``through`` (the last frame the capture numbered before the
  key was released, -1 for none): the turn is committed once the session has every frame up to
  it, whichever way they travel (at most half of ``stale_frame_ms`` later).

The audio link (:class:`AudioLink`, on by default, ``mic_link=False`` to turn it off): where the page
can reach the kernel's 127.0.0.1 (a local JupyterLab), mic frames, assistant audio and flushes
travel over a WebSocket between the page's audio worker and a thread of this kernel instead of
through the page's main thread, the Jupyter server and the kernel's main thread. Mic frames then
reach the session while a cell runs, and arrive in a few ms instead of 100+ ms. Frames from the
link are handed to the same message callbacks (``on_msg``) as Jupyter's (``content["via"] == "link"``).
Everything else, and all audio where the link does not open, goes through Jupyter. Switching
between the two (the link opens after the first frames went through Jupyter, or closes) loses
and reorders nothing: mic frames are put back in ``seq`` order, copies dropped
(:class:`~rtvoice_widget.audio_link.MicFrameOrder`), and the player's audio is handed over behind a
``player_link`` marker (see :class:`AudioLink`).

Readiness: ``ready`` turns true when the server confirmed the session (``session.updated``, or
10 s after ``session.created`` without one, 120 s from the local server while it loads its
models; logged as ``session.unconfirmed``); until then the
page opens no mic and says why in ``waiting_for``: for the embedded offline server, the stage
it is loading (``ensure_local_server(progress=...)``, e.g. "Loading speech recognition
(whisper-base)…"), which the page shows with the seconds waited so far.

Kernel -> browser: ``{"type": "audio", "item_id", "response_id"}`` + PCM16 buffer (sent from the
session thread as it arrives, so playback continues while a cell runs), ``{"type": "flush",
"item_id"}`` (both over the audio link when it is open), ``{"type": "mic_link", "url", "token",
"key"}`` (answering ``hello``), ``{"type": "player_link", "conn"}`` (the hand-over of the player's
audio to link connection ``conn``, see :class:`AudioLink`), and, batched at most every 100 ms, ``{"type": "events", "rows_json"}`` (one JSON
array of log rows, serialised once per batch) and
``{"type": "transcript", "entries"}``; ``{"type": "download", "id", "name", "mime", "size", "index",
"count"}`` + one buffer per piece of a requested file (:func:`rtvoice_widget.export.send_download`).
Traitlets carry state only (status, settings, stats).

The API key is handed to the session and kept nowhere else: not in a trait, not in a message,
not in the saved notebook. Labels shown in the UI come from ``Endpoint.label`` (redacted).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Callable, Iterable

import anywidget
import traitlets

from rtvoice_widget._assets import STATIC, bundle
from rtvoice_widget.audio_link import AudioLink
from rtvoice_widget.config import SessionConfig
from rtvoice_widget.connection_state import (LOCAL_FALLBACK_NOTICE, READY_TIMEOUT_S, SPEECH_ENDED, ReadyGate,
                                             start_local_server, status_change, uses_local_server)
from rtvoice_widget.export import send_download
from rtvoice_widget.mic_ingest import MicIngest, StaleFrameFilter
from rtvoice_widget.page_feed import PageFeed, session_stats
from rtvoice_widget.page_messages import MessageListeners, PageMessages
from rtvoice_widget.player_route import PlayerRoute
from rtvoice_widget.session import RealtimeSession, SessionClosedError
from rtvoice_widget.transcript_view import TranscriptView
from rtvoice_widget.widget_settings import (VOICES, config_traits, initial_traits, mute_silence_ms,
                                            settings_from_traits)
from rtvoice_widget import agents_widget  # agents hook (issue 16)
from rtvoice_widget.tools import function_tool  # agents hook

__all__ = ["AudioLink", "StaleFrameFilter", "TranscriptView", "VoiceChat"]


class VoiceChat(anywidget.AnyWidget):
    """A voice conversation with a Realtime model, in a notebook cell.

    ``VoiceChat(backend="auto"|"openai"|"azure"|"local", url=None, model=None, instructions=None,
    voice=None, tools=None, api_key=None, **session_options)``. ``backend="auto"`` uses OpenAI when
    ``OPENAI_API_KEY`` (or ``api_key=``) is set, otherwise the embedded offline server, and says
    so in the widget. Other keyword arguments go to :class:`RealtimeSession` (e.g.
    ``azure_endpoint``, ``max_reconnect_attempts``).

    Agents (issue 16, passed on to the session): ``agent=`` (an :class:`~rtvoice_widget.agents.
    Agent`; the header shows the active one), ``output_guardrails=``, ``approve=`` (a callback
    deciding ``needs_approval`` tools; without one the widget asks with Approve / Deny buttons,
    the ``approvals`` trait).

    Display it (last expression of a cell), press Connect (or call :meth:`connect`) and talk.
    Everything is recorded: :attr:`events` (``.to_pandas()``), :meth:`transcript`,
    :attr:`recording`, :meth:`metrics`.

    Echo: on speakers the model could hear itself and interrupt its own reply. Chromium's echo
    canceller removes our playback from the mic (docs/DUPLEX.md), so by default
    (``full_duplex=True``) the page measures, in 1 s windows of assistant audio, how much
    of it comes back through the processed mic (mic held meanwhile): once a window is 25 dB
    quieter or more the mic stays open while the assistant talks (interrupt by speaking); none in 5 s, and it falls back
    to half-duplex (the mic is held while the assistant is audible; interrupt with the button),
    says so in :attr:`notice` and logs ``echo.half_duplex`` (``echo.full_duplex`` when it
    passed; both category ``system``, with ``return_loss_db``). ``full_duplex=False`` is always
    half-duplex on speakers; ``headphones=True`` sends the mic all the time, with no check.
    In full duplex the page holds the mic for the first 600 ms of each reply and lets what it
    hears during a reply through only once it looks like speech (200 of the last 300 ms at
    -50 dBFS or more), and logs each reply's echo (``echo.measured``).

    Resume: ``history=load_session(path)`` (or a path, or a list of ``(role, text)``) goes to
    the session, which seeds the server with it after ``session.created`` (see
    :mod:`rtvoice_widget.history` for what each backend keeps); the seeded messages show in the
    transcript panel.
    """

    # Only a small loader is widget state (saved with the notebook); it asks for the front end
    # itself (see _assets.py and _send_front_end), which `_front_end` names by its hash.
    _esm = STATIC / "loader.js"
    _front_end = traitlets.Unicode().tag(sync=True)
    _widget_id = traitlets.Unicode().tag(sync=True)
    _mic_owner = traitlets.Unicode("").tag(sync=True)

    status = traitlets.Unicode("disconnected", help="disconnected | connecting | connected | reconnecting | error").tag(sync=True)
    ready = traitlets.Bool(False, help="the server confirmed the session settings (session.updated): "
                           "the mic is really listening").tag(sync=True)
    waiting_for = traitlets.Unicode("", help="what a connection in progress waits for, for the person "
                                    "(e.g. the offline models loading); empty when nothing").tag(sync=True)
    error = traitlets.Unicode("", help="why the connection failed, when status is 'error'").tag(sync=True)
    notice = traitlets.Unicode("", help="an informational line for the person (e.g. local fallback)").tag(sync=True)
    backend_label = traitlets.Unicode("").tag(sync=True)
    model_name = traitlets.Unicode("").tag(sync=True)

    mode = traitlets.Enum(("continuous", "push_to_talk", "mute"), "continuous").tag(sync=True)
    headphones = traitlets.Bool(False).tag(sync=True)
    full_duplex = traitlets.Bool(True, help="on speakers, keep the mic open while the assistant talks "
                                 "when the echo check passes (else half-duplex)").tag(sync=True)
    voice = traitlets.Unicode().tag(sync=True)
    voices = traitlets.List(traitlets.Unicode()).tag(sync=True)
    speed = traitlets.Float(1.0).tag(sync=True)
    turn_detection = traitlets.Enum(("server_vad", "semantic_vad"), "server_vad").tag(sync=True)
    vad_threshold = traitlets.Float(0.5).tag(sync=True)
    silence_ms = traitlets.Int(500).tag(sync=True)
    instructions = traitlets.Unicode().tag(sync=True)
    settings_error = traitlets.Unicode("").tag(sync=True)
    stats = traitlets.Dict().tag(sync=True)
    # -- agents hook (issue 16; rtvoice_widget/agents_widget.py) --
    agent = traitlets.Unicode("", help="the active agent's name (VoiceChat(agent=...)); empty without agents").tag(sync=True)
    approvals = traitlets.List(traitlets.Dict(), help="tool calls waiting for approval: "
                               "[{call_id, name, arguments}]").tag(sync=True)
    # -- end agents hook --

    def __init__(
        self,
        backend: str = "auto",
        url: str | None = None,
        model: str | None = None,
        instructions: str | None = None,
        voice: str | None = None,
        tools: Iterable[Callable[..., Any]] | None = None,
        *,
        api_key: str | None = None,
        headphones: bool = False,
        full_duplex: bool = True,
        mode: str = "continuous",
        stale_frame_ms: float = 500.0,
        mic_link: bool = True,
        **session_options: Any,
    ) -> None:
        config = SessionConfig(
            **{k: v for k, v in (("model", model), ("instructions", instructions), ("voice", voice)) if v is not None}
        )
        # The browser's player answers each flush with its final position: truncate there.
        session_options.setdefault("live_player", True)
        # One rule for stale mic audio: late through Jupyter, or queued while reconnecting.
        session_options.setdefault("stale_audio_ms", stale_frame_ms)
        self._session_args = dict(url=url, backend=backend, api_key=api_key, **session_options)
        self._tools: list[Callable[..., Any]] = list(tools or ())
        self._config = config
        self._backend = backend
        super().__init__(_front_end=bundle()[0], _widget_id=uuid.uuid4().hex, headphones=headphones,
                         full_duplex=full_duplex, mode=mode, **initial_traits(config))
        # `ready`: set from the session thread, a fallback timer and here (connection_state.py).
        self._ready_gate = ReadyGate(self._show_ready, lambda: self.ready)
        self._connect_lock = threading.Lock()
        # Rows and transcript entries to the page in batches, from a thread of its own (page_feed.py).
        self._feed = PageFeed(self.send, self._update_stats, lambda: self.comm is None, self._local_error)
        # Mic frames back in capture order, fresh, onto the session clock (see mic_ingest.py).
        self._mic = MicIngest(lambda: self._session, self._local, stale_frame_ms)
        self._callbacks: list[tuple[str, Callable[..., Any]]] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._applying = False
        self._user_speaking = False  # between the server's speech_started and its end
        # Audio straight between the page's audio worker and here (see AudioLink); Jupyter stays
        # the fallback.
        self._msg_listeners = MessageListeners(self, self._local_error)  # on_msg callbacks, for link frames
        self._audio_link = AudioLink(self._msg_listeners.deliver, self._player_link_opened) if mic_link else None
        # Assistant audio to the page's player, over the link when it is open (player_route.py).
        self._player = PlayerRoute(lambda header, buffers: self.send(header, buffers=buffers), self._audio_link)
        self._page = PageMessages(lambda: self._session, self._mic, self._local,
                                  lambda text: setattr(self, "notice", text), extra={
                                      "front_end": lambda _: self._send_front_end(),
                                      # agents hook: Approve / Deny clicked
                                      "approval": lambda c: agents_widget.on_approval_message(self._session, c),
                                  }, controls=self._control_actions())
        self._session = self._new_session()
        self._feed.start()
        self.on_msg(self._on_browser_message)
        self._send_front_end()  # early: a page may get it before the cell that made us ends
        self.observe(self._on_setting, names=["voice", "speed", "turn_detection", "vad_threshold", "silence_ms",
                                              "instructions", "mode"])

    # -- public API -------------------------------------------------------------------------

    @property
    def session(self) -> RealtimeSession:
        """The current :class:`RealtimeSession` (a new one after each reconnect from the UI)."""
        return self._session

    @property
    def events(self):
        """The event log of the current session (:class:`~rtvoice_widget.events.EventLog`)."""
        return self._session.events

    @property
    def recording(self):
        """Both audio tracks of the current session (:class:`~rtvoice_widget.audio.Recorder`)."""
        return self._session.recording

    def transcript(self):
        """One row per turn (user and assistant) as a DataFrame, with the end-of-voice columns
        (see :meth:`RealtimeSession.transcript`)."""
        return self._session.transcript()

    def metrics(self) -> dict[str, Any]:
        """Session counters and latencies, plus the widget's own (mic frames in, stale drops)."""
        return {**self._session.metrics(), **self._mic.metrics()}

    def save(self, path: Any, **options: Any):
        """Save the conversation (events, turns, both audio tracks, config without secrets).

        See :func:`rtvoice_widget.saved.save_session` for ``options``; read it back with
        :func:`rtvoice_widget.load_session`. Returns the path written.
        """
        from .saved import save_session

        return save_session(self, path, **options)

    def analysis(self):
        """A snapshot of the conversation so far as a :class:`~rtvoice_widget.saved.SavedSession`
        (turns, metrics, ``turn(n).audio``, ``plot_timeline()``...), without writing files."""
        from .saved import snapshot

        return snapshot(self)

    def turn(self, n: int):
        """Turn ``n`` of the conversation so far; its ``.audio`` plays in the notebook."""
        return self.analysis().turn(n)

    def connect(self, timeout: float | None = None) -> "VoiceChat":
        """Connect to the backend; returns once the server's ``session.created`` arrived.

        Raises like :meth:`RealtimeSession.connect` (``ValueError`` for bad options such as a
        missing key, ``ConnectionError``, ``TimeoutError``); the widget shows the reason too.
        """
        with self._connect_lock:  # a Connect click and a cell may race: one connection wins
            if self._session.connected:
                return self
            if self._session.endpoint is not None:  # a used session cannot reconnect: start afresh
                self._replace_session()
            session = self._session
            self._mic.reset_clock()
            self.ready = False
            with self.hold_sync():  # one update: the front end never sees a half-changed state
                self.error = ""
                self.status = "connecting"
                self.waiting_for = ("Loading the offline models (the first start takes a while)\u2026"
                                    if uses_local_server(self._session_args) else "Connecting to the server\u2026")
            try:
                if uses_local_server(self._session_args):
                    start_local_server(session, self._on_server_stage)
                session.connect(timeout)
            except BaseException as exc:
                with self.hold_sync():
                    self.waiting_for = ""
                    self.error = f"{type(exc).__name__}: {exc}"
                    self.status = "error"
                raise
        endpoint = session.endpoint
        self.backend_label = endpoint.label if endpoint is not None else ""
        local = endpoint is not None and endpoint.backend == "local"
        if local and self._backend == "auto":
            self.notice = LOCAL_FALLBACK_NOTICE
        wait_s = READY_TIMEOUT_S["local" if local else "remote"]
        self._ready_gate.wait(wait_s, lambda: setattr(self, "waiting_for", "Starting the session\u2026"),
                              lambda: self._assume_ready(session, wait_s))
        self.status = "connected"
        return self

    def _on_server_stage(self, stage: str) -> None:
        # The local server's relay thread: what it loads now, e.g. "Loading speech recognition
        # (whisper-base)"; the page adds the seconds waited so far.
        if self.status == "connecting":
            self.waiting_for = f"{stage}\u2026"

    def _show_ready(self, ready: bool) -> None:
        self.ready = ready
        self.waiting_for = ""

    def _assume_ready(self, session: RealtimeSession, wait_s: float) -> None:
        """A server that never confirms the settings must not leave the mic deaf for good."""
        if session is self._session and session.connected and not self.ready:
            self._local("session.unconfirmed", text=f"no session.updated within {wait_s:g} s "
                        "of session.created: listening anyway")
            self._ready_gate.set(True)

    def disconnect(self) -> None:
        """Close the connection (the log, transcript and recording stay readable)."""
        self._session.close()
        self._ready_gate.set(False)
        self.status = "disconnected"

    def close(self) -> None:
        """Disconnect and remove the widget (stops its background thread)."""
        self._feed.stop()
        self._mic.close()
        try:
            self._session.close()
            if self._audio_link is not None:
                self._audio_link.close()
        finally:
            super().close()

    def say(self, text: str, respond: bool = True) -> None:
        """Send a typed user message into the conversation (and ask for a reply)."""
        self._session.send_text(text, respond=respond)

    def interrupt(self) -> None:
        """Stop the assistant now: flush playback, truncate at what was heard, cancel the reply."""
        self._session.interrupt()
        # Also whatever the browser still plays that the kernel does not count as audible.
        self._player.flush(None)

    def update(self, **settings: Any) -> SessionConfig:
        """Change session settings (``SessionConfig`` fields); applied live with ``session.update``.

        Invalid values raise ``ValueError`` and change nothing.
        """
        try:
            # Live (or not yet connected) session: it validates, sends session.update if live.
            new_config = self._session.update(**settings)
        except SessionClosedError:
            new_config = self._config.replace(**settings)  # closed: the next connect() uses it
        self._config = new_config
        self._mirror_config(new_config)
        return new_config

    def on(self, type: str, fn: Callable[..., Any]) -> Callable[[], None]:
        """Call ``fn(row)`` for events of a type or category (or ``"*"``); survives reconnects."""
        entry = (type, fn)
        self._callbacks.append(entry)
        unsubscribe = [self._session.on(type, fn)]

        def off() -> None:
            if entry in self._callbacks:
                self._callbacks.remove(entry)
            unsubscribe[0]()

        return off

    def tool(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Register a Python function as a tool the model may call (decorator)."""
        if fn is None:
            return lambda f: self.tool(f, **options)
        # agents hook: the options (needs_approval=True, name=...) travel with the callable, so
        # the session a reconnect makes gets them too.
        self._tools.append(function_tool(fn, **options) if options else fn)
        self._session.tool(fn, **options)
        return fn

    # -- session wiring ---------------------------------------------------------------------

    def _new_session(self) -> RealtimeSession:
        session = RealtimeSession(config=self._config, tools=self._tools, **self._session_args)
        self._unsubscribe = [
            session.on("*", self._on_row),
            session.on("output_audio", self._player.audio),
            session.on("flush", self._player.flush),
            *(session.on(t, fn) for t, fn in self._callbacks),
            *agents_widget.bind(self, session),  # agents hook: active agent, pending approvals
        ]
        return session

    def _replace_session(self) -> None:
        for off in self._unsubscribe:
            off()
        # A used session is over (closed, or gave up: its loop thread still runs until close()).
        self._session.close()
        self._session = self._new_session()
        self._feed.reset()
        self._feed.send_history()

    def _on_row(self, row: dict[str, Any]) -> None:
        # Session thread: keep it short; the pump sends batches.
        self._feed.add(row)
        self._track_state(row)

    def _track_state(self, row: dict[str, Any]) -> None:
        type_ = row["type"]
        if type_ == "input_audio_buffer.speech_started":
            self._user_speaking = True
        elif type_ in SPEECH_ENDED:
            self._user_speaking = False
        if type_ == "session.updated" and not self.ready:
            self._ready_gate.set(True)
        change = status_change(type_, row.get("text"), self.status, self.notice)
        if change is not None:
            if change.pop("ready", True) is False:
                self._ready_gate.set(False)
            for name, value in change.items():
                setattr(self, name, value)

    def _player_link_opened(self, conn: int) -> None:
        # AudioLink's thread, as a page connects.
        self._player.link_opened(conn)

    # -- browser messages (kernel main thread) ----------------------------------------------

    def _on_browser_message(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        self._page.handle(content, buffers)

    def _send_front_end(self) -> None:
        """The front-end bundle for the loader (``_esm``): a custom message, never saved."""
        hash_, data = bundle()
        self.send({"type": "front_end", "hash": hash_}, buffers=[data])

    def on_msg(self, callback: Callable[..., Any], remove: bool = False) -> None:
        """As ``Widget.on_msg``; the callbacks also get the audio link's frames (see below)."""
        super().on_msg(callback, remove=remove)
        self._msg_listeners.register(callback, remove)

    def _control_actions(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        """The page's ``control`` actions that need the widget (see PageMessages for the rest)."""
        return {
            "connect": lambda _: threading.Thread(target=self._connect_quietly, name="rtvoice-widget-connect",
                                                  daemon=True).start(),
            "disconnect": lambda _: self.disconnect(),
            "hello": lambda _: self._hello(),
            "interrupt": lambda _: self.interrupt(),
            # export.py: a transcript panel download (md, json, wav)
            "download": lambda c: send_download(lambda m, buffers: self.send(m, buffers=buffers), self,
                                                c.get("format"), self._local),
        }

    def _hello(self) -> None:
        # A view (re)opens: the history so far, and where the audio link listens.
        self._feed.send_history()
        if self._audio_link is not None:
            self.send({"type": "mic_link", "url": self._audio_link.url, "token": self._audio_link.token,
                       "key": self._audio_link.key})

    def _end_speech_on_mute(self) -> None:
        """Muting mid-sentence: send the silence the server's VAD waits for, so the words
        spoken so far become a turn and get their answer (see :func:`mute_silence_ms`)."""
        if not (self._user_speaking and self._session.connected):
            return
        silence_ms = mute_silence_ms(self._config.turn_detection)
        if silence_ms is not None:
            self._mic.end_turn_with_silence(silence_ms)

    def _connect_quietly(self) -> None:
        try:
            self.connect()
        except Exception:
            pass  # shown in the widget (status "error" + the reason) and in the log

    # -- settings -----------------------------------------------------------------------------

    def _on_setting(self, change: dict[str, Any]) -> None:
        if self._applying:
            return
        if change["name"] == "mode" and "push_to_talk" not in (change["old"], change["new"]):
            if change["new"] == "mute":
                self._end_speech_on_mute()
            return  # otherwise mute/continuous only changes what the browser sends
        try:
            wanted = settings_from_traits(self._config, self)
            changes = {k: v for k, v in wanted.items() if getattr(self._config, k) != v}
            if changes:
                self.update(**changes)
            self.settings_error = ""
        except (ValueError, TypeError) as exc:
            self.settings_error = str(exc)
            self._mirror_config(self._config)  # show the values that are really in force
        except SessionClosedError as exc:
            self.settings_error = f"not applied: {exc}"

    def _mirror_config(self, config: SessionConfig) -> None:
        """Show ``config`` in the traits, without applying them back (also agents_widget.py)."""
        self._applying = True
        try:
            with self.hold_trait_notifications():
                for name, value in config_traits(config, self.voices, self.mode).items():
                    setattr(self, name, value)
        finally:
            self._applying = False

    def _update_stats(self) -> None:
        # The pump's thread, every STATS_INTERVAL_S.
        stats = session_stats(self._session)
        if stats != self.stats:
            self.stats = stats

    # -- local log entries --------------------------------------------------------------------

    def _local(self, type_: str, text: str | None = None, **fields: Any) -> None:
        self._session.events.local(type_, self._session.now_ms(), text=text, **fields)

    def _local_error(self, text: str) -> None:
        self._local("widget.error", text=text)
