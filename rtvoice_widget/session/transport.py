"""The session's WebSocket connection: websockets' asyncio client with a short path for audio.

websockets' :class:`~websockets.asyncio.client.ClientConnection` hands each received message to
a consumer task (an assembler, a future, a task wake-up per message), and a message sent from
another thread first needs a wake-up of the event loop (``call_soon_threadsafe`` writes to the
loop's self-pipe) and a task there. At 50 audio frames each way per second these wake-ups cost
more CPU than the JSON and base64 themselves (``bench/bench_session.py``).
:class:`RealtimeConnection` keeps websockets for everything it does well (handshake, TLS,
proxies, pings, closing, size limits, frame parsing and masking, its sans-I/O protocol) and adds
two shortcuts:

* Received messages go to :attr:`~RealtimeConnection.on_message` right where the transport
  delivers them (``data_received``, on the loop thread), in order, with no consumer task.
* :meth:`~RealtimeConnection.write_now` frames a text message and writes it to the socket from
  the *calling* thread, without waking the loop, when that is safe: a plain TCP connection (with
  TLS the encryption state lives in the transport, so ``wss://`` always takes the loop), open,
  and with nothing waiting in the transport's buffer. Everything that touches the protocol state
  or writes to the socket (parsing received data, websockets' framing and writes, ``write_now``) holds
  :attr:`~RealtimeConnection.wire_lock`, so frames never interleave on the wire.

:func:`open_connection` opens one to an endpoint the way the session does (no compression, the
frame cap, a logger that never prints the key); :func:`event_text` is the one JSON encoding of a
client event; :func:`describe_connect_error` / :func:`close_info` put a failure into words.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidState, InvalidStatus, InvalidURI
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.protocol import State

if TYPE_CHECKING:
    from ..backends import Endpoint

__all__ = ["FATAL_STATUSES", "RealtimeConnection", "close_info", "describe_connect_error", "event_text",
           "open_connection"]

#: Handshake statuses that no retry will fix.
FATAL_STATUSES = frozenset({400, 401, 403, 404})
# websockets logs handshake headers (the Authorization / api-key header included) at DEBUG level.
# Its connections get this logger, pinned at INFO, so turning on DEBUG logging in a notebook
# can never print the key.
_wire_logger = logging.getLogger("rtvoice_widget.session.websocket")
_wire_logger.setLevel(logging.INFO)
# One encoder for every event: json.dumps(..., separators=...) builds a new one per call.
_encode_json = json.JSONEncoder(separators=(",", ":")).encode


class RealtimeConnection(ClientConnection):
    """A websockets client connection that delivers messages inline and can write from any thread.

    Pass as ``create_connection=RealtimeConnection`` to ``websockets.asyncio.client.connect``.
    Set :attr:`on_message` (called on the loop thread with each complete message, ``str`` for
    text and ``bytes`` for binary) and call :meth:`deliver` for what arrived before it was set;
    wait with ``wait_closed()`` instead of iterating. ``recv()`` and ``async for`` get nothing.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Reentrant: websockets writes (send_data) from inside data_received, which holds it too.
        self.wire_lock = threading.RLock()
        self.on_message: Callable[[str | bytes], Any] | None = None
        self._inbox: deque[str | bytes] = deque()
        self._fragments: list[Frame] = []
        # A duplicate of the plain TCP socket (None with TLS or once closed): writes from other
        # threads go to it directly, never through the transport (which is loop-only).
        self._socket: socket.socket | None = None
        # Bytes write_now could not write at once; the loop writes them before anything else.
        self._rest: bytes | None = None
        self._eof = False  # an end-of-stream marker write_now took from the protocol

    # -- receiving (loop thread) ---------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        raw = transport.get_extra_info("socket")
        if raw is not None and transport.get_extra_info("sslcontext") is None:
            self._socket = raw.dup()

    def connection_lost(self, exc: Exception | None) -> None:
        with self.wire_lock:
            sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        with self.wire_lock:
            super().data_received(data)
        self.deliver()

    def process_event(self, event: Any) -> None:
        # Data frames after the handshake are ours (assembled here, delivered by deliver());
        # the handshake response and control frames stay websockets' business.
        if self.response is None or not isinstance(event, Frame) or event.opcode not in DATA_OPCODES:
            super().process_event(event)
            return
        if event.opcode is Opcode.CONT:
            self._fragments.append(event)
        else:
            self._fragments = [event]
        if not event.fin:
            return
        frames, self._fragments = self._fragments, []
        data = frames[0].data if len(frames) == 1 else b"".join(bytes(f.data) for f in frames)
        if frames[0].opcode is Opcode.TEXT:
            try:
                self._inbox.append(str(data, "utf-8"))
                return
            except UnicodeDecodeError:
                pass  # the receiver reports it as a frame it cannot read
        self._inbox.append(bytes(data))

    def deliver(self) -> None:
        """Hand every message received so far to :attr:`on_message`, in order."""
        handler, inbox = self.on_message, self._inbox
        if handler is None:
            return
        while inbox:
            handler(inbox.popleft())

    # -- writing ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def send_context(self, *, expected_state: State = State.OPEN) -> AsyncIterator[None]:
        # websockets frames a message into the protocol's buffer in the caller's block and
        # writes that buffer afterwards (send_data): a write_now from another thread in between
        # would put this frame on the wire ahead of its own. Held across both; the loop thread
        # owns the RLock meanwhile (its own callbacks re-enter it), write_now's callers only try it.
        with self.wire_lock:
            async with super().send_context(expected_state=expected_state):
                yield

    def send_data(self) -> None:
        # Every write websockets makes (sends, pongs, close frames) goes through here.
        with self.wire_lock:
            self._write_rest()
            super().send_data()

    def _write_rest(self) -> None:
        rest, self._rest = self._rest, None
        if rest:
            self.transport.write(rest)
        if self._eof:  # as websockets' send_data() does with the marker
            self._eof = False
            if self.transport.can_write_eof():
                self.transport.write_eof()
            else:
                self.transport.close()

    def can_write_now(self) -> bool:
        """Whether :meth:`write_now` may write from this thread now (hold :attr:`wire_lock`)."""
        return (self._socket is not None and self._rest is None and not self._eof
                and self.protocol.state is State.OPEN
                and not self.transport.get_write_buffer_size())

    def write_now(self, text: str) -> bool:
        """Send ``text`` as one text frame from the calling thread, holding :attr:`wire_lock`.

        Returns False when the connection is no longer open or the socket is broken: nothing of
        ``text`` was sent (the caller keeps it for the next connection). What the socket does
        not take at once is handed to the loop, ahead of any later write.
        """
        try:
            self.protocol.send_text(text.encode())
        except InvalidState:
            return False
        chunks = self.protocol.data_to_send()
        if b"" in chunks:  # an end-of-stream marker: only the loop can half-close the TCP
            index = chunks.index(b"")
            self._rest = b"".join(chunks[:index])
            self._eof = True
            self._wake_loop()
            return True
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            sent = self._socket.send(data) if self._socket is not None else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the connection is broken: the loop will find out and close it
            self._socket = None
            return False
        if sent < len(data):
            self._rest = data[sent:]
            self._wake_loop()
        return True

    def _wake_loop(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.send_data)
        except RuntimeError:
            pass  # the loop is closed, and the connection with it


