"""What a well-formed GA Realtime event is, in both directions: one module for client and server.

- **Client events** (what the embedded server receives): :func:`check_client_event` validates
  with the official SDK's models (``openai.types.realtime``) in pydantic's strict mode, one
  model per ``type``, so a wrong field is reported with the ``param`` path the hosted API would
  name, and nothing is coerced silently ("5" is not 5). The server needs the SDK (the
  ``[local]`` extra installs it).
- **Server events** (what the client receives): :func:`normalize_event` renames a beta type to
  its GA name and refuses what is not an object with a string ``type``; :func:`checked_fields`
  refuses an event whose top-level fields have the wrong type or that lacks a field its type
  needs, so a client handler never sees a half-usable event and state is never half-applied.
  Unknown types are not refused here: the caller counts and skips them.

The client checks server events with the tables below, not with the SDK, on purpose: the SDK is
optional for the client (only the ``[local]`` extra has it); the client must take events from
any compatible server (OpenAI, Azure, older beta names) and refuse only what its handlers cannot
use; and audio deltas arrive tens of times a second on the session's hot path, where a table
look-up per field costs a fraction of a model validation (bench/bench_session.py). Where the SDK
is installed, :func:`sdk_check` validates a server event against it too: the tests run every
event the embedded server sends through it, and check that the tables ask for no field the SDK
does not require (``tests/test_event_schema.py``), so the two stay one definition.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from .errors import ProtocolError

__all__ = ["BETA_ALIASES", "FIELD_TYPES", "REQUIRED_FIELDS", "check_client_event", "checked_fields",
           "normalize_event", "sdk_adapters", "sdk_check"]

BETA_ALIASES: dict[str, str] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}

#: Types of the top-level server-event fields the client's handlers read; a server event whose
#: field has another type is refused whole (ProtocolError) rather than half-applied.
FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "item_id": str, "response_id": str, "call_id": str, "previous_item_id": str, "name": str,
    "delta": str, "transcript": str, "text": str, "arguments": str, "content_index": int,
    "audio_end_ms": (int, float), "item": Mapping, "response": Mapping, "part": Mapping,
}
#: Server-event fields without which an event of that type says nothing usable to the client.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "response.output_audio.delta": ("item_id", "delta"),
    "response.output_audio_transcript.delta": ("item_id",),
    "response.output_text.delta": ("item_id",),
    "response.output_audio_transcript.done": ("item_id",),
    "response.output_text.done": ("item_id",),
    "conversation.item.input_audio_transcription.delta": ("item_id",),
    "conversation.item.input_audio_transcription.completed": ("item_id",),
    "conversation.item.input_audio_transcription.failed": ("item_id",),
    "conversation.item.truncated": ("item_id", "audio_end_ms"),
    "conversation.item.deleted": ("item_id",),
    "response.content_part.added": ("item_id",),
    "response.function_call_arguments.delta": ("call_id",),
    "response.function_call_arguments.done": ("call_id",),
}


# -- server events, as the client takes them ------------------------------------------------------


def normalize_event(event: Any) -> dict[str, Any]:
    """``event`` with a beta type renamed to its GA name (a shallow copy when renamed).

    Raises :class:`ProtocolError` when ``event`` is not a dict with a string ``type``.
    """
    if not isinstance(event, Mapping):
        raise ProtocolError(f"a server event must be a JSON object, got {type(event).__name__}")
    kind = event.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"a server event needs a string 'type', got {kind!r}")
    ga = BETA_ALIASES.get(kind)
    if ga is None:
        return event if isinstance(event, dict) else dict(event)
    return {**event, "type": ga}


def checked_fields(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` without its null fields, once every field has the type its handler reads.

    Nulls read as absent (``previous_item_id: null`` is normal); wrong types and missing
    required fields raise :class:`ProtocolError`.
    """
    kind = event["type"]
    fields = event
    if None in event.values():
        fields = {k: v for k, v in event.items() if v is not None}
    for key, value in fields.items():
        expected = FIELD_TYPES.get(key)
        if expected is not None and not isinstance(value, expected):
            raise ProtocolError(f"{kind}: field {key!r} must be "
                                f"{getattr(expected, '__name__', expected)}, got {value!r:.80}")
    missing = [key for key in REQUIRED_FIELDS.get(kind, ()) if key not in fields]
    if missing:
        raise ProtocolError(f"{kind}: missing field(s) {missing}")
    return fields


# -- the SDK's models ---------------------------------------------------------------------------


@lru_cache(maxsize=2)
def sdk_adapters(direction: Literal["client", "server"]) -> dict:
    """``type`` → pydantic ``TypeAdapter`` of the SDK's model for the events a ``direction``
    side sends. Raises ImportError without the ``openai`` package."""
    from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
    from pydantic import TypeAdapter

    union = typing.get_args(RealtimeClientEvent if direction == "client" else RealtimeServerEvent)[0]
    adapters = {}
    for model in typing.get_args(union):  # Annotated[Union[...], discriminator] → the members
        for event_type in typing.get_args(model.model_fields["type"].annotation):
            adapters[event_type] = TypeAdapter(model)
    return adapters


def _param_of(location: tuple) -> str:
    # pydantic names union members by class in error locations; the API's `param` is the JSON path.
    parts = [str(p) for p in location if not (isinstance(p, str) and p[:1].isupper())]
    return ".".join(parts)


def sdk_check(event: dict, direction: Literal["client", "server"], *, strict: bool = False) -> None:
    """Validate ``event`` (one ``direction`` side sends) against the SDK's model for its type;
    raise :class:`ProtocolError` naming the first wrong field (its JSON path in ``param``)."""
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise ProtocolError("Missing or non-string 'type'", code="missing_required_parameter", param="type", event_id=event_id)
    adapter = sdk_adapters(direction).get(event_type)
    if adapter is None:
        raise ProtocolError(f"Unknown event type {event_type!r}", code="invalid_event_type", param="type", event_id=event_id)
    from pydantic import ValidationError

    try:
        adapter.validate_python(event, strict=strict)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param_of(first["loc"])
        raise ProtocolError(
            f"Invalid '{param}' in {event_type}: {first['msg']}",
            code="missing_required_parameter" if first["type"] == "missing" else "invalid_type",
            param=param,
            event_id=event_id,
        ) from None


def check_client_event(event: dict) -> None:
    """Validate a client event as the hosted API would (the SDK's model, strict)."""
    sdk_check(event, "client", strict=True)
