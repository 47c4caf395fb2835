"""The turns table: one row per conversation turn, built from the event log DataFrame.

Pure functions over the ``EventLog.to_pandas()`` schema (events.py); GA and beta event names
are both understood. :func:`turns_table` columns:

========================  ===============================================================
role                      ``user``, ``assistant``, or ``function_call`` (a tool call item)
item_id, response_id      ids (``response_id`` is None for user turns)
text                      final transcript/text, else the deltas joined; for a function call
                          ``name(arguments)``
started, ended            session-clock ms (``t_ms``): user = speech started → stopped (or
                          item added → committed); assistant = output item added → done
audio_ms                  audio of the turn: user = VAD ``audio_end_ms - audio_start_ms``, or
                          the client audio appended before a manual commit; assistant = sum
                          of output audio deltas received
interrupted               assistant turn cut short: truncated, or its response cancelled
truncated_at_ms           ``audio_end_ms`` of the truncation (server's, else client's), or NaN
status                    the response's final status (``completed``, ``cancelled``, ...)
speech_to_response_ms     end of the user's input → ``response.created``
speech_to_first_audio_ms  end of the user's input → first audio delta of this item
speech_to_first_text_ms   end of the user's input → first transcript/text delta of this item
response_duration_ms      ``response.created`` → ``response.done``
voice_end_ms              end of the user's voice before this item's first audio delta:
                          the end of the last voiced 20 ms frame of the recorded user audio
                          (session clock), or NaN without ``user_audio``
voice_to_first_audio_ms   ``voice_end_ms`` → first audio delta of this item: the gap a
                          person hears (the headline latency)
voice_to_first_sound_ms   ``voice_end_ms`` → the browser's player rendering this item's first
                          sample (a ``playback.started`` event's ``started_ms``, see below),
                          or NaN without a player that reports it
========================  ===============================================================

The ``voice_*`` columns come from the user's recorded audio, not from server events, so they
mean the same for every backend (OpenAI, Azure, the local server) and do not depend on how long
the server's VAD waits. They need ``turns_table(events, user_audio=...)``; a frame is voiced
when its RMS reaches :data:`VOICE_LEVEL_DBFS` (see :func:`voice_end_ms`).

``playback.started`` (a local event the widget logs, ``item_id`` and ``started_ms``) says when
the player rendered an item's first sample, on the session clock: the widget maps the page's
clock to the session's as it maps the mic frames' capture times, which place the user's audio in
the recording, so ``voice_to_first_sound_ms`` compares two times of one clock. Add the audio
output's own latency (``output_latency_ms`` in the event) for the moment it leaves the speaker.

"End of the user's input" is ``speech_stopped`` (server VAD), else the commit of the audio
buffer (push-to-talk), else the server adding a user text item. It is attributed to the first
response created after it only; later responses (e.g. after a tool call) get NaN latencies.
Rows are ordered by ``started``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .pcm import SAMPLE_RATE
from .protocol import BETA_ALIASES

__all__ = ["EVENT_LATENCY_COLUMNS", "LATENCY_COLUMNS", "TURN_COLUMNS", "VOICE_FRAME_MS", "VOICE_LEVEL_DBFS", "latency_summary",
           "turns_table", "voice_end_ms"]

#: Frame of the voice-activity check on the recorded user audio (frames tile the session clock).
VOICE_FRAME_MS = 20
#: A frame whose RMS reaches this level (dBFS) is voiced. Conversational speech into a headset or
#: laptop microphone sits around -30..-15 dBFS, room noise below -50; syllable tails that fade
#: under -45 dBFS are not heard as the voice going on.
VOICE_LEVEL_DBFS = -45.0
# How far back from the first reply audio the end of voice is looked for.
_VOICE_LOOKBACK_MS = 30_000.0

LATENCY_COLUMNS = (
    "voice_to_first_audio_ms",
    "voice_to_first_sound_ms",
    "speech_to_response_ms",
    "speech_to_first_audio_ms",
    "speech_to_first_text_ms",
    "response_duration_ms",
)
#: The latency columns the protocol computes from events alone (``protocol.Turn`` attributes and
#: ``median_*`` metrics); the ``voice_*`` ones need the recorded user audio as well.
EVENT_LATENCY_COLUMNS = LATENCY_COLUMNS[2:]
TURN_COLUMNS = (
    "role", "item_id", "response_id", "text", "started", "ended", "audio_ms", "interrupted",
    "truncated_at_ms", "status", *EVENT_LATENCY_COLUMNS, "voice_end_ms", "voice_to_first_audio_ms",
    "voice_to_first_sound_ms",
)


def voice_end_ms(user_audio: np.ndarray, sample_rate: int, before_ms: float, *,
                 level_dbfs: float = VOICE_LEVEL_DBFS, lookback_ms: float = _VOICE_LOOKBACK_MS) -> float:
    """End (session-clock ms) of the last voiced :data:`VOICE_FRAME_MS` frame that ends at or
    before ``before_ms``; NaN if no frame in the ``lookback_ms`` before it is voiced.

    ``user_audio``: the user's track with sample 0 at session start (``Recorder.user``, float in
    [-1, 1], or its int16 samples); frames are ``[k*20, k*20+20)`` ms. Cost: one pass over at
    most ``lookback_ms`` of audio.
    """
    audio = np.asarray(user_audio)
    if audio.ndim != 1:
        raise ValueError(f"user_audio must be a mono (1-D) track, got shape {audio.shape}")
    if not math.isfinite(before_ms):
        return math.nan
    scale = 32768.0 if audio.dtype == np.int16 else 1.0
    frame = int(sample_rate * VOICE_FRAME_MS / 1000)
    last = min(int(before_ms // VOICE_FRAME_MS), audio.shape[0] // frame)  # frames [0, last) qualify
    first = max(0, last - int(lookback_ms // VOICE_FRAME_MS))
    if last <= first:
        return math.nan
    chunk = audio[first * frame:last * frame].astype(np.float64).reshape(-1, frame) / scale
    rms = np.sqrt(np.mean(np.square(chunk), axis=1))
    voiced = np.flatnonzero(rms >= 10.0 ** (level_dbfs / 20.0))
    if not voiced.size:
        return math.nan
    return float((first + voiced[-1] + 1) * VOICE_FRAME_MS)


_TEXT_DELTAS = ("response.output_audio_transcript.delta", "response.output_text.delta")
_TEXT_DONES = ("response.output_audio_transcript.done", "response.output_text.done")
_RELEVANT = frozenset({
    "input_audio_buffer.append", "input_audio_buffer.clear", "input_audio_buffer.cleared",
    "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed", "conversation.item.added", "conversation.item.done",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "response.created", "response.output_item.added", "response.output_item.done",
    "response.output_audio.delta", "response.function_call_arguments.done", "response.done",
    "conversation.item.truncate", "conversation.item.truncated", "playback.started",
    *_TEXT_DELTAS, *_TEXT_DONES, *BETA_ALIASES,
})


class _Turn:
    __slots__ = (
        "audio_ms",
        "audio_start_ms",
        "ended",
        "final_text",
        "first_audio",
        "first_sound",
        "first_text",
        "item_id",
        "order",
        "parts",
        "response_id",
        "role",
        "started",
        "truncated_at_ms",
        "truncated_by_server",
    )

    def __init__(self, role: str, item_id: str | None, started: float, order: int) -> None:
        self.role = role
        self.item_id = item_id
        self.response_id: str | None = None
        self.parts: list[str] = []
        self.final_text: str | None = None
        self.started = started
        self.ended = math.nan
        self.audio_ms = math.nan
        self.truncated_at_ms = math.nan
        self.truncated_by_server = False
        self.first_audio = math.nan
        self.first_sound = math.nan
        self.first_text = math.nan
        self.audio_start_ms: float | None = None
        self.order = order

    @property
    def text(self) -> str | None:
        if self.final_text is not None:
            return self.final_text
        return "".join(self.parts) if self.parts else None


class _Response:
    __slots__ = ("created", "done", "status", "user_end")

    def __init__(self, created: float, user_end: float) -> None:
        self.created = created
        self.done = math.nan
        self.status: str | None = None
        self.user_end = user_end


def _item_text(item: dict[str, Any]) -> str | None:
    texts = [c.get("text") or c.get("transcript") for c in item.get("content") or ()
             if isinstance(c, dict)]
    texts = [t for t in texts if isinstance(t, str)]
    return "".join(texts) if texts else None


def turns_table(events: pd.DataFrame, user_audio: np.ndarray | None = None,
                sample_rate: int = SAMPLE_RATE) -> pd.DataFrame:
    """One row per turn from an event-log DataFrame; columns :data:`TURN_COLUMNS`.

    ``user_audio`` (the recorded user track on the same session clock, see
    :func:`voice_end_ms`) fills the ``voice_*`` columns; without it they are NaN.
    """
    builder = _TurnsBuilder()
    for row in _relevant_rows(events):
        builder.apply(*row)
    return _turns_frame(builder.rows(user_audio, sample_rate))


def _relevant_rows(events: pd.DataFrame):
    """The log's rows that matter to turns, in ``seq`` order, with absent strings as None."""
    missing = {"type", "source", "t_ms", "item_id", "response_id", "text", "audio_ms", "payload"} - set(events.columns)
    if missing:
        raise ValueError(f"turns_table needs an EventLog.to_pandas() frame; missing columns {sorted(missing)}")
    df = events[events["type"].isin(_RELEVANT)]
    if "seq" in df.columns:
        df = df.sort_values("seq", kind="stable")
    columns = (df["type"].astype(str), df["source"].astype(str), df["t_ms"], df["item_id"],
               df["response_id"], df["text"], df["audio_ms"], df["payload"])
    for type_, source, t, item_id, response_id, text, audio_ms, payload in zip(*columns):
        # Frames read back with plain pandas may hold NaN for absent strings.
        yield (BETA_ALIASES.get(type_, type_), source, t,
               item_id if isinstance(item_id, str) else None,
               response_id if isinstance(response_id, str) else None,
               text if isinstance(text, str) else None,
               audio_ms, payload if isinstance(payload, dict) else {})


