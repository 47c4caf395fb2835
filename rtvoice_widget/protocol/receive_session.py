"""Server events about the session, rate limits and errors (an error explained by the client
event that caused it), and the table of every handler by GA type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .actions import Action
from .receive_input import (on_cleared, on_committed, on_item_added, on_item_deleted, on_item_done,
                            on_item_truncated, on_speech_started, on_speech_stopped,
                            on_transcription_completed, on_transcription_delta, on_transcription_failed)
from .receive_responses import (on_arguments_delta, on_arguments_done, on_audio_delta, on_content_part_added,
                                on_output_item_added, on_output_item_done, on_response_created, on_response_done,
                                on_transcript_delta, on_transcript_done)

if TYPE_CHECKING:  # the handlers are the protocol's; it imports them
    from .core import ClientProtocol

Handler = Callable[["ClientProtocol", dict[str, Any], float], list[Action]]


def on_session(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    session = event.get("session")
    if isinstance(session, Mapping):
        p.server_session = dict(session)
    return []


def on_rate_limits(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    p.rate_limits = event.get("rate_limits")
    return []


def on_error(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    error = event.get("error")
    error = dict(error) if isinstance(error, Mapping) else {"message": str(error)}
    error["t_ms"] = now_ms
    cause = p._ids.sent.get(error.get("event_id") or "")
    if cause is not None:
        error["cause"] = cause["type"]
        if cause["type"] == "conversation.item.truncate":
            # Recoverable: the item simply stays untruncated on the server.
            item = p.items.get(cause["item_id"])
            if item is not None:
                item.error = error.get("message")
                error["recovered"] = True
    p.errors.append(error)
    if len(p.errors) > p._max_errors:
        del p.errors[0]
    return []


def on_ignored(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    return []


#: One handler per GA server event type; a type not here is counted in ``ignored_types``.
HANDLERS: dict[str, Handler] = {
    "session.created": on_session,
    "session.updated": on_session,
    "conversation.item.added": on_item_added,
    "conversation.item.done": on_item_done,
    "conversation.item.deleted": on_item_deleted,
    "conversation.item.truncated": on_item_truncated,
    "conversation.item.retrieved": on_item_done,
    "input_audio_buffer.speech_started": on_speech_started,
    "input_audio_buffer.speech_stopped": on_speech_stopped,
    "input_audio_buffer.committed": on_committed,
    "input_audio_buffer.cleared": on_cleared,
    "input_audio_buffer.timeout_triggered": on_ignored,
    "conversation.item.input_audio_transcription.delta": on_transcription_delta,
    "conversation.item.input_audio_transcription.completed": on_transcription_completed,
    "conversation.item.input_audio_transcription.failed": on_transcription_failed,
    "conversation.item.input_audio_transcription.segment": on_ignored,
    "response.created": on_response_created,
    "response.output_item.added": on_output_item_added,
    "response.output_item.done": on_output_item_done,
    "response.content_part.added": on_content_part_added,
    "response.content_part.done": on_ignored,
    "response.output_audio.delta": on_audio_delta,
    "response.output_audio.done": on_ignored,
    "response.output_audio_transcript.delta": on_transcript_delta,
    "response.output_audio_transcript.done": on_transcript_done,
    "response.output_text.delta": on_transcript_delta,
    "response.output_text.done": on_transcript_done,
    "response.function_call_arguments.delta": on_arguments_delta,
    "response.function_call_arguments.done": on_arguments_done,
    "response.done": on_response_done,
    "rate_limits.updated": on_rate_limits,
    "output_audio_buffer.started": on_ignored,
    "output_audio_buffer.stopped": on_ignored,
    "output_audio_buffer.cleared": on_ignored,
    "error": on_error,
}
