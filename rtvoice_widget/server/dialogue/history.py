"""The conversation as LLM chat messages, within a character budget.

Contract: :func:`chat_messages` turns conversation items into OpenAI chat messages (assistant
audio counts only as far as it was heard); :func:`recent` keeps the newest of them within a
budget, moving its window in steps so the LLM's prompt cache keeps working; the token counts are
estimates (the engines do not report them).
"""

from __future__ import annotations

import json

from .conversation import ConversationItem
from .jobs import ReplyJob

__all__ = ["chat_messages", "estimate_tokens", "input_tokens", "recent"]


def estimate_tokens(text: str) -> int:
    # The engines do not report token counts; ~4 characters per token is the usual English rule.
    return max(1, len(text) // 4) if text else 0


def input_tokens(job: ReplyJob) -> int:
    """Estimated prompt tokens of ``job`` (for the response's ``usage``)."""
    return sum(estimate_tokens(str(m.get("content") or "")) for m in job.messages)


def _size(message: dict) -> int:
    calls = message.get("tool_calls")
    return len(str(message.get("content") or "")) + (len(json.dumps(calls)) if calls else 0)


def recent(messages: list[dict], budget_chars: int) -> list[dict]:
    """The newest messages within ``budget_chars`` (the API's ``truncation: auto``, by
    characters: small local models have small contexts).

    The window's start moves in steps of half the budget, not one message per turn: the LLM
    reuses its cache only for an unchanged prompt prefix, and a start that crept forward every
    turn would make every turn of a long conversation re-evaluate the whole window (≈ 1500
    tokens, ~18 CPU-s for SmolLM2 here). After a step the window holds at least half the
    budget. The newest message always stays; a tool result never starts the window without the
    call it answers."""
    total = sum(_size(m) for m in messages)
    if total <= budget_chars:
        return list(messages)
    step = max(1, budget_chars // 2)
    # Drop whole steps of the oldest text: the smallest multiple of ``step`` that brings the rest
    # within budget. It changes only after another ``step`` characters of conversation.
    drop_chars = -(-(total - budget_chars) // step) * step
    dropped = 0
    start = 0
    while start < len(messages) - 1 and dropped < drop_chars:
        dropped += _size(messages[start])
        start += 1
    while start < len(messages) - 1 and messages[start]["role"] == "tool":
        start += 1
    return list(messages[start:])


def chat_messages(items: list[ConversationItem]) -> list[dict]:
    """The conversation as OpenAI chat messages; assistant audio counts only as far as it was heard
    (a truncation rewrites the item's transcript)."""
    messages: list[dict] = []
    for item in items:
        data = item.data
        if data["type"] == "message":
            texts = []
            for part in data["content"]:
                text = part.get("text") if part.get("text") is not None else part.get("transcript")
                if text:
                    texts.append(text)
            if texts:
                messages.append({"role": data["role"], "content": " ".join(texts)})
        elif data["type"] == "function_call":
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": data["call_id"], "type": "function",
                 "function": {"name": data["name"], "arguments": data["arguments"]}}]})
        elif data["type"] == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": data["call_id"], "content": data["output"]})
    return messages