class _TurnsBuilder:
    """Turns and responses rebuilt from log rows fed in order (:meth:`apply`)."""

    def __init__(self) -> None:
        self.turns: dict[str, _Turn] = {}
        self.responses: dict[str, _Response] = {}
        self.user_end = math.nan          # end of the latest user input not yet answered
        self.pending_audio_ms = 0.0       # client audio appended since the last commit/clear

    def turn(self, item_id: str, role: str, t: float) -> _Turn:
        found = self.turns.get(item_id)
        if found is None:
            found = self.turns[item_id] = _Turn(role, item_id, t, len(self.turns))
        return found

    def apply(self, type_: str, source: str, t: float, item_id: str | None, response_id: str | None,
              text: str | None, audio_ms: float, payload: dict[str, Any]) -> None:
        if source == "client":
            self._client(type_, item_id, audio_ms, payload)
        elif type_ == "playback.started":
            self._playback_started(item_id, payload)
        elif type_.startswith("input_audio_buffer."):
            self._input_buffer(type_, t, item_id, payload)
        elif type_ in ("conversation.item.added", "conversation.item.done", "response.output_item.added"):
            self._item(t, item_id, response_id, payload)
        else:
            self._server(type_, t, item_id, response_id, text, audio_ms, payload)

    def _client(self, type_: str, item_id: str | None, audio_ms: float, payload: dict[str, Any]) -> None:
        if type_ == "input_audio_buffer.append":
            self.pending_audio_ms += audio_ms
        elif type_ == "input_audio_buffer.clear":
            self.pending_audio_ms = 0.0
        elif type_ == "conversation.item.truncate" and item_id in self.turns:
            tr = self.turns[item_id]
            if not tr.truncated_by_server:
                tr.truncated_at_ms = float(payload.get("audio_end_ms", math.nan))

    def _playback_started(self, item_id: str | None, payload: dict[str, Any]) -> None:
        # Only the player's report of an item already known as assistant audio counts.
        started_ms = payload.get("started_ms")
        tr = self.turns.get(item_id) if item_id is not None else None
        if (tr is not None and math.isnan(tr.first_sound) and isinstance(started_ms, (int, float))
                and not isinstance(started_ms, bool) and math.isfinite(started_ms)):
            tr.first_sound = float(started_ms)

    def _input_buffer(self, type_: str, t: float, item_id: str | None, payload: dict[str, Any]) -> None:
        if type_ == "input_audio_buffer.speech_started" and item_id is not None:
            tr = self.turn(item_id, "user", t)
            tr.audio_start_ms = payload.get("audio_start_ms")
        elif type_ == "input_audio_buffer.speech_stopped" and item_id is not None:
            tr = self.turn(item_id, "user", t)
            tr.ended = t
            end_ms = payload.get("audio_end_ms")
            if end_ms is not None and tr.audio_start_ms is not None:
                tr.audio_ms = float(end_ms - tr.audio_start_ms)
            self.user_end = t
        elif type_ == "input_audio_buffer.cleared":
            self.pending_audio_ms = 0.0
        elif type_ == "input_audio_buffer.committed":
            if item_id is not None:
                tr = self.turn(item_id, "user", t)
                if math.isnan(tr.ended):
                    tr.ended = t
                    self.user_end = t
                if math.isnan(tr.audio_ms) and self.pending_audio_ms:
                    tr.audio_ms = self.pending_audio_ms
            self.pending_audio_ms = 0.0

    def _item(self, t: float, item_id: str | None, response_id: str | None, payload: dict[str, Any]) -> None:
        item = payload.get("item")
        if not isinstance(item, dict) or item_id is None:
            return
        kind = item.get("type")
        if kind == "function_call":
            tr = self.turn(item_id, "function_call", t)
            tr.final_text = f"{item.get('name')}({item.get('arguments') or ''})"
        elif kind == "message":
            tr = self._message(t, item_id, item)
        else:
            return
        if response_id is not None:
            tr.response_id = response_id

    def _message(self, t: float, item_id: str, item: dict[str, Any]) -> _Turn:
        role = "user" if item.get("role") == "user" else "assistant"
        new = item_id not in self.turns
        tr = self.turn(item_id, role, t)
        if role == "assistant" and tr.final_text is None:
            # A message the client created (a resumed history, history.py): its text.
            typed = "".join(c.get("text") or "" for c in item.get("content") or ()
                            if isinstance(c, dict) and c.get("type") in ("output_text", "text"))
            tr.final_text = typed or None
        if role == "user":
            content_text = _item_text(item)
            if content_text is not None and tr.final_text is None:
                tr.final_text = content_text
            if new and any(isinstance(c, dict) and c.get("type") == "input_text"
                           for c in item.get("content") or ()):
                tr.ended = t
                self.user_end = t
        return tr

    def _server(self, type_: str, t: float, item_id: str | None, response_id: str | None,
                text: str | None, audio_ms: float, payload: dict[str, Any]) -> None:
        if type_ == "conversation.item.input_audio_transcription.delta" and item_id is not None:
            if text:
                self.turn(item_id, "user", t).parts.append(text)
        elif type_ == "conversation.item.input_audio_transcription.completed" and item_id is not None:
            self.turn(item_id, "user", t).final_text = text
        elif type_ == "response.created" and response_id is not None:
            self.responses[response_id] = _Response(t, self.user_end)
            self.user_end = math.nan
        elif type_ == "response.output_audio.delta" and item_id is not None:
            tr = self.turn(item_id, "assistant", t)
            tr.response_id = tr.response_id or response_id
            tr.audio_ms = (0.0 if math.isnan(tr.audio_ms) else tr.audio_ms) + audio_ms
            if math.isnan(tr.first_audio):
                tr.first_audio = t
        elif type_ in _TEXT_DELTAS and item_id is not None:
            tr = self.turn(item_id, "assistant", t)
            tr.response_id = tr.response_id or response_id
            if text:
                tr.parts.append(text)
            if math.isnan(tr.first_text):
                tr.first_text = t
        elif type_ in _TEXT_DONES and item_id is not None:
            self.turn(item_id, "assistant", t).final_text = text
        elif type_ == "response.function_call_arguments.done" and item_id is not None:
            tr = self.turn(item_id, "function_call", t)
            tr.final_text = f"{payload.get('name')}({payload.get('arguments') or ''})"
        elif type_ == "response.output_item.done" and item_id is not None and item_id in self.turns:
            self.turns[item_id].ended = t
        elif type_ == "response.done" and response_id is not None:
            resp = self.responses.setdefault(response_id, _Response(math.nan, math.nan))
            resp.done = t
            response = payload.get("response")
            resp.status = response.get("status") if isinstance(response, dict) else None
        elif type_ == "conversation.item.truncated" and item_id is not None and item_id in self.turns:
            tr = self.turns[item_id]
            tr.truncated_at_ms = float(payload.get("audio_end_ms", math.nan))
            tr.truncated_by_server = True

    def rows(self, user_audio: np.ndarray | None, sample_rate: int) -> list[tuple]:
        """One tuple per turn in :data:`TURN_COLUMNS` order, by start time."""
        rows = []
        for tr in sorted(self.turns.values(), key=lambda x: (x.started, x.order)):
            resp = self.responses.get(tr.response_id) if tr.response_id is not None else None
            ref = resp.user_end if resp is not None else math.nan
            ended = tr.ended
            if resp is not None and math.isnan(ended):
                ended = resp.done
            status = resp.status if resp is not None else None
            voice_end = math.nan
            if user_audio is not None and not math.isnan(ref) and not math.isnan(tr.first_audio):
                voice_end = voice_end_ms(user_audio, sample_rate, tr.first_audio)
            rows.append((
                tr.role, tr.item_id, tr.response_id, tr.text, tr.started, ended,
                0.0 if math.isnan(tr.audio_ms) else tr.audio_ms,
                tr.role != "user" and (not math.isnan(tr.truncated_at_ms) or status == "cancelled"),
                tr.truncated_at_ms, status,
                (resp.created - ref) if resp is not None else math.nan,
                tr.first_audio - ref, tr.first_text - ref,
                (resp.done - resp.created) if resp is not None else math.nan,
                voice_end, tr.first_audio - voice_end, tr.first_sound - voice_end,
            ))
        return rows


