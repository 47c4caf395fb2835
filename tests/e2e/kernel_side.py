"""Kernel-side instruments for the browser suite (imported inside the notebook's kernel).

- :class:`BrowserTap`: an extra ``on_msg`` listener on a widget that records what the browser
  really sent (mic frames with their capture stamps, played-ms reports), and, through the public
  ``chat.on("*", fn)``, every log row except audio appends, so tests can poll cheaply instead of
  rebuilding ``to_pandas()`` over thousands of appends. It observes; it does not replace or patch
  anything in ``VoiceChat``.
- :class:`ChunkedForwarder`: the seed's design as a baseline for the latency bench: the same mic
  frames, forwarded to a second server connection in 100 ms appends.
- :class:`DroppableRelay`: a TCP relay in front of a server, whose :meth:`~DroppableRelay.drop`
  cuts every live connection at once, as a network failure would, while new connections still go
  through. Hand-written (about 60 lines) because no maintained library offers "cut the live
  connections but keep listening" for a local socket.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit


def frame_hash(pcm: bytes) -> str:
    """Identifies a 20 ms frame by content, to find it again on the server side."""
    return hashlib.blake2b(pcm, digest_size=8).hexdigest()


class BrowserTap:
    """Records the browser -> kernel custom messages of one widget, with kernel receive times."""

    def __init__(self, widget) -> None:
        # mic frames, as they arrived (around a link hand-over some come both ways): stream, seq,
        # capture t (page clock, ms), sent (page clock, ms: when the front end sent it), via
        # ("link" or "jupyter"), recv (ms), bytes, hash
        self.frames: list[dict] = []
        # played reports: recv (ms), item_id, ms, flushed, and the browser's timing fields
        self.played: list[dict] = []
        self.controls: list[dict] = []
        self.rows: list[dict] = []  # log rows (not appends), as chat.on("*") delivers them
        widget.on_msg(self._on_msg)
        if hasattr(widget, "on"):
            widget.on("*", self._on_row)

    def _on_row(self, row: dict) -> None:
        if row.get("type") != "input_audio_buffer.append":
            self.rows.append({**row, "recv": time.time() * 1000})

    def types(self, source: str | None = None) -> list[str]:
        return [str(r["type"]) for r in self.rows if source is None or r.get("source") == source]

    def first(self, type_: str, match: dict | None = None) -> dict | None:
        """The first logged row of ``type_`` whose payload matches ``match`` ({"a.b": value})."""
        for r in self.rows:
            if r.get("type") == type_ and all(_dig(r.get("payload"), k) == v for k, v in (match or {}).items()):
                return r
        return None

    def _on_msg(self, _widget, content, buffers) -> None:
        now = time.time() * 1000
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "audio":
            pcm = bytes(buffers[0]) if buffers else b""
            # Through the widget's mic link the worker stamps when it sent; through Jupyter the
            # message header says when the page created the message.
            via = content.get("via", "jupyter")
            sent = content.get("sent") if via == "link" else _message_sent_ms()
            self.frames.append({"stream": content.get("stream", 0), "seq": content.get("seq"), "t": content.get("t"),
                                "sent": sent, "via": via,
                                "recv": now, "bytes": len(pcm), "hash": frame_hash(pcm)})
        elif kind == "played":
            self.played.append({"recv": now, "sent": _message_sent_ms(), "item_id": content.get("item_id"),
                                "ms": content.get("ms"), "flushed": bool(content.get("flushed")),
                                **{k: content.get(k) for k in _PLAYED_TIMING}})
        elif kind in ("control", "mic"):
            self.controls.append({"recv": now, **content})

    def played_ms(self, item_id: str) -> float:
        """The furthest position the browser reported for ``item_id`` (0 if none)."""
        return max((p["ms"] for p in self.played if p["item_id"] == item_id), default=0.0)

    def played_after(self, item_id: str, since_ms: float) -> list[float]:
        """Positions reported for ``item_id`` after kernel time ``since_ms`` (epoch ms)."""
        return [p["ms"] for p in self.played if p["item_id"] == item_id and p["recv"] > since_ms]

    def summary(self) -> dict:
        items: dict[str, float] = {}
        for p in self.played:
            items[p["item_id"]] = max(items.get(p["item_id"], 0.0), p["ms"])
        return {"frames": len(self.frames), "played": items,
                "flushed_reports": sum(p["flushed"] for p in self.played)}


_PLAYED_TIMING = ("t", "arrived_t", "started_t", "flush_arrived_t", "silent_t", "underruns", "output_latency_ms",
                  "base_latency_ms")


def _message_sent_ms() -> float | None:
    """When the front end created the Jupyter message being handled (its header ``date``).

    JupyterLab and Notebook 7 stamp each message with the page's wall clock (ms resolution) as
    they create it, which for a widget's ``model.send`` is the moment the widget sent it.
    """
    try:
        from ipykernel.kernelbase import Kernel

        date = Kernel.instance().get_parent("shell")["header"]["date"]
        return date.timestamp() * 1000
    except (ImportError, KeyError, TypeError, AttributeError):  # not in a kernel / no date: unknown
        return None


def _dig(value, dotted: str):
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


class ChunkedForwarder:
    """Forwards a widget's mic frames to ``url`` as ``input_audio_buffer.append`` of ``chunk_ms``.

    A second listener on the same frames, so the baseline sees exactly the audio the product
    path sees, in the same run (each frame once: copies that came the other way too are
    skipped). Sends from the kernel's main thread (where ``on_msg`` runs).
    """

    def __init__(self, widget, url: str, chunk_ms: int = 100) -> None:
        from websockets.sync.client import connect

        self._ws = connect(url)
        self._ws.recv(timeout=10)  # session.created
        self._chunk_bytes = 48 * chunk_ms
        self._pending = bytearray()
        self.sent = 0
        self._seen: set[tuple[int, int]] = set()  # (stream, seq) forwarded
        self._widget = widget
        widget.on_msg(self._on_msg)

    def _on_msg(self, _widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("type") != "audio" or not buffers:
            return
        key = (content.get("stream", 0), content.get("seq"))
        if key in self._seen:
            return
        self._seen.add(key)
        self._pending += bytes(buffers[0])
        while len(self._pending) >= self._chunk_bytes:
            chunk, self._pending = bytes(self._pending[:self._chunk_bytes]), self._pending[self._chunk_bytes:]
            self._ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(chunk).decode("ascii")}))
            self.sent += 1

    def close(self) -> None:
        self._widget.on_msg(self._on_msg, remove=True)
        self._ws.close()


class DroppableRelay:
    """Relays TCP from ``127.0.0.1:<port>`` to the host:port of ``target_url``; see module doc."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self._target = (parts.hostname, parts.port)
        self._parts = parts
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port: int | None = None
        self.drops = 0
        self.connections = 0
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name="e2e-relay", daemon=True)
        self._thread.start()
        started.wait(10)

    @property
    def url(self) -> str:
        """``target_url`` with the relay's port in place of the server's."""
        return urlunsplit(self._parts._replace(netloc=f"127.0.0.1:{self.port}"))

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve():
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            async with server:
                await server.serve_forever()

        try:
            self._loop.run_until_complete(serve())
        except asyncio.CancelledError:
            pass

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        server_r, server_w = await asyncio.open_connection(*self._target)
        self._writers.update((client_w, server_w))

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
        self._writers.difference_update((client_w, server_w))

    def drop(self) -> None:
        """Reset every live connection (RST, no close handshake), keep accepting new ones."""

        def cut():
            for writer in list(self._writers):
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    # SO_LINGER 0: the peer sees a reset, as with a real network failure.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(cut)
        self.drops += 1

    def close(self) -> None:
        self.drop()
        for task in asyncio.all_tasks(self._loop):
            self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(5)
