"""Server events as the client accepts them: beta names normalised, fields type-checked.

Contract: :func:`normalize_event` renames a beta type to its GA name and refuses what is not an
object with a string ``type``; :func:`checked_fields` refuses (:class:`ProtocolError`) an event
whose top-level fields have the wrong type or that lacks a field its type needs, so a handler
never sees a half-usable event and state is never half-applied. Unknown types are not refused
here: the caller counts and skips them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ProtocolError

__all__ = ["BETA_ALIASES", "checked_fields", "normalize_event"]

BETA_ALIASES: dict[str, str] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}


# Types of the top-level fields the handlers read; a server event whose field has another type
# is refused whole (ProtocolError) rather than half-applied.
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "item_id": str, "response_id": str, "call_id": str, "previous_item_id": str, "name": str,
    "delta": str, "transcript": str, "text": str, "arguments": str, "content_index": int,
    "audio_end_ms": (int, float), "item": Mapping, "response": Mapping, "part": Mapping,
}
# Fields without which an event of that type says nothing usable.
_REQUIRED: dict[str, tuple[str, ...]] = {
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
        expected = _FIELD_TYPES.get(key)
        if expected is not None and not isinstance(value, expected):
            raise ProtocolError(f"{kind}: field {key!r} must be "
                                f"{getattr(expected, '__name__', expected)}, got {value!r:.80}")
    missing = [key for key in _REQUIRED.get(kind, ()) if key not in fields]
    if missing:
        raise ProtocolError(f"{kind}: missing field(s) {missing}")
    return fields
