"""The conversation as the client knows it: items in server order, and the model's function calls.

Contract: :class:`Conversation` applies what server events say about items (created, updated,
placed after ``previous_item_id``, deleted) and collects function-call arguments until they are
complete; it knows nothing of turns, playback or cost. Items are made on first mention, whatever
event mentions them first, because servers do not promise an order between item and content
events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..item_order import index_after
from .actions import RunTool

__all__ = ["Conversation", "FunctionCall", "Item"]


@dataclass
class Item:
    """One conversation item as the client knows it.

    ``transcript_partial`` grows with deltas; ``transcript`` is the final text (``None`` until
    known). For assistant audio, ``audio_received_ms`` is what the server sent and ``played_ms``
    the last position the player reported (or that barge-in froze); ``truncated_at_ms`` is where
    the item was cut, ``flushed`` whether its playback was dropped.
    """

    id: str
    type: str = "message"
    role: str | None = None
    status: str | None = None
    response_id: str | None = None
    content_index: int = 0
    added_ms: float | None = None
    audio_received_ms: float = 0.0
    played_ms: float = 0.0
    truncated_at_ms: float | None = None
    flushed: bool = False
    transcript_partial: str = ""
    transcript: str | None = None
    error: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None

    @property
    def text(self) -> str:
        """The best text known: the final transcript, else the partial one."""
        return self.transcript if self.transcript is not None else self.transcript_partial


@dataclass
class FunctionCall:
    """A function call of the model: arguments stream in, then the tool runs, then an output."""

    call_id: str
    name: str
    item_id: str | None
    response_id: str | None
    arguments: str = ""
    arguments_done: bool = False
    output: str | None = None


class Conversation:
    """``items`` (id -> :class:`Item`, in server order) and ``calls`` (call id -> :class:`FunctionCall`)."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.calls: dict[str, FunctionCall] = {}
        self.responses_done: dict[str, str] = {}  # response id -> final status
        self.awaiting_follow_up: set[str] = set()  # call ids answered through tool_output

    def item(self, item_id: str, now_ms: float | None = None) -> Item:
        """The item ``item_id``, made (added at ``now_ms``) if it is new."""
        item = self.items.get(item_id)
        if item is None:
            item = self.items[item_id] = Item(id=item_id, added_ms=now_ms)
        return item

    def place(self, item_id: str, previous_item_id: str | None) -> None:
        """Move ``item_id`` right after ``previous_item_id`` (server order; the rule is
        :func:`rtvoice_widget.item_order.index_after`, shared with the server). An unknown
        predecessor leaves the item where it is: the client may not have heard of it."""
        if previous_item_id is None:
            return
        newest = reversed(self.items)
        if next(newest) == item_id and next(newest, None) == previous_item_id:
            return  # the usual case: appended right after its predecessor
        ids = [i for i in self.items if i != item_id]
        index = index_after(ids, previous_item_id)
        if index is None:
            return
        ids.insert(index, item_id)
        self.items = {i: self.items[i] for i in ids}

    def update(self, data: Mapping[str, Any], now_ms: float,
               response_id: str | None = None) -> Item | None:
        """Apply a GA item object (``data``); ``None`` when it has no string ``id``."""
        item_id = data.get("id") if isinstance(data, Mapping) else None
        if not isinstance(item_id, str):
            return None

        def text(source: Mapping[str, Any], key: str, default: str | None) -> str | None:
            value = source.get(key)
            return value if isinstance(value, str) else default

        item = self.item(item_id, now_ms)
        item.type = text(data, "type", item.type) or item.type
        item.role = text(data, "role", item.role)
        item.status = text(data, "status", item.status)
        if response_id is not None:
            item.response_id = response_id
        if item.type == "function_call":
            item.call_id = text(data, "call_id", item.call_id)
            item.name = text(data, "name", item.name)
            item.arguments = text(data, "arguments", None) or item.arguments
        content = data.get("content")
        for index, part in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "input_text":
                item.transcript = text(part, "text", item.transcript)
            elif kind in ("input_audio", "output_audio", "audio") and text(part, "transcript",
                                                                           None):
                item.transcript = part["transcript"]
                item.content_index = index
            elif kind in ("output_text", "text"):
                item.transcript = text(part, "text", item.transcript)
        return item

    def call_for(self, event: Mapping[str, Any]) -> FunctionCall | None:
        """The call an arguments event is about, made if the event is its first mention."""
        call_id = event.get("call_id")
        if not isinstance(call_id, str):
            return None
        call = self.calls.get(call_id)
        if call is None:
            # Arguments without an output_item.added first: still a call we must answer.
            item = self.items.get(event.get("item_id", ""))
            call = self.calls[call_id] = FunctionCall(
                call_id=call_id, name=event.get("name") or (item.name if item else "") or "",
                item_id=event.get("item_id"), response_id=event.get("response_id"))
        return call

    def finish_arguments(self, call: FunctionCall, arguments: Any, name: Any) -> RunTool:
        """Close ``call``'s arguments (final ``arguments`` and ``name`` win when given)."""
        if isinstance(arguments, str):
            call.arguments = arguments
        if isinstance(name, str) and name:
            call.name = name
        call.arguments_done = True
        item = self.items.get(call.item_id or "")
        if item is not None:
            item.arguments = call.arguments
        return RunTool(call.call_id, call.name, call.arguments)

    def follow_up_due(self, active_response_id: str | None) -> bool:
        """Whether to send ``response.create`` for tool outputs now (and forget them if so).

        Not while a response is active (it may still call more tools), nor before every call
        of the calling response is answered (the model should hear all results at once); never
        for calls of a response that was cancelled or failed.
        """
        if not self.awaiting_follow_up or active_response_id is not None:
            return False
        responses = {self.calls[c].response_id for c in self.awaiting_follow_up}
        for response_id in responses:
            status = self.responses_done.get(response_id or "")
            if status is None:
                return False  # the calling response is still going
            if status == "completed" and any(
                    c.output is None for c in self.calls.values() if c.response_id == response_id):
                return False  # a sibling call is still running: answer them together
        due = any(self.responses_done.get(self.calls[c].response_id or "") == "completed"
                  for c in self.awaiting_follow_up)
        self.awaiting_follow_up.clear()
        return due
