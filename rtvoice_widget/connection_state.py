"""What the widget's status traits say as the session's log tells about its connection.

:func:`status_change` maps a log row to trait updates and :func:`uses_local_server` reads the
session options (both pure; the widget applies them, see ``VoiceChat._track_state``);
:class:`ReadyGate` decides when the mic may listen; :func:`start_local_server` starts the
embedded server with its loading stages shown.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

__all__ = ["LOCAL_FALLBACK_NOTICE", "READY_TIMEOUT_S", "SPEECH_ENDED", "ReadyGate", "start_local_server",
           "status_change", "uses_local_server"]

LOCAL_FALLBACK_NOTICE = ("No OPENAI_API_KEY found: using the offline local backend (small models "
                         "on this machine). Set OPENAI_API_KEY and reconnect to talk to OpenAI.")

# Events after which the user is no longer speaking, as far as the server's VAD is concerned.
SPEECH_ENDED = frozenset({"input_audio_buffer.speech_stopped", "input_audio_buffer.cleared",
                          "input_audio_buffer.committed", "connection.lost", "connection.closed"})
# After session.created, how long to wait for session.updated before listening anyway. The local
# server confirms only once its models are loaded: seconds when warm, tens of seconds on a busy
# machine's first start. A remote server answers at once; one that never does is broken.
READY_TIMEOUT_S = {"local": 120.0, "remote": 10.0}


def status_change(type_: str, text: str | None, status: str, notice: str) -> dict[str, Any] | None:
    """The trait updates (``status``, ``notice``, ``error``) a log row of type ``type_`` makes,
    in the order to set them, given the current ``status`` and ``notice``; None for none.
    ``"ready": False`` first means the session is over (not ready any more)."""
    if type_ == "connection.restored" or (type_ == "session.created" and status == "reconnecting"):
        return {"status": "connected", "notice": ""}
    if type_ in ("connection.lost", "connection.reconnecting"):
        return {"status": "reconnecting",
                "notice": f"Connection lost ({text or 'socket closed'}); reconnecting\u2026"
                if type_ == "connection.lost" else notice}
    if type_ == "connection.failed" and status != "connecting":
        # notice "" : "reconnecting…" is over
        return {"ready": False, "notice": "", "error": text or "connection failed", "status": "error"}
    if type_ == "connection.closed" and status not in ("connecting", "error"):
        return {"ready": False, "status": "disconnected"}
    return None


def uses_local_server(session_args: dict[str, Any]) -> bool:
    """Whether connecting will start (or reuse) the embedded server: the rule of
    ``backends.resolve_endpoint`` for ``url=None``, read here to start it with progress (and
    word the wait); were it ever to disagree, the session starts the server itself."""
    if session_args.get("url") is not None:
        return False
    key = session_args.get("api_key") or os.environ.get("OPENAI_API_KEY")
    return session_args.get("backend") == "local" or (session_args.get("backend") == "auto" and not key)


def start_local_server(session: Any, progress: Callable[[str], None]) -> None:
    """Start (or join the start of) the embedded server, reporting its loading stages to
    ``progress``; a failure is logged in ``session``'s log as ``connection.failed`` and raised.

    The widget calls it before ``session.connect()`` (which then finds the server running)
    only so that the stages show.
    """
    from rtvoice_widget.server import ensure_local_server

    try:
        ensure_local_server(progress=progress)
    except Exception as exc:  # e.g. a native crash while loading: in the log too
        session.events.local("connection.failed", session.now_ms(), text=str(exc))
        raise


class ReadyGate:
    """Whether the mic may listen: the server confirmed the session (``session.updated``, on the
    session thread), or a fallback timer gave up waiting for that.

    ``show(ready)`` sets what the person sees (the widget's ``ready``, ``waiting_for`` cleared);
    ``is_ready()`` reads it. One lock orders the confirmation, the timer and a connection's end.
    """

    def __init__(self, show: Callable[[bool], None], is_ready: Callable[[], bool]) -> None:
        self._show = show
        self._is_ready = is_ready
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def set(self, ready: bool) -> None:
        """Ready (confirmed, or assumed) or not any more; stops the fallback timer."""
        with self._lock:
            timer, self._timer = self._timer, None
            self._show(ready)
        if timer is not None:
            timer.cancel()

    def wait(self, wait_s: float, on_wait: Callable[[], None], on_timeout: Callable[[], None]) -> None:
        """Unless already ready (the confirmation may have come first): ``on_wait()`` now and
        ``on_timeout()`` after ``wait_s`` if nothing else settled it first."""
        with self._lock:
            if not self._is_ready():
                on_wait()
                self._timer = threading.Timer(wait_s, on_timeout)
                self._timer.daemon = True
                self._timer.start()
