"""ClientProtocol: dispatch of server events, and a thin facade over the protocol's parts.

Contract: :meth:`ClientProtocol.receive` checks a server event whole (:mod:`.server_events`)
before any state changes, then one handler per GA type updates the parts and returns
:class:`~.actions.Action` objects. The parts each own one concept: :mod:`.conversation` (items
and calls), :mod:`.playback` (what the user heard), :mod:`.cost` (tokens and the cap),
:mod:`.turns` (one Turn per response), :mod:`.client_events` (event builders). The handlers of
:meth:`~ClientProtocol.receive` live by group in :mod:`.receive_input` (items, user input),
:mod:`.receive_responses` (responses, audio, transcripts, tool calls, the cost cap's effect) and
:mod:`.receive_session` (session, errors, and the ``HANDLERS`` table); barge-in in
:mod:`.barge_in`. They are functions of the protocol, which owns all state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import SessionConfig
from .actions import Action, Send
from .barge_in import barge_in, cut_off_audio
from .client_events import (EventIds, check_id, encode_audio, response_fields, summary_items,
                            truncate_fields, user_audio_item, user_text_item)
from .conversation import Conversation, FunctionCall, Item
from .cost import TOKEN_KINDS, CostMeter
from .playback import PlaybackModel
from .server_events import checked_fields, normalize_event
from .receive_session import HANDLERS
from .turns import TurnTracker, latency_medians

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

    def interrupt(self, now_ms: float) -> list[Action]:
        """Stop the assistant now (the user's Interrupt button): flush what is playing, truncate
        it at the played position, and cancel the active response. Parts that do not apply
        (nothing playing, no response active) are skipped; ``[]`` when nothing does."""
        return barge_in(self, now_ms, cancel=True)

    def clear_output_audio(self, now_ms: float) -> list[Action]:
        """Cut off the assistant's audio now, over a WebSocket: flush the player and truncate
        each audible item at the played position (held for a live player, as for a barge-in);
        ``[]`` when nothing plays. The response goes on (its later audio is not played): send
        :meth:`cancel_response` too to stop it, or use :meth:`interrupt`.

        ``output_audio_buffer.clear``, the event with this name, exists for WebRTC/SIP
        connections only, where the server owns the output buffer; over a WebSocket the client
        owns it, and OpenAI and the local server answer that event with an ``error``.
        """
        return cut_off_audio(self, now_ms)

    _HANDLERS = HANDLERS  # one per GA type, by group in the receive_* modules

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
