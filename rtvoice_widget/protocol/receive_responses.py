"""Server events about responses: their items, audio, transcripts, function-call arguments
and their end (usage, cost cap, tool follow-ups). Handlers of :meth:`ClientProtocol.receive
<.core.ClientProtocol.receive>` (``(protocol, event, now_ms) -> actions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError
from ..pcm import decode_pcm16, pcm16_ms
from .actions import Action, CostCapReached, PlayAudio, Send, TurnDone
from .conversation import FunctionCall
from .turns import Turn

if TYPE_CHECKING:  # the handlers are the protocol's; it imports them
    from .core import ClientProtocol


def on_response_created(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    response = event.get("response") or {}
    response_id = response.get("id") if isinstance(response.get("id"), str) else None
    p.turn_tracker.start(response_id).response_created_ms = now_ms
    # This response sees every tool output sent so far: no follow-up needed for them.
    p.conversation.awaiting_follow_up.clear()
    if response_id is not None:
        p.active_response_id = response_id
    if p.cost_capped:
        # Made by the server before our session.update (create_response=False) took effect.
        return [Send(p.cancel_response())]
    return []


def on_output_item_added(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    data = event.get("item") or {}
    response_id = event.get("response_id")
    item = p.conversation.update(data, now_ms, response_id)
    if item is None:
        return []
    item.role = item.role or ("assistant" if item.type == "message" else None)
    turn = p.turn_tracker.of(response_id)
    if turn is not None and item.id not in turn.assistant_item_ids:
        turn.assistant_item_ids.append(item.id)
    if item.type == "function_call" and item.call_id:
        p.calls.setdefault(item.call_id, FunctionCall(
            call_id=item.call_id, name=item.name or "", item_id=item.id,
            response_id=response_id))
        if turn is not None:
            turn.tool_calls.append(item.name or "")
    return []


def on_output_item_done(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    data = event.get("item") or {}
    item = p.conversation.update(data, now_ms, event.get("response_id"))
    if item is None or item.type != "function_call" or not item.call_id:
        return []
    # Servers that skip ``function_call_arguments.done`` still get their call run, once.
    call = p.calls.get(item.call_id)
    if call is None or call.arguments_done or item.status != "completed":
        return []
    return [p.conversation.finish_arguments(call, item.arguments or call.arguments, item.name)]


def on_content_part_added(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    part = event.get("part") or {}
    if part.get("type") in ("audio", "output_audio"):
        p.conversation.item(event["item_id"], now_ms).content_index = int(
            event.get("content_index", 0))
    return []


def on_audio_delta(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    try:
        pcm16 = decode_pcm16(event["delta"])
    except ProtocolError as exc:
        raise ProtocolError(f"{event['type']}: delta: {exc}") from exc
    item_id = event["item_id"]
    response_id = event.get("response_id")
    item = p.conversation.item(item_id, now_ms)
    item.role = item.role or "assistant"
    item.response_id = item.response_id or response_id
    content_index = int(event.get("content_index", item.content_index))
    item.content_index = content_index
    length = pcm16_ms(len(pcm16))
    item.audio_received_ms += length
    turn = p.turn_tracker.of(response_id)
    if turn is not None:
        turn.audio_ms += length
        if turn.first_audio_ms is None:
            turn.first_audio_ms = now_ms
    # After a barge-in the server may still send what it had in flight: do not play it.
    if item.flushed or response_id in p._interrupted_responses or not pcm16:
        return []
    p.playback.queued(item_id, response_id, length, now_ms)
    return [PlayAudio(item_id, response_id, content_index, pcm16)]


def on_transcript_delta(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    delta = event.get("delta") or ""
    item = p.conversation.item(event["item_id"], now_ms)
    item.role = item.role or "assistant"
    item.transcript_partial += delta
    turn = p.turn_tracker.of(event.get("response_id"))
    if turn is not None:
        if turn.first_transcript_ms is None:
            turn.first_transcript_ms = now_ms
        turn.assistant_text += delta
    return []


def on_transcript_done(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    item = p.conversation.item(event["item_id"], now_ms)
    final = event.get("transcript", event.get("text"))
    if isinstance(final, str):
        item.transcript = final
    sync_assistant_text(p, p.turn_tracker.of(event.get("response_id")))
    return []


def sync_assistant_text(p: ClientProtocol, turn: Turn | None) -> None:
    if turn is None:
        return
    texts = [p.items[i].text for i in turn.assistant_item_ids
             if i in p.items and p.items[i].type == "message"]
    if any(texts):
        turn.assistant_text = " ".join(t for t in texts if t)


def on_arguments_delta(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    call = p.conversation.call_for(event)
    if call is not None and not call.arguments_done:
        call.arguments += event.get("delta") or ""
    return []


def on_arguments_done(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    call = p.conversation.call_for(event)
    if call is None or call.arguments_done:
        return []
    return [p.conversation.finish_arguments(call, event.get("arguments"), event.get("name"))]


def on_response_done(p: ClientProtocol, event: dict[str, Any], now_ms: float) -> list[Action]:
    response = event.get("response") or {}
    response_id = response.get("id") if isinstance(response.get("id"), str) else None
    status = response.get("status") if isinstance(response.get("status"), str) else "completed"
    if response_id is not None:
        p.conversation.responses_done[response_id] = status
    if p.active_response_id == response_id:
        p.active_response_id = None
    output = response.get("output")
    for data in output if isinstance(output, list) else ():
        p.conversation.update(data, now_ms, response_id)
    turn = p.turn_tracker.of(response_id)
    if turn is None:
        # A response.done without response.created (a server that skips it): still a turn.
        turn = p.turn_tracker.start(response_id)
    turn.response_done_ms = now_ms
    turn.status = status
    usage = response.get("usage")
    turn.usage = dict(usage) if isinstance(usage, Mapping) else turn.usage
    if isinstance(usage, Mapping):
        p.cost.count(turn, usage)
    if status == "cancelled" or response_id in p._interrupted_responses:
        turn.interrupted = True
    sync_assistant_text(p, turn)
    actions: list[Action] = [TurnDone(turn)]
    if p.cost.crossed_cap():
        actions.append(CostCapReached(p.cost_usd, p.max_cost_usd))
        detection = p.config.turn_detection
        if detection.enabled and detection.create_response:
            actions.append(Send(p.session_update()))
    if p.conversation.follow_up_due(p.active_response_id) and not p.cost_capped:
        actions.append(Send(p.create_response()))
    return actions
