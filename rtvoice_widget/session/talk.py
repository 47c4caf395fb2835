"""Headless conversation: say an utterance, wait for the whole spoken reply (``session.talk``).

Contract: :func:`talk` streams the utterance in ``chunk_ms`` frames (paced in real time unless
``realtime=False``), then ends the turn the way the config expects (server turn detection:
``silence_duration_ms`` + 300 ms of silence; manual: commit + ``response.create``), and returns a
:class:`TalkReply` once the final ``response.done`` of the turn arrived (tool calls and their
follow-up responses included). ``TimeoutError`` after ``timeout`` seconds,
``SessionClosedError`` if the session closes meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio import pcm16_to_float32, read_wav, to_pcm16
from ..pcm import BYTES_PER_MS, SAMPLE_RATE
from .runner import SessionClosedError

if TYPE_CHECKING:
    from .core import RealtimeSession

__all__ = ["Reply", "TalkReply", "talk"]


@dataclass
class TalkReply:
    """What :meth:`RealtimeSession.talk` returns: the assistant's answer to one utterance.

    ``audio`` is float32 mono at ``sample_rate`` (24 kHz), the concatenated audio of every
    response in the turn (a tool call's follow-up response included). Times are on the session
    clock (ms): ``input_end_ms`` when the utterance's last audio was sent (before the commit
    or the trailing silence that ends the turn),
    ``first_audio_ms`` when the first reply audio arrived, ``done_ms`` when the final
    ``response.done`` arrived.
    """

    audio: np.ndarray
    transcript: str
    user_transcript: str | None
    response_ids: list[str]
    status: str | None
    input_started_ms: float
    input_end_ms: float
    first_audio_ms: float | None
    done_ms: float
    sample_rate: int = SAMPLE_RATE

    @property
    def latency_ms(self) -> float | None:
        """End of input → first reply audio (``None`` when the reply had no audio)."""
        return None if self.first_audio_ms is None else self.first_audio_ms - self.input_end_ms

    @property
    def duration_ms(self) -> float:
        return len(self.audio) * 1000 / self.sample_rate


#: The name :class:`TalkReply` had first (``rtvoice_widget.session.Reply``); the local server's
#: ``server.turns.Reply`` is another thing, a job of its turn engine.
Reply = TalkReply


def talk(session: "RealtimeSession", audio: Any, sample_rate: int = SAMPLE_RATE, *, realtime: bool = True,
         timeout: float = 60.0, chunk_ms: int = 20) -> TalkReply:
    """:meth:`RealtimeSession.talk` (see the module docstring)."""
    if isinstance(audio, (str, os.PathLike)):
        audio, sample_rate = read_wav(audio)
    pcm16 = to_pcm16(audio, sample_rate)
    if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, int) or not 10 <= chunk_ms <= 1000:
        raise ValueError(f"chunk_ms must be an int between 10 and 1000, got {chunk_ms!r}")
    session._require_open()
    collector = _ReplyCollector()
    unsubscribe = session.events.subscribe(collector.on_row)
    remove_hook = session._hooks.add("output_audio", collector.on_audio)
    try:
        input_started_ms = session.now_ms()
        stream(session, pcm16, chunk_ms, realtime)
        # Before the commit or the trailing silence: a fast server answers while they are
        # still going out, and the latency is the listener's, from the end of the words.
        input_end_ms = session.now_ms()
        turn_detection = session.config.turn_detection
        if turn_detection.type is None:
            session._command(lambda p: [p.commit(), p.create_response()])
        else:
            silence_ms = turn_detection.silence_duration_ms + 300
            stream(session, bytes(int(silence_ms * BYTES_PER_MS) // 2 * 2), chunk_ms, realtime)
        _wait(session, collector, timeout)
    finally:
        unsubscribe()
        remove_hook()
    return collector.reply(input_started_ms, input_end_ms)


def _wait(session: "RealtimeSession", collector: "_ReplyCollector", timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not collector.finished.wait(0.05):
        if not session._runner_alive():
            raise SessionClosedError(f"session closed while waiting for a reply: {session._closed_reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no complete reply within {timeout:g} s (got {collector.summary()})")


def stream(session: "RealtimeSession", pcm16: bytes, chunk_ms: int, realtime: bool) -> None:
    """Send ``pcm16`` in ``chunk_ms`` appends, paced in real time when ``realtime``."""
    step = int(chunk_ms * BYTES_PER_MS)
    started = time.monotonic()
    for index, start in enumerate(range(0, len(pcm16), step)):
        if realtime:
            # Pace against the start time, not the previous frame, so sleeps do not drift.
            delay = started + index * chunk_ms / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        session.send_audio(pcm16[start : start + step])


class _ReplyCollector:
    """Gathers one turn's reply from log rows and audio hooks (both on the session thread)."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.response_ids: list[str] = []
        self.chunks: list[bytes] = []
        self.text: list[str] = []
        self.user_transcript: str | None = None
        self.first_audio_ms: float | None = None
        self.done_ms = 0.0
        self.status: str | None = None

    def on_row(self, row: dict) -> None:
        type_ = row["type"]
        if row["source"] != "server":
            return
        if type_ == "response.created" and row["response_id"]:
            self.response_ids.append(row["response_id"])
        elif row["response_id"] not in self.response_ids:
            if type_ == "conversation.item.input_audio_transcription.completed":
                self.user_transcript = row["text"]
            return
        elif type_ in ("response.output_audio_transcript.delta", "response.output_text.delta"):
            self.text.append(row["text"] or "")
        elif type_ == "response.output_audio.delta" and self.first_audio_ms is None:
            self.first_audio_ms = row["t_ms"]
        elif type_ == "response.done":
            response = row["payload"].get("response") or {}
            self.status = response.get("status")
            self.done_ms = row["t_ms"]
            calls_tool = any(item.get("type") == "function_call" for item in response.get("output") or ())
            if not calls_tool:
                self.finished.set()

    def on_audio(self, item_id: str, response_id: str, pcm16: bytes) -> None:
        if response_id in self.response_ids:
            self.chunks.append(pcm16)

    def summary(self) -> str:
        return f"{len(self.response_ids)} responses, {len(self.chunks)} audio chunks, status {self.status}"

    def reply(self, input_started_ms: float, input_end_ms: float) -> TalkReply:
        pcm16 = b"".join(self.chunks)
        return TalkReply(
            audio=pcm16_to_float32(pcm16) if pcm16 else np.zeros(0, np.float32),
            transcript="".join(self.text),
            user_transcript=self.user_transcript,
            response_ids=list(self.response_ids),
            status=self.status,
            input_started_ms=input_started_ms,
            input_end_ms=input_end_ms,
            first_audio_ms=self.first_audio_ms,
            done_ms=self.done_ms,
        )
