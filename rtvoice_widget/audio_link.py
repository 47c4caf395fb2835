"""The audio link: a token-guarded WebSocket on 127.0.0.1 that carries the widget's audio.

Mic frames, assistant audio and flushes travel between the page's audio worker and a thread of
this kernel, skipping the page's main thread, the Jupyter server and the kernel's main thread
(see :class:`AudioLink` for why and for the frame format). ``VoiceChat`` owns one per widget.

Mixing two transports must neither lose nor reorder audio: :class:`MicFrameOrder` puts the mic
frames that came either way back in capture order, once each; assistant audio and flushes are
ordered on the page (see :class:`AudioLink`, "hand-over").

It was called the mic link first, and it carries the player's audio too; ``VoiceChat(mic_link=)``
and the ``{"type": "mic_link"}`` message that tells the page where it is keep that name: the
option is public API, and the message pairs with it.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import secrets
import struct
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["Gap", "MicFrameOrder", "AudioLink"]

T = TypeVar("T")

log = logging.getLogger("rtvoice_widget.audio_link")
# websockets logs request lines (with ``?token=``) and frames at DEBUG level: its logger for the
# link is pinned at INFO, so turning on DEBUG logging in a notebook never prints the token.
_ws_logger = logging.getLogger("rtvoice_widget.audio_link.websocket")
_ws_logger.setLevel(logging.INFO)


@dataclass(frozen=True)
class Gap:
    """Mic frames given up on: ``count`` frames of capture ``stream`` from ``first`` on never came
    in time, and the frames after them went on without them."""

    stream: int
    first: int
    count: int


class MicFrameOrder(Generic[T]):
    """Puts the page's mic frames back in capture order, each exactly once, whichever way they came.

    The page numbers the frames it sends, per capture ``stream`` (a random id per mic start):
    ``seq`` 0, 1, 2, ... with no holes (frames it does not send, e.g. while muted, get no
    number). Each goes through Jupyter, the audio link, or, around the moment the link opens or
    closes, both. :meth:`push` returns the frames that are now next in order: a frame ahead of a
    missing one waits; one already released is a duplicate, and one given up on is late: both
    are dropped and counted (``duplicates``, ``late``).

    A missing frame is given up on when more than ``max_held`` frames wait behind it, or when
    the owner calls :meth:`give_up` (the widget does after a wall-clock wait, and before it
    clears a turn) or :meth:`skip_through`: the waiting frames are released and a :class:`Gap`
    reported (``missing`` counts such frames). :meth:`covers` says whether a frame is behind
    (the widget ends a push-to-talk turn once its last frame is). A new stream releases what
    the previous one held and
    starts at ``seq`` 0; frames of a previous stream that arrive afterwards are late. A frame
    more than ``max_ahead`` frames ahead of the next one due (default 30,000: ten minutes of
    20 ms frames, far beyond any hole the two transports can leave) cannot come from the page's
    numbering: it is dropped and counted in ``too_far``, so one bad ``seq`` can never make every
    later frame late. Not thread-safe: the owner serialises calls and the delivery of what they
    return.
    """

    def __init__(self, max_held: int, max_ahead: int = 30_000) -> None:
        if max_held < 1:
            raise ValueError(f"max_held must be at least 1, not {max_held}")
        if max_ahead < max_held:
            raise ValueError(f"max_ahead must be at least max_held ({max_held}), not {max_ahead}")
        self.max_held = max_held
        self.max_ahead = max_ahead
        self.too_far = 0
        self.duplicates = 0
        self.late = 0
        self.missing = 0
        self._stream: int | None = None
        self._next = 0
        self._held: dict[int, T] = {}
        self._skipped: deque[range] = deque(maxlen=16)  # recent gaps of this stream, to tell late from duplicate
        self._old_streams: deque[int] = deque(maxlen=16)

    @property
    def held(self) -> int:
        """Frames waiting for a missing one."""
        return len(self._held)

    def push(self, stream: int, seq: int, frame: T) -> tuple[list[T], list[Gap]]:
        """Take frame ``seq`` of ``stream``; return the frames now due, in order, and any gaps
        given up on to release them."""
        released: list[T] = []
        gaps: list[Gap] = []
        if stream != self._stream:
            if stream in self._old_streams:
                self.late += 1
                return released, gaps
            if seq > self.max_ahead:  # checked before the switch: a bad frame ends no stream
                self.too_far += 1
                return released, gaps
            released, gaps = self._switch_to(stream)
        if seq - self._next > self.max_ahead:
            self.too_far += 1
            return released, gaps
        if seq < self._next and any(seq in gap for gap in self._skipped):
            self.late += 1
            return released, gaps
        if seq < self._next or seq in self._held:
            self.duplicates += 1
            return released, gaps
        self._held[seq] = frame
        released += self._release()
        while len(self._held) > self.max_held:
            gaps.append(self._skip_to(min(self._held)))
            released += self._release()
        return released, gaps

    def covers(self, stream: int, seq: int) -> bool:
        """Whether frame ``seq`` of ``stream`` is behind us (released or given up; every frame
        of a stream that is over), so nothing up to it can still be waited for."""
        if stream == self._stream:
            return seq < self._next
        return stream in self._old_streams or seq < 0

    def skip_through(self, stream: int, seq: int) -> tuple[list[T], list[Gap]]:
        """Stop waiting for anything up to ``seq`` of ``stream``: release what is held up to it
        (and what follows in order), reporting the frames that never came as gaps."""
        released: list[T] = []
        gaps: list[Gap] = []
        if self.covers(stream, seq):
            return released, gaps
        if seq - (self._next if stream == self._stream else 0) > self.max_ahead:
            self.too_far += 1  # not a frame the page numbered: waiting for it would mute the mic
            return released, gaps
        if stream != self._stream:
            released, gaps = self._switch_to(stream)
        while self._next <= seq:
            if self._next in self._held:
                released += self._release()
                continue
            gaps.append(self._skip_to(min([s for s in self._held if s <= seq] + [seq + 1])))
            released += self._release()
        return released, gaps

    def give_up(self) -> tuple[list[T], list[Gap]]:
        """Stop waiting: release every held frame in order, reporting the gaps between them."""
        released: list[T] = []
        gaps: list[Gap] = []
        while self._held:
            gaps.append(self._skip_to(min(self._held)))
            released += self._release()
        return released, gaps

    def _switch_to(self, stream: int) -> tuple[list[T], list[Gap]]:
        """A new stream: the previous one is over (what it held goes now); this one starts at 0."""
        released, gaps = self.give_up()
        if self._stream is not None:
            self._old_streams.append(self._stream)
        self._stream, self._next = stream, 0
        self._skipped.clear()
        return released, gaps

    def _release(self) -> list[T]:
        out = []
        while self._next in self._held:
            out.append(self._held.pop(self._next))
            self._next += 1
        return out

    def _skip_to(self, seq: int) -> Gap:
        """Give up on the frames from the next one up to (not including) ``seq``."""
        assert self._stream is not None
        gap = Gap(self._stream, self._next, seq - self._next)
        self._skipped.append(range(self._next, seq))
        self.missing += gap.count
        self._next = seq
        return gap


class AudioLink:
    """A WebSocket on 127.0.0.1 between the page's audio worker and the kernel, for audio only.

    Why: through Jupyter a mic frame waits for the page's main thread (busy rendering
    JupyterLab), the Jupyter server and the kernel's main thread (blocked while a cell runs);
    assistant audio and flushes wait for the Jupyter server and the page's main thread. This
    link skips them: the capture worklet hands frames to a dedicated worker that sends them
    here, and this server's own thread hands them to the widget (``session.send_audio``); the
    widget sends assistant audio and flushes back with :meth:`send`, and the worker feeds them to
    the playback worklet. It only works where the browser can reach the kernel's machine on
    127.0.0.1 (a local JupyterLab); elsewhere the page never connects and everything keeps going
    through Jupyter. The newest page connection gets the player's audio (a replaced one is
