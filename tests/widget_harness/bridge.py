"""Test transport for the widget: real ipywidgets comm messages without a Jupyter server.

- :class:`CommRecorder` installs itself as ``comm.create_comm`` (the hook ipykernel itself uses),
  so every widget created inside ``with CommRecorder() as rec:`` gets a comm whose outgoing
  messages (``comm_open`` with the full state, ``update``, ``custom`` + buffers) are recorded, and
  whose incoming side is the real ipywidgets handler: :meth:`CommRecorder.browser_send` delivers
  a custom message with binary buffers exactly as the kernel would.
- :class:`BrowserBridge` additionally forwards those messages to a page over a WebSocket and
  feeds the page's messages back into the comm, so the widget's real JS (``harness.js`` + the
  widget ESM) runs in real Chromium against a real kernel-side ``VoiceChat``.
- :func:`serve_static` serves this folder on 127.0.0.1 (port 0) for the page.

Nothing here imitates rtvoice_widget code: it stands in for Jupyter's transport only.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import time
import json
import threading
from pathlib import Path
from typing import Any

import comm
from comm.base_comm import BaseComm
from websockets.asyncio.server import serve

HERE = Path(__file__).resolve().parent


class _RecordingComm(BaseComm):
    def __init__(self, recorder: "CommRecorder", **kwargs: Any) -> None:
        self._recorder = recorder
        super().__init__(**kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        self._recorder._outgoing(self, msg_type, data, [bytes(b) for b in buffers or ()])


class CommRecorder:
    """Records every message widgets send to the front end while installed."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any, list[bytes]]] = []
        self.comms: list[_RecordingComm] = []
        self.widget_comms: set[str] = set()
        self._lock = threading.Lock()
        self._saved = None

    def __enter__(self) -> "CommRecorder":
        self._saved = comm.create_comm
        comm.create_comm = self._create
        return self

    def __exit__(self, *exc: object) -> None:
        comm.create_comm = self._saved

    def _create(self, **kwargs: Any) -> _RecordingComm:
        c = _RecordingComm(self, **kwargs)
        self.comms.append(c)
        return c

    def _is_widget(self, c: _RecordingComm, msg_type: str, data: Any) -> bool:
        """Only the anywidget's own comm is recorded (not its Layout child widget's)."""
        if msg_type == "comm_open" and isinstance(data, dict) and "_esm" in data.get("state", {}):
            self.widget_comms.add(c.comm_id)
        return c.comm_id in self.widget_comms

    def _outgoing(self, c: _RecordingComm, msg_type: str, data: Any, buffers: list[bytes]) -> None:
        with self._lock:
            if self._is_widget(c, msg_type, data):
                self.messages.append((msg_type, data, buffers))

    def custom(self, type_: str | None = None) -> list[tuple[dict, list[bytes]]]:
        """Custom messages sent to the browser (optionally of one ``type``), with their buffers."""
        with self._lock:
            msgs = list(self.messages)
        out = []
        for msg_type, data, buffers in msgs:
            if msg_type == "comm_msg" and data.get("method") == "custom":
                content = data["content"]
                if type_ is None or content.get("type") == type_:
                    out.append((content, buffers))
        return out

    def state_updates(self) -> list[dict]:
        with self._lock:
            msgs = list(self.messages)
        return [data["state"] for t, data, _ in msgs if t == "comm_open" or (t == "comm_msg" and data.get("method") == "update")]

    @staticmethod
    def deliver(widget_comm: BaseComm, data: dict, buffers: list[bytes] | None = None) -> None:
        """Hand a front-end message to the kernel side, as ipykernel's comm manager does."""
        widget_comm.handle_msg({"content": {"comm_id": widget_comm.comm_id, "data": data},
                                "buffers": [memoryview(b) for b in buffers or ()]})

    def browser_send(self, widget: Any, content: dict, buffers: list[bytes] | None = None) -> None:
        """A ``model.send(content, callbacks, buffers)`` from the browser."""
        self.deliver(widget.comm, {"method": "custom", "content": content}, buffers)

    def browser_set(self, widget: Any, **state: Any) -> None:
        """A ``model.set(...); model.save_changes()`` from the browser."""
        self.deliver(widget.comm, {"method": "update", "state": state, "buffer_paths": []})


