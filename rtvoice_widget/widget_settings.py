"""The widget's settings traits and the session's :class:`~rtvoice_widget.config.SessionConfig`,
both ways: what the traits ask for, and the traits that show the settings in force. Also the
silence a mute mid-sentence sends. Pure functions; the widget sets the traits they return.
"""

from __future__ import annotations

from typing import Any

from rtvoice_widget.config import SessionConfig, TurnDetection

__all__ = ["VOICES", "config_traits", "initial_traits", "mute_silence_ms", "settings_from_traits"]

#: Voices of the OpenAI Realtime API (the local server maps any name to its own voice).
VOICES = ("marin", "cedar", "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse")

# The longest semantic VAD waits for more speech, per eagerness (OpenAI's documented 8/4/2 s).
_SEMANTIC_MAX_WAIT_MS = {"low": 8000, "medium": 4000, "auto": 4000, "high": 2000}
# Silence sent on mute beyond the VAD's silence duration, so its decision is not borderline.
_MUTE_TAIL_MARGIN_MS = 200


def initial_traits(config: SessionConfig) -> dict[str, Any]:
    """The settings traits of a new widget, from its starting config."""
    td = config.turn_detection
    return dict(
        voice=config.voice,
        voices=list(dict.fromkeys((config.voice, *VOICES))),
        speed=config.speed,
        turn_detection=td.type or "server_vad",
        vad_threshold=td.threshold,
        silence_ms=td.silence_duration_ms,
        instructions=config.instructions,
        model_name=config.model,
    )


def settings_from_traits(config: SessionConfig, traits: Any) -> dict[str, Any]:
    """The ``SessionConfig`` fields the traits ask for (``traits``: anything with the settings
    traits as attributes). Push-to-talk turns the server's turn detection off."""
    if traits.mode == "push_to_talk":
        td = config.turn_detection.replace(type=None)
    else:
        td = config.turn_detection.replace(
            type=traits.turn_detection, threshold=traits.vad_threshold, silence_duration_ms=traits.silence_ms)
    return dict(voice=traits.voice, speed=traits.speed, instructions=traits.instructions, turn_detection=td)


def config_traits(config: SessionConfig, voices: list[str], mode: str) -> dict[str, Any]:
    """The trait values that show ``config``, in the order to set them; ``voices`` and ``mode``
    are the traits' current values (a voice not listed is added; no turn detection means
    push-to-talk)."""
    td = config.turn_detection
    traits: dict[str, Any] = {"voice": config.voice}
    if config.voice not in voices:
        traits["voices"] = [config.voice, *voices]
    traits.update(speed=config.speed, instructions=config.instructions)
    if td.type is not None:
        traits.update(turn_detection=td.type, vad_threshold=td.threshold, silence_ms=td.silence_duration_ms)
    elif mode != "push_to_talk":
        traits["mode"] = "push_to_talk"
    return traits


def mute_silence_ms(turn: TurnDetection) -> int | None:
    """The silence that makes the server's VAD end a turn at once, or None without one.

    Muting mid-sentence means "that was all": the browser stops sending, so the VAD would wait
    for a silence that never comes; the widget sends it instead.
    """
    if turn.type not in ("server_vad", "semantic_vad"):
        return None
    wait_ms = turn.silence_duration_ms if turn.type == "server_vad" else _SEMANTIC_MAX_WAIT_MS[turn.eagerness]
    return wait_ms + _MUTE_TAIL_MARGIN_MS
