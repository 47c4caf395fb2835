"""The server's codec: client frames to validated events; ``error`` events, ids and audio payloads.

Client events are checked as the hosted API would check them by the module shared with the
client, :mod:`rtvoice_widget.event_schema` (the SDK's models, strict).
"""

from __future__ import annotations

import itertools
import json

from ..errors import ProtocolError
from ..event_schema import check_client_event
from ..pcm import decode_pcm16, encode_pcm16

__all__ = ["ProtocolError", "parse_client_event", "error_event", "decode_audio", "encode_audio", "new_id"]

_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    """A short process-unique id such as ``item_00000042``; the prefix names the object kind."""
    return f"{prefix}_{next(_counter):08d}"


def error_event(error: ProtocolError) -> dict:
    """The GA ``error`` server event for ``error``."""
    return {
        "type": "error",
        "event_id": new_id("event"),
        "error": {
            "type": error.type,
            "code": error.code,
            "message": error.message,
            "param": error.param,
            "event_id": error.event_id,
        },
    }


def parse_client_event(text: str | bytes) -> dict:
    """Parse and validate one client frame; raise :class:`ProtocolError` describing what is wrong."""
    try:
        event = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"Invalid JSON: {exc}", code="invalid_json") from None
    if not isinstance(event, dict):
        raise ProtocolError("A client event must be a JSON object", code="invalid_json")
    check_client_event(event)
    return event


def decode_audio(data: str, *, param: str, event_id: str | None) -> bytes:
    """Base64 PCM16 → bytes; odd lengths and non-base64 text are client errors."""
    try:
        return decode_pcm16(data)
    except ProtocolError as error:
        # The shared codec knows the fault; the client learns which field of which event.
        error.param, error.event_id = param, event_id
        raise error from None


#: Base64 of PCM16 bytes (the shared codec, under the name the engine uses).
encode_audio = encode_pcm16
