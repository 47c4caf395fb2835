"""Resume a conversation: a saved session's turns as items that seed a new session.

``RealtimeSession(history=...)`` and ``VoiceChat(history=...)`` take what
:func:`history_messages` takes and, right after each new server session's ``session.created``
(the first connection, and a renewal that lands in a new server session), send one
``conversation.item.create`` per message, ahead of any audio or text, then log ``history.seeded``
(category ``system``). The model then answers the new turns knowing the old ones.

What is sent: user turns as ``input_text`` messages (a spoken turn by its transcript), assistant
turns as ``output_text`` messages (a spoken reply by its transcript; a reply the user
interrupted by the part heard, as the server's memory of it was after the truncation: see
:func:`heard_text`), in conversation order. Tool calls and their
outputs are not sent (their result is usually in the assistant's next reply); turns without text
are skipped. Each item has a client-chosen id (``hist_<n>_<8 hex>``), so the seeded rows of the
event log and turns table can be told from the new conversation (:func:`seeded_item_ids`).

Limits, per backend (all text: no audio is re-sent):

- The embedded local server gives the language model at most ``history_chars`` = 6000
  characters of conversation (about 1500 tokens; SmolLM2's window is 2048), newest first; past
  that it drops the oldest in steps of 3000 characters, so a resumed conversation keeps at least
  its newest 3000 characters, and a seeded history longer than 6000 characters is cut to its
  newest part at once (measured in ``tests/test_history.py``).
- OpenAI / Azure ``gpt-realtime``: the model's context (32k tokens; text costs about a token per
  4 characters) with the server's ``truncation`` (oldest items dropped first when it is full).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = ["HISTORY_ID_PREFIX", "heard_text", "history_events", "history_items", "history_messages", "seeded_item_ids",
           "seeded_summary"]

#: Seeded items' ids start with this (ids of our own choosing, at most 32 characters).
HISTORY_ID_PREFIX = "hist_"
_ROLES = ("user", "assistant")


def heard_text(text: str, audio_ms: float, truncated_at_ms: float) -> str:
    """The part of an interrupted reply's transcript the user heard: its first words in the
    proportion of the audio played (``truncated_at_ms / audio_ms``), an estimate (speech rate
    is taken as even); ``""`` when nothing was heard."""
    words = text.split()
    if not (audio_ms > 0 and math.isfinite(truncated_at_ms)):
        return text
    keep = round(len(words) * min(1.0, max(0.0, truncated_at_ms / audio_ms)))
    return " ".join(words[:keep])


def _from_turns(turns: pd.DataFrame) -> list[tuple[str, str]]:
    messages = []
    for row in turns.itertuples(index=False):
        role, text = getattr(row, "role", None), getattr(row, "text", None)
        if role not in _ROLES or not isinstance(text, str):
            continue
        if role == "assistant" and bool(getattr(row, "interrupted", False)):
            text = heard_text(text, float(getattr(row, "audio_ms", 0.0)),
                              float(getattr(row, "truncated_at_ms", math.nan)))
        if text.strip():
            messages.append((role, text.strip()))
    return messages


def history_messages(history: Any) -> list[tuple[str, str]]:
    """``history`` as a list of ``(role, text)``, role ``"user"`` or ``"assistant"``.

    Accepts a :class:`~rtvoice_widget.saved.SavedSession` (its turns table, in order; a session
    that was itself resumed contributes its seeded history too, once), a path to a saved session
    (folder or ``.zip``), or an iterable of ``(role, text)`` pairs. Raises ``TypeError`` for
    anything else and ``ValueError`` for an unknown role or a text that is not a string; empty
    texts are skipped.
    """
    if isinstance(history, (str, os.PathLike)):
        from rtvoice_widget.saved import load_session

        history = load_session(history)
    turns = getattr(history, "turns", None)
    if isinstance(turns, pd.DataFrame):
        return _from_turns(turns)
    if isinstance(history, (bytes, Mapping)) or not isinstance(history, Iterable):
        raise TypeError(f"history must be a SavedSession, a path to one, or a list of (role, text); "
                        f"got {type(history).__name__}")
    messages = []
    for index, pair in enumerate(history):
        try:
            role, text = pair
        except (TypeError, ValueError):
            raise TypeError(f"history[{index}] must be a (role, text) pair, got {pair!r:.80}") from None
        if role not in _ROLES:
            raise ValueError(f"history[{index}]: role must be 'user' or 'assistant', got {role!r}")
        if not isinstance(text, str):
            raise ValueError(f"history[{index}]: text must be a string, got {type(text).__name__}")
        if text.strip():
            messages.append((role, text.strip()))
    return messages


def history_items(history: Any) -> list[dict[str, Any]]:
    """GA conversation items (``message``, ``input_text`` / ``output_text``) for ``history``
    (see :func:`history_messages`), each with a fresh ``hist_`` id."""
    batch = uuid.uuid4().hex[:8]
    items = []
    for n, (role, text) in enumerate(history_messages(history)):
        kind = "input_text" if role == "user" else "output_text"
        items.append({"id": f"{HISTORY_ID_PREFIX}{n}_{batch}", "type": "message", "role": role,
                      "content": [{"type": kind, "text": text}]})
    return items


def history_events(history: Any) -> list[dict[str, Any]]:
    """The ``conversation.item.create`` events that seed a session with ``history``, in order
    (each validates against ``openai.types.realtime.ConversationItemCreateEvent``); ``[]`` for
    ``None``."""
    if history is None:
        return []
    return [{"type": "conversation.item.create", "item": item} for item in history_items(history)]


def seeded_summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields of the ``history.seeded`` event for these seeding events: ``text`` (one line
    for people), ``items``, ``chars`` (text sent) and ``item_ids``."""
    items = [e["item"] for e in events]
    chars = sum(len(c.get("text", "")) for item in items for c in item["content"])
    return {"text": f"seeded the conversation with {len(items)} earlier messages ({chars} characters)",
            "items": len(items), "chars": chars, "item_ids": [item["id"] for item in items]}


def seeded_item_ids(events: pd.DataFrame) -> set[str]:
    """Ids of the items a session was seeded with (its ``history.seeded`` rows' ``item_ids``)."""
    ids: set[str] = set()
    rows = events[events["type"] == "history.seeded"] if len(events) else events
    for payload in rows["payload"] if len(rows) else ():
        if isinstance(payload, Mapping):
            ids.update(i for i in payload.get("item_ids") or () if isinstance(i, str))
    return ids