class BrowserBridge(CommRecorder):
    """A :class:`CommRecorder` that also talks to a page over a WebSocket (127.0.0.1, port 0).

    The page (``harness.js``) gets the recorded ``comm_open`` first, then every later message;
    its messages are delivered to the widget's comm on the bridge thread. :meth:`hold` keeps
    custom messages of some types from the page until :meth:`release` (a slow Jupyter, for one
    kind of message).
    """

    def __init__(self) -> None:
        super().__init__()
        self.port = 0
        self.page_errors: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Any = None
        self._queue: asyncio.Queue | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._held_types: set[str] = set()
        self._held: list[tuple[str, Any, list[bytes]]] = []

    def hold(self, *types: str) -> None:
        """Keep custom messages of these types from the page (they are recorded) until :meth:`release`."""
        with self._lock:
            self._held_types.update(types)

    def release(self, *types: str) -> None:
        """Send the held messages of these types (default: all) to the page, in the order they
        were sent, and stop holding those types."""
        with self._lock:
            chosen = set(types) or set(self._held_types)
            out = [m for m in self._held if m[1]["content"]["type"] in chosen]
            self._held = [m for m in self._held if m[1]["content"]["type"] not in chosen]
            self._held_types -= chosen
            queue, loop = self._queue, self._loop
            if queue is not None and loop is not None:
                for message in out:
                    loop.call_soon_threadsafe(queue.put_nowait, message)

    def _is_held(self, msg_type: str, data: Any) -> bool:
        return (msg_type == "comm_msg" and isinstance(data, dict) and data.get("method") == "custom"
                and isinstance(data.get("content"), dict) and data["content"].get("type") in self._held_types)

    def __enter__(self) -> "BrowserBridge":
        super().__enter__()
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def main() -> None:
                self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None)
                self.port = self._server.sockets[0].getsockname()[1]
                started.set()
                await self._server.wait_closed()

            loop.run_until_complete(main())
            loop.close()

        self._thread = threading.Thread(target=run, name="widget-harness-bridge", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        if self._thread is not None:
            self._thread.join(5)
        super().__exit__(*exc)

    async def _handle(self, conn: Any) -> None:
        # One queue and one writer per page keep every header next to its buffers, in order.
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            for message in self.messages:
                if not self._is_held(message[0], message[1]):  # held ones wait in _held already
                    queue.put_nowait(message)
            self._conn, self._queue = conn, queue
        writer = asyncio.get_running_loop().create_task(self._write(conn, queue))
        header: dict | None = None
        buffers: list[bytes] = []
        try:
            async for frame in conn:
                if isinstance(frame, str):
                    header, buffers = json.loads(frame), []
                else:
                    buffers.append(frame)
                if header is not None and len(buffers) == header.get("nbuf", 0):
                    h, header = header, None
                    widget_comm = next((c for c in self.comms if c.comm_id in self.widget_comms), None)
                    if h.get("msg_type") == "comm_msg" and widget_comm is not None:
                        try:
                            self.deliver(widget_comm, h["data"], buffers)
                        except Exception as exc:  # surfaced by the test, never swallowed
                            self.page_errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.cancel()

    @staticmethod
    async def _write(conn: Any, queue: asyncio.Queue) -> None:
        while True:
            msg_type, data, buffers = await queue.get()
            await conn.send(json.dumps({"msg_type": msg_type, "data": data, "nbuf": len(buffers)}, default=str))
            for b in buffers:
                await conn.send(b)

    def _outgoing(self, c: _RecordingComm, msg_type: str, data: Any, buffers: list[bytes]) -> None:
        with self._lock:
            if not self._is_widget(c, msg_type, data):
                return
            self.messages.append((msg_type, data, buffers))
            if self._is_held(msg_type, data):
                self._held.append((msg_type, data, buffers))
                return
            queue, loop = self._queue, self._loop
            if queue is not None and loop is not None:
                loop.call_soon_threadsafe(queue.put_nowait, (msg_type, data, buffers))


def wait_until(predicate, timeout: float = 10.0, message: str = "condition", interval: float = 0.01):
    """Poll ``predicate`` until it returns something truthy (returned), else fail naming ``message``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def serve_static(directory: Path = HERE) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``directory`` on 127.0.0.1 (free port) from a daemon thread; returns (server, base URL)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="widget-harness-http", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
