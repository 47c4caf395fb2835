"""The speculative reply: the answer to a turn, started before the turn has ended.

Contract: when the speculative transcript (``transcription.py``) arrives while the silence is
still short of ``silence_duration_ms`` and the turn would create a response,
:class:`SpeculativeReply` starts the :class:`ReplyJob` it would get at once, under a fresh
response id. Its results are buffered here, invisible to the client. At speech_stopped the
response is built as usual, and if the job it would start is identical to the speculative one
(same messages, instructions, tools, voice, ...), that one is adopted: ``response.created``
carries its id and the buffered results are replayed at once. Anything that changes what the
reply would be (speech resuming, the buffer cleared or committed by hand, a session.update, an
item created, deleted or truncated) discards it with a :class:`CancelReply`; nothing of it
reaches the conversation. Manual turns never speculate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..codec import new_id
from .history import input_tokens
from .jobs import CancelReply, Prefill, ReplyJob

if TYPE_CHECKING:
    from .engine import TurnEngine
    from .responses import Response

__all__ = ["SpeculativeReply"]


@dataclass
class _Started:
    """A reply started before speech_stopped; its results wait in ``results`` until adoption."""

    job: ReplyJob
    results: list[tuple] = field(default_factory=list)  # ("segment", text, pcm16) | ("tool", name, args) | ("finished", error)


class SpeculativeReply:
    """At most one speculative reply per session; ``enabled`` False never starts one."""

    def __init__(self, engine: TurnEngine, enabled: bool, *, prefill: bool = True) -> None:
        self._engine = engine
        self.enabled = enabled
        self.prefill_enabled = prefill
        self._started: _Started | None = None
        # How the speculative replies fared: "started", "adopted", "discarded" (for logs and benchmarks).
        self.stats = {"started": 0, "adopted": 0, "discarded": 0}
        self.prefills = 0  # prompts of a turn in progress handed to the LLM's cache (prefill)

    @property
    def running(self) -> bool:
        return self._started is not None

    def _would_reply(self) -> bool:
        engine = self._engine
        vad = engine.settings.vad
        if not (self.enabled and vad is not None and vad.create_response and engine.segmenter.speaking):
            return False
        # Otherwise the reply would not start at speech_stopped, or not with this history.
        return engine.responses.active is None and engine.responses.queued is None and not engine.transcription.pending

    def prefill(self, words: str) -> None:
        """While the user speaks: have the LLM evaluate the prompt the reply would get if the turn
        ended with ``words`` (the partial transcript but its last word). Its tokens stay in the
        cache, so the speculative or final reply, whose prompt starts the same, evaluates only the
        words after them: on 2 cores that is most of the first-token time of a 1.5B model."""
        if not self.prefill_enabled or not self._would_reply() or self._started is not None:
            return
        job = self._engine.responses.reply_job("prefill", {}, pending_user_text=words)
        self.prefills += 1
        self._engine.outbox.run(Prefill(job.messages, job.tools, job.max_tokens))

    def start(self, text: str) -> None:
        """Start the reply the turn in progress would get if it ended with transcript ``text``."""
        engine = self._engine
        if not self._would_reply():
            return
        self.discard()
        job = engine.responses.reply_job(new_id("resp"), {}, pending_user_text=text)
        self._started = _Started(job)
        self.stats["started"] += 1
        engine.outbox.run(job)

    def check(self) -> None:
        """Discard the speculative reply unless the turn in progress would still get exactly it."""
        started, engine = self._started, self._engine
        if started is None:
            return
        speculation, vad = engine.transcription.speculation, engine.settings.vad
        if (speculation is None or speculation.text is None or not engine.segmenter.speaking
                or engine.responses.active is not None or vad is None or not vad.create_response):
            self.discard()
            return
        expected = engine.responses.reply_job(started.job.response_id, {}, pending_user_text=speculation.text)
        if expected != started.job:
            self.discard()

    def discard(self) -> None:
        if self._started is not None:
            self._engine.outbox.run(CancelReply(self._started.job.response_id))
            self.stats["discarded"] += 1
            self._started = None

    def adopt(self, response: Response) -> list[tuple] | None:
        """If ``response`` would start exactly the speculative job, take it over: ``response``
        gets its id and the buffered results are returned (to be replayed after
        response.created); otherwise the speculation is discarded and None returned."""
        started, self._started = self._started, None
        if started is None:
            return None
        engine = self._engine
        if not engine.transcription.pending:
            expected = engine.responses.reply_job(started.job.response_id, response.overrides)
            if expected == started.job:
                response.id = started.job.response_id
                response.started = True
                response.input_tokens = input_tokens(started.job)
                self.stats["adopted"] += 1
                return started.results
        engine.outbox.run(CancelReply(started.job.response_id))
        self.stats["discarded"] += 1
        return None

    def buffered(self, response_id: str, result: tuple) -> bool:
        """Keep a result of the speculative reply until adoption; False if it is not one."""
        if self._started is None or self._started.job.response_id != response_id:
            return False
        self._started.results.append(result)
        return True
