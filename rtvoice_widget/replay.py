"""Replay a saved conversation's user turns against another configuration or backend.

``load_session(path).replay(config=..., backend=..., speed=1.0)`` (:func:`replay`) opens a new
:class:`~rtvoice_widget.session.RealtimeSession`, streams each saved user turn into it in order
(a spoken turn as the audio the user's track holds for it, cut where the server's VAD heard
speech with some margin; a typed turn as the same text), and waits for the reply before the next
turn, like a person would: the reply done, then heard to its end, then a short pause. It returns
the new conversation as a :class:`~rtvoice_widget.saved.SavedSession` (in memory; ``.save``-able
with :func:`~rtvoice_widget.saved.save_session`), which :func:`rtvoice_widget.comparison.compare`
sets beside the original.

``speed``: how much faster than real time the user's words go out, and the reply is "listened
to" (``1.0`` = as spoken; ``math.inf`` = as fast as the socket takes them). The silence after
each turn (the config's ``silence_duration_ms`` plus 300 ms, what the server's turn detection
waits for) always goes at real time, so the end of a turn, and the gap from the end of the voice
to the first reply audio, are what a person would get at any speed. Backends that pace their
input (none of the ones here: OpenAI's and the local server's VAD run on audio time) may need
``speed=1``.

Local events (category ``system``): each replayed turn starts with ``replay.turn`` (``turn``,
0-based; ``source_item_id``, the saved user item; ``kind``, ``audio`` | ``text``;
``audio_ms``; ``speed``; ``text``, the saved transcript); a spoken turn's words are followed by
``replay.sent`` (``turn``, ``voice_end_ms``: when the chunk with the last voiced 20 ms frame
went out, on the session clock, which :func:`rtvoice_widget.comparison.compare` measures the gap
from: at ``speed`` > 1 the recording lays the sped-up words out end to end, so its user track
is no clock for them); a turn not answered within ``turn_timeout`` seconds gets
``replay.timeout`` and the replay goes on.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtvoice_widget.config import SessionConfig
from rtvoice_widget.pcm import BYTES_PER_MS, SAMPLE_RATE

__all__ = ["ReplayTurn", "config_from_saved", "replay", "replay_turns"]

# Around the VAD's speech span: the start of a word the VAD heard late, the tail after it.
_LEAD_MS = 300.0
_TAIL_MS = 300.0
_CHUNK_MS = 20


@dataclass(frozen=True)
class ReplayTurn:
    """One saved user turn to say again: ``pcm16`` (24 kHz mono) for a spoken turn, ``text``
    the saved transcript (for a typed turn, what is sent)."""

    index: int
    source_item_id: str | None
    kind: str  # "audio" | "text"
    text: str | None
    pcm16: bytes = b""

    @property
    def audio_ms(self) -> float:
        return len(self.pcm16) / BYTES_PER_MS


def replay_turns(saved: Any) -> list[ReplayTurn]:
    """The user turns of ``saved`` (a :class:`SavedSession`) in order, seeded history excluded:
    spoken ones with their audio cut from the user track (the VAD's span, 300 ms more on each
    side, never reaching into the previous or next span), typed ones as text."""
    from rtvoice_widget.history import seeded_item_ids
    from rtvoice_widget.spans import user_speech_spans

    seeded = seeded_item_ids(saved.events)
    spans = user_speech_spans(saved.events).sort_values("start_ms", kind="stable").reset_index(drop=True)
    bounds = {row.item_id: (row.start_ms, row.end_ms) for row in spans.itertuples(index=False)}
    starts = list(spans["start_ms"])
    ends = list(spans["end_ms"])
    track = saved.recording.tracks_pcm16()[0]
    rate = saved.recording.sample_rate
    turns = []
    users = saved.turns[saved.turns["role"] == "user"]
    for row in users.itertuples(index=False):
        if row.item_id in seeded:
            continue
        text = row.text if isinstance(row.text, str) else None
        span = bounds.get(row.item_id)
        if span is None:
            if text and text.strip():
                turns.append(ReplayTurn(len(turns), row.item_id, "text", text.strip()))
            continue
        start, end = span
        before = max([e for e in ends if e <= start] or [0.0])
        after = min([s for s in starts if s >= end] or [math.inf])
        lo = max(before, start - _LEAD_MS, 0.0)
        hi = min(after, end + _TAIL_MS)
        samples = track[int(lo * rate / 1000): int(hi * rate / 1000) if math.isfinite(hi) else None]
        if rate != SAMPLE_RATE:
            from rtvoice_widget.audio import to_pcm16

            pcm16 = to_pcm16(samples, rate)
        else:
            pcm16 = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        if pcm16:
            turns.append(ReplayTurn(len(turns), row.item_id, "audio", text, pcm16))
    return turns


def config_from_saved(config: Mapping[str, Any] | None, tools: Iterable[Callable[..., Any]] = ()) -> SessionConfig:
    """A :class:`SessionConfig` rebuilt from a saved session's ``config`` (``saved.config``, the
    public GA session object): model, instructions, voice, speed, output modalities and turn
    detection. Tools: the callables in ``tools`` (a saved session holds tool schemas, not the
    Python functions; a schema without its function is left out)."""
    session = (config or {}).get("session") or {}
    audio = session.get("audio") or {}
    out = audio.get("output") or {}
    fields: dict[str, Any] = {}
    if isinstance(config, Mapping) and isinstance(config.get("model"), str):
        fields["model"] = config["model"]
    for name, value in (("instructions", session.get("instructions")), ("voice", out.get("voice")),
                        ("speed", out.get("speed")), ("output_modalities", session.get("output_modalities"))):
        if value is not None:
            fields[name] = value
    if "turn_detection" in (audio.get("input") or {}):
        fields["turn_detection"] = audio["input"]["turn_detection"]
    tools = list(tools)
    if tools:
        fields["tools"] = tools
    return SessionConfig(**fields)


class _TurnWaiter:
    """One turn's reply, from log rows (session thread): done when a ``response.done`` arrives
    that was not cancelled and asks for no tool output."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.responses: set[str] = set()
        self.first_audio_ms: float | None = None
        self.items: dict[str, float] = {}  # assistant item -> audio ms received
        self.lock = threading.Lock()  # items: written on the session thread, read by the caller

    def on_row(self, row: dict) -> None:
        if row["source"] != "server":
            return
        type_, response_id = row["type"], row["response_id"]
        if type_ == "response.created" and response_id:
            self.responses.add(response_id)
        elif response_id not in self.responses:
            return
        elif type_ == "response.output_audio.delta":
            if self.first_audio_ms is None:
                self.first_audio_ms = row["t_ms"]
            if row["item_id"]:
                with self.lock:
                    self.items[row["item_id"]] = self.items.get(row["item_id"], 0.0) + (row["audio_ms"] or 0.0)
        elif type_ == "response.done":
            response = (row["payload"] or {}).get("response") or {}
            # Cancelled: the server heard the turn go on after a pause (its VAD split it) and
            # answers the rest next; a tool call's follow-up response is part of the turn too.
            if response.get("status") != "cancelled" and not any(
                    item.get("type") == "function_call" for item in response.get("output") or ()):
                self.finished.set()


