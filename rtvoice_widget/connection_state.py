"""What the widget's status traits say as the session's log tells about its connection.

Pure: :func:`status_change` maps a log row to trait updates; :func:`uses_local_server` reads the
session options. The widget applies them (see ``VoiceChat._track_state``).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["READY_TIMEOUT_S", "SPEECH_ENDED", "status_change", "uses_local_server"]

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
