"""The sans-I/O turn engine: one Realtime conversation, events in → events out + engine jobs.

:class:`TurnEngine` is the server's mirror of the client protocol. It owns everything about one
connection that is protocol: the session settings, the input audio buffer and its VAD state
machine, the conversation items, the active response. It does no I/O, starts no threads and
reads no clock: time is the position in the input audio (24 kHz samples since the session began),
which is also what ``audio_start_ms`` / ``audio_end_ms`` mean in the API.

The driver (``connection.py``) does three things in a loop:

1. feeds input — :meth:`receive` (a client frame), and the results of jobs it ran:
   :meth:`speech_probs`, :meth:`transcribed`, :meth:`reply_segment`, :meth:`reply_tool_call`,
   :meth:`reply_finished`;
2. sends :meth:`events_to_send` (GA server events, in order);
3. runs :meth:`jobs_to_run` — :class:`DetectSpeech` (must finish before the next client frame is
   fed, so VAD sees audio in order), :class:`Transcribe`, :class:`Reply` and :class:`CancelReply`.

Results for work that became obsolete (a cancelled reply, a discarded speculative transcription)
are dropped here; :meth:`wants` lets the driver skip queued transcriptions nobody needs anymore.

Streaming choices:

- partial recognition: every ``partial_interval_ms`` of ongoing speech a ``partial`` transcription
  of the growing buffer is requested (one in flight at a time; the driver skips it when it
  could delay the final transcript, see ``connection.py``); a speculation overtaken by more speech serves as a
  partial too. The words two consecutive partials agree on are sent as
  ``input_audio_transcription.delta`` before the turn ends; the final transcript's remainder
  follows as one more delta, then ``.completed``.
- speculative transcription: after ``speculation_delay_ms`` of silence following speech, the
  buffer so far is transcribed at once; if the silence lasts (speech_stopped) the result is
  reused, if speech resumes it is discarded. The server waits ``silence_duration_ms`` anyway,
  which hides that much of the ASR time.
- speculative reply: when the speculative transcript arrives while the silence is still short of
  ``silence_duration_ms`` and the turn would create a response, the :class:`Reply` it would get
  is started at once under a fresh response id. Its results are buffered here, invisible to the
  client. At speech_stopped the response is built as usual, and if the ``Reply`` it would start
  is identical to the speculative one (same messages, instructions, tools, voice, ...), that one
  is adopted: ``response.created`` carries its id and the buffered results are flushed at once.
  Anything that changes what the reply would be (speech resuming, the buffer cleared or
  committed by hand, a session.update, an item created, deleted or truncated) discards it with a
  :class:`CancelReply`; nothing of it reaches the conversation. Manual turns never speculate.
- a reply is requested (``Reply`` job) once every user item it depends on has its transcript;
  ``response.created`` goes out at once, as the API does.
- idle timeout (``server_vad`` ``idle_timeout_ms``): counted in input audio from the moment the
  last response's audio would have finished playing (its ``response.created`` position plus its
  audio length, or ``response.done`` if later); if no speech starts by then,
  ``input_audio_buffer.timeout_triggered`` goes out, the buffer is committed and transcribed as
  any turn, and a response is created. Once per reply: the next timeout waits for the next reply.
- end of turn (``semantic_vad`` with an end-of-turn model, ``turn_end_model=True``): after
  ``pause_ms`` of silence a :class:`PredictTurnEnd` job carries the last 8 s of the turn to the
  model, and once more at ``recheck_ms`` if the pause lasts (``kind="recheck"``, judged against
  ``recheck_threshold``). If it answers "complete" (at least ``threshold``) while the pause lasts, speech_stopped goes out at the current input position
  and the turn ends as under server VAD; otherwise (incomplete, failed, or speech resumed
  first, which drops the answer) the VAD's silence duration, the eagerness's longest wait, ends
  it. Speculative transcription (at ``speculation_delay_ms``, before the model is asked) and the
  speculative reply work as under server VAD: a complete answer usually finds the reply already
  under way. An early ask (``kind="early"``, at ``early_ask_ms`` of silence, once per pause)
  starts the speculation sooner when its "complete" reaches ``early_speculation_bar``; it never
  ends the turn.
- LLM warm-up: a :class:`WarmUp` job asks the driver to evaluate the session's system prompt
  (instructions and tools) into the LLM's cache, at session creation and whenever they change,
  so a turn does not pay for it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from .settings import SessionSettings
from ..pcm import BYTES_PER_MS as _BYTES_PER_MS, SAMPLE_RATE
from .wire import ProtocolError, decode_audio, encode_audio, error_event, new_id, parse_client_event

__all__ = [
    "TurnEngine",
    "DetectSpeech",
    "Transcribe",
    "Reply",
    "CancelReply",
    "WarmUp",
    "PredictTurnEnd",
    "warm_up_job",
    "empty_turn_end_stats",
    "SAMPLE_RATE",
    "SPECULATION_DELAY_MS",
]

# Two VAD frames above threshold start speech: one loud click should not interrupt a reply.
_ONSET_FRAMES = 2
# Less than this in a manual commit is an error in the API as well.
_MIN_COMMIT_MS = 100
# Audio deltas are cut to this size: small enough to start playback early, large enough to keep
# the event count (and the JSON cost per event) low.
_DELTA_MS = 200
_SNAPSHOT_KEYS = {"item", "response", "session", "part"}
# Silence before the buffer is transcribed speculatively (see TurnEngine).
SPECULATION_DELAY_MS = 160.0
# semantic_vad with a model: silence before the early ask that may start the speculation sooner,
# and the probability of "complete" it needs (see TurnEngine). Off by default: in bench_turns at
# 64 ms it started the speculation in 1-3 of 12-24 complete turns (its answer mostly came after
# the fixed delay had started it), fired on mid-sentence pauses ("Can you tell me | a short
# joke" 0.98), and doubled the model's decisions; the gap did not move beyond the noise.
EARLY_ASK_MS: float | None = None
EARLY_SPECULATION_BAR = 0.2
#: Uncommitted input audio the server keeps at most (5 min, 14.4 MB): an append past it gets an
#: ``error`` and is dropped (the buffer stays), so a client that never commits cannot grow it.
MAX_INPUT_BUFFER_MS = 5 * 60 * 1000


# -- jobs ------------------------------------------------------------------------------------------


@dataclass
class DetectSpeech:
    """Run the session's VAD stream over ``frames`` (24 kHz PCM16, one frame each), in order."""

    frames: list[bytes]


