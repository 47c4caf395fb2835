"""The sans-I/O turn engine: one Realtime conversation, events in → events out + engine jobs.

:class:`TurnEngine` is the server's mirror of the client protocol. It owns everything about one
connection that is protocol: the session settings, the input audio buffer and its VAD state
machine, the conversation items, the active response. It does no I/O, starts no threads and
reads no clock: time is the position in the input audio (24 kHz samples since the session began),
which is also what ``audio_start_ms`` / ``audio_end_ms`` mean in the API.

The driver (``connection.py``) does three things in a loop:

1. feeds input — :meth:`receive` (a client frame), and the results of jobs it ran:
   :meth:`speech_probs`, :meth:`transcribed`, :meth:`turn_end_predicted`, :meth:`reply_segment`,
   :meth:`reply_tool_call`, :meth:`reply_finished`;
2. sends :meth:`events_to_send` (GA server events, in order);
3. runs :meth:`jobs_to_run` — :class:`DetectSpeech` (must finish before the next client frame is
   fed, so VAD sees audio in order), :class:`Transcribe`, :class:`ReplyJob`, :class:`CancelReply`,
   :class:`WarmUp` and :class:`PredictTurnEnd` (``jobs.py``).

Results for work that became obsolete (a cancelled reply, a discarded speculative transcription)
are dropped; :meth:`wants` lets the driver skip queued transcriptions nobody needs anymore.

The engine is a facade over one part per concept, each holding its own state:
``segmenter`` (input audio, VAD, end-of-turn asks, idle timeout), ``transcription`` (final,
partial and speculative transcripts), ``speculation`` (the speculative reply), ``conversation``
(the items), ``responses`` (the response lifecycle; ``history.py`` builds the LLM's messages) and
``outbox`` (what goes to the driver). Each part changes only its own state and asks the others
through their methods, reaching them through the engine's attributes (the parts need each other
at turn boundaries: speech starting cancels a response, a transcript starts a reply). Client
events reach their handler through a dispatch table. LLM warm-up: a :class:`WarmUp` job asks the driver to evaluate the session's system
prompt (instructions and tools) into the LLM's cache, at session creation and whenever they
change, so a turn does not pay for it.
"""

from __future__ import annotations

from ...pcm import BYTES_PER_MS, SAMPLE_RATE
from ..codec import ProtocolError, decode_audio, new_id, parse_client_event
from ..settings import SessionSettings
from .conversation import Conversation, ConversationItem, heard_text
from .history import chat_messages
from .jobs import PredictTurnEnd, Transcribe, WarmUp, warm_up_job
from .outbox import Outbox
from .responses import Responses
from .segmenter import Segmenter
from .speculation import SpeculativeReply
from .transcription import Transcription

__all__ = ["TurnEngine", "SAMPLE_RATE", "SPECULATION_DELAY_MS", "EARLY_ASK_MS", "EARLY_SPECULATION_BAR"]

# Less than this in a manual commit is an error in the API as well.
_MIN_COMMIT_MS = 100
# Silence before the buffer is transcribed speculatively (see TurnEngine).
SPECULATION_DELAY_MS = 128.0
# semantic_vad with a model: silence before the early ask that may start the speculation sooner,
# and the probability of "complete" it needs (see TurnEngine). Off by default: in bench_turns at
# 64 ms it started the speculation in 1-3 of 12-24 complete turns (its answer mostly came after
# the fixed delay had started it), fired on mid-sentence pauses ("Can you tell me | a short
# joke" 0.98), and doubled the model's decisions; the gap did not move beyond the noise.
EARLY_ASK_MS: float | None = None
EARLY_SPECULATION_BAR = 0.2


