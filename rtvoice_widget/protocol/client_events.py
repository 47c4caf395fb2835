"""Client events: GA event dicts built from checked arguments.

Contract: every builder validates its arguments and raises ``ValueError`` / ``TypeError`` with a
clear message before anything is sent, because a malformed event comes back from the server as
an ``error`` far from its cause. :class:`EventIds` numbers the events and remembers what each
one targeted (never its audio), so that an ``error`` naming an ``event_id`` can be tied back to
it. What may be sent *when* (cost cap, tool follow-ups) is the protocol's concern, not this
module's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from ..pcm import encode_pcm16, pcm16_ms
from .turns import Turn

__all__ = ["EventIds", "check_id", "encode_audio", "response_fields", "summary_items",
           "truncate_fields", "user_audio_item", "user_text_item"]

# Keys ``create_response(**overrides)`` accepts, as in the GA ``response`` object; ``voice`` is a
# shortcut for ``audio.output.voice``.
_RESPONSE_KEYS = frozenset(
    {"audio", "conversation", "input", "instructions", "max_output_tokens", "metadata",
     "output_modalities", "prompt", "tool_choice", "tools", "voice"}
)


#: Events whose target ``EventIds`` remembers at most (errors name recent events).
_MAX_REMEMBERED = 256


class EventIds:
    """Event ids (``rtvw_<n>``) and the type and target of the last events sent."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.sent: dict[str, dict[str, Any]] = {}  # event_id -> {type, item_id} of what we built

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The event ``kind`` with ``fields`` and a fresh ``event_id``."""
        event_id = f"rtvw_{next(self._ids)}"
        event = {"type": kind, "event_id": event_id, **fields}
        # Remember what we sent (type and target only: no audio) so that an ``error`` naming
        # this event_id can be tied back to it.
        self.sent[event_id] = {"type": kind, "item_id": fields.get("item_id")}
        if len(self.sent) > _MAX_REMEMBERED:
            del self.sent[next(iter(self.sent))]
        return event


def check_id(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def encode_audio(pcm16: Any) -> tuple[str, float]:
    """Base64 of PCM16 bytes and their duration in ms; clear errors for anything else."""
    if not isinstance(pcm16, (bytes, bytearray, memoryview)):
        raise TypeError(f"pcm16 must be bytes, got {type(pcm16).__name__} "
                        "(use rtvoice_widget.audio.to_pcm16 for arrays)")
    size = pcm16.nbytes if isinstance(pcm16, memoryview) else len(pcm16)
    if size == 0:
        raise ValueError("pcm16 is empty")
    if size % 2:
        raise ValueError(f"pcm16 must hold whole 16-bit samples, got {size} bytes")
    return encode_pcm16(pcm16), pcm16_ms(size)


def user_text_item(text: str) -> dict[str, Any]:
    """A user text message item."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def user_audio_item(pcm16: bytes) -> dict[str, Any]:
    """A whole user audio message item (PCM16 24 kHz mono)."""
    audio, _ = encode_audio(pcm16)
    return {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]}


def response_fields(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The GA ``response`` object of ``response.create`` from ``create_response`` overrides."""
    unknown = sorted(set(overrides) - _RESPONSE_KEYS)
    if unknown:
        raise ValueError(f"create_response: unknown field(s) {unknown}; "
                         f"expected some of {sorted(_RESPONSE_KEYS)}")
    response = dict(overrides)
    if "voice" in response:
        voice = response.pop("voice")
        audio = dict(response.get("audio") or {})
        audio["output"] = {**(audio.get("output") or {}), "voice": voice}
        response["audio"] = audio
    if "output_modalities" in response:
        modalities = response["output_modalities"]
        response["output_modalities"] = (
            [modalities] if isinstance(modalities, str) else list(modalities)
        )
    if response.get("tools") is not None:
        from ..tools import tool_schema  # callables allowed, as in SessionConfig

        response["tools"] = [t if isinstance(t, Mapping) else tool_schema(t)
                             for t in response["tools"]]
    return response


def truncate_fields(item_id: str, content_index: int, audio_end_ms: float) -> dict[str, Any]:
    """Fields of ``conversation.item.truncate``; ``audio_end_ms`` rounded down to whole ms."""
    check_id("item_id", item_id)
    for name, value in (("content_index", content_index), ("audio_end_ms", audio_end_ms)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return {"item_id": item_id, "content_index": int(content_index), "audio_end_ms": int(audio_end_ms)}


def summary_items(turns: list[Turn], max_turns: int, max_chars: int) -> list[dict[str, Any]]:
    """Message items restoring the text of the last ``max_turns`` turns (see
    :meth:`ClientProtocol.conversation_summary`), oldest first."""
    for name, value in (("max_turns", max_turns), ("max_chars", max_chars)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    messages: list[tuple[str, str]] = []  # newest first
    budget = max_chars
    for turn in reversed(turns[-max_turns:] if max_turns else []):
        for role, text in (("assistant", turn.assistant_text), ("user", turn.user_text)):
            text = text.strip()
            if not text or budget <= 0:
                continue
            text = text[-budget:]
            budget -= len(text)
            messages.append((role, text))
    items = []
    for role, text in reversed(messages):
        kind = "input_text" if role == "user" else "output_text"
        items.append({"type": "message", "role": role, "content": [{"type": kind, "text": text}]})
    return items
