"""The response lifecycle: ``response.created`` → output items and deltas → ``response.done``.

Contract: :class:`Responses` holds at most one active response (and one automatic response
queued behind it). A response's :class:`ReplyJob` goes out once every user item it depends on has
its transcript; ``response.created`` goes out at once, as the API does. The driver's results
(:meth:`segment`, :meth:`tool_call`, :meth:`finished`) become output items and their deltas;
results for a response that is no longer active are dropped, and those of the speculative reply
are held by ``speculation.py`` until it is adopted or discarded. Audio deltas are cut to
``_DELTA_MS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...pcm import BYTES_PER_MS, SAMPLE_RATE
from ..codec import encode_audio, new_id
from .conversation import ConversationItem, Segment
from .history import chat_messages, estimate_tokens, input_tokens, recent
from .jobs import CancelReply, ReplyJob

if TYPE_CHECKING:
    from .engine import TurnEngine

__all__ = ["Response", "Responses"]

# Audio deltas are cut to this size: small enough to start playback early, large enough to keep
# the event count (and the JSON cost per event) low.
_DELTA_MS = 200


@dataclass
class Response:
    id: str
    modalities: list[str]
    voice: str | None
    in_conversation: bool
    output: list[ConversationItem] = field(default_factory=list)
    open_message: ConversationItem | None = None
    overrides: dict = field(default_factory=dict)  # from response.create
    output_tokens: int = 0
    input_tokens: int = 0
    started: bool = False  # the ReplyJob went out
    created_ms: float = 0.0  # input audio position at response.created


def _voice(overrides: dict, default: str | None) -> str | None:
    voice = ((overrides.get("audio") or {}).get("output") or {}).get("voice", default)
    return voice.get("id") if isinstance(voice, dict) else voice


class Responses:
    """One session's responses; ``history_chars`` bounds the conversation text the LLM gets."""

    def __init__(self, engine: TurnEngine, history_chars: int) -> None:
        self._engine = engine
        self.history_chars = history_chars
        self.active: Response | None = None
        self.queued: dict | None = None  # auto-response waiting for the active one to end

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, overrides: dict) -> None:
        """Create a response with ``overrides`` (``response.create``'s ``response``)."""
        engine = self._engine
        settings = engine.settings
        response = Response(
            id=new_id("resp"),
            modalities=list(overrides.get("output_modalities") or settings.output_modalities),
            voice=_voice(overrides, settings.voice),
            in_conversation=overrides.get("conversation", "auto") != "none",
            overrides=overrides,
        )
        self.active = response
        response.created_ms = engine.segmenter.position_ms
        engine.segmenter.response_started()
        adopted = engine.speculation.adopt(response)
        engine.outbox.emit({"type": "response.created", "response": self.response_object(response, "in_progress")})
        if adopted is None:
            self.maybe_start_reply()
        else:
            self._replay(response.id, adopted)

    def start_or_queue(self) -> None:
        """The automatic response of a turn: now, or after the active one."""
        if self.active is None:
            self.start({})
        else:
            self.queued = {}

    def maybe_start_reply(self) -> None:
        """Send the active response's ReplyJob once no user transcript is pending."""
        response = self.active
        if response is None or response.started or self._engine.transcription.pending:
            return
        response.started = True
        job = self.reply_job(response.id, response.overrides)
        response.input_tokens = input_tokens(job)
        self._engine.outbox.run(job)

    def reply_job(self, response_id: str, overrides: dict, pending_user_text: str | None = None) -> ReplyJob:
        """The ReplyJob a response with ``overrides`` gets now; ``pending_user_text``: as if the turn
        in progress had been committed with that transcript (for a speculative reply)."""
        engine = self._engine
        settings = engine.settings
        instructions = overrides.get("instructions", settings.instructions)
        tools = [t for t in overrides.get("tools", settings.tools) if t.get("type") == "function"]
        history = chat_messages(engine.conversation.items)
        if pending_user_text:
            history.append({"role": "user", "content": pending_user_text})
        messages = [{"role": "system", "content": instructions}] if instructions else []
        messages += recent(history, self.history_chars)
        max_tokens = overrides.get("max_output_tokens", settings.max_output_tokens)
        return ReplyJob(
            response_id=response_id,
            messages=messages,
            tools=tools,
            tool_choice=overrides.get("tool_choice", settings.tool_choice),
            max_tokens=None if max_tokens == "inf" else max_tokens,
            modalities=list(overrides.get("output_modalities") or settings.output_modalities),
            voice=_voice(overrides, settings.voice),
            speed=settings.speed,
        )

    def cancel(self, reason: str) -> None:
        """Cancel the active response (``response.done`` with status ``cancelled``)."""
        response = self.active
        self._engine.outbox.run(CancelReply(response.id))
        self._close_message(response, "incomplete")
        self._finish(response, "cancelled", {"type": "cancelled", "reason": reason})

    def _finish(self, response: Response, status: str, details: dict | None) -> None:
        engine = self._engine
        self.active = None
        engine.segmenter.response_ended(response.created_ms + sum(item.audio_ms for item in response.output))
        engine.outbox.emit({"type": "response.done", "response": self.response_object(response, status, details)})
        if self.queued is not None:
            overrides, self.queued = self.queued, None
            self.start(overrides)

    # -- results of the ReplyJob -------------------------------------------------------------------

    def _current(self, response_id: str, result: tuple) -> Response | None:
        """The active response if ``response_id`` is it; None for a speculative or stale result."""
        if self._engine.speculation.buffered(response_id, result):
            return None
        response = self.active
        return response if response is not None and response.id == response_id else None

    def segment(self, response_id: str, text: str, pcm16: bytes | None = None) -> None:
        """See :meth:`TurnEngine.reply_segment`."""
        response = self._current(response_id, ("segment", text, pcm16))
        if response is None or not (text or pcm16):
            return
        message = response.open_message or self._open_message(response)
        response.output_tokens += estimate_tokens(text)
        ids = {"response_id": response.id, "item_id": message.id, "output_index": len(response.output) - 1, "content_index": 0}
        emit = self._engine.outbox.emit
        if "audio" not in response.modalities:
            emit({"type": "response.output_text.delta", **ids, "delta": text})
            message.segments.append(Segment(text, 0.0, 0.0))
            return
        if text:
            # Clauses arrive stripped; the space keeps the deltas adding up to the final transcript.
            delta = " " + text if message.segments else text
            emit({"type": "response.output_audio_transcript.delta", **ids, "delta": delta})
        start_ms = message.audio_ms
        step = _DELTA_MS * BYTES_PER_MS
        for offset in range(0, len(pcm16 or b""), step):
            emit({"type": "response.output_audio.delta", **ids, "delta": encode_audio(pcm16[offset : offset + step])})
        message.audio_ms += len(pcm16 or b"") / BYTES_PER_MS
        message.segments.append(Segment(text, start_ms, message.audio_ms))

    def tool_call(self, response_id: str, name: str, arguments: str) -> None:
        """See :meth:`TurnEngine.reply_tool_call`."""
        response = self._current(response_id, ("tool", name, arguments))
        if response is None:
            return
        self._close_message(response, "completed")
        call = ConversationItem({"id": new_id("item"), "object": "realtime.item", "type": "function_call",
                                 "status": "in_progress", "call_id": new_id("call"), "name": name, "arguments": ""})
        self._add_output(response, call)
        ids = {"response_id": response.id, "item_id": call.id, "output_index": len(response.output) - 1}
        emit = self._engine.outbox.emit
        emit({"type": "response.function_call_arguments.delta", **ids, "call_id": call.data["call_id"], "delta": arguments})
        call.data["arguments"] = arguments
        call.data["status"] = "completed"
        emit({"type": "response.function_call_arguments.done", **ids, "call_id": call.data["call_id"],
              "name": name, "arguments": arguments})
        emit({"type": "response.output_item.done", "response_id": response.id, "output_index": ids["output_index"],
              "item": call.data})
        self._engine.conversation.done(call)

    def finished(self, response_id: str, error: str | None = None) -> None:
        """See :meth:`TurnEngine.reply_finished`."""
        response = self._current(response_id, ("finished", error))
        if response is None:
            return
        if error is not None:
            self._close_message(response, "incomplete")
            self._finish(response, "failed", {"type": "failed", "error": {"type": "server_error", "message": error}})
        else:
            self._close_message(response, "completed")
            self._finish(response, "completed", None)

    def _replay(self, response_id: str, results: list[tuple]) -> None:
        for result in results:
            if result[0] == "segment":
                self.segment(response_id, result[1], result[2])
            elif result[0] == "tool":
                self.tool_call(response_id, result[1], result[2])
            else:
                self.finished(response_id, result[1])

    # -- output items ------------------------------------------------------------------------------

    def _open_message(self, response: Response) -> ConversationItem:
        audio = "audio" in response.modalities
        part = {"type": "output_audio", "transcript": ""} if audio else {"type": "output_text", "text": ""}
        message = ConversationItem({"id": new_id("item"), "object": "realtime.item", "type": "message",
                                    "role": "assistant", "status": "in_progress", "content": [part]})
        self._add_output(response, message)
        response.open_message = message
        self._engine.outbox.emit({"type": "response.content_part.added", "response_id": response.id, "item_id": message.id,
                                  "output_index": len(response.output) - 1, "content_index": 0,
                                  "part": {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}})
        return message

    def _add_output(self, response: Response, item: ConversationItem) -> None:
        response.output.append(item)
        self._engine.outbox.emit({"type": "response.output_item.added", "response_id": response.id,
                                  "output_index": len(response.output) - 1, "item": item.data})
        if response.in_conversation:
            self._engine.conversation.add(item)

    def _close_message(self, response: Response, status: str) -> None:
        message = response.open_message
        if message is None:
            return
        response.open_message = None
        ids = {"response_id": response.id, "item_id": message.id, "output_index": response.output.index(message), "content_index": 0}
        emit = self._engine.outbox.emit
        if "audio" in response.modalities:
            text = "".join(s.text if i == 0 else " " + s.text for i, s in enumerate(message.segments))
            message.data["content"][0]["transcript"] = text
            emit({"type": "response.output_audio.done", **ids})
            emit({"type": "response.output_audio_transcript.done", **ids, "transcript": text})
            part = {"type": "audio", "transcript": text}
        else:
            text = "".join(s.text for s in message.segments)
            message.data["content"][0]["text"] = text
            emit({"type": "response.output_text.done", **ids, "text": text})
            part = {"type": "text", "text": text}
        emit({"type": "response.content_part.done", **ids, "part": part})
        message.data["status"] = status
        emit({"type": "response.output_item.done", "response_id": response.id,
              "output_index": ids["output_index"], "item": message.data})
        if response.in_conversation:
            self._engine.conversation.done(message)

    def response_object(self, response: Response, status: str, details: dict | None = None) -> dict:
        """The GA ``response`` object of ``response`` with ``status``; usage once it is over."""
        obj = {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": [item.data for item in response.output],
            "conversation_id": None if not response.in_conversation else "conv_local",
            "output_modalities": response.modalities,
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": SAMPLE_RATE}, "voice": response.voice}},
            "max_output_tokens": self._engine.settings.session.get("max_output_tokens"),
        }
        if status != "in_progress":
            obj["usage"] = {
                "input_tokens": response.input_tokens,
                "output_tokens": response.output_tokens,
                "total_tokens": response.input_tokens + response.output_tokens,
                "input_token_details": {"text_tokens": response.input_tokens, "audio_tokens": 0, "cached_tokens": 0},
                "output_token_details": {"text_tokens": response.output_tokens, "audio_tokens": 0},
            }
        return obj