class TurnEngine:
    """One Realtime conversation. ``vad_frame_samples_24k``: VAD frame length at 24 kHz.

    ``model`` is echoed in the session; ``partial_interval_ms`` paces periodic partial recognition
    (``None`` turns it off; speculations overtaken by speech still serve as partials);
    ``speculative`` turns speculative transcription on/off (the benchmark compares both);
    ``speculation_delay_ms``: silence before speculating. Not the first silent frame: the gaps
    inside words (stop consonants) would each start a transcription that is thrown away, and
    the ASR serialises calls, so the guess that counts would wait behind them (measured: a
    1 s-audio guess at "What is the cap-" delayed the real one by a full ASR run). 128 ms: four
    32 ms VAD frames, just past a 96 ms gap inside speech; every millisecond of it is on the way
    to the first audio (bench_turns --stages: the turn's transcript, the LLM and the TTS follow
    it one after the other), so it went down from 160 ms;
    ``speculative_reply`` starts the reply on the speculative transcript (needs ``speculative``);
    ``prefill`` hands each partial transcript's words to the LLM's cache as the prompt the reply
    would get (:meth:`SpeculativeReply.prefill`; needs ``speculative_reply``);
    ``early_ask_ms`` / ``early_speculation_bar`` (``semantic_vad`` with a model; None turns it
    off): after that much silence the end-of-turn model is asked once per pause, and if its
    "complete" is at least the bar the speculation starts then instead of at
    ``speculation_delay_ms``. The model tells a pause inside a word or a phrase (low) from one
    at the end of a thought, which the fixed delay cannot, so the speculation can start sooner
    without the wasted transcriptions the delay is there to avoid. The answer never ends the
    turn: the ask at the turn end settings' ``pause_ms`` does;
    ``history_chars`` bounds the conversation text handed to the LLM (oldest dropped first).
    """

    def __init__(
        self,
        *,
        model: str,
        vad_frame_samples_24k: int,
        partial_interval_ms: float | None = 1000.0,
        speculative: bool = True,
        speculation_delay_ms: float = SPECULATION_DELAY_MS,
        speculative_reply: bool = True,
        prefill: bool = True,
        history_chars: int = 6000,
        turn_end_model: bool = False,
        early_ask_ms: float | None = EARLY_ASK_MS,
        early_speculation_bar: float = EARLY_SPECULATION_BAR,
    ) -> None:
        self.settings = SessionSettings(model, turn_end_model=turn_end_model)
        self.speculative = speculative
        self.speculation_delay_ms = speculation_delay_ms
        self.early_ask_ms = early_ask_ms
        self.early_speculation_bar = early_speculation_bar
        self.outbox = Outbox()
        self.conversation = Conversation(self.outbox)
        self.segmenter = Segmenter(self, vad_frame_samples_24k * 2)
        self.transcription = Transcription(self, partial_interval_ms)
        self.speculation = SpeculativeReply(self, speculative_reply, prefill=prefill)
        self.responses = Responses(self, history_chars)
        self._warmed: WarmUp | None = None
        self._handlers = {
            "session.update": self._on_session_update,
            "input_audio_buffer.append": self._on_input_audio_buffer_append,
            "input_audio_buffer.commit": self._on_input_audio_buffer_commit,
            "input_audio_buffer.clear": self._on_input_audio_buffer_clear,
            "output_audio_buffer.clear": self._on_output_audio_buffer_clear,
            "conversation.item.create": self._on_conversation_item_create,
            "conversation.item.truncate": self._on_conversation_item_truncate,
            "conversation.item.delete": self._on_conversation_item_delete,
            "conversation.item.retrieve": self._on_conversation_item_retrieve,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
        }
        self.outbox.emit({"type": "session.created", "session": self.settings.session})
        self._warm_up()

    # -- driver interface --------------------------------------------------------------------------

    def events_to_send(self) -> list[dict]:
        return self.outbox.take_events()

    def jobs_to_run(self) -> list:
        return self.outbox.take_jobs()

    @property
    def items(self) -> list[ConversationItem]:
        """The conversation, in order."""
        return self.conversation.items

    @property
    def input_position_ms(self) -> float:
        """How much input audio the VAD has seen (session ms): where a decision made now lands."""
        return self.segmenter.position_ms

    @property
    def active_response_id(self) -> str | None:
        return self.responses.active.id if self.responses.active else None

    @property
    def turn_end_stats(self) -> dict:
        """How the end-of-turn decisions went (see :class:`Segmenter`)."""
        return self.segmenter.turn_end_stats

    @property
    def speculation_stats(self) -> dict:
        """How the speculative replies fared: "started", "adopted", "discarded"."""
        return self.speculation.stats

    def receive(self, frame: str | bytes) -> None:
        """Handle one client frame; a bad one becomes an ``error`` event and changes nothing."""
        try:
            event = parse_client_event(frame)
            handler = self._handlers.get(event["type"])
            if handler is None:  # a valid GA client event this server does not serve
                raise ProtocolError(f"Unsupported event type {event['type']!r}", code="invalid_event_type",
                                    param="type", event_id=event.get("event_id"))
            handler(event, event.get("event_id"))
        except ProtocolError as error:
            self.outbox.error(error)
        else:
            if self.speculation.running and event["type"] != "input_audio_buffer.append":
                # Instructions, voice, tools or history may have changed what the reply would be.
                self.speculation.check()

    def speech_probs(self, probs: list[float]) -> None:
        """Results of a :class:`DetectSpeech` job: one probability per frame, in order."""
        self.segmenter.speech_probs(probs)
        speculation = self.transcription.speculation
        if self.speculation.running and (speculation is None or speculation.text is None):
            self.speculation.discard()  # the speaker went on

    def turn_end_predicted(self, job: PredictTurnEnd, prob: float | None, error: str | None = None, *,
                           cpu_ms: float = 0.0) -> None:
        """Result of a :class:`PredictTurnEnd`: the probability that the turn is complete (or
        ``error``), and the CPU time the model took (``cpu_ms``, counted in ``turn_end_stats``
        whether or not the answer still counts). Ends the turn now if it still pauses and the
        answer is "complete"."""
        self.segmenter.turn_end_predicted(job, prob, error, cpu_ms=cpu_ms)

    def wants(self, job: Transcribe) -> bool:
        """Whether ``job``'s result would still be used (the driver skips queued work that is not)."""
        return self.transcription.wants(job)

    def transcribed(self, job: Transcribe, text: str | None, error: str | None = None) -> None:
        """Result of a :class:`Transcribe` job (``text``, or ``error`` if the ASR raised)."""
        self.transcription.transcribed(job, text, error)

    def reply_segment(self, response_id: str, text: str, pcm16: bytes | None = None) -> None:
        """One voiced clause (or, text-only, one text piece) of ``response_id``."""
        self.responses.segment(response_id, text, pcm16)

    def reply_tool_call(self, response_id: str, name: str, arguments: str) -> None:
        """A function call of ``response_id``: its own output item, complete at once."""
        self.responses.tool_call(response_id, name, arguments)

    def reply_finished(self, response_id: str, error: str | None = None) -> None:
        """The ReplyJob for ``response_id`` ended (normally, or with ``error`` from an engine)."""
        self.responses.finished(response_id, error)

    def commit(self, item_id: str, end_byte: int, *, reuse_speculation: bool, auto_response: bool = False) -> None:
        """End the turn: the buffer's first ``end_byte`` bytes become user item ``item_id``."""
        audio = self.segmenter.take(end_byte)
        item = ConversationItem(
            {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
             "content": [{"type": "input_audio", "transcript": None}]},
        )
        item.audio_ms = len(audio) / BYTES_PER_MS
        self.outbox.emit({"type": "input_audio_buffer.committed", "item_id": item_id,
                          "previous_item_id": self.conversation.last_id})
        self.conversation.add(item)
        self.transcription.commit(item, audio, reuse_speculation=reuse_speculation)
        if auto_response:
            self.responses.start_or_queue()

    def _messages(self) -> list[dict]:
        """The conversation as OpenAI chat messages (see ``history.chat_messages``)."""
        return chat_messages(self.conversation.items)

    def _warm_up(self) -> None:
        """Ask for the session's prompt prefix to be cached, once per distinct prefix."""
        job = warm_up_job(self.settings)
        if job != self._warmed:
            self._warmed = job
            self.outbox.run(job)

    # -- client events -----------------------------------------------------------------------------

    def _on_session_update(self, event: dict, event_id: str | None) -> None:
        was_vad = self.settings.vad
        self.settings.update(event["session"], event_id)
        if was_vad and not self.settings.vad:
            self.segmenter.vad_turned_off()
            self.transcription.drop_speculation()
        self.outbox.emit({"type": "session.updated", "session": self.settings.session})
        self._warm_up()

    def _on_input_audio_buffer_append(self, event: dict, event_id: str | None) -> None:
        self.segmenter.append(decode_audio(event["audio"], param="audio", event_id=event_id), event_id)

    def _on_input_audio_buffer_commit(self, event: dict, event_id: str | None) -> None:
        segmenter = self.segmenter
        if len(segmenter.buffer) < _MIN_COMMIT_MS * BYTES_PER_MS:
            raise ProtocolError(
                f"Error committing input audio buffer: buffer too small. Expected at least {_MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {len(segmenter.buffer) / BYTES_PER_MS:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty", event_id=event_id,
            )
        self.commit(segmenter.manual_commit(), len(segmenter.buffer), reuse_speculation=False)

    def _on_input_audio_buffer_clear(self, event: dict, event_id: str | None) -> None:
        self.segmenter.reset()
        self.transcription.drop_speculation()
        self.outbox.emit({"type": "input_audio_buffer.cleared"})

    def _on_output_audio_buffer_clear(self, event: dict, event_id: str | None) -> None:
        raise ProtocolError(
            "output_audio_buffer.clear is only for WebRTC/SIP connections; over WebSocket the client owns playback",
            code="invalid_event_type", param="type", event_id=event_id,
        )

    def _on_conversation_item_create(self, event: dict, event_id: str | None) -> None:
        data = dict(event["item"])
        if data.get("id") and self.conversation.find(data["id"]) is not None:
            raise ProtocolError(f"Item with id {data['id']!r} already exists", code="item_already_exists",
                                param="item.id", event_id=event_id)
        kind = data["type"]
        if kind == "message" and data["role"] == "assistant" and any(
                c.get("type") == "output_audio" and c.get("audio") for c in data["content"]):
            raise ProtocolError("Assistant audio items cannot be created by the client", param="item.content", event_id=event_id)
        position = self.conversation.position_after(event.get("previous_item_id"), event_id)
        data["id"] = data.get("id") or new_id("item")
        data["object"] = "realtime.item"
        data["status"] = "completed"
        item = ConversationItem(data)
        audio_parts = []
        if kind == "message":
            for index, part in enumerate(data["content"]):
                if part.get("type") == "input_audio" and part.get("audio"):
                    audio_parts.append(decode_audio(part["audio"], param=f"item.content.{index}.audio", event_id=event_id))
            data["content"] = [{k: v for k, v in part.items() if k != "audio"} for part in data["content"]]
        self.conversation.add(item, position)
        if audio_parts and not any(p.get("transcript") for p in data["content"]):
            # The item is done once its transcript is: conversation.item.done follows it.
            pcm16 = b"".join(audio_parts)
            item.audio_ms = len(pcm16) / BYTES_PER_MS
            self.transcription.request_final(item, pcm16)
        else:
            self.conversation.done(item)

    def _on_conversation_item_truncate(self, event: dict, event_id: str | None) -> None:
        item = self.conversation.get(event["item_id"], event_id)
        if item.data.get("role") != "assistant" or not any(c.get("type") == "output_audio" for c in item.data["content"]):
            raise ProtocolError("Only assistant messages with audio can be truncated", code="invalid_value",
                                param="item_id", event_id=event_id)
        if event["content_index"] != 0:
            raise ProtocolError("Assistant audio is content part 0", param="content_index", event_id=event_id)
        end_ms = event["audio_end_ms"]
        if end_ms < 0 or end_ms > item.audio_ms + 1:  # 1 ms of rounding slack, as deltas are whole samples
            raise ProtocolError(
                f"audio_end_ms {end_ms} is beyond the item's audio ({item.audio_ms:.0f} ms)",
                code="invalid_value", param="audio_end_ms", event_id=event_id,
            )
        item.truncated_ms = float(end_ms)
        item.data["content"][0]["transcript"] = heard_text(item)
        self.outbox.emit({"type": "conversation.item.truncated", "item_id": item.id, "content_index": 0,
                          "audio_end_ms": int(end_ms)})

    def _on_conversation_item_delete(self, event: dict, event_id: str | None) -> None:
        item = self.conversation.get(event["item_id"], event_id)
        self.conversation.remove(item)
        self.transcription.forget(item.id)
        self.outbox.emit({"type": "conversation.item.deleted", "item_id": item.id})
        self.responses.maybe_start_reply()

    def _on_conversation_item_retrieve(self, event: dict, event_id: str | None) -> None:
        item = self.conversation.get(event["item_id"], event_id)
        self.outbox.emit({"type": "conversation.item.retrieved", "item": item.data})

    def _on_response_create(self, event: dict, event_id: str | None) -> None:
        active = self.responses.active
        if active is not None:
            raise ProtocolError(
                f"Conversation already has an active response in progress: {active.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response", event_id=event_id,
            )
        self.responses.start(event.get("response") or {})

    def _on_response_cancel(self, event: dict, event_id: str | None) -> None:
        wanted = event.get("response_id")
        active = self.responses.active
        if active is None or (wanted and wanted != active.id):
            raise ProtocolError(
                "Cancellation failed: no active response found", code="response_cancel_not_active", event_id=event_id
            )
        self.responses.cancel("client_cancelled")