def _turns_frame(rows: list[tuple]) -> pd.DataFrame:
    columns = list(zip(*rows)) if rows else [()] * len(TURN_COLUMNS)
    data: dict[str, Any] = {}
    for name, values in zip(TURN_COLUMNS, columns):
        if name in ("role", "item_id", "response_id", "text", "status"):
            # object columns keep None for "absent" on pandas 2 and 3 alike
            data[name] = pd.Series(values, dtype=object)
        elif name == "interrupted":
            data[name] = np.array(values, dtype=bool)
        else:
            data[name] = np.array(values, dtype=np.float64)
    return pd.DataFrame(data)


def latency_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Latency statistics over the turns: one row per :data:`LATENCY_COLUMNS` entry with
    ``count``, ``mean``, ``p50``, ``p90``, ``max`` (ms; NaN when no turn has the value).

    ``frame`` is an event-log DataFrame, or a turns table already built from one.
    """
    turns = frame if "role" in frame.columns else turns_table(frame)
    stats = {}
    for col in LATENCY_COLUMNS:
        values = turns[col].dropna().to_numpy(dtype=np.float64) if len(turns) else np.empty(0)
        if values.size:
            stats[col] = (values.size, values.mean(), *np.percentile(values, [50, 90]), values.max())
        else:
            stats[col] = (0, math.nan, math.nan, math.nan, math.nan)
    out = pd.DataFrame.from_dict(stats, orient="index", columns=["count", "mean", "p50", "p90", "max"])
    out["count"] = out["count"].astype(np.int64)
    return out
