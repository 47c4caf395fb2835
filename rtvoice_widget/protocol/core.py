"""ClientProtocol: dispatch of server events, and a thin facade over the protocol's parts.

Contract: :meth:`ClientProtocol.receive` checks a server event whole (:mod:`.server_events`)
before any state changes, then one handler per GA type updates the parts and returns
:class:`~.actions.Action` objects. The parts each own one concept: :mod:`.conversation` (items
and calls), :mod:`.playback` (what the user heard), :mod:`.cost` (tokens and the cap),
:mod:`.turns` (one Turn per response), :mod:`.client_events` (event builders). What ties them
together stays here: which turn a mark belongs to, barge-in, tool follow-ups, the cost cap's
effect on what is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import SessionConfig
from ..errors import ProtocolError
from ..pcm import decode_pcm16, pcm16_ms
from .actions import Action, CostCapReached, FlushPlayback, PlayAudio, Send, TurnDone
from .client_events import (EventIds, check_id, encode_audio, response_fields, summary_items,
                            truncate_fields, user_audio_item, user_text_item)
from .conversation import Conversation, FunctionCall, Item
from .cost import TOKEN_KINDS, CostMeter
from .playback import PlaybackModel
from .server_events import checked_fields, normalize_event
from .turns import Turn, TurnTracker, latency_medians

__all__ = ["IGNORED_OTHER", "MAX_IGNORED_TYPES", "ClientProtocol"]

#: Keys ``Protocol.ignored_types`` holds at most; later new unknown types count under IGNORED_OTHER.
MAX_IGNORED_TYPES = 256
IGNORED_OTHER = "(other)"


class ClientProtocol:
    """Client-side Realtime state machine; see the package docstring.

    ``virtual_player``: estimate playback of items the player has not reported on (see
    :mod:`.playback`). ``barge_in``: on ``speech_started`` flush, truncate and (if needed) cancel;
    turn it off for half-duplex set-ups where the assistant's own voice would trigger the VAD.
    ``max_errors`` bounds the ``errors`` list.

    ``live_player``: a real player (the widget's browser) answers every :class:`FlushPlayback`
    with its final position. Barge-in then flushes at once but holds each truncation until the
    caller passes that position to :meth:`playback_flushed` (exact: the player kept playing
    until the flush reached it), or gives up waiting with :meth:`truncate_now` (the estimate).
    ``response.cancel`` is never held. Without it (headless) the truncation goes out with the
    flush, at the estimate.

    Cost meter: every ``response.done`` usage adds up in ``tokens`` (per kind of
    :data:`TOKEN_KINDS`, plus ``input_tokens`` / ``output_tokens`` / ``total_tokens``) and in the
    turn's ``tokens``. With ``prices`` (USD per 1M tokens by kind, see :func:`check_prices`)
    ``cost_usd`` and ``Turn.cost_usd`` follow. ``max_cost_usd`` (needs ``prices``) caps the
    spend: once ``cost_usd`` reaches it, ``cost_capped`` turns True, :class:`CostCapReached` is
    emitted once, automatic responses are switched off (``session.update`` with
    ``create_response=False``), a response the server creates anyway is cancelled, and
    ``create_response`` raises :class:`CostLimitError`. The cap acts after the response that
    crossed it: usage is only known at ``response.done``.
    """

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        virtual_player: bool = True,
        barge_in: bool = True,
        live_player: bool = False,
        max_errors: int = 1000,
        prices: Mapping[str, float] | None = None,
        max_cost_usd: float | None = None,
    ) -> None:
        self.cost = CostMeter(prices, max_cost_usd)
        self.config = config if config is not None else SessionConfig()
        self.conversation = Conversation()
        self.playback = PlaybackModel(virtual_player)
        self.barge_in = barge_in
        self.live_player = live_player
        self.active_response_id: str | None = None
        self.turn_tracker = TurnTracker()
        self.errors: list[dict[str, Any]] = []
        self.server_session: dict[str, Any] | None = None
        self.rate_limits: list[dict[str, Any]] | None = None
        self.audio_sent_ms = 0.0
        self.ignored_types: dict[str, int] = {}
        self._max_errors = max_errors
        self._ids = EventIds()
        self._interrupted_responses: set[str] = set()

    # --- the parts' state under the names callers have always used --------------------------------

    items = property(lambda self: self.conversation.items,
                     lambda self, value: setattr(self.conversation, "items", value),
                     doc="Conversation items (id -> :class:`Item`) in server order.")
    calls = property(lambda self: self.conversation.calls,
                     lambda self, value: setattr(self.conversation, "calls", value),
                     doc="Function calls of the model (call id -> :class:`FunctionCall`).")
    virtual_player = property(lambda self: self.playback.virtual_player,
                              lambda self, value: setattr(self.playback, "virtual_player", value))
    turns = property(lambda self: self.turn_tracker.turns,
                     doc="One :class:`Turn` per response, in order.")
    pending_turn = property(lambda self: self.turn_tracker.pending,
                            lambda self, value: setattr(self.turn_tracker, "pending", value),
                            doc="The turn collecting user input for the next response, if any.")
    prices = property(lambda self: self.cost.prices)
    max_cost_usd = property(lambda self: self.cost.max_cost_usd)
    tokens = property(lambda self: self.cost.tokens)
    cost_usd = property(lambda self: self.cost.cost_usd)
    cost_capped = property(lambda self: self.cost.capped,
                           lambda self, value: setattr(self.cost, "capped", value))

    # --- builders -------------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return self._ids.event(kind, **fields)

    def session_update(self, config: SessionConfig | None = None) -> dict[str, Any]:
        """``session.update`` with ``config`` (which becomes the protocol's config) or the
        current one."""
        if config is not None:
            if not isinstance(config, SessionConfig):
                raise TypeError(f"config must be a SessionConfig, got {type(config).__name__}")
            self.config = config
        config = self.config
        if self.cost_capped and config.turn_detection.create_response:
            # Over the cost cap the server must not answer turns by itself either.
            config = config.replace(turn_detection=config.turn_detection.replace(create_response=False))
        return self._event("session.update", session=config.to_session())

    def append_audio(self, pcm16: bytes) -> dict[str, Any]:
        """``input_audio_buffer.append`` with PCM16 24 kHz mono bytes (no event_id: hot path)."""
        audio, length_ms = encode_audio(pcm16)
        self.audio_sent_ms += length_ms
        return {"type": "input_audio_buffer.append", "audio": audio}

    def commit(self) -> dict[str, Any]:
        """``input_audio_buffer.commit``: end the user's turn (manual turn detection)."""
        return self._event("input_audio_buffer.commit")

    def clear(self) -> dict[str, Any]:
        """``input_audio_buffer.clear``: drop uncommitted input audio."""
        return self._event("input_audio_buffer.clear")

    def user_text(self, text: str) -> dict[str, Any]:
        """``conversation.item.create`` with a user text message."""
        return self._event("conversation.item.create", item=user_text_item(text))

    def user_audio(self, pcm16: bytes) -> dict[str, Any]:
        """``conversation.item.create`` with a whole user audio message (PCM16 24 kHz mono)."""
        return self._event("conversation.item.create", item=user_audio_item(pcm16))

    def create_response(self, **overrides: Any) -> dict[str, Any]:
        """``response.create``; ``overrides`` are GA ``response`` fields (``instructions``,
        ``output_modalities``, ``tools``, ``tool_choice``, ``max_output_tokens``,
        ``conversation``, ``metadata``, ``input``, ``audio``, ``prompt``) plus ``voice``."""
        self.cost.check_can_respond()
        return self._event("response.create", response=response_fields(overrides))

    def cancel_response(self) -> dict[str, Any]:
        """``response.cancel`` for the active response."""
        return self._event("response.cancel")

    def truncate(self, item_id: str, content_index: int, audio_end_ms: float) -> dict[str, Any]:
        """``conversation.item.truncate``; ``audio_end_ms`` is rounded down to whole ms."""
        return self._event("conversation.item.truncate",
                           **truncate_fields(item_id, content_index, audio_end_ms))

    def function_call_output(self, call_id: str, output: str) -> dict[str, Any]:
        """``conversation.item.create`` with a ``function_call_output`` item."""
        check_id("call_id", call_id)
        if not isinstance(output, str):
            raise TypeError(f"output must be a string, got {type(output).__name__}")
        call = self.calls.get(call_id)
        if call is not None:
            call.output = output
        return self._event("conversation.item.create",
                           item={"type": "function_call_output", "call_id": call_id,
                                 "output": output})

    def tool_output(self, call_id: str, output: str) -> list[dict[str, Any]]:
        """The ``function_call_output`` event, plus the ``response.create`` that lets the model
        speak the result, when it may be sent now.

        It may when no response is active, and every call of the calling response is answered.
        Otherwise :meth:`receive` emits it at a later ``response.done``; a response created in
        the meantime (the user spoke) already sees the output, so then none is sent. Calls of a
        cancelled or failed response get no follow-up. Use either this or
        ``function_call_output`` plus your own ``create_response``.
        """
        events = [self.function_call_output(call_id, output)]
        if call_id in self.calls:
            self.conversation.awaiting_follow_up.add(call_id)
            if self.conversation.follow_up_due(self.active_response_id) and not self.cost_capped:
                events.append(self.create_response())
        return events

    def conversation_summary(self, max_turns: int = 8, max_chars: int = 4000) -> list[dict[str, Any]]:
        """``conversation.item.create`` events that restore the recent conversation as text.

        For a server session that forgot the conversation (a renewal after a session cap or a
        reconnect): the user and assistant text of the last ``max_turns`` turns, oldest first,
        as ``input_text`` / ``output_text`` messages; turns without text are skipped. Bounded by
        ``max_chars`` of text in all: older turns are dropped first, and a single message longer
        than what is left keeps its end (the most recent words).
        """
        return [self._event("conversation.item.create", item=item)
                for item in summary_items(self.turns, max_turns, max_chars)]

    def delete_item(self, item_id: str) -> dict[str, Any]:
        """``conversation.item.delete``."""
        check_id("item_id", item_id)
        return self._event("conversation.item.delete", item_id=item_id)

    # --- playback -------------------------------------------------------------------------------

    def playback_progress(self, item_id: str, played_ms: float, now_ms: float) -> None:
        """The player has played ``played_ms`` of ``item_id`` at ``now_ms``.

        Unknown items and reports after a flush (the player may lag behind) are ignored.
        """
        item = self.items.get(item_id)
        if item is None or item.flushed:
            return
        self.playback.progress(item, played_ms, now_ms, self.items)

    def playback_flushed(self, item_id: str, played_ms: float, now_ms: float) -> list[Action]:
        """The player's final position in ``item_id`` after a :class:`FlushPlayback`.

        With ``live_player``, returns the truncation held for that item, at ``played_ms``
        (clamped to the audio received); ``[]`` when none is held (already sent, or no
        barge-in touched the item).
        """
        due = self.playback.truncations_due
        if item_id not in due:
            return []
        del due[item_id]
        item = self.items.get(item_id)
        if item is None:
            return []
        return [self._send_truncation(item, max(0.0, min(float(played_ms), item.audio_received_ms)))]

    def truncate_now(self, item_id: str | None = None) -> list[Action]:
        """The truncations still held for a player's report (of ``item_id``, or all), at the
        estimate made at the flush: for a player that did not answer in time."""
        due = self.playback.truncations_due
        actions: list[Action] = []
        for held in list(due) if item_id is None else [item_id]:
            estimate = due.pop(held, None)
            item = self.items.get(held)
            if estimate is not None and item is not None:
                actions.append(self._send_truncation(item, estimate))
        return actions

    @property
    def truncations_due(self) -> list[str]:
        """Items whose truncation waits for the player's final position (``live_player``)."""
        return list(self.playback.truncations_due)

    def _send_truncation(self, item: Item, played_ms: float) -> Send:
        # Whole ms, exactly what the truncate event carries and the server will confirm.
        played = float(int(played_ms))
        turn = self.turn_tracker.by_response.get(item.response_id or "")
        if turn is not None and turn.truncated_at_ms == item.truncated_at_ms:
            turn.truncated_at_ms = played  # the barge-in's estimate for this item, now exact
        item.played_ms = item.truncated_at_ms = played
        return Send(self.truncate(item.id, item.content_index, played))

    def played_ms(self, item_id: str, now_ms: float) -> float:
        """Best estimate of how much of ``item_id`` the user has heard by ``now_ms``."""
        item = self.items.get(item_id)
        return 0.0 if item is None else self.playback.played_ms(item, now_ms)

    def is_playing(self, now_ms: float) -> bool:
        """Whether assistant audio is (probably) still playing or still coming."""
        return bool(self._audible_items(now_ms))

    def _audible_items(self, now_ms: float) -> list[Item]:
        return self.playback.audible(self.items.values(), self.active_response_id, now_ms)

    # --- receiving ------------------------------------------------------------------------------

    def receive(self, event: Mapping[str, Any], now_ms: float) -> list[Action]:
        """Consume one server event received at ``now_ms``; return the actions to carry out.

        Raises :class:`ProtocolError` (state unchanged) for an event that is not an object with a
        ``type`` or carries audio that is not base64. Unknown types return ``[]`` and are counted
        in ``ignored_types`` (at most ``MAX_IGNORED_TYPES`` keys: later new ones count under
        ``IGNORED_OTHER``).
        """
        event = normalize_event(event)
        kind = event["type"]
        handler = self._HANDLERS.get(kind)
        if handler is None:
            ignored = self.ignored_types
            if kind not in ignored and len(ignored) >= MAX_IGNORED_TYPES - 1:
                kind = IGNORED_OTHER  # bounded, whatever a hostile server invents
            ignored[kind] = ignored.get(kind, 0) + 1
            return []
        return handler(self, checked_fields(event), now_ms)

    # conversation items

    def _on_item_added(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self.conversation.update(event.get("item") or {}, now_ms)
        if item is None:
            return []
        self.conversation.place(item.id, event.get("previous_item_id"))
        if item.role == "user" and item.type == "message":
            turn = self.turn_tracker.pending_for(item.id)
            turn.user_item_ms = turn.user_item_ms if turn.user_item_ms is not None else now_ms
            self.turn_tracker.user_text(item.id, item.text)
        return []

    def _on_item_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self.conversation.update(event.get("item") or {}, now_ms)
        if item is not None and item.role == "user":
            self.turn_tracker.user_text(item.id, item.text)
        return []

    def _on_item_deleted(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item_id = event.get("item_id")
        self.items.pop(item_id, None)
        self.playback.forget(item_id)
        return []

    def _on_item_truncated(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        # The server's word on where the item ends wins over what the client asked for.
        item = self.items.get(event["item_id"])
        if item is not None:
            item.truncated_at_ms = float(event["audio_end_ms"])
            item.error = None
            turn = self.turn_tracker.of(item.response_id)
            if turn is not None:
                turn.interrupted = True
                turn.truncated_at_ms = item.truncated_at_ms
        return []

    # user input

    def _on_speech_started(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        actions = self._barge_in(now_ms) if self.barge_in else []
        self.turn_tracker.pending_for(event.get("item_id")).speech_started_ms = now_ms
        return actions

    def _on_speech_stopped(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        self.turn_tracker.pending_for(event.get("item_id")).speech_stopped_ms = now_ms
        return []

    def _on_committed(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        turn = self.turn_tracker.pending_for(event.get("item_id"))
        turn.committed_ms = now_ms
        return []

    def _on_cleared(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        self.turn_tracker.drop_uncommitted()
        return []

    def _on_transcription_delta(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self.conversation.item(event["item_id"], now_ms)
        item.transcript_partial += event.get("delta") or ""
        self.turn_tracker.user_text(item.id, item.text)
        return []

    def _on_transcription_completed(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self.conversation.item(event["item_id"], now_ms)
        item.transcript = event.get("transcript") or ""
        self.turn_tracker.user_text(item.id, item.text)
        return []

    def _on_transcription_failed(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self.conversation.item(event["item_id"], now_ms)
        error = event.get("error") or {}
        item.error = error.get("message") if isinstance(error, Mapping) else str(error)
        return []

    # barge-in

    def interrupt(self, now_ms: float) -> list[Action]:
        """Stop the assistant now (the user's Interrupt button): flush what is playing, truncate
        it at the played position, and cancel the active response. Parts that do not apply
        (nothing playing, no response active) are skipped; ``[]`` when nothing does."""
        return self._barge_in(now_ms, cancel=True)

    def clear_output_audio(self, now_ms: float) -> list[Action]:
        """Cut off the assistant's audio now, over a WebSocket: flush the player and truncate
        each audible item at the played position (held for a live player, as for a barge-in);
        ``[]`` when nothing plays. The response goes on (its later audio is not played): send
        :meth:`cancel_response` too to stop it, or use :meth:`interrupt`.

        ``output_audio_buffer.clear``, the event with this name, exists for WebRTC/SIP
        connections only, where the server owns the output buffer; over a WebSocket the client
        owns it, and OpenAI and the local server answer that event with an ``error``.
        """
        return self._cut_off_audio(now_ms)

    def _barge_in(self, now_ms: float, cancel: bool = False) -> list[Action]:
        """Flush and truncate what is audible; cancel the active response when ``cancel`` or
        the server will not (``interrupt_response=False``)."""
        actions = self._cut_off_audio(now_ms)
        active = self.active_response_id
        if active is not None:
            self._interrupted_responses.add(active)
            turn = self.turn_tracker.by_response.get(active)
            if turn is not None:
                turn.interrupted = True
            if cancel or not self.config.turn_detection.interrupt_response:
                # The server keeps generating unless told: cancel it ourselves.
                actions.append(Send(self.cancel_response()))
        return actions

    def _cut_off_audio(self, now_ms: float) -> list[Action]:
        """Flush and truncate what is audible (the truncation held with a live player); the
        responses they belong to play no more audio."""
        actions: list[Action] = []
        for item in self._audible_items(now_ms):
            estimate = float(int(self.played_ms(item.id, now_ms)))
            item.flushed = True
            item.played_ms = estimate
            item.truncated_at_ms = estimate
            actions.append(FlushPlayback(item.id))
            if self.live_player:
                self.playback.truncations_due[item.id] = estimate  # sent at playback_flushed / truncate_now
            else:
                actions.append(Send(self.truncate(item.id, item.content_index, estimate)))
            if item.response_id is not None:
                self._interrupted_responses.add(item.response_id)
                turn = self.turn_tracker.by_response.get(item.response_id)
                if turn is not None:
                    turn.interrupted = True
                    if turn.truncated_at_ms is None:
                        turn.truncated_at_ms = estimate
        if actions:
            self.playback.dropped(now_ms)
        return actions

    # responses

    def _on_response_created(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        response = event.get("response") or {}
        response_id = response.get("id") if isinstance(response.get("id"), str) else None
        self.turn_tracker.start(response_id).response_created_ms = now_ms
        # This response sees every tool output sent so far: no follow-up needed for them.
        self.conversation.awaiting_follow_up.clear()
        if response_id is not None:
            self.active_response_id = response_id
        if self.cost_capped:
            # Made by the server before our session.update (create_response=False) took effect.
            return [Send(self.cancel_response())]
        return []

    def _on_output_item_added(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        data = event.get("item") or {}
        response_id = event.get("response_id")
        item = self.conversation.update(data, now_ms, response_id)
        if item is None:
            return []
        item.role = item.role or ("assistant" if item.type == "message" else None)
        turn = self.turn_tracker.of(response_id)
        if turn is not None and item.id not in turn.assistant_item_ids:
            turn.assistant_item_ids.append(item.id)
        if item.type == "function_call" and item.call_id:
            self.calls.setdefault(item.call_id, FunctionCall(
                call_id=item.call_id, name=item.name or "", item_id=item.id,
                response_id=response_id))
            if turn is not None:
                turn.tool_calls.append(item.name or "")
        return []

    def _on_output_item_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        data = event.get("item") or {}
        item = self.conversation.update(data, now_ms, event.get("response_id"))
        if item is None or item.type != "function_call" or not item.call_id:
            return []
        # Servers that skip ``function_call_arguments.done`` still get their call run, once.
        call = self.calls.get(item.call_id)
        if call is None or call.arguments_done or item.status != "completed":
            return []
        return [self.conversation.finish_arguments(call, item.arguments or call.arguments, item.name)]

    def _on_content_part_added(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        part = event.get("part") or {}
        if part.get("type") in ("audio", "output_audio"):
            self.conversation.item(event["item_id"], now_ms).content_index = int(
                event.get("content_index", 0))
        return []

    def _on_audio_delta(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        try:
            pcm16 = decode_pcm16(event["delta"])
        except ProtocolError as exc:
            raise ProtocolError(f"{event['type']}: delta: {exc}") from exc
        item_id = event["item_id"]
        response_id = event.get("response_id")
        item = self.conversation.item(item_id, now_ms)
        item.role = item.role or "assistant"
        item.response_id = item.response_id or response_id
        content_index = int(event.get("content_index", item.content_index))
        item.content_index = content_index
        length = pcm16_ms(len(pcm16))
        item.audio_received_ms += length
        turn = self.turn_tracker.of(response_id)
        if turn is not None:
            turn.audio_ms += length
            if turn.first_audio_ms is None:
                turn.first_audio_ms = now_ms
        # After a barge-in the server may still send what it had in flight: do not play it.
        if item.flushed or response_id in self._interrupted_responses or not pcm16:
            return []
        self.playback.queued(item_id, response_id, length, now_ms)
        return [PlayAudio(item_id, response_id, content_index, pcm16)]

    def _on_transcript_delta(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        delta = event.get("delta") or ""
        item = self.conversation.item(event["item_id"], now_ms)
        item.role = item.role or "assistant"
        item.transcript_partial += delta
        turn = self.turn_tracker.of(event.get("response_id"))
        if turn is not None:
            if turn.first_transcript_ms is None:
                turn.first_transcript_ms = now_ms
            turn.assistant_text += delta
        return []

    def _on_transcript_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self.conversation.item(event["item_id"], now_ms)
        final = event.get("transcript", event.get("text"))
        if isinstance(final, str):
            item.transcript = final
        self._sync_assistant_text(self.turn_tracker.of(event.get("response_id")))
        return []

    def _sync_assistant_text(self, turn: Turn | None) -> None:
        if turn is None:
            return
        texts = [self.items[i].text for i in turn.assistant_item_ids
                 if i in self.items and self.items[i].type == "message"]
        if any(texts):
            turn.assistant_text = " ".join(t for t in texts if t)

    def _on_arguments_delta(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        call = self.conversation.call_for(event)
        if call is not None and not call.arguments_done:
            call.arguments += event.get("delta") or ""
        return []

    def _on_arguments_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        call = self.conversation.call_for(event)
        if call is None or call.arguments_done:
            return []
        return [self.conversation.finish_arguments(call, event.get("arguments"), event.get("name"))]

    def _on_response_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        response = event.get("response") or {}
        response_id = response.get("id") if isinstance(response.get("id"), str) else None
        status = response.get("status") if isinstance(response.get("status"), str) else "completed"
        if response_id is not None:
            self.conversation.responses_done[response_id] = status
        if self.active_response_id == response_id:
            self.active_response_id = None
        output = response.get("output")
        for data in output if isinstance(output, list) else ():
            self.conversation.update(data, now_ms, response_id)
        turn = self.turn_tracker.of(response_id)
        if turn is None:
            # A response.done without response.created (a server that skips it): still a turn.
            turn = self.turn_tracker.start(response_id)
        turn.response_done_ms = now_ms
        turn.status = status
        usage = response.get("usage")
        turn.usage = dict(usage) if isinstance(usage, Mapping) else turn.usage
        if isinstance(usage, Mapping):
            self.cost.count(turn, usage)
        if status == "cancelled" or response_id in self._interrupted_responses:
            turn.interrupted = True
        self._sync_assistant_text(turn)
        actions: list[Action] = [TurnDone(turn)]
        if self.cost.crossed_cap():
            actions.append(CostCapReached(self.cost_usd, self.max_cost_usd))
            detection = self.config.turn_detection
            if detection.enabled and detection.create_response:
                actions.append(Send(self.session_update()))
        if self.conversation.follow_up_due(self.active_response_id) and not self.cost_capped:
            actions.append(Send(self.create_response()))
        return actions

    # session and errors

    def _on_session(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        session = event.get("session")
        if isinstance(session, Mapping):
            self.server_session = dict(session)
        return []

    def _on_rate_limits(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        self.rate_limits = event.get("rate_limits")
        return []

    def _on_error(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        error = event.get("error")
        error = dict(error) if isinstance(error, Mapping) else {"message": str(error)}
        error["t_ms"] = now_ms
        cause = self._ids.sent.get(error.get("event_id") or "")
        if cause is not None:
            error["cause"] = cause["type"]
            if cause["type"] == "conversation.item.truncate":
                # Recoverable: the item simply stays untruncated on the server.
                item = self.items.get(cause["item_id"])
                if item is not None:
                    item.error = error.get("message")
                    error["recovered"] = True
        self.errors.append(error)
        if len(self.errors) > self._max_errors:
            del self.errors[0]
        return []

    def _on_ignored(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        return []

    _HANDLERS = {
        "session.created": _on_session,
        "session.updated": _on_session,
        "conversation.item.added": _on_item_added,
        "conversation.item.done": _on_item_done,
        "conversation.item.deleted": _on_item_deleted,
        "conversation.item.truncated": _on_item_truncated,
        "conversation.item.retrieved": _on_item_done,
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.speech_stopped": _on_speech_stopped,
        "input_audio_buffer.committed": _on_committed,
        "input_audio_buffer.cleared": _on_cleared,
        "input_audio_buffer.timeout_triggered": _on_ignored,
        "conversation.item.input_audio_transcription.delta": _on_transcription_delta,
        "conversation.item.input_audio_transcription.completed": _on_transcription_completed,
        "conversation.item.input_audio_transcription.failed": _on_transcription_failed,
        "conversation.item.input_audio_transcription.segment": _on_ignored,
        "response.created": _on_response_created,
        "response.output_item.added": _on_output_item_added,
        "response.output_item.done": _on_output_item_done,
        "response.content_part.added": _on_content_part_added,
        "response.content_part.done": _on_ignored,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_audio.done": _on_ignored,
        "response.output_audio_transcript.delta": _on_transcript_delta,
        "response.output_audio_transcript.done": _on_transcript_done,
        "response.output_text.delta": _on_transcript_delta,
        "response.output_text.done": _on_transcript_done,
        "response.function_call_arguments.delta": _on_arguments_delta,
        "response.function_call_arguments.done": _on_arguments_done,
        "response.done": _on_response_done,
        "rate_limits.updated": _on_rate_limits,
        "output_audio_buffer.started": _on_ignored,
        "output_audio_buffer.stopped": _on_ignored,
        "output_audio_buffer.cleared": _on_ignored,
        "error": _on_error,
    }

    # --- summaries ------------------------------------------------------------------------------

    @property
    def calls_in_flight(self) -> list[FunctionCall]:
        """Function calls without an output yet, oldest first."""
        return [c for c in self.calls.values() if c.output is None]

    def metrics(self) -> dict[str, Any]:
        """A small summary for dashboards: counts, median latencies (ms), audio, tokens, cost."""

        assistant = [i for i in self.items.values() if i.audio_received_ms > 0]
        return {
            "turns": len(self.turns),
            "interrupted_turns": sum(t.interrupted for t in self.turns),
            # Named like the turns table's columns (rtvoice_widget.turn_table.LATENCY_COLUMNS).
            **latency_medians(self.turns),
            "audio_sent_ms": self.audio_sent_ms,
            "audio_received_ms": sum(i.audio_received_ms for i in assistant),
            "errors": len(self.errors),
            "tool_calls": len(self.calls),
            # Session tokens: input_tokens / output_tokens / total_tokens and per kind as
            # tokens_<kind> (e.g. tokens_cached_audio); cost when prices were given.
            "input_tokens": self.tokens["input_tokens"],
            "output_tokens": self.tokens["output_tokens"],
            "total_tokens": self.tokens["total_tokens"],
            **{f"tokens_{kind}": self.tokens[kind] for kind in TOKEN_KINDS},
            "cost_usd": self.cost_usd,
            "max_cost_usd": self.max_cost_usd,
            "cost_capped": self.cost_capped,
        }
