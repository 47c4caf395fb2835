"""``LocalRealtimeServer``: the WebSocket endpoint, its thread and loop, authentication.

Clients connect to ``ws://HOST:PORT/v1/realtime?model=...`` exactly as to OpenAI, so the official
SDK works unchanged with ``websocket_base_url="ws://HOST:PORT/v1"``. Any path ending in
``/realtime`` is accepted (Azure-style ``/openai/realtime`` too); others get HTTP 404.

Security, checked before the WebSocket opens:

- **Browser origins.** A request with an ``Origin`` header comes from a web page (browsers always
  send one; the SDK, ``websockets`` and this project's client never do). Any page open in the
  user's browser can dial ``ws://127.0.0.1:PORT``, so such requests get HTTP 403 unless their
  origin is listed in ``allowed_origins`` (``--allow-origin``), compared exactly (scheme, host,
  port; case-insensitive); ``"*"`` allows every origin.
- **Token.** With a ``token``, a request must carry it as ``Authorization: Bearer TOKEN`` (what the
  openai SDK sends for ``api_key``) or in the ``api-key`` header, compared in constant time;
  missing or wrong: HTTP 401. Binding a non-loopback address requires one. The server that
  :func:`~rtvoice_widget.server.ensure_local_server` starts always has one: a random secret per
  server process, passed by environment (``RTVOICE_SERVER_TOKEN``), never on the command line.
"""

from __future__ import annotations

import asyncio
import hmac
import http
import ipaddress
import logging
import sys
import threading
import time
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from .connection import Workers, serve_connection
from .engines.base import Engines
from .pipeline import warm_llm
from .settings import SessionSettings
from .dialogue import EARLY_ASK_MS, SPECULATION_DELAY_MS, empty_turn_end_stats, warm_up_job

__all__ = ["LocalRealtimeServer", "DEFAULT_MODEL", "is_loopback", "print_progress"]

log = logging.getLogger("rtvoice_widget.server")

DEFAULT_MODEL = "rtvoice-local"
# The API accepts appends up to 15 MiB; a little more for the JSON around them.
_MAX_FRAME = 16 * 1024 * 1024


def print_progress(message: str, fraction: float) -> None:
    """Default model-loading progress: one line per step on stderr (a notebook shows it under the cell)."""
    print(f"rtvoice-server: [{fraction:4.0%}] {message}", file=sys.stderr, flush=True)


