"""Assistant audio and flushes on their way to the page's player, by the quicker open road.

Over the audio link when the page holds one open (fewer hops, no main thread), else through
Jupyter. Neither blocks the session thread that calls :meth:`PlayerRoute.send`: the link queues
for its own thread (:meth:`AudioLink.send <rtvoice_widget.audio_link.AudioLink.send>`, bounded), and
a comm message from a thread other than the kernel's main one is queued for ipykernel's IOPub
thread. Each transport keeps its own order; the ``player_link`` marker keeps it across them:
it goes through Jupyter after everything sent there before the first message over link
connection ``conn`` (see :class:`~rtvoice_widget.audio_link.AudioLink`, "hand-over").
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from rtvoice_widget.audio_link import AudioLink

__all__ = ["PlayerRoute"]


class PlayerRoute:
    """``send_jupyter(header, buffers)`` sends a custom message to the page (the widget's
    ``send``); ``link`` is the audio link, or None when it is turned off."""

    def __init__(self, send_jupyter: Callable[[dict[str, Any], list[bytes] | None], None],
                 link: AudioLink | None) -> None:
        self._send_jupyter = send_jupyter
        self._link = link
        self._lock = threading.Lock()  # one transport decision at a time
        self._conn: int | None = None  # the link connection the page was told to play from

    def audio(self, item_id: str, response_id: str, pcm16: bytes) -> None:
        self.send({"type": "audio", "item_id": item_id, "response_id": response_id}, pcm16)

    def flush(self, item_id: str | None) -> None:
        self.send({"type": "flush", "item_id": item_id})

    def send(self, header: dict[str, Any], pcm16: bytes | None = None) -> None:
        with self._lock:
            link = self._link
            conn = link.conn if link is not None else None
            if conn is not None:
                self._hand_to(conn)
                if link.send(header, pcm16 or b"", conn):
                    return
            self._send_jupyter(header, [pcm16] if pcm16 is not None else None)

    def link_opened(self, conn: int) -> None:
        """The link's thread, as a page connects: tell it now, so link audio never waits for it."""
        with self._lock:
            self._hand_to(conn)

    def _hand_to(self, conn: int) -> None:
        # Holds _lock: the marker follows everything sent through Jupyter before it.
        if conn != self._conn:
            self._send_jupyter({"type": "player_link", "conn": conn}, None)
            self._conn = conn