def _check_speed(speed: Any) -> float:
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0 or speed != speed:
        raise ValueError(f"speed must be a number > 0 (math.inf: as fast as possible), got {speed!r}")
    return float(speed)


def replay(saved: Any, *, config: SessionConfig | Mapping[str, Any] | None = None, backend: str = "auto",
           speed: float = 1.0, tools: Iterable[Callable[..., Any]] = (), turns: Iterable[int] | None = None,
           turn_timeout: float = 120.0, pause_ms: float = 500.0,
           progress: Callable[[str], None] | None = None, **session_options: Any):
    """Say ``saved``'s user turns again in a new session; return it as a ``SavedSession``.

    ``config``: a :class:`SessionConfig` used as is, or a mapping of changes to the saved
    session's config (:func:`config_from_saved`, e.g. ``{"instructions": "Be terse."}``), or
    ``None`` for the saved config itself. ``backend`` and ``session_options`` (``url``,
    ``api_key``, ...) go to :class:`RealtimeSession`; ``tools`` are the Python functions the
    model may call. ``speed`` (> 0, see the module docstring). ``turns``: which user turns
    (indices into :func:`replay_turns`; default all). ``pause_ms``: the person's pause after
    hearing a reply (divided by ``speed``). ``progress(line)`` hears one line per turn.

    Raises ``ValueError`` for a bad ``speed`` or a saved session without user turns, and what
    ``connect()`` raises. The returned session's ``config`` also has ``replay_of`` (the saved
    session's path, or None) and ``replay_speed``.
    """
    from rtvoice_widget.saved import snapshot
    from rtvoice_widget.session import RealtimeSession

    speed = _check_speed(speed)
    todo = replay_turns(saved)
    if turns is not None:
        wanted = list(turns)
        todo = [todo[i] for i in wanted]
    if not todo:
        raise ValueError("the saved session has no user turns to replay")
    tools = list(tools)
    if isinstance(config, SessionConfig):
        cfg = config if not tools else config.replace(tools=tuple(config.tools) + tuple(tools))
    else:
        cfg = config_from_saved(saved.config, tools)
        if config is not None:
            cfg = cfg.replace(**dict(config))
    session = RealtimeSession(config=cfg, backend=backend, **session_options)
    session.connect()
    try:
        for turn in todo:
            _say(session, turn, speed, turn_timeout, pause_ms, progress)
    finally:
        session.close()
    result = snapshot(session)
    result.config = {**result.config, "replay_of": None if saved.path is None else str(saved.path),
                     "replay_speed": speed if math.isfinite(speed) else "inf"}
    return result


