"""Where a conversation item goes, by ``previous_item_id``: one rule for client and server (pure).

The GA protocol places an item right after the item named by ``previous_item_id``; ``"root"``
names the start of the conversation. The server applies it to what a client creates, the client
to what the server reports (``conversation.item.added``); both ask :func:`index_after`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ROOT", "index_after"]

#: ``previous_item_id`` that places an item first.
ROOT = "root"


def index_after(ids: Sequence[str], previous_item_id: str) -> int | None:
    """The index an item placed after ``previous_item_id`` takes among ``ids`` (the other items,
    in order): 0 for :data:`ROOT`, one past that item's index, or None when ``ids`` does not hold
    it (the caller decides whether that is an error)."""
    if previous_item_id == ROOT:
        return 0
    for index, item_id in enumerate(ids):
        if item_id == previous_item_id:
            return index + 1
    return None
