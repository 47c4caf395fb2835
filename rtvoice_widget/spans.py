"""Spans of a conversation, as tables built from the event log: who spoke when, where the
assistant was interrupted, which tools ran.

Pure functions over the ``EventLog.to_pandas()`` schema (events.py), GA and beta names alike,
with no plotting dependency: :meth:`rtvoice_widget.saved.SavedSession.turn` cuts a turn's audio
with them, and :mod:`rtvoice_widget.plots` draws them. Times are session-clock ms (``t_ms``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["assistant_speech_spans", "interruptions", "tool_calls", "user_speech_spans"]

_AUDIO_DELTA_TYPES = ("response.output_audio.delta", "response.audio.delta")
_SPAN_COLUMNS = ["item_id", "start_ms", "end_ms"]


def _payload_value(payload: object, key: str) -> object:
    return payload.get(key) if isinstance(payload, dict) else None


def _of_type(events: pd.DataFrame, *types: str, source: str | None = None) -> pd.DataFrame:
    mask = events["type"].isin(types)
    if source is not None:
        mask &= events["source"] == source
    return events[mask]


class _InputAudio:
    """The client's appended audio (``input_audio_buffer.append``) laid out on the session clock
    the way :class:`rtvoice_widget.audio.Recorder` lays out user audio: a chunk starting within
    ``gap_ms`` of the previous one's end continues its run (audio streamed faster than real time
    stays contiguous), a later one starts a new run at its own time. Positions in the input
    stream (the server's ``audio_start_ms`` / ``audio_end_ms``) then map exactly onto the
    recorded waveform."""

    # A start this close to the end of a run, followed by a pause of the microphone, is the
    # server's prefix padding reaching back across the pause: the speech begins after it.
    PADDING_MS = 500.0
    PAUSE_MS = 1000.0

    def __init__(self, events: pd.DataFrame, gap_ms: float = 100.0) -> None:
        appends = _of_type(events, "input_audio_buffer.append", source="client")
        sent = appends["t_ms"].to_numpy(dtype=float)
        lengths = appends["audio_ms"].to_numpy(dtype=float)
        self.placed = np.empty_like(sent)
        self.run = np.zeros(len(sent), dtype=int)
        run_start: list[float] = []
        end = -np.inf
        for i, (t, length) in enumerate(zip(sent, lengths)):
            if t > end + gap_ms:
                run_start.append(t)
            self.placed[i] = t if t > end + gap_ms else end
            self.run[i] = len(run_start) - 1
            end = self.placed[i] + length
        self.stream_end = np.cumsum(lengths)
        self.stream_start = self.stream_end - lengths
        last = [int(np.flatnonzero(self.run == r)[-1]) for r in range(len(run_start))]
        self.run_start = np.array(run_start)
        self.run_end = np.array([self.placed[i] + lengths[i] for i in last])
        self.run_end_position = np.array([self.stream_end[i] for i in last])

    def __bool__(self) -> bool:
        return len(self.placed) > 0

    def place(self, position_ms: float) -> tuple[float, int] | None:
        """``(session ms, run)`` of a stream position; ``None`` outside the audio sent."""
        if not self or not 0 <= position_ms <= self.stream_end[-1]:
            return None
        i = min(int(np.searchsorted(self.stream_end, position_ms, side="right")), len(self.placed) - 1)
        return float(self.placed[i] + (position_ms - self.stream_start[i])), int(self.run[i])

    def speech_start(self, position_ms: float) -> float | None:
        placed = self.place(position_ms)
        if placed is None:
            return None
        t, run = placed
        if (run + 1 < len(self.run_start)
                and self.run_end_position[run] - position_ms <= self.PADDING_MS
                and self.run_start[run + 1] - self.run_end[run] >= self.PAUSE_MS):
            return float(self.run_start[run + 1])
        return t

    def speech_end(self, position_ms: float) -> float | None:
        placed = self.place(position_ms)
        return None if placed is None else placed[0]


def user_speech_spans(events: pd.DataFrame) -> pd.DataFrame:
    """Where the user spoke, per the server's VAD: ``item_id, start_ms, end_ms`` (session clock).

    Uses ``audio_start_ms`` / ``audio_end_ms`` of ``speech_started`` / ``speech_stopped``, mapped
    onto the session clock through the appended audio, which is where the recorder put those
    samples (a start that the server's prefix padding puts just before a pause of the
    microphone moves to where the audio resumes); falls back to the events' own arrival times
    when a position lies outside the audio this client sent (or none was sent). A start without
    a stop runs to the last event.
    """
    audio = _InputAudio(events)
    rows: dict[object, dict[str, float]] = {}
    marks = _of_type(events, "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                     source="server")
    for event in marks.itertuples(index=False):
        started = event.type == "input_audio_buffer.speech_started"
        position = _payload_value(event.payload, "audio_start_ms" if started else "audio_end_ms")
        t = None
        if isinstance(position, (int, float)):
            t = audio.speech_start(float(position)) if started else audio.speech_end(float(position))
        key = event.item_id if event.item_id is not None else f"speech-{len(rows)}"
        span = rows.setdefault(key, {"start_ms": np.nan, "end_ms": np.nan})
        span["start_ms" if started else "end_ms"] = float(event.t_ms) if t is None else t
    end_of_log = float(events["t_ms"].max()) if len(events) else 0.0
    table = pd.DataFrame([{"item_id": k, **v} for k, v in rows.items()], columns=_SPAN_COLUMNS)
    table = table.astype({"start_ms": float, "end_ms": float})
    table["start_ms"] = table["start_ms"].fillna(table["end_ms"])
    table["end_ms"] = table["end_ms"].fillna(end_of_log)
    return table.reset_index(drop=True)


def assistant_speech_spans(events: pd.DataFrame) -> pd.DataFrame:
    """Assistant audio per item: ``item_id, start_ms, end_ms, truncated``.

    Starts at the first audio delta, or when the previous item ends if that is later (items
    play one after the other, as the recorder lays them out), and lasts as long as the audio
    received, cut at the ``audio_end_ms`` of a client ``conversation.item.truncate`` (what the
    user really heard).
    """
    deltas = _of_type(events, *_AUDIO_DELTA_TYPES, source="server")
    truncates = _of_type(events, "conversation.item.truncate", source="client")
    cut = {row.item_id: _payload_value(row.payload, "audio_end_ms") for row in truncates.itertuples(index=False)}
    rows = []
    previous_end = 0.0
    for item_id, group in deltas.groupby("item_id", sort=False):
        start = max(float(group["t_ms"].iloc[0]), previous_end)
        duration = float(group["audio_ms"].sum())
        heard = cut.get(item_id)
        truncated = isinstance(heard, (int, float))
        if truncated:
            duration = min(duration, float(heard))
        rows.append({"item_id": item_id, "start_ms": start, "end_ms": start + duration,
                     "truncated": truncated})
        previous_end = start + duration
    return pd.DataFrame(rows, columns=[*_SPAN_COLUMNS, "truncated"]).astype(
        {"start_ms": float, "end_ms": float, "truncated": bool})


def interruptions(events: pd.DataFrame) -> pd.DataFrame:
    """Barge-ins: ``t_ms, item_id, audio_end_ms, kind``.

    ``kind`` is ``"truncate"`` for a client ``conversation.item.truncate`` and ``"cancelled"``
    for a response the server reports cancelled (``response.done`` status) that no truncate
    already accounts for.
    """
    rows = []
    truncated_items = set()
    for row in _of_type(events, "conversation.item.truncate", source="client").itertuples(index=False):
        truncated_items.add(row.item_id)
        rows.append({"t_ms": float(row.t_ms), "item_id": row.item_id,
                     "audio_end_ms": _payload_value(row.payload, "audio_end_ms"), "kind": "truncate"})
    for row in _of_type(events, "response.done", source="server").itertuples(index=False):
        response = _payload_value(row.payload, "response")
        if _payload_value(response, "status") != "cancelled":
            continue
        items = [o.get("id") for o in (_payload_value(response, "output") or []) if isinstance(o, dict)]
        if not truncated_items.intersection(items):
            rows.append({"t_ms": float(row.t_ms), "item_id": items[0] if items else None,
                         "audio_end_ms": None, "kind": "cancelled"})
    table = pd.DataFrame(rows, columns=["t_ms", "item_id", "audio_end_ms", "kind"])
    return table.sort_values("t_ms", kind="stable").reset_index(drop=True)


def tool_calls(events: pd.DataFrame) -> pd.DataFrame:
    """Function calls: ``call_id, name, arguments, start_ms, end_ms`` — from the server's
    ``response.function_call_arguments.done`` to the client's ``function_call_output`` item
    (``end_ms`` NaN when no output was sent)."""
    outputs = {}
    for row in _of_type(events, "conversation.item.create", source="client").itertuples(index=False):
        item = _payload_value(row.payload, "item")
        if _payload_value(item, "type") == "function_call_output":
            outputs.setdefault(item.get("call_id"), float(row.t_ms))
    rows = []
    for row in _of_type(events, "response.function_call_arguments.done", source="server").itertuples(index=False):
        call_id = _payload_value(row.payload, "call_id")
        rows.append({"call_id": call_id, "name": _payload_value(row.payload, "name"),
                     "arguments": _payload_value(row.payload, "arguments"),
                     "start_ms": float(row.t_ms), "end_ms": outputs.get(call_id, np.nan)})
    return pd.DataFrame(rows, columns=["call_id", "name", "arguments", "start_ms", "end_ms"]).astype(
        {"start_ms": float, "end_ms": float})
