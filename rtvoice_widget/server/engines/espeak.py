"""Two ways to run espeak-ng: the library from ``espeakng-loader`` (ctypes), or the ``espeak-ng`` CLI.

Hand-written ctypes binding: the Python wrappers on PyPI either only phonemise (phonemizer,
misaki) or shell out to the CLI (py-espeak-ng). The library is one global synthesiser per process,
so all calls go through ``_LIBRARY_LOCK``. Both backends return int16 mono samples at their own
rate (22 050 Hz for espeak-ng) and raise ``RuntimeError`` with espeak's complaint on failure
(``UnknownVoiceError``, a ``RuntimeError``, for a voice name espeak does not know).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit() inside the kernel
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0

MIN_RATE, DEFAULT_RATE, MAX_RATE = 80, 175, 450  # words per minute, espeak-ng's own limits

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LIBRARY_LOCK = threading.Lock()


class UnknownVoiceError(RuntimeError):
    """espeak-ng has no voice of this name (the caller may fall back to another)."""


class EspeakLibrary:
    """libespeak-ng and its data from the ``espeakng-loader`` wheel, driven synchronously.

    The C library holds one synthesiser per process: use ``EspeakLibrary.shared()``.
    """

    kind = "library"
    _shared: EspeakLibrary | None = None

    @classmethod
    def shared(cls) -> EspeakLibrary:
        with _LIBRARY_LOCK:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def __init__(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        self._chunks: list[np.ndarray] = []
        # Keep a reference: ctypes callbacks are freed with their Python object.
        self._callback = _SynthCallback(self._collect)
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate}) with data in {data_parent!r}")
        self._lib.espeak_SetSynthCallback(self._callback)
        self.sample_rate = int(rate)

    def _collect(self, wav, num_samples, _events) -> int:
        if num_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0  # 0 = go on synthesising

    def synthesize(self, text: str, voice: str, rate: int) -> np.ndarray:
        data = text.encode("utf-8") + b"\0"
        with _LIBRARY_LOCK:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise UnknownVoiceError(f"espeak-ng has no voice {voice!r}")
            self._lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            self._chunks = []
            status = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            chunks, self._chunks = self._chunks, []
        if status != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


class EspeakCLI:
    """The Debian ``espeak-ng`` program, one process per call (slower start, same voices)."""

    kind = "cli"
    sample_rate = 22050

    def __init__(self, executable: str = "espeak-ng") -> None:
        path = shutil.which(executable)
        if path is None:
            raise FileNotFoundError(f"{executable!r} not found on PATH (apt-get install espeak-ng)")
        self.executable = path

    def synthesize(self, text: str, voice: str, rate: int) -> np.ndarray:
        import soundfile

        with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
            result = subprocess.run(
                [self.executable, "-v", voice, "-s", str(rate), "-w", wav.name, "--stdin"],
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=60,
            )
            if result.returncode != 0 and b"voice does not exist" in result.stderr:
                raise UnknownVoiceError(f"espeak-ng has no voice {voice!r}")
            if result.returncode != 0:
                raise RuntimeError(f"espeak-ng failed: {result.stderr.decode(errors='replace').strip()}")
            samples, rate_read = soundfile.read(wav.name, dtype="int16")
        if rate_read != self.sample_rate:
            raise RuntimeError(f"espeak-ng wrote {rate_read} Hz audio, expected {self.sample_rate}")
        return samples.reshape(-1)


def open_espeak(prefer: str = "library") -> EspeakLibrary | EspeakCLI:
    """The library if ``espeakng-loader`` works (or ``prefer="cli"``), else the CLI."""
    if prefer == "cli":
        return EspeakCLI()
    try:
        return EspeakLibrary.shared()
    except (ImportError, OSError, RuntimeError) as library_error:
        try:
            return EspeakCLI()
        except FileNotFoundError as cli_error:
            raise RuntimeError(f"no espeak-ng available: library: {library_error}; CLI: {cli_error}") from None
