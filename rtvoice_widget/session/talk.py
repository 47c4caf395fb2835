"""Headless conversation: say an utterance, wait for the whole spoken reply (``session.talk``).

Contract: :func:`talk` streams the utterance in ``chunk_ms`` frames (paced in real time unless
``realtime=False``), then ends the turn the way the config expects (server turn detection:
``silence_duration_ms`` + 300 ms of silence; manual: commit + ``response.create``), and returns a
:class:`TalkReply` once the final ``response.done`` of the turn arrived (tool calls and their
follow-up responses included). ``TimeoutError`` after ``timeout`` seconds,
``SessionClosedError`` if the session closes meanwhile.

The reply is read off the protocol's live model, not rebuilt from log rows: the
:class:`~rtvoice_widget.protocol.Turn` of each response made after the talk began (text, first
audio, status, end), the user item's final transcript, and the audio those responses played.
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
from ..protocol import ClientProtocol, Turn
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
#: ``server.dialogue.jobs.ReplyJob`` is another thing, a job of its turn engine.
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
    collector = _ReplyCollector(session.protocol, len(session.protocol.turns))
    unsubscribe = session._hooks.add("turn_done", collector.on_turn_done)
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
        if not session._still_open():
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
    """Gathers one talk's reply from the protocol's turns and the audio hook (both called on
    the session thread).

    The turns are :class:`~rtvoice_widget.protocol.Turn` objects, one per response: those made
    after the talk began (``first_index`` on) belong to it. Each finished turn arrives through
    the session's ``turn_done`` hook (the protocol's :class:`TurnDone`); the reply is complete
    at the first one whose response called no tool (a tool call's follow-up response belongs
    to the same reply).
    """

    def __init__(self, protocol: ClientProtocol, first_index: int) -> None:
        self.finished = threading.Event()
        self.turns: list[Turn] = []
        self.chunks: list[bytes] = []
        self._protocol = protocol
        self._first = first_index

    def on_turn_done(self, turn: Turn) -> None:
        if turn.index < self._first or any(t is turn for t in self.turns):
            return
        self.turns.append(turn)
        items = self._protocol.items.values()
        if not any(i.response_id == turn.response_id and i.type == "function_call" for i in items):
            self.finished.set()

    def on_audio(self, item_id: str, response_id: str, pcm16: bytes) -> None:
        turn = self._protocol.turn_tracker.of(response_id)
        if turn is not None and turn.index >= self._first:
            self.chunks.append(pcm16)

    def summary(self) -> str:
        status = self.turns[-1].status if self.turns else None
        return f"{len(self.turns)} responses, {len(self.chunks)} audio chunks, status {status}"

    def reply(self, input_started_ms: float, input_end_ms: float) -> TalkReply:
        pcm16 = b"".join(self.chunks)
        turns = list(self.turns)
        last = turns[-1] if turns else None
        user_item = self._protocol.items.get(turns[0].user_item_id or "") if turns else None
        first_audio = [t.first_audio_ms for t in turns if t.first_audio_ms is not None]
        return TalkReply(
            audio=pcm16_to_float32(pcm16) if pcm16 else np.zeros(0, np.float32),
            transcript=" ".join(t.assistant_text for t in turns if t.assistant_text),
            user_transcript=user_item.transcript if user_item is not None else None,
            response_ids=[t.response_id for t in turns if t.response_id],
            status=last.status if last is not None else None,
            input_started_ms=input_started_ms,
            input_end_ms=input_end_ms,
            first_audio_ms=min(first_audio) if first_audio else None,
            done_ms=last.response_done_ms if last is not None and last.response_done_ms is not None else 0.0,
        )
