"""The work a :class:`~.engine.TurnEngine` asks its driver to do, as plain dataclasses.

Contract: a job carries everything its worker needs (bytes, messages, settings at the time it was
made) and nothing that changes after it is made; results come back through the engine's methods
named in each docstring. Two jobs compare equal when they would do the same work, which is how a
speculative reply is recognised as the one a response would start (``speculation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codec import new_id
from ..settings import SessionSettings

__all__ = ["DetectSpeech", "Transcribe", "ReplyJob", "CancelReply", "WarmUp", "Prefill", "PredictTurnEnd",
           "TURN_END_WINDOW_MS", "warm_up_job"]


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
class ReplyJob:
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
class Prefill:
    """Evaluate the prompt of the reply the turn in progress would get (``messages``: the last user
    message holds the words heard so far) into the LLM's cache while the user still speaks, so
    the reply at the end of the turn evaluates only the words that came after. Optional work:
    skipped while the LLM is busy; nothing is reported back."""

    messages: list[dict]
    tools: list[dict]
    max_tokens: int | None


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


def warm_up_job(settings: SessionSettings) -> WarmUp:
    """The prompt prefix every reply of a session with ``settings`` starts with."""
    instructions = settings.instructions
    return WarmUp(messages=[{"role": "system", "content": instructions}] if instructions else [],
                  tools=settings.tools)
