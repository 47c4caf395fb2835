"""What the user said: final transcripts, partial ones while they speak, and the speculative one.

Contract: :class:`Transcription` asks for :class:`Transcribe` jobs and turns their results into
``conversation.item.input_audio_transcription.*`` events; a user item is done once its final
transcript is in, and a response waits for every pending one (:attr:`pending`). Results of work
that became obsolete are dropped; :meth:`wants` tells the driver which queued jobs still count.

- partial recognition: every ``partial_interval_ms`` of ongoing speech a ``partial``
  transcription of the growing buffer is requested (one in flight at a time; the driver skips it
  when it could delay the final transcript, see ``connection.py``); a speculation overtaken by
  more speech serves as a partial too. The words two consecutive partials agree on are sent as
  ``input_audio_transcription.delta`` before the turn ends; the final transcript's remainder
  follows as one more delta, then ``.completed``.
- speculative transcription: after ``speculation_delay_ms`` of silence following speech, the
  buffer so far is transcribed at once; if the silence lasts (speech_stopped) the result is
  reused, if speech resumes it is discarded. The server waits ``silence_duration_ms`` anyway,
  which hides that much of the ASR time. Its text starts the speculative reply
  (``speculation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .conversation import ConversationItem
from .jobs import Transcribe

if TYPE_CHECKING:
    from .engine import TurnEngine

__all__ = ["Transcription", "Speculation"]


@dataclass
class Speculation:
    """A transcription of the turn so far, started in a pause before the turn ended."""

    job_id: str
    text: str | None = None  # None while the ASR works on it


def _stable_prefix(a: str, b: str) -> str:
    """The words two successive partial transcripts agree on, from the start."""
    words = []
    for x, y in zip(a.split(), b.split(), strict=False):
        if x != y:
            break
        words.append(x)
    return " ".join(words)


class Transcription:
    """One session's transcription requests and results; ``partial_interval_ms`` None: no partials."""

    def __init__(self, engine: TurnEngine, partial_interval_ms: float | None) -> None:
        self._engine = engine
        self.partial_interval_ms = partial_interval_ms
        self._awaiting: dict[str, str] = {}  # user items waiting for their final transcript: item_id → job_id
        self.speculation: Speculation | None = None
        self._last_partial_ms = 0.0
        self._partial_job: str | None = None
        self._partials: list[str] = []
        self._sent_partial = ""

    @property
    def pending(self) -> bool:
        """Whether a user item still waits for its final transcript."""
        return bool(self._awaiting)

    def options(self) -> dict:
        """The session's ASR options for a :class:`Transcribe`."""
        transcription = self._engine.settings.transcription or {}
        return {"language": transcription.get("language"), "prompt": transcription.get("prompt")}

    def forget(self, item_id: str) -> None:
        """``item_id`` was deleted: its transcript no longer counts."""
        self._awaiting.pop(item_id, None)

    # -- requests ----------------------------------------------------------------------------------

    def request_final(self, item: ConversationItem, pcm16: bytes) -> None:
        """Transcribe ``item``'s audio; the item is done once the transcript is in."""
        job = Transcribe(item.id, pcm16, "final", **self.options())
        self._awaiting[item.id] = job.job_id
        self._engine.outbox.run(job)

    def commit(self, item: ConversationItem, pcm16: bytes, *, reuse_speculation: bool) -> None:
        """``item`` ends the turn with ``pcm16``: its transcript is the speculation's when allowed."""
        speculation, self.speculation = self.speculation, None
        if reuse_speculation and speculation is not None:
            self._awaiting[item.id] = speculation.job_id
            if speculation.text is not None:
                self._finish(item, speculation.text)
        else:
            self.request_final(item, pcm16)

    def new_turn(self, onset_ms: float) -> None:
        """Speech started at ``onset_ms``: partials start over."""
        self._last_partial_ms = onset_ms
        self._partials, self._sent_partial, self._partial_job = [], "", None
        self.speculation = None

    def speculate(self, item_id: str, pcm16: bytes, now_ms: float) -> None:
        """Transcribe the turn so far (the last frames were silent, so it holds the whole utterance)."""
        job = Transcribe(item_id, pcm16, "speculative", **self.options())
        self._last_partial_ms = now_ms  # it doubles as a partial if speech resumes: restart the period
        self.speculation = Speculation(job.job_id)
        self._engine.outbox.run(job)

    def drop_speculation(self) -> None:
        self.speculation = None

    def speech_went_on(self) -> None:
        """The speaker went on: the guess cannot be the final transcript, but it still makes a good
        partial one, so its result is not wasted."""
        if self.speculation is None:
            return
        if self._partial_job is None:
            self._partial_job = self.speculation.job_id
        self.speculation = None

    def maybe_partial(self, now_ms: float, silence_ms: float) -> None:
        """Ask for a partial of the turn in progress if one is due at ``now_ms``."""
        if not self.partial_interval_ms or self._partial_job is not None:
            return
        if now_ms - self._last_partial_ms >= self.partial_interval_ms and silence_ms == 0:
            self._last_partial_ms = now_ms
            segmenter = self._engine.segmenter
            job = Transcribe(segmenter.speech_item_id, bytes(segmenter.buffer), "partial", **self.options())
            self._partial_job = job.job_id
            self._engine.outbox.run(job)

    # -- results -----------------------------------------------------------------------------------

    def wants(self, job: Transcribe) -> bool:
        """Whether ``job``'s result would still be used (the driver skips queued work that is not)."""
        if job.job_id == self._partial_job:
            return True
        if self.speculation is not None and self.speculation.job_id == job.job_id:
            return True
        return self._awaiting.get(job.item_id) == job.job_id

    def transcribed(self, job: Transcribe, text: str | None, error: str | None = None) -> None:
        """See :meth:`TurnEngine.transcribed`."""
        text = (text or "").strip()
        if job.job_id == self._partial_job:  # a partial, or a speculation overtaken by more speech
            self._partial_job = None
            segmenter = self._engine.segmenter
            if error is None and segmenter.speaking and job.item_id == segmenter.speech_item_id:
                self._partial(text)
            return
        if job.kind == "partial":
            return
        if job.kind == "speculative" and self.speculation is not None and self.speculation.job_id == job.job_id:
            self.speculation.text = text if error is None else None
            if error is not None:
                self.speculation = None
            else:
                self._engine.speculation.start(text)
            return
        if self._awaiting.get(job.item_id) != job.job_id:
            return  # discarded speculation, or a deleted item
        item = self._engine.conversation.find(job.item_id)
        if error is not None:
            self._failed(item, error)
        else:
            self._finish(item, text)

    def _partial(self, text: str) -> None:
        self._partials.append(text)
        # Prefill with all but the last word (it may be cut off mid-word), not only the stable
        # words: a 2 s question gets one partial, and a word the next partial changes costs the
        # reply just that word's re-evaluation.
        words = text.split()[:-1]
        if words:
            self._engine.speculation.prefill(" ".join(words))
        if len(self._partials) < 2:
            return
        stable = _stable_prefix(self._partials[-2], self._partials[-1])
        if len(stable) > len(self._sent_partial) and stable.startswith(self._sent_partial):
            delta = stable[len(self._sent_partial) :]
            self._sent_partial = stable
            if self._engine.settings.transcription is not None:
                self._engine.outbox.emit({"type": "conversation.item.input_audio_transcription.delta",
                                          "item_id": self._engine.segmenter.speech_item_id, "content_index": 0,
                                          "delta": delta})

    def _failed(self, item: ConversationItem, error: str) -> None:
        engine = self._engine
        del self._awaiting[item.id]
        if engine.settings.transcription is not None:
            engine.outbox.emit({"type": "conversation.item.input_audio_transcription.failed", "item_id": item.id,
                                "content_index": 0, "error": {"type": "transcription_error", "message": error}})
        engine.conversation.done(item)
        engine.responses.maybe_start_reply()

    def _finish(self, item: ConversationItem, text: str) -> None:
        engine = self._engine
        del self._awaiting[item.id]
        audio_index = next(i for i, part in enumerate(item.data["content"]) if part.get("type") == "input_audio")
        item.data["content"][audio_index]["transcript"] = text
        if engine.settings.transcription is not None:
            sent = self._sent_partial if item.id == engine.segmenter.speech_item_id else ""
            if text.startswith(sent) and len(text) > len(sent):
                engine.outbox.emit({"type": "conversation.item.input_audio_transcription.delta", "item_id": item.id,
                                    "content_index": audio_index, "delta": text[len(sent):]})
            engine.outbox.emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item.id,
                                "content_index": audio_index, "transcript": text,
                                "usage": {"type": "duration", "seconds": round(item.audio_ms / 1000, 3)}})
        engine.conversation.done(item)
        engine.responses.maybe_start_reply()