async def open_connection(endpoint: "Endpoint", *, max_frame_bytes: int, open_timeout: float) -> RealtimeConnection:
    """Open a :class:`RealtimeConnection` to ``endpoint`` (its URL and headers)."""
    return await connect(
        endpoint.url,
        additional_headers=dict(endpoint.headers),
        max_size=max_frame_bytes,
        open_timeout=open_timeout,
        # Base64 PCM barely compresses; deflate would only cost CPU on both ends.
        compression=None,
        logger=_wire_logger,
        create_connection=RealtimeConnection,
    )


def event_text(event: dict, pcm16: bytes | None) -> str:
    """The JSON text of a client event (``pcm16``: the audio of an append, else None)."""
    if pcm16 is not None and len(event) == 2:
        # append_audio's {type, audio}, 50 per second: base64 needs no JSON escaping, so skip
        # the encoder's scan of the ~1.3 kB string.
        return '{"type":"input_audio_buffer.append","audio":"' + event["audio"] + '"}'
    return _encode_json(event)


def describe_connect_error(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"handshake rejected with HTTP {exc.response.status_code}"
    if isinstance(exc, asyncio.TimeoutError):
        return "handshake timed out"
    if isinstance(exc, InvalidURI):
        return "invalid WebSocket URL"  # the exception text would repeat the URL, token and all
    return f"{type(exc).__name__}: {exc}"


def close_info(ws: RealtimeConnection) -> str:
    code = ws.close_code
    if code is None:
        return "connection dropped without a close frame"
    return f"close code {code}" + (f" ({ws.close_reason})" if ws.close_reason else "")
