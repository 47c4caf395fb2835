"""The server's side of the wire format: parse client events, build ``error`` events.

Client events are checked against the official SDK models (``openai.types.realtime``) in
pydantic's strict mode, one model per ``type``, so a wrong field type is reported with the same
``param`` path the hosted API would name, and nothing is coerced silently ("5" is not 5).
"""

from __future__ import annotations

import itertools
import json
import typing
from functools import lru_cache

from ..errors import ProtocolError
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


@lru_cache(maxsize=1)
def _adapters() -> dict:
    from openai.types.realtime import RealtimeClientEvent
    from pydantic import TypeAdapter

    union = typing.get_args(RealtimeClientEvent)[0]  # Annotated[Union[...], discriminator]
    adapters = {}
    for model in typing.get_args(union):
        (event_type,) = typing.get_args(model.model_fields["type"].annotation)
        adapters[event_type] = TypeAdapter(model)
    return adapters


def _param_of(location: tuple) -> str:
    # pydantic names union members by class in error locations; the API's `param` is the JSON path.
    parts = [str(p) for p in location if not (isinstance(p, str) and p[:1].isupper())]
    return ".".join(parts)


def parse_client_event(text: str | bytes) -> dict:
    """Parse and validate one client frame; raise :class:`ProtocolError` describing what is wrong."""
    try:
        event = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"Invalid JSON: {exc}", code="invalid_json") from None
    if not isinstance(event, dict):
        raise ProtocolError("A client event must be a JSON object", code="invalid_json")
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise ProtocolError("Missing or non-string 'type'", code="missing_required_parameter", param="type", event_id=event_id)
    adapter = _adapters().get(event_type)
    if adapter is None:
        raise ProtocolError(f"Unknown event type {event_type!r}", code="invalid_event_type", param="type", event_id=event_id)
    from pydantic import ValidationError

    try:
        adapter.validate_python(event, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param_of(first["loc"])
        raise ProtocolError(
            f"Invalid '{param}' in {event_type}: {first['msg']}",
            code="missing_required_parameter" if first["type"] == "missing" else "invalid_type",
            param=param,
            event_id=event_id,
        ) from None
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
