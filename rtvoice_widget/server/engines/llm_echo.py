"""A deterministic stand-in LLM: repeats the user's words inside a fixed template.

For protocol tests and demos that need a conversation to flow without model weights or
randomness. Replies are ``"You said: <words>."``; after a tool result, ``"The <tool> tool says:
<output>."``. With tools configured, a message whose words match a tool (keyword routing, see
``tool_routing``) yields that tool call with arguments guessed by ``guess_arguments``.
"""

from __future__ import annotations

import re
import threading
from typing import Iterator

from .base import LLMChunk, ToolCall
from .tool_routing import answering_tool_result, content_text, guess_arguments, last_user_text, tool_to_call

_NOTHING_HEARD = "I did not catch that."


def _tool_name_of_result(messages: list[dict]) -> str:
    """Name of the tool whose result ends ``messages``, looked up through its call id."""
    call_id = messages[-1].get("tool_call_id")
    for message in reversed(messages):
        for call in message.get("tool_calls") or []:
            if call.get("id") == call_id:
                return call.get("function", {}).get("name", "tool")
    return messages[-1].get("name") or "tool"


class EchoLLM:
    name = "echo"

    def reply_text(self, messages: list[dict]) -> str:
        """The full reply ``stream`` would produce, without tools."""
        if answering_tool_result(messages):
            output = content_text(messages[-1].get("content")).strip().rstrip(".")
            return f"The {_tool_name_of_result(messages)} tool says: {output}."
        words = last_user_text(messages).strip().rstrip(".!?")
        return f"You said: {words}." if words else _NOTHING_HEARD

    def stream(
        self,
        messages: list[dict],
        *,
        tools: list[dict] | None = None,
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[LLMChunk]:
        call = tool_to_call(messages, tools)
        if call is not None:
            text, spec = call
            yield LLMChunk(tool_call=ToolCall(spec["name"], guess_arguments(text, spec)))
            return
        # Word-sized pieces (with their leading space) stand in for tokens.
        pieces = re.findall(r"\s*\S+", self.reply_text(messages))
        for piece in pieces[:max_tokens] if max_tokens is not None else pieces:
            if cancel is not None and cancel.is_set():
                return
            yield LLMChunk(text=piece)
