"""The mic link: a token-guarded WebSocket on 127.0.0.1 that carries the widget's audio.

Mic frames, assistant audio and flushes travel between the page's audio worker and a thread of
this kernel, skipping the page's main thread, the Jupyter server and the kernel's main thread
(see :class:`MicLink` for why and for the frame format). ``VoiceChat`` owns one per widget.
"""

from __future__ import annotations

import hmac
import json
import secrets
import struct
import threading
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed

__all__ = ["MicLink"]


class MicLink:
    """A WebSocket on 127.0.0.1 between the page's audio worker and the kernel, for audio only.

    Why: through Jupyter a mic frame waits for the page's main thread (busy rendering
    JupyterLab), the Jupyter server and the kernel's main thread (blocked while a cell runs);
    assistant audio and flushes wait for the Jupyter server and the page's main thread. This
    link skips them: the capture worklet hands frames to a dedicated worker that sends them
    here, and this server's own thread hands them to the widget (``session.send_audio``); the
    widget sends assistant audio and flushes back with :meth:`send`, and the worker feeds them to
    the playback worklet. It only works where the browser can reach the kernel's machine on
    127.0.0.1 (a local JupyterLab); elsewhere the page never connects and everything keeps going
    through Jupyter. One page connection at a time: the newest replaces the previous.

    Access needs ``token`` (random, sent to the page in a custom message, never in a trait, so
    it is not saved with the notebook). The page trusts the link only after it received
    ``{"type": "hello", "key"}`` on it with the ``key`` it got the same way: where the kernel is
    remote, 127.0.0.1 is the person's own machine, and mic audio must never go to whatever else
    listens on that port there. Binary frames, little-endian: float64 ``t`` (capture
    time of the frame's end, page clock, ms since the epoch), float64 ``sent`` (when the worker
    sent it, same clock), uint32 ``seq``, then 20 ms of 24 kHz PCM16. ``on_frame(content, pcm)``
    gets ``{"type": "audio", "seq", "t", "sent", "via": "link"}`` on this server's thread.
    Malformed frames are counted in ``rejected`` and dropped; the connection stays.
    Kernel -> page (:meth:`send`): uint16 length of a JSON header (``{"type": "audio",
    "item_id"}`` or ``{"type": "flush", "item_id"}``), the header, then the PCM16 payload.
    """

    HEADER = struct.Struct("<ddI")

    def __init__(self, on_frame: Callable[[dict[str, Any], bytes], None]) -> None:
        from websockets.sync.server import serve

        self.token = secrets.token_urlsafe(24)
        self.key = secrets.token_urlsafe(24)
        self.rejected = 0
        self.connections = 0
        self._on_frame = on_frame
        self._peer: Any = None  # the page's connection, once open
        self._send_lock = threading.Lock()  # a sync connection's send is not re-entrant
        # No compression: PCM barely compresses, and deflate would cost CPU on both sides.
        self._server = serve(self._handle, "127.0.0.1", 0, process_request=self._authorize,
                             compression=None, max_size=2 ** 16)
        self.port: int = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="rtvoice-mic-link", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Where the page connects (with ``?token=``)."""
        return f"ws://127.0.0.1:{self.port}/mic"

    def _authorize(self, connection: Any, request: Any) -> Any:
        token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return connection.respond(403, "bad token\n")
        return None

    @property
    def connected(self) -> bool:
        return self._peer is not None

    def send(self, header: dict[str, Any], payload: bytes = b"") -> bool:
        """Send to the page (any thread); False when no page is connected or the send failed."""
        peer = self._peer
        if peer is None:
            return False
        try:
            with self._send_lock:
                peer.send(self._encode(header, payload))
        except ConnectionClosed:
            return False
        return True

    @staticmethod
    def _encode(header: dict[str, Any], payload: bytes = b"") -> bytes:
        head = json.dumps(header, separators=(",", ":")).encode()
        return struct.pack("<H", len(head)) + head + payload

    def _handle(self, connection: Any) -> None:
        self.connections += 1
        try:
            connection.send(self._encode({"type": "hello", "key": self.key}))
        except ConnectionClosed:
            return
        self._peer = connection
        try:
            for message in connection:
                if not isinstance(message, bytes) or len(message) <= self.HEADER.size \
                        or (len(message) - self.HEADER.size) % 2:
                    self.rejected += 1
                    continue
                t, sent, seq = self.HEADER.unpack_from(message)
                self._on_frame({"type": "audio", "seq": seq, "t": t, "sent": sent, "via": "link"},
                               message[self.HEADER.size:])
        except ConnectionClosed:
            pass  # the page went away (reload, closed tab): it reconnects if it comes back
        finally:
            self.connections -= 1
            if self._peer is connection:
                self._peer = None

    def close(self) -> None:
        self._server.shutdown()