@dataclass
class Transcribe:
    """Transcribe ``pcm16`` (24 kHz) and hand the text back via ``TurnEngine.transcribed(job, text)``."""

    item_id: str
    pcm16: bytes
    kind: str  # "partial" | "speculative" | "final"
    language: str | None = None
    prompt: str | None = None
    job_id: str = field(default_factory=lambda: new_id("asr"))


@dataclass
class Reply:
    """Generate a response: stream the LLM over ``messages`` and voice it clause by clause.

    The driver reports back in order: ``reply_segment`` (text, and its 24 kHz PCM16 audio when
    ``"audio"`` is in ``modalities``), ``reply_tool_call``, then ``reply_finished`` exactly once.
    """

    response_id: str
    messages: list[dict]
    tools: list[dict]
    tool_choice: object
    max_tokens: int | None
    modalities: list[str]
    voice: str | None
    speed: float


@dataclass
class CancelReply:
    """Stop generating ``response_id`` (LLM, TTS); its late results will be ignored."""

    response_id: str


@dataclass
class WarmUp:
    """Evaluate the prompt prefix every reply of this session starts with (``messages``: the
    system message; ``tools``) into the LLM's cache, so the first turn is not cold. Optional
    work: nothing is reported back."""

    messages: list[dict]
    tools: list[dict]


@dataclass
class PredictTurnEnd:
    """Ask the end-of-turn model whether the turn in ``pcm16`` (24 kHz, its last ≤ 8 s, ending at
    the pause) is complete; report via ``TurnEngine.turn_end_predicted(job, prob)``. Optional
    work: a driver without a model may never answer (the longest silence ends the turn)."""

    item_id: str
    pcm16: bytes
    # "end": its answer may end the turn ("recheck": the second ask of a long pause, with its own
    # threshold); "early": it may only start the speculation sooner.
    kind: str = "end"
    job_id: str = field(default_factory=lambda: new_id("eot"))


# The end-of-turn model hears at most this much of the turn (Smart Turn's window).
TURN_END_WINDOW_MS = 8000


# -- conversation state ----------------------------------------------------------------------------


@dataclass
class _Segment:
    text: str
    start_ms: float
    end_ms: float


@dataclass
class _Item:
    """A conversation item plus what the server needs to rebuild LLM messages from it."""

    data: dict  # the GA item, as sent to the client (audio omitted)
    segments: list[_Segment] = field(default_factory=list)  # assistant audio, clause by clause
    audio_ms: float = 0.0
    truncated_ms: float | None = None

    @property
    def id(self) -> str:
        return self.data["id"]


@dataclass
class _Response:
    id: str
    modalities: list[str]
    voice: str | None
    in_conversation: bool
    output: list[_Item] = field(default_factory=list)
    open_message: _Item | None = None
    overrides: dict = field(default_factory=dict)  # from response.create
    output_tokens: int = 0
    input_tokens: int = 0
    started: bool = False  # the Reply job went out
    created_ms: float = 0.0  # input audio position at response.created


@dataclass
class _Speculation:
    job_id: str
    text: str | None = None  # None while the ASR works on it


@dataclass
class _SpeculativeReply:
    """A Reply started before speech_stopped; its results wait in ``results`` until adoption."""

    job: Reply
    results: list[tuple] = field(default_factory=list)  # ("segment", text, pcm16) | ("tool", name, args) | ("finished", error)