def _say(session: Any, turn: ReplayTurn, speed: float, timeout: float, pause_ms: float,
         progress: Callable[[str], None] | None) -> None:
    waiter = _TurnWaiter()
    unsubscribe = session.events.subscribe(waiter.on_row)
    try:
        session.events.local("replay.turn", session.now_ms(), text=turn.text, turn=turn.index,
                             source_item_id=turn.source_item_id, kind=turn.kind,
                             audio_ms=turn.audio_ms, speed=speed if math.isfinite(speed) else "inf")
        if turn.kind == "text":
            session.send_text(turn.text)
        else:
            voice_end = _stream(session, turn.pcm16, speed)
            # When the last voiced frame left, on the session clock: where a listener's wait
            # starts (compare's gap). The recording cannot say at speed > 1: it lays the
            # user's audio out end to end, so sped-up words end later there than they were sent.
            session.events.local("replay.sent", session.now_ms(), turn=turn.index,
                                 voice_end_ms=voice_end, audio_ms=turn.audio_ms)
            td = session.config.turn_detection
            if td.type is None:
                session.commit()
                session.create_response()
            else:
                # Real time whatever the speed: the server's turn detection waits for this much.
                _stream(session, bytes(int((td.silence_duration_ms + 300) * BYTES_PER_MS) // 2 * 2), 1.0)
        deadline = time.monotonic() + timeout
        while not waiter.finished.wait(0.05):
            if time.monotonic() > deadline:
                session.events.local("replay.timeout", session.now_ms(), text=f"no reply within {timeout:g} s",
                                     turn=turn.index, source_item_id=turn.source_item_id)
                break
        if waiter.finished.is_set():
            # Listen to the reply: it plays from its first audio, at `speed`.
            with waiter.lock:
                items = dict(waiter.items)
            heard_ms = sum(items.values()) / speed
            start = waiter.first_audio_ms if waiter.first_audio_ms is not None else session.now_ms()
            wait_s = (start + heard_ms - session.now_ms()) / 1000
            if wait_s > 0:
                time.sleep(wait_s)
            # Heard to the end, so the next turn's speech is no barge-in into a reply still "playing".
            for item_id, ms in items.items():
                session.playback_progress(item_id, ms)
            time.sleep(pause_ms / speed / 1000)
        if progress is not None:
            state = "answered" if waiter.finished.is_set() else "no reply"
            progress(f"turn {turn.index}: {state} ({turn.text or turn.kind!s:.60})")
    finally:
        unsubscribe()


def _stream(session: Any, pcm16: bytes, speed: float) -> float | None:
    """Send ``pcm16`` in 20 ms chunks at ``speed``; return when (session ms) the chunk holding
    the last voiced frame went out (None when nothing in it is voiced)."""
    from rtvoice_widget.turn_table import VOICE_FRAME_MS, voice_end_ms

    samples = np.frombuffer(pcm16, dtype="<i2")
    end = voice_end_ms(samples, SAMPLE_RATE, len(samples) * 1000 / SAMPLE_RATE)
    last_voiced = int(end // _CHUNK_MS) - 1 if math.isfinite(end) else -1
    assert _CHUNK_MS == VOICE_FRAME_MS  # a voiced frame is one chunk
    step = _CHUNK_MS * BYTES_PER_MS
    started = time.monotonic()
    sent_at = None
    for index, offset in enumerate(range(0, len(pcm16), step)):
        if math.isfinite(speed):
            # Paced against the start, not the previous chunk, so sleeps do not drift.
            delay = started + index * _CHUNK_MS / 1000 / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        session.send_audio(pcm16[offset: offset + step])
        if index == last_voiced:
            sent_at = session.now_ms()
    return sent_at