logged and stays open for its mic frames).

    Access needs ``token`` (random, sent to the page in a custom message, never in a trait, so
    it is not saved with the notebook). The page trusts the link only after it received
    ``{"type": "hello", "key", "conn"}`` on it with the ``key`` it got the same way: where the
    kernel is remote, 127.0.0.1 is the person's own machine, and mic audio must never go to
    whatever else listens on that port there. ``conn`` numbers the connection (1, 2, ...).

    Page -> kernel, binary frames, little-endian: float64 ``t`` (capture time of the frame's
    end, page clock, ms since the epoch), float64 ``sent`` (when the worker sent it, same
    clock), uint32 ``stream``, uint32 ``seq`` (see :class:`MicFrameOrder`), then 20 ms of 24 kHz
    PCM16. ``on_frame(content, pcm)`` gets ``{"type": "audio", "stream", "seq", "t", "sent",
    "via": "link"}`` on this server's thread. Malformed frames are counted in ``rejected`` and
    dropped; the connection stays.

    Kernel -> page (:meth:`send`): uint16 length of a JSON header (``{"type": "audio",
    "item_id"}`` or ``{"type": "flush", "item_id"}``), the header, then the PCM16 payload.
    Hand-over: the page's worker plays what comes through Jupyter at once, but holds what comes
    on connection ``conn`` until Jupyter delivered ``{"type": "player_link", "conn"}``, which the
    widget sends through Jupyter after everything it sent there before using that connection
    (``on_peer(conn)`` is called, on this server's thread, as soon as a page connects). So
    audio that went through Jupyter always plays before audio that went over the link after it.

    Bounds (nothing outside the notebook can stall it or grow it without limit): the server is
    one asyncio loop on one thread, so connections cost no threads; at most ``MAX_PENDING``
    connections may be in their opening handshake (more are closed at once) and each has
    ``OPEN_TIMEOUT_S`` to finish it; at most ``MAX_PAGES`` authorised connections are open (more
    get HTTP 503). :meth:`send` never blocks: each page has a queue of at most
    ``MAX_QUEUED_BYTES`` (about 87 s of 24 kHz PCM16) written by its own task; a page whose
    queue would overflow (it stopped reading) is dropped and logged, and ``send`` returns False
    so the caller falls back to Jupyter. The token travels in the query string (a browser
    WebSocket cannot set headers); websockets' own DEBUG log, which prints request lines and
    frames, is pinned off for this server so the token never reaches a log.
    """


    HEADER = struct.Struct("<ddII")
    MAX_PENDING = 8
    OPEN_TIMEOUT_S = 2.0
    MAX_PAGES = 4
    MAX_QUEUED_BYTES = 4 * 2 ** 20

    def __init__(self, on_frame: Callable[[dict[str, Any], bytes], None],
                 on_peer: Callable[[int], None] | None = None) -> None:
        self.token = secrets.token_urlsafe(24)
        self.key = secrets.token_urlsafe(24)
        self.rejected = 0
        self.connections = 0
        self.refused = 0  # connections closed unopened: too many in their handshake at once
        self.overflows = 0  # pages dropped because their queue would overflow
        self._pending = 0  # connections accepted whose handshake request has not come yet
        self._on_frame = on_frame
        self._on_peer = on_peer
        self._peer: _Peer | None = None  # the page the player's audio goes to
        self._conn_numbers = itertools.count(1)  # next() is atomic: connections are numbered once
        self._lock = threading.Lock()  # the peer and its queue, shared with send()'s threads
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._server: Any = None
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(ready, failure), name="rtvoice-mic-link", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """Where the page connects (with ``?token=``)."""
        return f"ws://127.0.0.1:{self.port}/mic"

    @property
    def connected(self) -> bool:
        return self._peer is not None

    @property
    def conn(self) -> int | None:
        """The number of the page connection :meth:`send` uses now (None: no page)."""
        peer = self._peer
        return None if peer is None else peer.conn

    def send(self, header: dict[str, Any], payload: bytes = b"", conn: int | None = None) -> bool:
        """Queue a message for the page (any thread; never blocks). False when no page is
        connected (or, with ``conn``, when that is not the connection in use), or the page was
        dropped because its queue would overflow (see the class docstring)."""
        peer = self._peer
        if peer is None or conn is not None and peer.conn != conn:
            return False
        message = self._encode(header, payload)
        with self._lock:
            if peer.closed:
                return False
            if peer.queued + len(message) > self.MAX_QUEUED_BYTES:
                peer.closed = True
                self.overflows += 1
                if self._peer is peer:
                    self._peer = None
                overflow = True
            else:
                peer.queue.append(message)
                peer.queued += len(message)
                overflow = False
        try:
            self._loop.call_soon_threadsafe(peer.abort if overflow else peer.wake.set)
        except RuntimeError:  # the link is closed
            return False
        if overflow:
            log.warning("audio link: page connection %d stopped reading (%d bytes queued): dropped; "
                        "the player's audio goes through Jupyter until a page connects again", peer.conn, peer.queued)
            return False
        return True

    @staticmethod
    def _encode(header: dict[str, Any], payload: bytes = b"") -> bytes:
        head = json.dumps(header, separators=(",", ":")).encode()
        return struct.pack("<H", len(head)) + head + payload

    def close(self) -> None:
        """Close every connection and the listening socket; wait for the thread. Idempotent."""
        if self._stop is not None and self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(timeout=10)

    # -- the link's thread ---------------------------------------------------------------------

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # reported to the constructor (or lost at interpreter exit)
            failure.append(exc)
            ready.set()
        finally:
            self._loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        link = self

        class Guarded(ServerConnection):
            """Counts connections until their handshake request came; over MAX_PENDING: closed."""

            waiting = False

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                if link._pending >= link.MAX_PENDING:
                    link.refused += 1
                    if link.refused == 1 or link.refused % 100 == 0:
                        log.warning("audio link: %d connections closed unopened so far (more than %d at once "
                                    "were in their handshake)", link.refused, link.MAX_PENDING)
                    transport.abort()
                    return
                link._pending += 1
                self.waiting = True

            def request_came(self) -> None:
                if self.waiting:
                    self.waiting = False
                    link._pending -= 1

            def connection_lost(self, exc: Exception | None) -> None:
                self.request_came()
                super().connection_lost(exc)

        # No compression: PCM barely compresses, and deflate would cost CPU on both sides.
        async with serve(self._handle, "127.0.0.1", 0, process_request=self._authorize, compression=None,
                         max_size=2 ** 16, open_timeout=self.OPEN_TIMEOUT_S, create_connection=Guarded,
                         logger=_ws_logger) as server:
            self._server = server
            ready.set()
            await self._stop.wait()
            server.close()

    def _authorize(self, connection: Any, request: Any) -> Any:
        connection.request_came()
        token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return connection.respond(403, "bad token\n")
        if self.connections >= self.MAX_PAGES:
            log.warning("audio link: refused a page connection: %d are open already", self.connections)
            return connection.respond(503, "too many page connections\n")
        return None

    async def _handle(self, connection: Any) -> None:
        self.connections += 1
        conn = next(self._conn_numbers)
        try:
            await connection.send(self._encode({"type": "hello", "key": self.key, "conn": conn}))
        except ConnectionClosed:
            self.connections -= 1
            return
        peer = _Peer(conn, connection)
        with self._lock:
            previous, self._peer = self._peer, peer
        if previous is not None:
            log.warning("audio link: page connection %d replaces connection %d for the player's audio "
                        "(another view of this widget, or a reloaded page)", conn, previous.conn)
        writer = asyncio.create_task(peer.write(self._lock))
        try:
            if self._on_peer is not None:
                self._on_peer(conn)
            async for message in connection:
                if not isinstance(message, bytes) or len(message) <= self.HEADER.size \
                        or (len(message) - self.HEADER.size) % 2:
                    self.rejected += 1
                    continue
                t, sent, stream, seq = self.HEADER.unpack_from(message)
                self._on_frame({"type": "audio", "stream": stream, "seq": seq, "t": t, "sent": sent, "via": "link"},
                               message[self.HEADER.size:])
        except ConnectionClosed:
            pass  # the page went away (reload, closed tab): it reconnects if it comes back
        finally:
            writer.cancel()
            self.connections -= 1
            with self._lock:
                peer.closed = True
                peer.queue.clear()
                if self._peer is peer:
                    self._peer = None


class _Peer:
    """One authorised page connection and its outgoing queue (bytes counted in ``queued``), which
    its own task :meth:`write` drains; ``queue``/``queued``/``closed`` are guarded by the link's lock."""

    def __init__(self, conn: int, connection: Any) -> None:
        self.conn = conn
        self.connection = connection
        self.queue: deque[bytes] = deque()
        self.queued = 0
        self.closed = False
        self.wake = asyncio.Event()

    async def write(self, lock: threading.Lock) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while True:
                    with lock:
                        if not self.queue:
                            break
                        message = self.queue[0]
                    await self.connection.send(message)  # waits while the page's socket is full
                    with lock:
                        if self.queue:
                            self.queue.popleft()
                            self.queued -= len(message)
        except ConnectionClosed:
            pass

    def abort(self) -> None:
        """Drop the connection now (the link's thread): a page that stopped reading gets no closing handshake."""
        self.connection.transport.abort()

    def close(self) -> None:
        """Close the connection (any thread), as the page going away would."""
        loop = self.connection.loop
        loop.call_soon_threadsafe(lambda: loop.create_task(self.connection.close()))