def _origin_key(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalRealtimeServer:
    """A GA-Realtime-compatible server on a background thread with its own event loop.

    ``engines``: an :class:`Engines`, or a dict of ``load_engines`` options (default: the bundled
    models), loaded once by :meth:`start`. ``token``: required unless ``host`` is loopback.
    ``allowed_origins``: browser origins (``"https://app.example"``) allowed to connect; others,
    and by default every request with an ``Origin`` header, are refused (see the module docstring).
    ``speculative`` / ``speculative_reply`` / ``speculation_delay_ms`` / ``partial_interval_ms`` /
    ``prefill`` / ``early_ask_ms`` (None: no early end-of-turn ask): streaming knobs, see
    ``dialogue.TurnEngine``.
    ``progress(message, fraction)`` is told about model loading (default: lines on stderr;
    ``None`` for silence).

    >>> server = LocalRealtimeServer(engines={"llm": "echo"})
    >>> url = server.start()          # doctest: +SKIP
    >>> server.stop()                 # doctest: +SKIP
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        engines: Engines | dict | None = None,
        token: str | None = None,
        allowed_origins: Iterable[str] = (),
        speculative: bool = True,
        speculative_reply: bool = True,
        speculation_delay_ms: float = SPECULATION_DELAY_MS,
        partial_interval_ms: float | None = 1000.0,
        early_ask_ms: float | None = EARLY_ASK_MS,
        prefill: bool = True,
        progress: Callable[[str, float], None] | None = print_progress,
    ) -> None:
        if not is_loopback(host) and not token:
            raise ValueError(f"binding {host!r} exposes the server beyond this machine: pass token= (or --token)")
        self.host = host
        self.port = port
        self.token = token
        self.allowed_origins = frozenset(_origin_key(o) for o in allowed_origins)
        self.speculative = speculative
        self.speculative_reply = speculative_reply
        self.speculation_delay_ms = speculation_delay_ms
        self.partial_interval_ms = partial_interval_ms
        self.early_ask_ms = early_ask_ms
        self.prefill = prefill
        self._engine_choice = engines
        self._warmed = False
        self._progress = progress
        self.engines: Engines | None = engines if isinstance(engines, Engines) else None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._workers: Workers | None = None
        self.url: str | None = None

    @property
    def turn_end_stats(self) -> dict:
        """The end-of-turn model's decisions (``semantic_vad``) over the connections that have
        ended: ``asked``, ``complete``, ``incomplete``, ``dropped`` (speech resumed before the
        answer), ``early`` / ``early_speculated`` (asks that may only start the speculation, and
        those that did), ``heard_question`` (of the ``complete``, those the recheck ended on a
        transcript ending with "?" against the model's answer), ``cpu_ms`` (total; divide by
        ``asked + early`` for the cost of one decision). Each connection also logs its own at INFO level as it ends (logger ``rtvoice_widget.server``)."""
        workers = self._workers
        if workers is None:
            return empty_turn_end_stats()
        with workers._stats_lock:
            return dict(workers.turn_end_stats)

    # -- lifecycle -------------------------------------------------------------------------------

    def load(self) -> Engines:
        """Load the engines (once per process, cached by ``load_engines``) and warm the LLM up.

        A model's first evaluation is several times slower than later ones (weights paged in,
        buffers allocated; 3.2 s instead of 0.1 s measured for SmolLM2's system prompt), so it
        happens here rather than in the first user's turn: with the server's default
        instructions, then with those this project's own client sends by default (188 tokens:
        2.3 CPU-s), which the LLM keeps as a saved state for every session that uses them."""
        if self.engines is None:
            from .engines import load_engines

            self.engines = load_engines(**(self._engine_choice or {}), progress=self._progress)
        if not self._warmed:
            from ..config import DEFAULT_INSTRUCTIONS

            started = time.perf_counter()
            settings = SessionSettings(DEFAULT_MODEL)
            warm_llm(self.engines.llm, warm_up_job(settings))
            settings.update({"instructions": DEFAULT_INSTRUCTIONS})
            warm_llm(self.engines.llm, warm_up_job(settings))
            self._warmed = True
            if self._progress is not None and hasattr(self.engines.llm, "warm"):
                self._progress(f"LLM warmed up in {time.perf_counter() - started:.1f} s", 1.0)
        return self.engines

    def start(self, timeout: float = 60.0) -> str:
        """Load engines, listen, and return ``ws://HOST:PORT/v1/realtime``; serving runs on a thread."""
        if self._thread is not None:
            return self.url
        self.load()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # reported to start()'s caller below
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="rtvoice-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the server did not start listening within {timeout} s")
        if failure:
            self._thread = None
            raise failure[0]
        return self.url

    def stop(self) -> None:
        """Close every connection and the listening socket; wait for the thread. Idempotent."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> LocalRealtimeServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the calling thread until interrupted (the CLI's mode)."""
        self.load()
        asyncio.run(self._serve(None))

    async def _serve(self, ready: threading.Event | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._workers = Workers()
        try:
            async with serve(
                self._handle,
                self.host,
                self.port,
                process_request=self._check_request,
                compression=None,  # base64 audio barely compresses; deflate would only cost CPU
                max_size=_MAX_FRAME,
                # Frames received but not handled yet, at most: 16 x _MAX_FRAME (256 MiB) even for
                # a hostile client (256 allowed 4 GiB). Past it TCP holds the rest: a burst of
                # audio after a busy Jupyter cell waits in socket buffers instead, nothing is lost.
                max_queue=16,
            ) as server:
                port = server.sockets[0].getsockname()[1]
                host = f"[{self.host}]" if ":" in self.host else self.host
                self.port = port
                self.url = f"ws://{host}:{port}/v1/realtime"
                log.info("rtvoice-server listening on %s", self.url)
                if ready is not None:
                    ready.set()
                await self._stop_event.wait()
        finally:
            self._workers.shutdown()

    # -- per connection --------------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if not path.endswith("/realtime"):
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not found: connect to /v1/realtime?model=...\n")
        origin = request.headers.get("Origin")
        if origin is not None and "*" not in self.allowed_origins and _origin_key(origin) not in self.allowed_origins:
            log.warning("refused a connection from browser origin %r (allow it with --allow-origin)", origin[:200])
            return connection.respond(http.HTTPStatus.FORBIDDEN,
                                      "Browser origin not allowed (start the server with --allow-origin ORIGIN)\n")
        if self.token is not None:
            offered = request.headers.get("api-key")
            authorization = request.headers.get("Authorization", "")
            if authorization.lower().startswith("bearer "):
                offered = authorization[7:].strip()
            if not offered or not hmac.compare_digest(offered.encode(), self.token.encode()):
                return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Missing or wrong token\n")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        query = parse_qs(urlsplit(connection.request.path).query)
        model = (query.get("model") or query.get("deployment") or [DEFAULT_MODEL])[0]
        await serve_connection(
            connection,
            self.engines,
            self._workers,
            model=model,
            speculative=self.speculative,
            speculative_reply=self.speculative_reply,
            speculation_delay_ms=self.speculation_delay_ms,
            partial_interval_ms=self.partial_interval_ms,
            early_ask_ms=self.early_ask_ms,
            prefill=self.prefill,
        )
