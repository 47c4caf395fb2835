"""Text to speech with espeak-ng, resampled to the Realtime API's 24 kHz.

OpenAI's voice names are mapped onto espeak-ng voice + variant pairs so that a session's
``voice`` keeps working offline (the sound is espeak's, of course); espeak names such as
``"en+f3"`` (British English is ``"en"``) are accepted too, and the language codes the espeak-ng
CLI knows but its library does not (``"en-gb"``, ``"en-uk"``, also with a ``+variant``) are mapped
onto their voices. An unknown voice name logs a warning (once per name) and speaks with the
default voice: a reply is not lost over its voice. ``speed`` follows the Realtime API's meaning (1.0 = normal, 0.25–4
allowed there) and scales espeak's rate of 175 words per minute within espeak's 80–450.
"""

from __future__ import annotations

import logging

import numpy as np

from ...pcm import SAMPLE_RATE
from .espeak import DEFAULT_RATE, MAX_RATE, MIN_RATE, EspeakCLI, EspeakLibrary, UnknownVoiceError, open_espeak

log = logging.getLogger("rtvoice_widget.server.engines")

DEFAULT_VOICE = "alloy"

# Female/male variants and accents keep the voices distinguishable. The default, alloy, is
# espeak's plain en-us voice: the variants are harder to understand (Whisper-base's WER on four
# test prompts: plain 12 %, +m3 35 %, +f3 53 %), and the default should be the clearest.
OPENAI_VOICES: dict[str, str] = {
    "alloy": "en-us",
    "ash": "en-us+m3",
    "ballad": "en+m1",
    "coral": "en-us+f2",
    "echo": "en-us+m1",
    "sage": "en+f4",
    "shimmer": "en-us+f4",
    "verse": "en-gb-x-rp+m2",
    "marin": "en-us+f1",
    "cedar": "en-us+m7",
}


# Language codes that ``espeak-ng -v`` resolves but ``espeak_SetVoiceByName`` rejects (1.52).
ESPEAK_ALIASES: dict[str, str] = {"en-gb": "en", "en-uk": "en"}


class EspeakTTS:
    """espeak-ng through its library (``espeakng-loader``), or the CLI as fallback.

    ``synthesize`` returns float32 mono at 24 kHz; ``""`` (or only whitespace) gives an empty
    array. Thread-safe (the backend serialises calls).
    """

    name = "espeak"
    sample_rate = SAMPLE_RATE
    voices = list(OPENAI_VOICES)

    def __init__(self, backend: str = "library") -> None:
        if backend not in ("library", "cli"):
            raise ValueError(f"backend must be 'library' or 'cli', got {backend!r}")
        self._espeak: EspeakLibrary | EspeakCLI = open_espeak(backend)
        self.backend = self._espeak.kind
        self._warned_voices: set[str] = set()

    @staticmethod
    def espeak_voice(voice: str | None) -> str:
        """The espeak-ng voice for an OpenAI voice name (or an espeak voice name, passed through)."""
        if voice is None:
            return OPENAI_VOICES[DEFAULT_VOICE]
        if not isinstance(voice, str) or not voice:
            raise ValueError(f"voice must be a non-empty string, got {voice!r}")
        voice = OPENAI_VOICES.get(voice.lower(), voice)
        name, plus, variant = voice.partition("+")
        return ESPEAK_ALIASES.get(name.lower(), name) + plus + variant

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be a number in [0.25, 4.0], got {speed!r}")
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        rate = int(round(min(max(DEFAULT_RATE * speed, MIN_RATE), MAX_RATE)))
        espeak_voice = self.espeak_voice(voice)
        try:
            samples = self._espeak.synthesize(text, espeak_voice, rate)
        except UnknownVoiceError:
            if espeak_voice not in self._warned_voices:
                self._warned_voices.add(espeak_voice)
                log.warning("espeak-ng has no voice %r; speaking with the default voice %r", voice, DEFAULT_VOICE)
            samples = self._espeak.synthesize(text, OPENAI_VOICES[DEFAULT_VOICE], rate)
        audio = samples.astype(np.float32) / 32768.0
        if self._espeak.sample_rate == SAMPLE_RATE or audio.size == 0:
            return audio
        import soxr

        return soxr.resample(audio, self._espeak.sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