def _estimate_tokens(text: str) -> int:
    # The engines do not report token counts; ~4 characters per token is the usual English rule.
    return max(1, len(text) // 4) if text else 0


def _size(message: dict) -> int:
    calls = message.get("tool_calls")
    return len(str(message.get("content") or "")) + (len(json.dumps(calls)) if calls else 0)


def _recent(messages: list[dict], budget_chars: int) -> list[dict]:
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


def empty_turn_end_stats() -> dict:
    """``TurnEngine.turn_end_stats`` before any decision (see there for the keys)."""
    return {"asked": 0, "complete": 0, "incomplete": 0, "dropped": 0, "early": 0, "early_speculated": 0,
            "cpu_ms": 0.0}


def warm_up_job(settings: SessionSettings) -> WarmUp:
    """The prompt prefix every reply of a session with ``settings`` starts with."""
    instructions = settings.instructions
    return WarmUp(messages=[{"role": "system", "content": instructions}] if instructions else [],
                  tools=settings.tools)


def _input_tokens(job: Reply) -> int:
    return sum(_estimate_tokens(str(m.get("content") or "")) for m in job.messages)


def _stable_prefix(a: str, b: str) -> str:
    """The words two successive partial transcripts agree on, from the start."""
    words = []
    for x, y in zip(a.split(), b.split(), strict=False):
        if x != y:
            break
        words.append(x)
    return " ".join(words)


class TurnEngine:
    """One Realtime conversation. ``vad_frame_samples_24k``: VAD frame length at 24 kHz.

    ``model`` is echoed in the session; ``partial_interval_ms`` paces periodic partial recognition
    (``None`` turns it off; speculations overtaken by speech still serve as partials);
    ``speculative`` turns speculative transcription on/off (the benchmark compares both);
    ``speculation_delay_ms``: silence before speculating. Not the first silent frame: the gaps
    inside words (stop consonants) would each start a transcription that is thrown away, and
    the ASR serialises calls, so the guess that counts would wait behind them (measured: a
    1 s-audio guess at "What is the cap-" delayed the real one by a full ASR run);
    ``speculative_reply`` starts the reply on the speculative transcript (needs ``speculative``);
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
        history_chars: int = 6000,
        turn_end_model: bool = False,
        early_ask_ms: float | None = EARLY_ASK_MS,
        early_speculation_bar: float = EARLY_SPECULATION_BAR,
    ) -> None:
        self.settings = SessionSettings(model, turn_end_model=turn_end_model)
        self.items: list[_Item] = []
        self.partial_interval_ms = partial_interval_ms
        self.speculative = speculative
        self.speculation_delay_ms = speculation_delay_ms
        self.speculative_reply = speculative_reply
        self.early_ask_ms = early_ask_ms
        self.early_speculation_bar = early_speculation_bar
        self.history_chars = history_chars
        self._frame_bytes = vad_frame_samples_24k * 2
        self._events: list[dict] = []
        self._jobs: list = []
        # input audio
        self._buffer = bytearray()  # uncommitted input audio
        self._buffer_start_ms = 0.0  # session position of _buffer[0]
        self._unframed = bytearray()  # audio not yet sent to the VAD
        self._frames_pos_ms = 0.0  # session position of _unframed[0]
        # VAD state machine
        self._speaking = False
        self._speech_item_id: str | None = None
        self._loud_run = 0
        self._silence_ms = 0.0
        self._last_partial_ms = 0.0
        self._partial_job: str | None = None
        self._partials: list[str] = []
        self._sent_partial = ""
        self._speculation: _Speculation | None = None
        self._turn_end_job: str | None = None  # the PredictTurnEnd asked in the current pause
        self._early_job: str | None = None  # the early one (speculation only), while it is pending
        self._early_asked = False  # in the current pause
        # How the end-of-turn decisions went: "asked", "complete", "incomplete", "dropped" (speech
        # resumed first), "early" (early asks, which only start the speculation) and
        # "early_speculated" (those that did), and "cpu_ms", the model's CPU time over all of
        # them (as the driver measured it), for logs and benchmarks.
        self.turn_end_stats = empty_turn_end_stats()
        # user items waiting for their final transcript: item_id → job_id
        self._awaiting_transcript: dict[str, str] = {}
        self._response: _Response | None = None
        self._queued_response: dict | None = None  # auto-response waiting for the active one to end
        self._spec_reply: _SpeculativeReply | None = None
        # How the speculative replies fared: "started", "adopted", "discarded" (for logs and benchmarks).
        self.speculation_stats = {"started": 0, "adopted": 0, "discarded": 0}
        self._warmed: WarmUp | None = None
        self._idle_since_ms: float | None = None  # audio position the idle timeout counts from
        self._emit({"type": "session.created", "session": self.settings.session})
        self._warm_up()

    # -- driver interface ------------------------------------------------------------------------

    def events_to_send(self) -> list[dict]:
        events, self._events = self._events, []
        return events

    def jobs_to_run(self) -> list:
        jobs, self._jobs = self._jobs, []
        return jobs

    @property
    def input_position_ms(self) -> float:
        """How much input audio the VAD has seen (session ms): where a decision made now lands."""
        return self._frames_pos_ms

    @property
    def active_response_id(self) -> str | None:
        return self._response.id if self._response else None

    def receive(self, frame: str | bytes) -> None:
        """Handle one client frame; a bad one becomes an ``error`` event and changes nothing."""
        try:
            event = parse_client_event(frame)
            handler = getattr(self, "_on_" + event["type"].replace(".", "_"))
            handler(event, event.get("event_id"))
        except ProtocolError as error:
            self._events.append(error_event(error))
        else:
            if self._spec_reply is not None and event["type"] != "input_audio_buffer.append":
                # Instructions, voice, tools or history may have changed what the reply would be.
                self._check_speculative_reply()

    # -- client events ---------------------------------------------------------------------------

    def _on_session_update(self, event: dict, event_id: str | None) -> None:
        was_vad = self.settings.vad
        self.settings.update(event["session"], event_id)
        if was_vad and not self.settings.vad:
            # Turning VAD off mid-speech: the audio stays in the buffer for a manual commit.
            self._frames_pos_ms += len(self._unframed) / _BYTES_PER_MS
            self._unframed.clear()
            self._speaking = False
            self._speculation = None
        self._emit({"type": "session.updated", "session": self.settings.session})
        self._warm_up()

    def _on_input_audio_buffer_append(self, event: dict, event_id: str | None) -> None:
        pcm = decode_audio(event["audio"], param="audio", event_id=event_id)
        if len(self._buffer) + len(pcm) > MAX_INPUT_BUFFER_MS * _BYTES_PER_MS:
            raise ProtocolError(
                f"The input audio buffer already holds {len(self._buffer) / _BYTES_PER_MS / 1000:.1f} s, and this "
                f"server keeps at most {MAX_INPUT_BUFFER_MS // 1000} s uncommitted: commit or clear it. "
                "This append was dropped.", code="input_audio_buffer_full", param="audio", event_id=event_id)
        self._buffer += pcm
        if self.settings.vad is None:
            self._frames_pos_ms += len(pcm) / _BYTES_PER_MS
            return
        self._unframed += pcm
        cut = len(self._unframed) - len(self._unframed) % self._frame_bytes
        if cut:
            frames = [bytes(self._unframed[i : i + self._frame_bytes]) for i in range(0, cut, self._frame_bytes)]
            del self._unframed[:cut]
            self._jobs.append(DetectSpeech(frames))

    def _on_input_audio_buffer_commit(self, event: dict, event_id: str | None) -> None:
        if len(self._buffer) < _MIN_COMMIT_MS * _BYTES_PER_MS:
            raise ProtocolError(
                f"Error committing input audio buffer: buffer too small. Expected at least {_MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {len(self._buffer) / _BYTES_PER_MS:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty", event_id=event_id,
            )
        item_id = self._speech_item_id if self._speaking else new_id("item")
        self._speaking = False
        self._commit(item_id, len(self._buffer), reuse_speculation=False)

    def _on_input_audio_buffer_clear(self, event: dict, event_id: str | None) -> None:
        self._reset_buffer()
        self._emit({"type": "input_audio_buffer.cleared"})

    def _on_output_audio_buffer_clear(self, event: dict, event_id: str | None) -> None:
        raise ProtocolError(
            "output_audio_buffer.clear is only for WebRTC/SIP connections; over WebSocket the client owns playback",
            code="invalid_event_type", param="type", event_id=event_id,
        )

    def _on_conversation_item_create(self, event: dict, event_id: str | None) -> None:
        data = dict(event["item"])
        if data.get("id") and self._find(data["id"]) is not None:
            raise ProtocolError(f"Item with id {data['id']!r} already exists", code="item_already_exists",
                                param="item.id", event_id=event_id)
        kind = data["type"]
        if kind == "message" and data["role"] == "assistant" and any(c.get("type") == "output_audio" and c.get("audio") for c in data["content"]):
            raise ProtocolError("Assistant audio items cannot be created by the client", param="item.content", event_id=event_id)
        previous = event.get("previous_item_id")
        position = self._insert_position(previous, event_id)
        data["id"] = data.get("id") or new_id("item")
        data["object"] = "realtime.item"
        data["status"] = "completed"
        item = _Item(data)
        audio_parts = []
        if kind == "message":
            for index, part in enumerate(data["content"]):
                if part.get("type") == "input_audio" and part.get("audio"):
                    audio_parts.append(decode_audio(part["audio"], param=f"item.content.{index}.audio", event_id=event_id))
            data["content"] = [{k: v for k, v in part.items() if k != "audio"} for part in data["content"]]
        self.items.insert(position, item)
        self._emit_item_added(item, position)
        if audio_parts and not any(p.get("transcript") for p in data["content"]):
            # The item is done once its transcript is: conversation.item.done follows it.
            job = Transcribe(item.id, b"".join(audio_parts), "final", **self._asr_options())
            item.audio_ms = len(job.pcm16) / _BYTES_PER_MS
            self._awaiting_transcript[item.id] = job.job_id
            self._jobs.append(job)
        else:
            self._emit({"type": "conversation.item.done", "item": data, "previous_item_id": self._previous_id(item)})

    def _on_conversation_item_truncate(self, event: dict, event_id: str | None) -> None:
        item = self._find(event["item_id"])
        if item is None:
            raise ProtocolError(f"Item {event['item_id']!r} not found", code="item_not_found", param="item_id", event_id=event_id)
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
        item.data["content"][0]["transcript"] = self._heard_text(item)
        self._emit({"type": "conversation.item.truncated", "item_id": item.id, "content_index": 0, "audio_end_ms": int(end_ms)})

    def _on_conversation_item_delete(self, event: dict, event_id: str | None) -> None:
        item = self._find(event["item_id"])
        if item is None:
            raise ProtocolError(f"Item {event['item_id']!r} not found", code="item_not_found", param="item_id", event_id=event_id)
        self.items.remove(item)
        self._awaiting_transcript.pop(item.id, None)
        self._emit({"type": "conversation.item.deleted", "item_id": item.id})
        self._maybe_start_reply()

    def _on_conversation_item_retrieve(self, event: dict, event_id: str | None) -> None:
        item = self._find(event["item_id"])
        if item is None:
            raise ProtocolError(f"Item {event['item_id']!r} not found", code="item_not_found", param="item_id", event_id=event_id)
        self._emit({"type": "conversation.item.retrieved", "item": item.data})

    def _on_response_create(self, event: dict, event_id: str | None) -> None:
        if self._response is not None:
            raise ProtocolError(
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response", event_id=event_id,
            )
        self._start_response(event.get("response") or {})

    def _on_response_cancel(self, event: dict, event_id: str | None) -> None:
        wanted = event.get("response_id")
        if self._response is None or (wanted and wanted != self._response.id):
            raise ProtocolError(
                "Cancellation failed: no active response found", code="response_cancel_not_active", event_id=event_id
            )
        self._cancel_response("client_cancelled")

    # -- VAD -------------------------------------------------------------------------------------

    def speech_probs(self, probs: list[float]) -> None:
        """Results of a :class:`DetectSpeech` job: one probability per frame, in order."""
        vad = self.settings.vad
        frame_ms = self._frame_bytes / _BYTES_PER_MS
        for prob in probs:
            self._frames_pos_ms += frame_ms
            if vad is None:
                continue
            now_ms = self._frames_pos_ms  # end of this frame
            if prob >= vad.threshold:
                self._loud_run += 1
                self._silence_ms = 0.0
                if self._turn_end_job is not None:
                    self._turn_end_job = None  # the pause is over: its answer no longer counts
                    self.turn_end_stats["dropped"] += 1
                self._early_job, self._early_asked = None, False
                if not self._speaking and self._loud_run >= _ONSET_FRAMES:
                    self._speech_started(now_ms - _ONSET_FRAMES * frame_ms, vad)
                elif self._speaking and self._speculation is not None:
                    # The speaker went on: the guess cannot be the final transcript, but it still
                    # makes a good partial one, so its result is not wasted.
                    if self._partial_job is None:
                        self._partial_job = self._speculation.job_id
                    self._speculation = None
            else:
                self._loud_run = 0
                if not self._speaking:
                    if (vad.idle_timeout_ms and self._idle_since_ms is not None and self._response is None
                            and now_ms - self._idle_since_ms >= vad.idle_timeout_ms):
                        self._idle_timeout(now_ms)
                    continue
                self._silence_ms += frame_ms
                turn_end = vad.turn_end
                if (turn_end is not None and self.early_ask_ms is not None and self.speculative
                        and self._speculation is None and not self._early_asked
                        and self.early_ask_ms <= self._silence_ms < self.speculation_delay_ms):
                    self._ask_turn_end(now_ms, kind="early")
                if self.speculative and self._speculation is None and self._silence_ms >= min(
                    self.speculation_delay_ms, vad.silence_duration_ms - frame_ms
                ):
                    self._speculate(now_ms)
                # Asked as the pause reaches pause_ms, and once more at recheck_ms if it lasts.
                if turn_end is not None and self._turn_end_job is None and self._silence_ms < vad.silence_duration_ms:
                    if self._silence_ms >= turn_end.pause_ms > self._silence_ms - frame_ms:
                        self._ask_turn_end(now_ms)
                    elif (turn_end.recheck_ms is not None
                          and self._silence_ms >= turn_end.recheck_ms > self._silence_ms - frame_ms):
                        self._ask_turn_end(now_ms, kind="recheck")
                if self._speaking and self._silence_ms >= vad.silence_duration_ms:
                    self._speech_stopped(now_ms, vad)
            if self._speaking and self.partial_interval_ms and self._partial_job is None:
                if now_ms - self._last_partial_ms >= self.partial_interval_ms and self._silence_ms == 0:
                    self._last_partial_ms = now_ms
                    job = Transcribe(self._speech_item_id, bytes(self._buffer), "partial", **self._asr_options())
                    self._partial_job = job.job_id
                    self._jobs.append(job)
        if vad is not None and not self._speaking:
            self._trim_idle_buffer(vad, frame_ms)
        if self._spec_reply is not None and (self._speculation is None or self._speculation.text is None):
            self._discard_speculative_reply()  # the speaker went on

    def _ask_turn_end(self, now_ms: float, kind: str = "end") -> None:
        end_byte = min(len(self._buffer), int((now_ms - self._buffer_start_ms) * _BYTES_PER_MS) & ~1)
        start_byte = max(0, end_byte - TURN_END_WINDOW_MS * _BYTES_PER_MS)
        job = PredictTurnEnd(self._speech_item_id, bytes(self._buffer[start_byte:end_byte]), kind=kind)
        if kind == "early":
            self._early_job, self._early_asked = job.job_id, True
            self.turn_end_stats["early"] += 1
        else:
            self._turn_end_job = job.job_id
            self.turn_end_stats["asked"] += 1
        self._jobs.append(job)

    def turn_end_predicted(self, job: PredictTurnEnd, prob: float | None, error: str | None = None, *,
                           cpu_ms: float = 0.0) -> None:
        """Result of a :class:`PredictTurnEnd`: the probability that the turn is complete (or
        ``error``), and the CPU time the model took (``cpu_ms``, counted in ``turn_end_stats``
        whether or not the answer still counts). Ends the turn now if it still pauses and the
        answer is "complete"."""
        self.turn_end_stats["cpu_ms"] += cpu_ms
        if job.kind == "early":
            if job.job_id == self._early_job:
                self._early_job = None
                # Still pausing with no speculation yet (else the fixed delay started it already).
                if (error is None and prob is not None and prob >= self.early_speculation_bar
                        and self._speaking and self._speculation is None and self.speculative):
                    self.turn_end_stats["early_speculated"] += 1
                    self._speculate(self._frames_pos_ms)
            return
        if job.job_id != self._turn_end_job:
            return  # speech resumed, the turn ended otherwise, or the buffer was cleared
        self._turn_end_job = None
        vad = self.settings.vad
        if error is not None or prob is None or vad is None or vad.turn_end is None or not self._speaking:
            return
        threshold = vad.turn_end.threshold
        if job.kind == "recheck" and vad.turn_end.recheck_threshold is not None:
            threshold = vad.turn_end.recheck_threshold
        if prob >= threshold:
            self.turn_end_stats["complete"] += 1
            self._speech_stopped(self._frames_pos_ms, vad)
        else:
            self.turn_end_stats["incomplete"] += 1

    def _trim_idle_buffer(self, vad, frame_ms: float) -> None:
        # Between turns only the audio that could become prefix padding is worth keeping.
        keep_from_ms = self._frames_pos_ms - vad.prefix_padding_ms - _ONSET_FRAMES * frame_ms
        drop = int((keep_from_ms - self._buffer_start_ms) * _BYTES_PER_MS) & ~1
        if drop > 0:
            del self._buffer[:drop]
            self._buffer_start_ms += drop / _BYTES_PER_MS

    def _speech_started(self, onset_ms: float, vad) -> None:
        start_ms = max(self._buffer_start_ms, onset_ms - vad.prefix_padding_ms)
        # The buffer keeps only the prefix padding before the onset, as the API's does.
        drop = int((start_ms - self._buffer_start_ms) * _BYTES_PER_MS) & ~1
        del self._buffer[:drop]
        self._buffer_start_ms += drop / _BYTES_PER_MS
        self._speaking = True
        self._idle_since_ms = None
        self._speech_item_id = new_id("item")
        self._last_partial_ms = onset_ms
        self._partials, self._sent_partial, self._partial_job = [], "", None
        self._speculation = None
        self._emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": int(self._buffer_start_ms),
                    "item_id": self._speech_item_id})
        if self._response is not None and vad.interrupt_response:
            self._cancel_response("turn_detected")

    def _idle_timeout(self, now_ms: float) -> None:
        item_id = new_id("item")
        self._emit({"type": "input_audio_buffer.timeout_triggered", "audio_start_ms": int(self._idle_since_ms),
                    "audio_end_ms": int(now_ms), "item_id": item_id})
        self._idle_since_ms = None
        end_byte = min(len(self._buffer), int((now_ms - self._buffer_start_ms) * _BYTES_PER_MS) & ~1)
        self._commit(item_id, end_byte, reuse_speculation=False, auto_response=True)

    def _speculate(self, now_ms: float) -> None:
        # The last frames were silent, so the buffer up to here holds the whole utterance so far.
        job = Transcribe(self._speech_item_id, bytes(self._buffer), "speculative", **self._asr_options())
        self._last_partial_ms = now_ms  # it doubles as a partial if speech resumes: restart the period
        self._speculation = _Speculation(job.job_id)
        self._jobs.append(job)

    def _speech_stopped(self, now_ms: float, vad) -> None:
        end_byte = min(len(self._buffer), int((now_ms - self._buffer_start_ms) * _BYTES_PER_MS) & ~1)
        self._emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": int(now_ms), "item_id": self._speech_item_id})
        self._speaking = False
        self._turn_end_job = None
        self._early_job, self._early_asked = None, False
        self._commit(self._speech_item_id, end_byte, reuse_speculation=True, auto_response=vad.create_response)

    # -- commit and transcription ----------------------------------------------------------------

    def _commit(self, item_id: str, end_byte: int, *, reuse_speculation: bool, auto_response: bool = False) -> None:
        audio = bytes(self._buffer[:end_byte])
        del self._buffer[:end_byte]
        self._buffer_start_ms += end_byte / _BYTES_PER_MS
        item = _Item(
            {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
             "content": [{"type": "input_audio", "transcript": None}]},
        )
        item.audio_ms = len(audio) / _BYTES_PER_MS
        previous = self.items[-1].id if self.items else None
        self.items.append(item)
        self._emit({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        self._emit_item_added(item, len(self.items) - 1)
        speculation, self._speculation = self._speculation, None
        if reuse_speculation and speculation is not None:
            self._awaiting_transcript[item_id] = speculation.job_id
            if speculation.text is not None:
                self._finish_transcript(item, speculation.text)
        else:
            job = Transcribe(item_id, audio, "final", **self._asr_options())
            self._awaiting_transcript[item_id] = job.job_id
            self._jobs.append(job)
        if auto_response:
            if self._response is None:
                self._start_response({})
            else:
                self._queued_response = {}

    def wants(self, job: Transcribe) -> bool:
        """Whether ``job``'s result would still be used (the driver skips queued work that is not)."""
        if job.job_id == self._partial_job:
            return True
        if self._speculation is not None and self._speculation.job_id == job.job_id:
            return True
        return self._awaiting_transcript.get(job.item_id) == job.job_id

    def transcribed(self, job: Transcribe, text: str | None, error: str | None = None) -> None:
        """Result of a :class:`Transcribe` job (``text``, or ``error`` if the ASR raised)."""
        text = (text or "").strip()
        if job.job_id == self._partial_job:  # a partial, or a speculation overtaken by more speech
            self._partial_job = None
            if error is None and self._speaking and job.item_id == self._speech_item_id:
                self._partial(text)
            return
        if job.kind == "partial":
            return
        if job.kind == "speculative" and self._speculation is not None and self._speculation.job_id == job.job_id:
            self._speculation.text = text if error is None else None
            if error is not None:
                self._speculation = None
            else:
                self._speculate_reply(text)
            return
        if self._awaiting_transcript.get(job.item_id) != job.job_id:
            return  # discarded speculation, or a deleted item
        item = self._find(job.item_id)
        if error is not None:
            del self._awaiting_transcript[job.item_id]
            if self.settings.transcription is not None:
                self._emit({"type": "conversation.item.input_audio_transcription.failed", "item_id": item.id,
                            "content_index": 0, "error": {"type": "transcription_error", "message": error}})
            self._emit({"type": "conversation.item.done", "item": item.data, "previous_item_id": self._previous_id(item)})
            self._maybe_start_reply()
            return
        self._finish_transcript(item, text)

    def _partial(self, text: str) -> None:
        self._partials.append(text)
        if len(self._partials) < 2:
            return
        stable = _stable_prefix(self._partials[-2], self._partials[-1])
        if len(stable) > len(self._sent_partial) and stable.startswith(self._sent_partial):
            delta = stable[len(self._sent_partial) :]
            self._sent_partial = stable
            if self.settings.transcription is not None:
                self._emit({"type": "conversation.item.input_audio_transcription.delta", "item_id": self._speech_item_id,
                            "content_index": 0, "delta": delta})

    def _finish_transcript(self, item: _Item, text: str) -> None:
        del self._awaiting_transcript[item.id]
        audio_index = next(i for i, part in enumerate(item.data["content"]) if part.get("type") == "input_audio")
        item.data["content"][audio_index]["transcript"] = text
        if self.settings.transcription is not None:
            sent = self._sent_partial if item.id == self._speech_item_id else ""
            if text.startswith(sent) and len(text) > len(sent):
                self._emit({"type": "conversation.item.input_audio_transcription.delta", "item_id": item.id,
                            "content_index": audio_index, "delta": text[len(sent):]})
            self._emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item.id,
                        "content_index": audio_index, "transcript": text,
                        "usage": {"type": "duration", "seconds": round(item.audio_ms / 1000, 3)}})
        self._emit({"type": "conversation.item.done", "item": item.data, "previous_item_id": self._previous_id(item)})
        self._maybe_start_reply()

    def _asr_options(self) -> dict:
        transcription = self.settings.transcription or {}
        return {"language": transcription.get("language"), "prompt": transcription.get("prompt")}

    def _reset_buffer(self) -> None:
        self._buffer_start_ms += len(self._buffer) / _BYTES_PER_MS
        self._buffer.clear()
        self._speaking = False
        self._speculation = None
        self._turn_end_job = None
        self._early_job, self._early_asked = None, False
        self._loud_run = 0
        self._silence_ms = 0.0

    # -- responses -------------------------------------------------------------------------------

    def _start_response(self, overrides: dict) -> None:
        settings = self.settings
        audio_out = (overrides.get("audio") or {}).get("output") or {}
        voice = audio_out.get("voice", settings.voice)
        voice = voice.get("id") if isinstance(voice, dict) else voice
        response = _Response(
            id=new_id("resp"),
            modalities=list(overrides.get("output_modalities") or settings.output_modalities),
            voice=voice,
            in_conversation=overrides.get("conversation", "auto") != "none",
            overrides=overrides,
        )
        self._response = response
        response.created_ms = self._frames_pos_ms
        self._idle_since_ms = None
        adopted = self._adopt_speculative_reply(response)
        self._emit({"type": "response.created", "response": self._response_object(response, "in_progress")})
        if adopted is None:
            self._maybe_start_reply()
        else:
            self._replay(response.id, adopted)

    def _maybe_start_reply(self) -> None:
        response = self._response
        if response is None or response.started or self._awaiting_transcript:
            return
        response.started = True
        job = self._reply_job(response.id, response.overrides)
        response.input_tokens = _input_tokens(job)
        self._jobs.append(job)

    def _reply_job(self, response_id: str, overrides: dict, pending_user_text: str | None = None) -> Reply:
        """The Reply a response with ``overrides`` gets now; ``pending_user_text``: as if the turn
        in progress had been committed with that transcript (for a speculative reply)."""
        settings = self.settings
        instructions = overrides.get("instructions", settings.instructions)
        tools = [t for t in overrides.get("tools", settings.tools) if t.get("type") == "function"]
        history = self._messages()
        if pending_user_text:
            history.append({"role": "user", "content": pending_user_text})
        messages = [{"role": "system", "content": instructions}] if instructions else []
        messages += _recent(history, self.history_chars)
        max_tokens = overrides.get("max_output_tokens", settings.max_output_tokens)
        voice = ((overrides.get("audio") or {}).get("output") or {}).get("voice", settings.voice)
        return Reply(
            response_id=response_id,
            messages=messages,
            tools=tools,
            tool_choice=overrides.get("tool_choice", settings.tool_choice),
            max_tokens=None if max_tokens == "inf" else max_tokens,
            modalities=list(overrides.get("output_modalities") or settings.output_modalities),
            voice=voice.get("id") if isinstance(voice, dict) else voice,
            speed=settings.speed,
        )

    # -- speculative reply -----------------------------------------------------------------------

    def _speculate_reply(self, text: str) -> None:
        """Start the reply the turn in progress would get if it ended with transcript ``text``."""
        vad = self.settings.vad
        if not (self.speculative_reply and vad is not None and vad.create_response and self._speaking):
            return
        if self._response is not None or self._queued_response is not None or self._awaiting_transcript:
            return  # the reply would not start at speech_stopped, or not with this history
        self._discard_speculative_reply()
        job = self._reply_job(new_id("resp"), {}, pending_user_text=text)
        self._spec_reply = _SpeculativeReply(job)
        self.speculation_stats["started"] += 1
        self._jobs.append(job)

    def _check_speculative_reply(self) -> None:
        """Discard the speculative reply unless the turn in progress would still get exactly it."""
        spec, speculation = self._spec_reply, self._speculation
        if spec is None:
            return
        vad = self.settings.vad
        if (speculation is None or speculation.text is None or not self._speaking or self._response is not None
                or vad is None or not vad.create_response):
            self._discard_speculative_reply()
            return
        expected = self._reply_job(spec.job.response_id, {}, pending_user_text=speculation.text)
        if expected != spec.job:
            self._discard_speculative_reply()

    def _discard_speculative_reply(self) -> None:
        if self._spec_reply is not None:
            self._jobs.append(CancelReply(self._spec_reply.job.response_id))
            self.speculation_stats["discarded"] += 1
            self._spec_reply = None

    def _adopt_speculative_reply(self, response: _Response) -> list[tuple] | None:
        """If ``response`` would start exactly the speculative Reply, take it over: ``response``
        gets its id and the buffered results are returned (to be replayed after
        response.created); otherwise the speculation is discarded and None returned."""
        spec, self._spec_reply = self._spec_reply, None
        if spec is None:
            return None
        if not self._awaiting_transcript:
            expected = self._reply_job(spec.job.response_id, response.overrides)
            if expected == spec.job:
                response.id = spec.job.response_id
                response.started = True
                response.input_tokens = _input_tokens(spec.job)
                self.speculation_stats["adopted"] += 1
                return spec.results
        self._jobs.append(CancelReply(spec.job.response_id))
        self.speculation_stats["discarded"] += 1
        return None

    def _buffered(self, response_id: str, result: tuple) -> bool:
        """Keep a result of the speculative reply until adoption; False if it is not one."""
        if self._spec_reply is None or self._spec_reply.job.response_id != response_id:
            return False
        self._spec_reply.results.append(result)
        return True

    def _replay(self, response_id: str, results: list[tuple]) -> None:
        for result in results:
            if result[0] == "segment":
                self.reply_segment(response_id, result[1], result[2])
            elif result[0] == "tool":
                self.reply_tool_call(response_id, result[1], result[2])
            else:
                self.reply_finished(response_id, result[1])

    # -- LLM warm-up -----------------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Ask for the session's prompt prefix to be cached, once per distinct prefix."""
        job = warm_up_job(self.settings)
        if job != self._warmed:
            self._warmed = job
            self._jobs.append(job)

    def _messages(self) -> list[dict]:
        """The conversation as OpenAI chat messages; assistant audio counts only as far as it was heard."""
        messages: list[dict] = []
        for item in self.items:
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

    def reply_segment(self, response_id: str, text: str, pcm16: bytes | None = None) -> None:
        """One voiced clause (or, text-only, one text piece) of ``response_id``."""
        if self._buffered(response_id, ("segment", text, pcm16)):
            return
        response = self._response
        if response is None or response.id != response_id or not (text or pcm16):
            return
        message = response.open_message or self._open_message(response)
        audio = "audio" in response.modalities
        response.output_tokens += _estimate_tokens(text)
        ids = {"response_id": response.id, "item_id": message.id, "output_index": len(response.output) - 1, "content_index": 0}
        if audio:
            if text:
                # Clauses arrive stripped; the space keeps the deltas adding up to the final transcript.
                delta = " " + text if message.segments else text
                self._emit({"type": "response.output_audio_transcript.delta", **ids, "delta": delta})
            start_ms = message.audio_ms
            step = _DELTA_MS * _BYTES_PER_MS
            for offset in range(0, len(pcm16 or b""), step):
                self._emit({"type": "response.output_audio.delta", **ids, "delta": encode_audio(pcm16[offset : offset + step])})
            message.audio_ms += len(pcm16 or b"") / _BYTES_PER_MS
            message.segments.append(_Segment(text, start_ms, message.audio_ms))
        else:
            self._emit({"type": "response.output_text.delta", **ids, "delta": text})
            message.segments.append(_Segment(text, 0.0, 0.0))

    def reply_tool_call(self, response_id: str, name: str, arguments: str) -> None:
        if self._buffered(response_id, ("tool", name, arguments)):
            return
        response = self._response
        if response is None or response.id != response_id:
            return
        self._close_message(response, "completed")
        call = _Item({"id": new_id("item"), "object": "realtime.item", "type": "function_call", "status": "in_progress",
                      "call_id": new_id("call"), "name": name, "arguments": ""})
        self._add_output(response, call)
        ids = {"response_id": response.id, "item_id": call.id, "output_index": len(response.output) - 1}
        self._emit({"type": "response.function_call_arguments.delta", **ids, "call_id": call.data["call_id"], "delta": arguments})
        call.data["arguments"] = arguments
        call.data["status"] = "completed"
        self._emit({"type": "response.function_call_arguments.done", **ids, "call_id": call.data["call_id"],
                    "name": name, "arguments": arguments})
        self._emit({"type": "response.output_item.done", "response_id": response.id, "output_index": ids["output_index"], "item": call.data})
        self._emit({"type": "conversation.item.done", "item": call.data, "previous_item_id": self._previous_id(call)})

    def reply_finished(self, response_id: str, error: str | None = None) -> None:
        """The Reply job for ``response_id`` ended (normally, or with ``error`` from an engine)."""
        if self._buffered(response_id, ("finished", error)):
            return
        response = self._response
        if response is None or response.id != response_id:
            return
        if error is not None:
            self._close_message(response, "incomplete")
            self._finish_response(response, "failed", {"type": "failed", "error": {"type": "server_error", "message": error}})
        else:
            self._close_message(response, "completed")
            self._finish_response(response, "completed", None)

    def _cancel_response(self, reason: str) -> None:
        response = self._response
        self._jobs.append(CancelReply(response.id))
        self._close_message(response, "incomplete")
        self._finish_response(response, "cancelled", {"type": "cancelled", "reason": reason})

    def _open_message(self, response: _Response) -> _Item:
        audio = "audio" in response.modalities
        part = {"type": "output_audio", "transcript": ""} if audio else {"type": "output_text", "text": ""}
        message = _Item({"id": new_id("item"), "object": "realtime.item", "type": "message", "role": "assistant",
                         "status": "in_progress", "content": [part]})
        self._add_output(response, message)
        response.open_message = message
        self._emit({"type": "response.content_part.added", "response_id": response.id, "item_id": message.id,
                    "output_index": len(response.output) - 1, "content_index": 0,
                    "part": {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}})
        return message

    def _add_output(self, response: _Response, item: _Item) -> None:
        response.output.append(item)
        self._emit({"type": "response.output_item.added", "response_id": response.id,
                    "output_index": len(response.output) - 1, "item": item.data})
        if response.in_conversation:
            self.items.append(item)
            self._emit_item_added(item, len(self.items) - 1)

    def _close_message(self, response: _Response, status: str) -> None:
        message = response.open_message
        if message is None:
            return
        response.open_message = None
        text = "".join(s.text if i == 0 else " " + s.text for i, s in enumerate(message.segments))
        ids = {"response_id": response.id, "item_id": message.id, "output_index": response.output.index(message), "content_index": 0}
        if "audio" in response.modalities:
            message.data["content"][0]["transcript"] = text
            self._emit({"type": "response.output_audio.done", **ids})
            self._emit({"type": "response.output_audio_transcript.done", **ids, "transcript": text})
            part = {"type": "audio", "transcript": text}
        else:
            text = "".join(s.text for s in message.segments)
            message.data["content"][0]["text"] = text
            self._emit({"type": "response.output_text.done", **ids, "text": text})
            part = {"type": "text", "text": text}
        self._emit({"type": "response.content_part.done", **ids, "part": part})
        message.data["status"] = status
        self._emit({"type": "response.output_item.done", "response_id": response.id,
                    "output_index": ids["output_index"], "item": message.data})
        if response.in_conversation:
            self._emit({"type": "conversation.item.done", "item": message.data, "previous_item_id": self._previous_id(message)})

    def _finish_response(self, response: _Response, status: str, details: dict | None) -> None:
        self._response = None
        if not self._speaking:  # a barge-in's cancel: the idle time starts after the user's turn
            played_until_ms = response.created_ms + sum(item.audio_ms for item in response.output)
            self._idle_since_ms = max(self._frames_pos_ms, played_until_ms)
        self._emit({"type": "response.done", "response": self._response_object(response, status, details)})
        if self._queued_response is not None:
            overrides, self._queued_response = self._queued_response, None
            self._start_response(overrides)

    def _response_object(self, response: _Response, status: str, details: dict | None = None) -> dict:
        obj = {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": [item.data for item in response.output],
            "conversation_id": None if not response.in_conversation else "conv_local",
            "output_modalities": response.modalities,
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": SAMPLE_RATE}, "voice": response.voice}},
            "max_output_tokens": self.settings.session.get("max_output_tokens"),
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

    # -- helpers ---------------------------------------------------------------------------------

    def _heard_text(self, item: _Item) -> str:
        """The transcript of what was played up to ``truncated_ms``: whole clauses, plus the
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

    def _emit(self, event: dict) -> None:
        # Items, responses and the session keep changing after an event names them: send a snapshot.
        body = {k: copy.deepcopy(v) if k in _SNAPSHOT_KEYS else v for k, v in event.items() if k != "type"}
        self._events.append({"type": event["type"], "event_id": new_id("event"), **body})

    def _emit_item_added(self, item: _Item, position: int) -> None:
        previous = self.items[position - 1].id if position > 0 else None
        self._emit({"type": "conversation.item.added", "item": item.data, "previous_item_id": previous})

    def _previous_id(self, item: _Item) -> str | None:
        if item not in self.items:
            return None
        position = self.items.index(item)
        return self.items[position - 1].id if position > 0 else None

    def _find(self, item_id: str) -> _Item | None:
        return next((item for item in self.items if item.id == item_id), None)

    def _insert_position(self, previous_item_id: str | None, event_id: str | None) -> int:
        if previous_item_id is None:
            return len(self.items)
        if previous_item_id == "root":
            return 0
        for index, item in enumerate(self.items):
            if item.id == previous_item_id:
                return index + 1
        raise ProtocolError(f"previous_item_id {previous_item_id!r} not found", code="item_not_found",
                            param="previous_item_id", event_id=event_id)
