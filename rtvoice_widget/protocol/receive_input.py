"""Server events about conversation items and the user's input: handlers of
:meth:`ClientProtocol.receive <.core.ClientProtocol.receive>` (``(protocol, event, now_ms) ->
actions``; the event already checked whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .actions import Action
from .barge_in import barge_in

if TYPE_CHECKING:  # the handlers are the protocol's; it imports them
    from .core import ClientProtocol


def on_item_added(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    item = p.conversation.update(event.get("item") or {}, now_ms)
    if item is None:
        return []
    p.conversation.place(item.id, event.get("previous_item_id"))
    if item.role == "user" and item.type == "message":
        turn = p.turn_tracker.pending_for(item.id)
        turn.user_item_ms = turn.user_item_ms if turn.user_item_ms is not None else now_ms
        p.turn_tracker.user_text(item.id, item.text)
    return []


def on_item_done(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    item = p.conversation.update(event.get("item") or {}, now_ms)
    if item is not None and item.role == "user":
        p.turn_tracker.user_text(item.id, item.text)
    return []


def on_item_deleted(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    item_id = event.get("item_id")
    p.items.pop(item_id, None)
    p.playback.forget(item_id)
    return []


def on_item_truncated(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    # The server's word on where the item ends wins over what the client asked for.
    item = p.items.get(event["item_id"])
    if item is not None:
        item.truncated_at_ms = float(event["audio_end_ms"])
        item.error = None
        turn = p.turn_tracker.of(item.response_id)
        if turn is not None:
            turn.interrupted = True
            turn.truncated_at_ms = item.truncated_at_ms
    return []


def on_speech_started(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    actions = barge_in(p, now_ms) if p.barge_in else []
    p.turn_tracker.pending_for(event.get("item_id")).speech_started_ms = now_ms
    return actions


def on_speech_stopped(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    p.turn_tracker.pending_for(event.get("item_id")).speech_stopped_ms = now_ms
    return []


def on_committed(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    turn = p.turn_tracker.pending_for(event.get("item_id"))
    turn.committed_ms = now_ms
    return []


def on_cleared(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    p.turn_tracker.drop_uncommitted()
    return []


def on_transcription_delta(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    item = p.conversation.item(event["item_id"], now_ms)
    item.transcript_partial += event.get("delta") or ""
    p.turn_tracker.user_text(item.id, item.text)
    return []


def on_transcription_completed(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    item = p.conversation.item(event["item_id"], now_ms)
    item.transcript = event.get("transcript") or ""
    p.turn_tracker.user_text(item.id, item.text)
    return []


def on_transcription_failed(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    item = p.conversation.item(event["item_id"], now_ms)
    error = event.get("error") or {}
    item.error = error.get("message") if isinstance(error, Mapping) else str(error)
    return []
