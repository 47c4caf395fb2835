"""Offline engines of the local server: interfaces (``base``) and implementations.

``load_engines(...)`` is the entry point; the implementation classes are importable from their
modules (``vad``, ``asr``, ``llm_llama``, ``llm_openai``, ``llm_echo``, ``tts``, ``tts_piper``) and import their
heavy dependencies only when constructed.
"""

from .base import ASR, LLM, TTS, VAD, Engines, LLMChunk, ToolCall, VADStream
from .llm_echo import EchoLLM
from .llm_openai import OpenAICompatLLM
from .loader import load_engines
from .vad import EnergyVAD, SileroVAD

__all__ = [
    "ASR",
    "LLM",
    "TTS",
    "VAD",
    "VADStream",
    "Engines",
    "LLMChunk",
    "ToolCall",
    "EchoLLM",
    "EnergyVAD",
    "OpenAICompatLLM",
    "SileroVAD",
    "load_engines",
]
