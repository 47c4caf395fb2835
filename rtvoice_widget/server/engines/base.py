"""The four engine interfaces of the local server.

Each engine is loaded once per process and shared by every session; anything per-conversation
(VAD state, LLM history) lives in the session, not the engine. All methods here are blocking and
CPU-bound: the server calls them from worker threads, never on its event loop.

Audio crosses these interfaces as mono float32 numpy arrays in [-1, 1] at the engine's own
``sample_rate``; the server resamples.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VADStream(Protocol):
    """Per-session voice-activity state."""

    def speech_prob(self, frame: np.ndarray) -> float:
        """Probability that ``frame`` (exactly ``VAD.frame_samples`` samples) holds speech."""

    def reset(self) -> None: ...


@runtime_checkable
class VAD(Protocol):
    name: str
    sample_rate: int
    frame_samples: int

    def new_stream(self) -> VADStream: ...


@runtime_checkable
class ASR(Protocol):
    name: str
    sample_rate: int

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, prompt: str | None = None) -> str:
        """Text of ``audio``; "" for silence. Safe to call from several threads."""


@dataclass
class ToolCall:
    name: str
    arguments: str  # JSON text, as the Realtime API carries it


@dataclass
class LLMChunk:
    """One piece of a streamed reply: text, or a complete tool call."""

    text: str = ""
    tool_call: ToolCall | None = None


@runtime_checkable
class LLM(Protocol):
    """An engine may also offer ``warm(messages, *, tools=None)``: evaluate a prompt prefix
    (the system message) ahead of the first reply that starts with it. Optional, so not part
    of the protocol: the server calls it when present (``pipeline.warm_llm``)."""

    name: str

    def stream(
        self,
        messages: list[dict],
        *,
        tools: list[dict] | None = None,
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[LLMChunk]:
        """Stream a reply to OpenAI-style chat ``messages``; stop early once ``cancel`` is set."""


@runtime_checkable
class TTS(Protocol):
    name: str
    sample_rate: int
    voices: list[str]

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> np.ndarray: ...


@dataclass
class Engines:
    """The set a server runs with; built by ``load_engines`` and shared by all sessions."""

    vad: VAD
    asr: ASR
    llm: LLM
    tts: TTS
    info: dict = field(default_factory=dict)  # load times, model names: shown in session.created logs
    # End-of-turn model for semantic_vad (engines/turn_end.py); None: semantic_vad uses silence windows.
    turn_end: object | None = None
