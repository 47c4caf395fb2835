"""End-of-turn models: has the user finished their turn, or only paused? (``semantic_vad``)

A VAD hears silence; it cannot tell "What's the capital of France?" from "I'd like to book a
table for ..." followed by a breath. An end-of-turn model listens to the last seconds of the turn
(intonation, the words so far) and gives the probability that it is complete. The turn engine
asks it once per pause, after a short silence, and ends the turn at once if it says complete,
else waits for more speech or the eagerness's longest silence (see ``server/dialogue/segmenter.py``).

:class:`SmartTurn` runs Smart Turn v3.2 (``smart-turn-v3.2-cpu.onnx``, 8.7 MB, a Whisper-tiny
encoder with a classifier head, by Daily, BSD-2-Clause) on onnxruntime. The file ships inside
the ``pipecat-ai`` wheel (``pipecat/audio/turn/smart_turn/data/``); nothing is downloaded. It is
located through the installed distribution's file list, without importing ``pipecat`` (its import
pulls loguru, aiohttp, numba, ...), and its SHA-256 is checked against :data:`SMART_TURN_SHA256`.

Why ``pip install --no-deps pipecat-ai`` rather than a dependency: as a dependency pipecat-ai
brings ~25 packages (numba/llvmlite, aiohttp, Pillow, protobuf, openai, resampy, ...) for one
8.7 MB file we read with onnxruntime and numpy, which we have. So it is not in the ``local``
extra; install it with ``pip install --no-deps pipecat-ai==1.14.0`` (the version whose file is
pinned). Without it, ``semantic_vad`` falls back to silence windows (see ``settings.py``).

Input features follow pipecat's ``LocalSmartTurnAnalyzerV3`` (``local_smart_turn_v3.py``,
``_whisper_features.py`` in pipecat-ai 1.14.0): 16 kHz audio, the last 8 s (zeros prepended when
shorter), normalised to zero mean and unit variance, then Whisper's 80-bin log-mel spectrogram
(n_fft 400, hop 160, Slaney mel filters) clamped to 8 decades below its maximum and scaled by
``(x + 4) / 4``: an ``(80, 800)`` float32 array. Output: a sigmoid probability of "complete".
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import threading
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "SMART_TURN_DIST",
    "SMART_TURN_FILE",
    "SMART_TURN_SHA256",
    "SmartTurn",
    "TurnEndModel",
    "bundled_smart_turn_path",
    "whisper_log_mel",
]

SAMPLE_RATE = 16000
WINDOW_S = 8
SMART_TURN_DIST = "pipecat-ai"
SMART_TURN_FILE = "smart-turn-v3.2-cpu.onnx"
#: SHA-256 of the file in pipecat-ai 1.14.0 (pipecat/audio/turn/smart_turn/data/).
SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"

_N_FFT = 400
_HOP = 160
_N_MELS = 80


@runtime_checkable
class TurnEndModel(Protocol):
    """``complete_prob(audio)``: probability that the turn in ``audio`` (float32 mono at
    ``sample_rate``, the turn so far ending at the pause) is complete. Thread-safe."""

    name: str
    sample_rate: int

    def complete_prob(self, audio: np.ndarray) -> float: ...


def bundled_smart_turn_path() -> Path:
    """``smart-turn-v3.2-cpu.onnx`` from the installed ``pipecat-ai`` distribution, checked
    against :data:`SMART_TURN_SHA256`. ``FileNotFoundError`` (saying what to install) if absent,
    ``ValueError`` if the file is not the pinned one."""
    try:
        files = importlib.metadata.files(SMART_TURN_DIST) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the Smart Turn end-of-turn model ships in the '{SMART_TURN_DIST}' wheel: "
            f"pip install --no-deps {SMART_TURN_DIST}==1.14.0"
        ) from None
    for file in files:
        if file.name == SMART_TURN_FILE:
            path = Path(file.locate())
            if path.is_file():
                _check_sha256(path)
                return path
    raise FileNotFoundError(f"{SMART_TURN_FILE} not found in the installed '{SMART_TURN_DIST}'; reinstall it")


def _check_sha256(path: Path) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != SMART_TURN_SHA256:
        raise ValueError(f"{path} has SHA-256 {digest.hexdigest()}, expected {SMART_TURN_SHA256} "
                         f"(the file of pipecat-ai 1.14.0); reinstall {SMART_TURN_DIST}==1.14.0")


def _mel_filters() -> np.ndarray:
    # faster-whisper's Slaney filter bank is the one Whisper (and so Smart Turn) was trained with.
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor.get_mel_filters(SAMPLE_RATE, _N_FFT, n_mels=_N_MELS).astype(np.float64)


_FILTERS: np.ndarray | None = None
_WINDOW = np.hanning(_N_FFT + 1)[:-1]  # periodic Hann, as torch.hann_window


def whisper_log_mel(audio: np.ndarray) -> np.ndarray:
    """Smart Turn's input: ``(80, 800)`` float32 log-mel features of the last 8 s of ``audio``
    (float mono, 16 kHz; shorter audio is zero-padded at the start). See the module docstring."""
    global _FILTERS
    if _FILTERS is None:
        _FILTERS = _mel_filters()
    n = SAMPLE_RATE * WINDOW_S
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"end-of-turn audio must be mono (1-D), got shape {x.shape}")
    x = x[-n:] if x.size >= n else np.pad(x, (n - x.size, 0))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (_N_FFT // 2, _N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2  # (frames, bins)
    log_spec = np.log10(np.maximum(1e-10, _FILTERS @ power.T))[:, :-1]
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


class SmartTurn:
    """Smart Turn v3.2 on onnxruntime; one shared, thread-safe inference session.

    ``threads``: onnxruntime intra-op threads (1: a decision is ~tens of ms of CPU and the other
    core is busy with ASR or the LLM). ``calls`` and ``cpu_ms`` count the decisions made and the
    time spent in them (features + inference), for benchmarks and logs.
    """

    name = "smart-turn-v3.2"
    sample_rate = SAMPLE_RATE

    def __init__(self, model_path: str | os.PathLike | None = None, *, threads: int = 1) -> None:
        import onnxruntime

        if model_path is None:
            self.model_path = bundled_smart_turn_path()
        else:
            self.model_path = Path(model_path)
            if not self.model_path.is_file():
                raise FileNotFoundError(f"end-of-turn model {self.model_path} not found")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"])
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != ["input_features"]:
            raise ValueError(f"{self.model_path} is not a Smart Turn v3 model "
                             f"(inputs {[i.name for i in inputs]}, expected input_features)")
        self._lock = threading.Lock()
        self.calls = 0
        self.cpu_ms = 0.0

    def complete_prob(self, audio: np.ndarray) -> float:
        started = time.thread_time()
        features = whisper_log_mel(audio)[None]
        (prob,) = self._session.run(None, {"input_features": features})
        spent = (time.thread_time() - started) * 1000
        with self._lock:
            self.calls += 1
            self.cpu_ms += spent
        value = float(np.asarray(prob).reshape(-1)[0])
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"end-of-turn model returned {value}, not a probability")
        return value
