"""Stand-in engines for tests that exercise the engine loader, not the models."""

from __future__ import annotations


class NullASR:
    """A real (if deaf) ASR object: lets load_engines tests skip loading Whisper."""

    name = "null"
    sample_rate = 16000

    def transcribe(self, audio, *, language=None, prompt=None) -> str:
        return ""
