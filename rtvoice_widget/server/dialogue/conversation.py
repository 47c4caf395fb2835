"""The server's conversation store: items in order, placed by ``previous_item_id``.

Contract: :class:`Conversation` holds the GA items the client sees (audio omitted) with what the
server needs to rebuild LLM messages from them (assistant audio clause by clause, where a
truncation cut it); it emits ``conversation.item.added`` / ``.done`` with the right
``previous_item_id``, and raises :class:`ProtocolError` for an item the client names that is not
there. Placement follows the rule shared with the client (:mod:`rtvoice_widget.item_order`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...item_order import index_after
from ..codec import ProtocolError
from .outbox import Outbox

__all__ = ["Conversation", "ConversationItem", "Segment", "heard_text"]


@dataclass
class Segment:
    """One voiced clause of an assistant message: its text and where its audio sits in the item."""

    text: str
    start_ms: float
    end_ms: float


@dataclass
class ConversationItem:
    """A conversation item plus what the server needs to rebuild LLM messages from it."""

    data: dict  # the GA item, as sent to the client (audio omitted)
    segments: list[Segment] = field(default_factory=list)  # assistant audio, clause by clause
    audio_ms: float = 0.0
    truncated_ms: float | None = None

    @property
    def id(self) -> str:
        return self.data["id"]


class Conversation:
    """``items`` in conversation order; emits the item events through ``outbox``."""

    def __init__(self, outbox: Outbox) -> None:
        self.items: list[ConversationItem] = []
        self._outbox = outbox

    def find(self, item_id: str) -> ConversationItem | None:
        return next((item for item in self.items if item.id == item_id), None)

    def get(self, item_id: str, event_id: str | None) -> ConversationItem:
        """The item ``item_id`` names; ``item_not_found`` (param ``item_id``) if there is none."""
        item = self.find(item_id)
        if item is None:
            raise ProtocolError(f"Item {item_id!r} not found", code="item_not_found", param="item_id", event_id=event_id)
        return item

    def position_after(self, previous_item_id: str | None, event_id: str | None) -> int:
        """Where an item created after ``previous_item_id`` goes (absent: at the end)."""
        if previous_item_id is None:
            return len(self.items)
        position = index_after([item.id for item in self.items], previous_item_id)
        if position is None:
            raise ProtocolError(f"previous_item_id {previous_item_id!r} not found", code="item_not_found",
                                param="previous_item_id", event_id=event_id)
        return position

    def add(self, item: ConversationItem, position: int | None = None) -> None:
        """Insert ``item`` at ``position`` (default: the end) and emit ``conversation.item.added``."""
        position = len(self.items) if position is None else position
        self.items.insert(position, item)
        previous = self.items[position - 1].id if position > 0 else None
        self._outbox.emit({"type": "conversation.item.added", "item": item.data, "previous_item_id": previous})

    def remove(self, item: ConversationItem) -> None:
        self.items.remove(item)

    def done(self, item: ConversationItem) -> None:
        """Emit ``conversation.item.done`` for ``item`` as it stands now."""
        self._outbox.emit({"type": "conversation.item.done", "item": item.data, "previous_item_id": self.previous_id(item)})

    def previous_id(self, item: ConversationItem) -> str | None:
        if item not in self.items:
            return None
        position = self.items.index(item)
        return self.items[position - 1].id if position > 0 else None

    @property
    def last_id(self) -> str | None:
        return self.items[-1].id if self.items else None


def heard_text(item: ConversationItem) -> str:
    """The transcript of what was played up to ``item.truncated_ms``: whole clauses, plus the
    share of words of the clause playing at the cut (speech rate is roughly even)."""
    cut = item.truncated_ms
    words: list[str] = []
    for segment in item.segments:
        if segment.end_ms <= cut:
            words += segment.text.split()
        elif segment.start_ms < cut:
            seg_words = segment.text.split()
            share = (cut - segment.start_ms) / (segment.end_ms - segment.start_ms)
            words += seg_words[: int(len(seg_words) * share)]
    return " ".join(words)
