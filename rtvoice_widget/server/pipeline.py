"""Blocking engine work for one connection, run in worker threads, never on the event loop.

- :class:`SpeechDetector`: 24 kHz PCM16 frames → speech probabilities (the session's VAD stream).
- :func:`transcribe`: 24 kHz PCM16 → text.
- :func:`predict_turn_end`: 24 kHz PCM16 of a turn → probability that it is complete.
- :func:`run_reply`: LLM tokens → clauses → TTS → segments, two threads so the LLM keeps
  generating while a clause is being voiced. Results go to ``deliver`` in order; the last call is
  always ``deliver(("finished", error_or_None))``.
- :func:`warm_llm`: cache a session's prompt prefix in the LLM, if the engine can (``warm``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

import numpy as np
import soxr

from .chunking import ClauseChunker
from .engines.base import ASR, LLM, TTS, VAD, Engines
from ..pcm import SAMPLE_RATE
from .dialogue import Prefill, ReplyJob, WarmUp

log = logging.getLogger("rtvoice_widget.server")

__all__ = ["SpeechDetector", "transcribe", "predict_turn_end", "run_reply", "warm_llm", "pcm16_to_float", "float_to_pcm16"]


def pcm16_to_float(pcm16: bytes) -> np.ndarray:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    return audio if rate_in == rate_out else soxr.resample(audio, rate_in, rate_out).astype(np.float32)


def vad_frame_samples_24k(vad: VAD) -> int:
    """Length at 24 kHz of one VAD frame; must be whole so the engine's framing maps exactly."""
    samples = vad.frame_samples * SAMPLE_RATE / vad.sample_rate
    if samples != int(samples):
        raise ValueError(f"VAD frames of {vad.frame_samples} samples at {vad.sample_rate} Hz are not whole at 24 kHz")
    return int(samples)


class SpeechDetector:
    """One session's VAD stream; call :meth:`probs` from one thread at a time, frames in order."""

    def __init__(self, vad: VAD) -> None:
        self._vad = vad
        self._stream = vad.new_stream()

    def probs(self, frames: list[bytes]) -> list[float]:
        audio = _resample(pcm16_to_float(b"".join(frames)), SAMPLE_RATE, self._vad.sample_rate)
        n = self._vad.frame_samples
        # soxr's output length can differ from len·ratio by a sample; pad/cut the last frame.
        audio = np.pad(audio, (0, max(0, n * len(frames) - audio.size)))[: n * len(frames)]
        return [self._stream.speech_prob(audio[i * n : (i + 1) * n]) for i in range(len(frames))]


def transcribe(asr: ASR, pcm16: bytes, *, language: str | None = None, prompt: str | None = None) -> str:
    audio = _resample(pcm16_to_float(pcm16), SAMPLE_RATE, asr.sample_rate)
    return asr.transcribe(audio, language=language, prompt=prompt)


def predict_turn_end(model, pcm16: bytes) -> float:
    """``model.complete_prob`` (a :class:`~.engines.turn_end.TurnEndModel`) over 24 kHz PCM16."""
    return model.complete_prob(_resample(pcm16_to_float(pcm16), SAMPLE_RATE, model.sample_rate))


def _voice_for(tts: TTS, voice: str | None) -> str | None:
    # Clients written for OpenAI send its voice names; anything the engine does not list gets its default.
    if voice is None:
        return None
    known = {v.lower() for v in tts.voices}
    return voice if voice.lower() in known else None


def warm_llm(llm: LLM, job: WarmUp) -> None:
    """Evaluate ``job``'s prompt prefix into ``llm``'s cache; engines without a cache (the echo
    LLM, a remote endpoint) have no ``warm`` and need none."""
    warm = getattr(llm, "warm", None)
    if warm is not None:
        warm(job.messages, tools=job.tools or None)


def prefill_llm(llm: LLM, job: Prefill) -> None:
    """Evaluate the prompt of the reply ``job`` foresees into ``llm``'s cache (engines without a
    cache have no ``prefill``)."""
    prefill = getattr(llm, "prefill", None)
    if prefill is not None:
        prefill(job.messages, tools=job.tools or None, max_tokens=job.max_tokens)


