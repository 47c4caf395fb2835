"""Input audio into turns: the input buffer, the VAD state machine and the end-of-turn asks.

Contract: :class:`Segmenter` owns the uncommitted input audio and the session clock (the input
position: ms of audio the VAD has seen). Fed speech probabilities frame by frame, it emits
``speech_started`` / ``speech_stopped`` / ``timeout_triggered`` and hands the turn's audio to
:meth:`TurnEngine.commit`; it asks for the speculative transcription and partials
(``transcription.py``) and, under ``semantic_vad`` with a model, for :class:`PredictTurnEnd`
decisions, whose "complete" ends the turn while the pause lasts.

- idle timeout (``server_vad`` ``idle_timeout_ms``): counted in input audio from the moment the
  last response's audio would have finished playing (its ``response.created`` position plus its
  audio length, or ``response.done`` if later); if no speech starts by then,
  ``input_audio_buffer.timeout_triggered`` goes out, the buffer is committed and transcribed as
  any turn, and a response is created. Once per reply: the next timeout waits for the next reply.
- end of turn (``semantic_vad`` with an end-of-turn model): after ``pause_ms`` of silence a
  :class:`PredictTurnEnd` job carries the last 8 s of the turn to the model, and once more at
  ``recheck_ms`` if the pause lasts (``kind="recheck"``, judged against ``recheck_threshold``;
  at the recheck a speculative transcript that ends with "?" also counts as complete, see
  :data:`HEARD_QUESTION_ENDS_TURN`). If it answers "complete" (at least ``threshold``) while
  the pause lasts, speech_stopped goes out at the current input position and the turn ends as
  under server VAD; otherwise (incomplete, failed, or speech resumed first, which drops the
  answer) the VAD's silence duration, the eagerness's longest wait, ends it. An early ask (``kind="early"``, at
  ``early_ask_ms`` of silence, once per pause) starts the speculation sooner when its
  "complete" reaches ``early_speculation_bar``; it never ends the turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...pcm import BYTES_PER_MS
from ..codec import ProtocolError, new_id
from .jobs import TURN_END_WINDOW_MS, DetectSpeech, PredictTurnEnd

if TYPE_CHECKING:
    from ..settings import VadSettings
    from .engine import TurnEngine

__all__ = ["Segmenter", "empty_turn_end_stats", "MAX_INPUT_BUFFER_MS"]

# Two VAD frames above threshold start speech: one loud click should not interrupt a reply.
_ONSET_FRAMES = 2
#: Uncommitted input audio the server keeps at most (5 min, 14.4 MB): an append past it gets an
#: ``error`` and is dropped (the buffer stays), so a client that never commits cannot grow it.
MAX_INPUT_BUFFER_MS = 5 * 60 * 1000
#: At the recheck (the pause has outlasted ``recheck_ms``, 900 ms under auto), a turn whose
#: speculative transcript ends with "?" ends even when the acoustic model still says incomplete:
#: Whisper punctuates a syntactically complete question, which Smart Turn can miss on a flat
#: final intonation ("What is the weather usually like in Spain?" waited the whole 2 s in every
#: bench_turns run). A lexical second opinion, not a text model: only "?" counts (Whisper ends
#: fragments with "." or "..." too), not after a filler or a word no sentence ends with (Whisper
#: wrote "Can you tell me how to, um ..." as "Can you tell me how to um?"), and only this late in
#: a pause (numbers in docs/ENGINES.md).
HEARD_QUESTION_ENDS_TURN = True
_NOT_LAST_WORDS = frozenset({
    "um", "uh", "erm", "er", "hmm", "mm", "ah",  # fillers: the speaker is still thinking
    "a", "an", "the", "my", "your", "his", "her", "our", "their", "its",  # a noun must follow
    "and", "or", "but", "to", "of",
})


def empty_turn_end_stats() -> dict:
    """``TurnEngine.turn_end_stats`` before any decision (see :class:`Segmenter` for the keys)."""
    return {"asked": 0, "complete": 0, "incomplete": 0, "dropped": 0, "early": 0, "early_speculated": 0,
            "heard_question": 0, "cpu_ms": 0.0}


class Segmenter:
    """One session's input audio and turn detection; ``frame_bytes``: one VAD frame of 24 kHz PCM16."""

    def __init__(self, engine: TurnEngine, frame_bytes: int) -> None:
        self._engine = engine
        self._frame_bytes = frame_bytes
        self.buffer = bytearray()  # uncommitted input audio
        self.buffer_start_ms = 0.0  # session position of buffer[0]
        self._unframed = bytearray()  # audio not yet sent to the VAD
        self.position_ms = 0.0  # session position of _unframed[0]: how much the VAD has seen
        self.speaking = False
        self.speech_item_id: str | None = None
        self._loud_run = 0
        self.silence_ms = 0.0
        self._turn_end_job: str | None = None  # the PredictTurnEnd asked in the current pause
        self._early_job: str | None = None  # the early one (speculation only), while it is pending
        self._early_asked = False  # in the current pause
        self.idle_since_ms: float | None = None  # audio position the idle timeout counts from
        # How the end-of-turn decisions went: "asked", "complete", "incomplete", "dropped" (speech
        # resumed first), "early" (early asks, which only start the speculation) and
        # "early_speculated" (those that did), and "cpu_ms", the model's CPU time over all of
        # them (as the driver measured it), for logs and benchmarks.
        self.turn_end_stats = empty_turn_end_stats()

    # -- input audio -------------------------------------------------------------------------------

    def append(self, pcm: bytes, event_id: str | None) -> None:
        """Add ``pcm`` to the buffer; whole VAD frames go out as a :class:`DetectSpeech`."""
        if len(self.buffer) + len(pcm) > MAX_INPUT_BUFFER_MS * BYTES_PER_MS:
            raise ProtocolError(
                f"The input audio buffer already holds {len(self.buffer) / BYTES_PER_MS / 1000:.1f} s, and this "
                f"server keeps at most {MAX_INPUT_BUFFER_MS // 1000} s uncommitted: commit or clear it. "
                "This append was dropped.", code="input_audio_buffer_full", param="audio", event_id=event_id)
        self.buffer += pcm
        if self._engine.settings.vad is None:
            self.position_ms += len(pcm) / BYTES_PER_MS
            return
        self._unframed += pcm
        cut = len(self._unframed) - len(self._unframed) % self._frame_bytes
        if cut:
            frames = [bytes(self._unframed[i : i + self._frame_bytes]) for i in range(0, cut, self._frame_bytes)]
            del self._unframed[:cut]
            self._engine.outbox.run(DetectSpeech(frames))

    def end_byte(self, at_ms: float) -> int:
        """The buffer offset of session position ``at_ms`` (whole samples, within the buffer)."""
        return min(len(self.buffer), int((at_ms - self.buffer_start_ms) * BYTES_PER_MS) & ~1)

    def take(self, end_byte: int) -> bytes:
        """Remove and return the buffer's first ``end_byte`` bytes (a committed turn)."""
        audio = bytes(self.buffer[:end_byte])
        del self.buffer[:end_byte]
        self.buffer_start_ms += end_byte / BYTES_PER_MS
        return audio

    def reset(self) -> None:
        """Drop the buffer and any turn in progress (``input_audio_buffer.clear``)."""
        self.take(len(self.buffer))
        self.speaking = False
        self._pause_over()
        self._loud_run = 0
        self.silence_ms = 0.0

    def manual_commit(self) -> str:
        """The client commits the buffer: the turn in progress ends; the item id it gets."""
        item_id = self.speech_item_id if self.speaking else new_id("item")
        self.speaking = False
        return item_id

    def response_started(self) -> None:
        """A response was created: the idle timeout waits until it has played."""
        self.idle_since_ms = None

    def response_ended(self, played_until_ms: float) -> None:
        """A response ended, its audio playing until ``played_until_ms`` (input position): the
        idle timeout counts from then, or from now if later. Not during speech: a barge-in's
        cancel, and the idle time starts after the user's turn."""
        if not self.speaking:
            self.idle_since_ms = max(self.position_ms, played_until_ms)

    def vad_turned_off(self) -> None:
        """Turning VAD off mid-speech: the audio stays in the buffer for a manual commit."""
        self.position_ms += len(self._unframed) / BYTES_PER_MS
        self._unframed.clear()
        self.speaking = False

    # -- VAD ---------------------------------------------------------------------------------------

    def speech_probs(self, probs: list[float]) -> None:
        """Results of a :class:`DetectSpeech` job: one probability per frame, in order."""
        vad = self._engine.settings.vad
        frame_ms = self._frame_bytes / BYTES_PER_MS
        for prob in probs:
            self.position_ms += frame_ms
            if vad is None:
                continue
            if prob >= vad.threshold:
                self._voiced_frame(frame_ms, vad)
            else:
                self._loud_run = 0
                if not self.speaking:
                    self._idle_frame(vad)
                    continue
                self._silent_frame(frame_ms, vad)
            if self.speaking:
                self._engine.transcription.maybe_partial(self.position_ms, self.silence_ms)
        if vad is not None and not self.speaking:
            self._trim_idle_buffer(vad, frame_ms)

    def _voiced_frame(self, frame_ms: float, vad: VadSettings) -> None:
        self._loud_run += 1
        self.silence_ms = 0.0
        if self._turn_end_job is not None:
            self._turn_end_job = None  # the pause is over: its answer no longer counts
            self.turn_end_stats["dropped"] += 1
        self._early_job, self._early_asked = None, False
        if not self.speaking and self._loud_run >= _ONSET_FRAMES:
            self._speech_started(self.position_ms - _ONSET_FRAMES * frame_ms, vad)
        elif self.speaking:
            self._engine.transcription.speech_went_on()

    def _idle_frame(self, vad: VadSettings) -> None:
        if (vad.idle_timeout_ms and self.idle_since_ms is not None and self._engine.responses.active is None
                and self.position_ms - self.idle_since_ms >= vad.idle_timeout_ms):
            self._idle_timeout(self.position_ms)

    def _silent_frame(self, frame_ms: float, vad: VadSettings) -> None:
        engine, now_ms = self._engine, self.position_ms
        self.silence_ms += frame_ms
        turn_end = vad.turn_end
        speculating = engine.transcription.speculation is not None
        if (turn_end is not None and engine.early_ask_ms is not None and engine.speculative
                and not speculating and not self._early_asked
                and engine.early_ask_ms <= self.silence_ms < engine.speculation_delay_ms):
            self._ask_turn_end(now_ms, kind="early")
        if engine.speculative and not speculating and self.silence_ms >= min(
            engine.speculation_delay_ms, vad.silence_duration_ms - frame_ms
        ):
            engine.transcription.speculate(self.speech_item_id, bytes(self.buffer), now_ms)
        # Asked as the pause reaches pause_ms, and once more at recheck_ms if it lasts.
        if turn_end is not None and self._turn_end_job is None and self.silence_ms < vad.silence_duration_ms:
            if self.silence_ms >= turn_end.pause_ms > self.silence_ms - frame_ms:
                self._ask_turn_end(now_ms)
            elif (turn_end.recheck_ms is not None
                  and self.silence_ms >= turn_end.recheck_ms > self.silence_ms - frame_ms):
                self._ask_turn_end(now_ms, kind="recheck")
        if self.speaking and self.silence_ms >= vad.silence_duration_ms:
            self._speech_stopped(now_ms, vad)

    def _trim_idle_buffer(self, vad: VadSettings, frame_ms: float) -> None:
        # Between turns only the audio that could become prefix padding is worth keeping.
        keep_from_ms = self.position_ms - vad.prefix_padding_ms - _ONSET_FRAMES * frame_ms
        drop = int((keep_from_ms - self.buffer_start_ms) * BYTES_PER_MS) & ~1
        if drop > 0:
            self.take(drop)

    def _speech_started(self, onset_ms: float, vad: VadSettings) -> None:
        start_ms = max(self.buffer_start_ms, onset_ms - vad.prefix_padding_ms)
        # The buffer keeps only the prefix padding before the onset, as the API's does.
        self.take(int((start_ms - self.buffer_start_ms) * BYTES_PER_MS) & ~1)
        self.speaking = True
        self.idle_since_ms = None
        self.speech_item_id = new_id("item")
        self._engine.transcription.new_turn(onset_ms)
        self._engine.outbox.emit({"type": "input_audio_buffer.speech_started",
                                  "audio_start_ms": int(self.buffer_start_ms), "item_id": self.speech_item_id})
        if self._engine.responses.active is not None and vad.interrupt_response:
            self._engine.responses.cancel("turn_detected")

    def _idle_timeout(self, now_ms: float) -> None:
        item_id = new_id("item")
        self._engine.outbox.emit({"type": "input_audio_buffer.timeout_triggered", "audio_start_ms": int(self.idle_since_ms),
                                  "audio_end_ms": int(now_ms), "item_id": item_id})
        self.idle_since_ms = None
        self._engine.commit(item_id, self.end_byte(now_ms), reuse_speculation=False, auto_response=True)

    def _speech_stopped(self, now_ms: float, vad: VadSettings) -> None:
        end_byte = self.end_byte(now_ms)
        self._engine.outbox.emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": int(now_ms),
                                  "item_id": self.speech_item_id})
        self.speaking = False
        self._pause_over()
        self._engine.commit(self.speech_item_id, end_byte, reuse_speculation=True, auto_response=vad.create_response)

    def _pause_over(self) -> None:
        # Answers to asks about this pause no longer count.
        self._turn_end_job = None
        self._early_job, self._early_asked = None, False

    # -- end-of-turn model -------------------------------------------------------------------------

    def _ask_turn_end(self, now_ms: float, kind: str = "end") -> None:
        end_byte = self.end_byte(now_ms)
        start_byte = max(0, end_byte - TURN_END_WINDOW_MS * BYTES_PER_MS)
        job = PredictTurnEnd(self.speech_item_id, bytes(self.buffer[start_byte:end_byte]), kind=kind)
        if kind == "early":
            self._early_job, self._early_asked = job.job_id, True
            self.turn_end_stats["early"] += 1
        else:
            self._turn_end_job = job.job_id
            self.turn_end_stats["asked"] += 1
        self._engine.outbox.run(job)

    def turn_end_predicted(self, job: PredictTurnEnd, prob: float | None, error: str | None = None, *,
                           cpu_ms: float = 0.0) -> None:
        """See :meth:`TurnEngine.turn_end_predicted`."""
        self.turn_end_stats["cpu_ms"] += cpu_ms
        if job.kind == "early":
            if job.job_id == self._early_job:
                self._early_job = None
                self._early_answer(prob if error is None else None)
            return
        if job.job_id != self._turn_end_job:
            return  # speech resumed, the turn ended otherwise, or the buffer was cleared
        self._turn_end_job = None
        vad = self._engine.settings.vad
        if error is not None or prob is None or vad is None or vad.turn_end is None or not self.speaking:
            return
        threshold = vad.turn_end.threshold
        if job.kind == "recheck" and vad.turn_end.recheck_threshold is not None:
            threshold = vad.turn_end.recheck_threshold
        heard_question = job.kind == "recheck" and prob < threshold and self._heard_question()
        if prob >= threshold or heard_question:
            self.turn_end_stats["complete"] += 1
            self.turn_end_stats["heard_question"] += heard_question
            self._speech_stopped(self.position_ms, vad)
        else:
            self.turn_end_stats["incomplete"] += 1

    def _heard_question(self) -> bool:
        """Whether the pause's speculative transcript (the whole turn so far) is a question."""
        speculation = self._engine.transcription.speculation
        text = (speculation.text or "").rstrip() if speculation is not None else ""
        if not HEARD_QUESTION_ENDS_TURN or not text.endswith("?"):
            return False
        words = text.rstrip("?").split()
        return bool(words) and words[-1].strip(",.;:!-").lower() not in _NOT_LAST_WORDS

    def _early_answer(self, prob: float | None) -> None:
        engine = self._engine
        # Still pausing with no speculation yet (else the fixed delay started it already).
        if (prob is not None and prob >= engine.early_speculation_bar and self.speaking
                and engine.transcription.speculation is None and engine.speculative):
            self.turn_end_stats["early_speculated"] += 1
            engine.transcription.speculate(self.speech_item_id, bytes(self.buffer), self.position_ms)
