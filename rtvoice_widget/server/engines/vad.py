"""Voice-activity detectors: Silero (neural, ONNX) and an energy gate (cheap, deterministic).

Both work on 16 kHz mono float32 frames of 512 samples (32 ms), so the server can swap them
without changing its framing. The detector object is shared by all sessions; each session calls
``new_stream()`` and feeds its frames, in order, to its own stream, which holds the recurrent state.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 1 or frame.shape[0] != FRAME_SAMPLES:
        raise ValueError(f"a VAD frame must be 1-D with {FRAME_SAMPLES} samples, got shape {frame.shape}")
    if not np.issubdtype(frame.dtype, np.floating):
        raise TypeError(f"a VAD frame must be float audio in [-1, 1], got dtype {frame.dtype}")
    if not np.isfinite(frame).all():
        raise ValueError("a VAD frame must not contain NaN or infinity")
    return frame.astype(np.float32, copy=False)


class EnergyStream:
    def __init__(self, vad: EnergyVAD) -> None:
        self._vad = vad

    def speech_prob(self, frame: np.ndarray) -> float:
        frame = _check_frame(frame)
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
        level_db = 20.0 * np.log10(max(rms, 1e-10))
        # A linear ramp in dB between the floor and the speech level turns loudness into a
        # probability-like score, so the session's `threshold` keeps its meaning.
        span = self._vad.speech_db - self._vad.floor_db
        return float(np.clip((level_db - self._vad.floor_db) / span, 0.0, 1.0))

    def reset(self) -> None:
        """Stateless: nothing to forget."""


class EnergyVAD:
    """Loudness gate: 0 at ``floor_db`` dBFS and below, 1 at ``speech_db`` and above.

    Deterministic and free, for tests and for clean close-talking microphones. It cannot tell
    speech from any other loud sound.
    """

    name = "energy"
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, floor_db: float = -55.0, speech_db: float = -35.0) -> None:
        if not speech_db > floor_db:
            raise ValueError(f"speech_db ({speech_db}) must be above floor_db ({floor_db})")
        self.floor_db = floor_db
        self.speech_db = speech_db

    def new_stream(self) -> EnergyStream:
        return EnergyStream(self)


def bundled_silero_path() -> Path:
    """The Silero VAD v6 ONNX file that faster-whisper ships in its assets folder."""
    import faster_whisper

    path = Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise FileNotFoundError(
            f"Silero VAD model not found at {path}; install faster-whisper>=1.1 (pip install 'rtvoice-widget[local]')"
        )
    return path


class SileroStream:
    """Silero's recurrent state (h, c) plus the last 64 samples it expects as left context."""

    _CONTEXT = 64

    def __init__(self, vad: SileroVAD) -> None:
        self._vad = vad
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._CONTEXT, dtype=np.float32)

    def speech_prob(self, frame: np.ndarray) -> float:
        frame = _check_frame(frame)
        model_input = np.concatenate([self._context, frame])[None, :]
        prob, self._h, self._c = self._vad._session.run(None, {"input": model_input, "h": self._h, "c": self._c})
        self._context = frame[-self._CONTEXT :].copy()
        return float(np.asarray(prob).reshape(-1)[0])


class SileroVAD:
    """Silero VAD v6 run by onnxruntime (no torch), one thread per call.

    The inference session is shared and thread-safe (onnxruntime's ``run`` is re-entrant); state
    lives in each ``SileroStream``.
    """

    name = "silero"
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, model_path: str | os.PathLike | None = None) -> None:
        import onnxruntime

        self.model_path = Path(model_path) if model_path is not None else bundled_silero_path()
        options = onnxruntime.SessionOptions()
        # One frame is ~0.1 ms of work: thread hand-offs would cost more than they save, and
        # the cores are needed by ASR and the LLM.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        names = {i.name for i in self._session.get_inputs()}
        if names != {"input", "h", "c"}:
            raise ValueError(f"{self.model_path} is not a Silero v6 model (inputs {sorted(names)}, expected input/h/c)")

    def new_stream(self) -> SileroStream:
        return SileroStream(self)