_END = object()
# Words after which the reply's first voiced piece is cut when no clause boundary came (see
# ClauseChunker): the first audio waits for those tokens and their synthesis. With Qwen2.5-0.5B
# (single-thread llama.cpp, ~40 ms per token here) and Piper (~25 ms per word on top of ~40 ms),
# each word of the first piece costs ~65 ms before the first audio: bench_turns --stages, same
# run, 12 complete prompts, semantic_vad gap p50 908 ms with 2 words, 969 ms with 3 (4 words and
# the speculation at 160 ms: 1179 ms). Earlier, with SmolLM2, 4 rather than the chunker's 6 had
# measured p50 724 vs 822 ms.
FIRST_PIECE_MAX_WORDS = 2
# The same cut for the second piece. Two words play for ~0.6 s, less than the LLM and Piper took
# for the rest of a sentence: without it playback stalled after the first piece in 4 of 12 turns
# (p90 590 ms; with a 4-word first piece 1 of 12), counted from the client's first delta.
SECOND_PIECE_MAX_WORDS = 5
_CLOSING = set(".,;:!?…—–\"')]")


def _generate(job: ReplyJob, engines: Engines, cancel: threading.Event, pieces: queue.Queue,
              mark: Callable[[str], None]) -> None:
    """The LLM side of :func:`run_reply` (its own thread): pieces to voice, tool calls, then ``_END``."""
    voiced = "audio" in job.modalities
    chunker = ClauseChunker(first_max_words=FIRST_PIECE_MAX_WORDS, second_max_words=SECOND_PIECE_MAX_WORDS)
    try:
        for chunk in engines.llm.stream(job.messages, tools=job.tools or None, max_tokens=job.max_tokens, cancel=cancel):
            mark("llm_first_chunk_ms")
            if cancel.is_set():
                break
            if chunk.tool_call is not None:
                for text in chunker.flush():
                    pieces.put(("last", text))
                pieces.put(("tool", chunk.tool_call.name, chunk.tool_call.arguments))
            elif chunk.text:
                for text in chunker.push(chunk.text) if voiced else [chunk.text]:
                    pieces.put(("text", text))
        for text in chunker.flush():
            pieces.put(("last", text))
        pieces.put((_END, None))
    except Exception as exc:  # an engine failure ends this response, not the connection
        pieces.put((_END, f"LLM failed: {type(exc).__name__}: {exc}"))


def run_reply(job: ReplyJob, engines: Engines, cancel: threading.Event, deliver: Callable[[tuple], None]) -> None:
    """Produce ``job``'s reply; blocks until done or cancelled. Starts one helper thread for the LLM.

    ``deliver`` receives ``("segment", text, pcm16_or_None)``, ``("tool", name, arguments)`` and,
    last, ``("finished", error_message_or_None)``.
    """
    voiced = "audio" in job.modalities
    pieces: queue.Queue = queue.Queue()
    started = time.perf_counter()
    # Milliseconds from the job's start to each stage of its first clause, logged at DEBUG
    # (the benchmark's per-stage breakdown reads them).
    stages: dict[str, float] = {}

    def mark(stage: str) -> None:
        stages.setdefault(stage, round((time.perf_counter() - started) * 1000, 1))

    llm_thread = threading.Thread(target=_generate, args=(job, engines, cancel, pieces, mark),
                                  name=f"llm-{job.response_id}", daemon=True)
    llm_thread.start()
    voice = _voice_for(engines.tts, job.voice)
    error = None
    while True:
        piece = pieces.get()
        if piece[0] is _END:
            error = error or piece[1]
            break
        if cancel.is_set():
            continue  # drain until the LLM thread notices the cancel
        if piece[0] == "tool":
            deliver(piece)
        elif voiced:
            # A piece cut mid-sentence is voiced as if a comma ended it: the TTS (Piper's espeak
            # phonemiser, or espeak) then keeps the pitch up (more to come) instead of falling as
            # at a full stop.
            spoken = piece[1] if piece[1][-1] in _CLOSING or piece[0] == "last" else piece[1] + ","
            mark("first_piece_ms")
            try:
                audio = engines.tts.synthesize(spoken, voice=voice, speed=job.speed)
            except Exception as exc:
                cancel.set()
                error = f"TTS failed: {type(exc).__name__}: {exc}"
                continue
            mark("first_audio_ms")
            deliver(("segment", piece[1], float_to_pcm16(_resample(audio, engines.tts.sample_rate, SAMPLE_RATE))))
        else:
            mark("first_piece_ms")
            deliver(("segment", piece[1], None))
    llm_thread.join()
    log.debug("reply %s stages: %s", job.response_id, stages)
    deliver(("finished", error))
