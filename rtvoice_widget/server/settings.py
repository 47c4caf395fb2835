"""A session's configuration on the server side: the GA ``session`` object and what it means here.

:class:`SessionSettings` holds the session object the client sees (``session.created`` /
``session.updated`` echo it) and derives the values the turn engine acts on.

Mappings where the local server differs from the hosted API (documented, deliberate):

- ``semantic_vad`` uses an end-of-turn model (Smart Turn v3.2, ``engines/turn_end.py``) when the
  server has one: the VAD (threshold 0.5, prefix padding 300 ms) finds the pauses; after
  ``pause_ms`` of silence the model hears the turn so far and, if it gives "complete" at least
  ``threshold``, the turn ends there; otherwise the server keeps listening until speech resumes
  or ``max_silence_ms`` of silence has passed. If the pause outlasts ``recheck_ms`` the model
  is asked once more, with a lower ``recheck_threshold`` (a wrong "incomplete" should not cost
  the whole longest wait, and after that long a silence the turn is more likely over); then a
  transcript heard as a complete question ends it too (``segmenter.HEARD_QUESTION_ENDS_TURN``).
  ``eagerness`` picks them (:data:`SEMANTIC_TURN_END`): high 150 ms / 0.3 / 1000 ms / 600 ms /
  0.1, medium and auto 200 ms / 0.5 / 2000 ms / 900 ms / 0.15, low 250 ms / 0.7 / 3000 ms /
  1200 ms / 0.3. Without a model (``pipecat-ai`` not installed) it runs as
  ``server_vad`` with a silence duration by eagerness: high 250 ms, medium/auto 500 ms, low
  1000 ms (:data:`SEMANTIC_SILENCE_MS`).
- Input transcription is on by default (``{"model": "local"}``): the LLM works from the
  transcript anyway, so it costs nothing extra. ``transcription: null`` turns the events off.
- Any voice name is accepted and echoed; names the TTS engine does not know use its default
  voice, so clients written for OpenAI voices ("alloy", "marin") work unchanged.
- Only ``audio/pcm`` at 24 kHz is accepted for input and output.
- ``server_vad``'s ``idle_timeout_ms`` (5000–30000, as in the API) is kept; the input audio is
  its clock (see ``turns.py``). ``semantic_vad`` has none, as in the API.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..config import AUDIO_FORMAT, TURN_DETECTION_DEFAULTS
from ..pcm import SAMPLE_RATE
from .codec import ProtocolError, new_id

__all__ = ["SessionSettings", "TurnEndSettings", "VadSettings", "SEMANTIC_SILENCE_MS", "SEMANTIC_TURN_END"]

SEMANTIC_SILENCE_MS = {"high": 250, "medium": 500, "auto": 500, "low": 1000}


@dataclass(frozen=True)
class TurnEndSettings:
    """How ``semantic_vad`` asks the end-of-turn model: after ``pause_ms`` of silence, and again
    after ``recheck_ms`` if the pause lasts (None: once); "complete" at ``threshold`` or above
    (``recheck_threshold`` for the second ask) ends the turn (the VAD's silence duration is the
    longest wait)."""

    pause_ms: float
    threshold: float
    recheck_ms: float | None = None
    recheck_threshold: float | None = None  # None: ``threshold``


# eagerness -> (pause before asking the model, its "complete" threshold, longest silence, pause
# of the second ask, its threshold). ~200 ms is the usual gap between turns in conversation
# (Stivers et al. 2009); a pause of 150 ms is about the shortest in which a stop consonant is over
# and the model hears a real pause. The second ask comes after the longest hesitation a listener
# still waits through without taking the turn (~700 ms in the bench's paused prompts), well
# before the longest silence. Its threshold is lower: replaying bench_turns' prompts through the
# engine (silero VAD, the model answering at once), the second ask scored the complete questions
# 0.07-0.99 (0.30 and 0.53 on two the first ask put at 0.79 and 0.77) and every hesitation
# ("... for, um" + silence) 0.01. "What is the weather usually like in Spain?" scores 0.16 / 0.07
# and still waits the longest silence.
SEMANTIC_TURN_END = {
    "high": (150, 0.3, 1000, 600, 0.1),
    "medium": (200, 0.5, 2000, 900, 0.15),
    "auto": (200, 0.5, 2000, 900, 0.15),
    "low": (250, 0.7, 3000, 1200, 0.3),
}

# Fields replaced as a whole by session.update rather than merged key by key.
_REPLACED_WHOLE = {"transcription", "tools", "tool_choice", "noise_reduction", "format"}

_SERVER_VAD = TURN_DETECTION_DEFAULTS["server_vad"]


@dataclass(frozen=True)
class VadSettings:
    threshold: float
    prefix_padding_ms: int
    silence_duration_ms: int
    create_response: bool
    interrupt_response: bool
    idle_timeout_ms: int | None = None  # server_vad only: respond after this much silence following a reply
    turn_end: TurnEndSettings | None = None  # semantic_vad with an end-of-turn model


def default_session(model: str) -> dict:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are a helpful, concise voice assistant. Answer in one or two short sentences.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "audio": {
            "input": {
                "format": dict(AUDIO_FORMAT),
                "transcription": {"model": "local"},
                "noise_reduction": None,
                "turn_detection": {"type": "server_vad", **_SERVER_VAD},
            },
            "output": {"format": dict(AUDIO_FORMAT), "voice": "alloy", "speed": 1.0},
        },
    }


def _merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if key == "turn_detection" and value is not None:
            # Same type: a partial update. Another type: start from that type's defaults, so a
            # semantic_vad never inherits server_vad keys (the echo shows every effective value).
            old = into.get(key) if isinstance(into.get(key), dict) and into[key].get("type") == value["type"] else {}
            into[key] = {"type": value["type"], **TURN_DETECTION_DEFAULTS[value["type"]], **(old or {}),
                         **copy.deepcopy(value)}
        elif isinstance(value, dict) and isinstance(into.get(key), dict) and key not in _REPLACED_WHOLE:
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _check_format(fmt: dict | None, param: str, event_id: str | None) -> None:
    if fmt is None:
        return
    if fmt.get("type") != "audio/pcm" or fmt.get("rate", SAMPLE_RATE) != SAMPLE_RATE:
        raise ProtocolError(
            f"The local server only supports audio/pcm at {SAMPLE_RATE} Hz, got {fmt}",
            code="unsupported_audio_format", param=param, event_id=event_id,
        )


class SessionSettings:
    """The effective session object plus typed accessors; ``update`` validates before applying."""

    def __init__(self, model: str, *, turn_end_model: bool = False) -> None:
        self.session = default_session(model)
        self.turn_end_model = turn_end_model  # the server can run an end-of-turn model

    def update(self, changes: dict, event_id: str | None = None) -> None:
        """Apply a (schema-valid) ``session.update`` body; raise ProtocolError, changing nothing, if unusable here."""
        if changes.get("type", "realtime") != "realtime":
            raise ProtocolError("The local server only runs 'realtime' sessions", param="session.type", event_id=event_id)
        candidate = copy.deepcopy(self.session)
        _merge(candidate, {k: v for k, v in changes.items() if k not in ("id", "object")})
        audio = candidate.get("audio") or {}
        _check_format((audio.get("input") or {}).get("format"), "session.audio.input.format", event_id)
        _check_format((audio.get("output") or {}).get("format"), "session.audio.output.format", event_id)
        turn = (audio.get("input") or {}).get("turn_detection")
        if turn and turn["type"] == "server_vad":
            threshold = turn.get("threshold")
            if threshold is not None and not 0.0 <= threshold <= 1.0:
                raise ProtocolError("threshold must be between 0 and 1", param="session.audio.input.turn_detection.threshold", event_id=event_id)
            for key in ("prefix_padding_ms", "silence_duration_ms"):
                if (turn.get(key) or 0) < 0:
                    raise ProtocolError(f"{key} must not be negative", param=f"session.audio.input.turn_detection.{key}", event_id=event_id)
            idle = turn.get("idle_timeout_ms")
            if idle is not None and not 5000 <= idle <= 30000:  # the API's range
                raise ProtocolError("idle_timeout_ms must be between 5000 and 30000",
                                    param="session.audio.input.turn_detection.idle_timeout_ms", event_id=event_id)
        self.session = candidate

    # -- what the turn engine reads ------------------------------------------------------------

    @property
    def instructions(self) -> str:
        return self.session.get("instructions") or ""

    @property
    def output_modalities(self) -> list[str]:
        return list(self.session.get("output_modalities") or ["audio"])

    @property
    def tools(self) -> list[dict]:
        return [t for t in self.session.get("tools") or [] if t.get("type") == "function"]

    @property
    def tool_choice(self):
        return self.session.get("tool_choice") or "auto"

    @property
    def max_output_tokens(self) -> int | None:
        value = self.session.get("max_output_tokens")
        return None if value in (None, "inf") else int(value)

    @property
    def voice(self) -> str | None:
        voice = ((self.session.get("audio") or {}).get("output") or {}).get("voice")
        return voice.get("id") if isinstance(voice, dict) else voice

    @property
    def speed(self) -> float:
        return float(((self.session.get("audio") or {}).get("output") or {}).get("speed") or 1.0)

    @property
    def transcription(self) -> dict | None:
        return ((self.session.get("audio") or {}).get("input") or {}).get("transcription")

    @property
    def vad(self) -> VadSettings | None:
        """Server VAD parameters, or None for manual commit (``turn_detection: null``).

        ``semantic_vad`` runs the VAD at the ``server_vad`` defaults, with the silence window
        and end-of-turn asks its eagerness picks (see the module docstring)."""
        turn = ((self.session.get("audio") or {}).get("input") or {}).get("turn_detection")
        if not turn:
            return None

        def value(key: str, kind: type):
            return _SERVER_VAD[key] if turn.get(key) is None else kind(turn[key])

        common = {"create_response": value("create_response", bool), "interrupt_response": value("interrupt_response", bool)}
        if turn["type"] != "semantic_vad":
            return VadSettings(threshold=value("threshold", float), prefix_padding_ms=value("prefix_padding_ms", int),
                               silence_duration_ms=value("silence_duration_ms", int),
                               idle_timeout_ms=None if turn.get("idle_timeout_ms") is None else int(turn["idle_timeout_ms"]),
                               **common)
        eagerness = turn.get("eagerness") or "auto"
        vad = {"threshold": _SERVER_VAD["threshold"], "prefix_padding_ms": _SERVER_VAD["prefix_padding_ms"], **common}
        if not self.turn_end_model:
            return VadSettings(silence_duration_ms=SEMANTIC_SILENCE_MS[eagerness], **vad)
        pause_ms, threshold, max_silence_ms, recheck_ms, recheck_threshold = SEMANTIC_TURN_END[eagerness]
        return VadSettings(
            silence_duration_ms=max_silence_ms,
            turn_end=TurnEndSettings(pause_ms=float(pause_ms), threshold=threshold,
                                     recheck_ms=None if recheck_ms is None else float(recheck_ms),
                                     recheck_threshold=recheck_threshold),
            **vad,
        )
