"""Two conversations side by side, user turn by user turn: ``compare(a, b)``.

``a`` and ``b`` are :class:`~rtvoice_widget.saved.SavedSession` objects (or anything
:func:`~rtvoice_widget.saved.load_session` reads, or a live session / chat: a snapshot is
taken), typically a saved conversation and its :func:`~rtvoice_widget.replay.replay` under
other instructions, or two replays. Turn ``n`` of a conversation is:

- in a replay, everything from its ``n``-th ``replay.turn`` event to the next one (a turn the
  new server heard as two user items stays one turn);
- otherwise, everything from its ``n``-th user turn (turns table row, seeded history left out)
  to the next one.

Rows are paired by ``n``; the shorter conversation gets empty cells. Columns, one set per side
with the side's label as suffix (``labels=("a", "b")``): ``user_<label>`` (the user's
transcript), ``reply_<label>`` (the assistant's, all its items joined), ``gap_ms_<label>`` (end
of the user's voice -> first reply audio: the turns table's ``voice_to_first_audio_ms`` of the
turn's first reply item with audio; in a replay, from the replay's ``replay.sent`` record of when
the last voiced frame left), ``duration_ms_<label>`` (reply audio received), ``interruptions_<label>``
(interrupted assistant items), ``tool_calls_<label>`` (``name(arguments)`` joined with ``; ``),
plus ``turn`` and ``gap_diff_ms`` (b - a). :func:`plot_comparison` draws the table.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["compare", "plot_comparison", "turn_segments"]

_FIELDS = ("user", "reply", "gap_ms", "duration_ms", "interruptions", "tool_calls")


def _as_saved(source: Any):
    from rtvoice_widget.saved import SavedSession, load_session, snapshot

    if isinstance(source, SavedSession):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_session(source)
    return snapshot(source)


def turn_segments(saved: Any) -> pd.DataFrame:
    """One row per user turn of ``saved`` (see the module docstring for what a turn is):
    ``turn`` and the per-side fields ``user``, ``reply``, ``gap_ms``, ``duration_ms``,
    ``interruptions``, ``tool_calls``."""
    from rtvoice_widget.history import seeded_item_ids

    saved = _as_saved(saved)
    turns = saved.turns
    seeded = seeded_item_ids(saved.events)
    turns = turns[~turns["item_id"].isin(seeded)].sort_values("started", kind="stable")
    marks = saved.events[saved.events["type"] == "replay.turn"]
    sent = {p.get("turn"): p.get("voice_end_ms") for p in saved.events.loc[saved.events["type"] == "replay.sent", "payload"]
            if isinstance(p, dict)}
    if len(marks):
        bounds = [float(t) for t in marks["t_ms"]]
    else:
        bounds = [float(t) for t in turns.loc[turns["role"] == "user", "started"]]
    deltas = saved.events[saved.events["type"] == "response.output_audio.delta"]
    audio_starts = deltas.groupby("item_id", observed=True)["t_ms"].min().to_dict()
    rows = []
    for n, start in enumerate(bounds):
        end = bounds[n + 1] if n + 1 < len(bounds) else math.inf
        part = turns[(turns["started"] >= start) & (turns["started"] < end)]
        users = part[part["role"] == "user"]
        replies = part[part["role"] == "assistant"]
        calls = part[part["role"] == "function_call"]
        gap = _gap_ms(saved, replies, audio_starts, sent.get(n) if len(marks) else None)
        rows.append({
            "turn": n,
            "user": " ".join(t for t in users["text"] if isinstance(t, str)) or None,
            "reply": " ".join(t for t in replies["text"] if isinstance(t, str)) or None,
            "gap_ms": gap,
            "duration_ms": float(replies["audio_ms"].sum()) if len(replies) else math.nan,
            "interruptions": int(replies["interrupted"].sum()),
            "tool_calls": "; ".join(t for t in calls["text"] if isinstance(t, str)) or None,
        })
    return pd.DataFrame(rows, columns=["turn", *_FIELDS])


def _gap_ms(saved: Any, replies: pd.DataFrame, audio_starts: dict, replay_voice_end: Any = None) -> float:
    """End of voice -> first reply audio of one turn: the turns table's
    ``voice_to_first_audio_ms`` of the first reply with audio; a reply that follows a tool call
    has none there (the table counts from the user only for the first response), so its first
    audio is measured the same way (:func:`rtvoice_widget.turn_table.voice_end_ms`). In a replay the
    end of voice is the replay's own record (``replay.sent``'s ``voice_end_ms``)."""
    from rtvoice_widget.turn_table import voice_end_ms

    for row in replies.itertuples(index=False):
        first = audio_starts.get(row.item_id)
        if first is None:
            continue
        if replay_voice_end is not None:
            return float(first - replay_voice_end) if isinstance(replay_voice_end, (int, float)) else math.nan
        if isinstance(row.voice_to_first_audio_ms, float) and math.isfinite(row.voice_to_first_audio_ms):
            return float(row.voice_to_first_audio_ms)
        end = voice_end_ms(saved.recording.tracks_pcm16()[0], saved.recording.sample_rate, first)
        return float(first - end) if math.isfinite(end) else math.nan
    return math.nan


def compare(a: Any, b: Any, *, labels: tuple[str, str] = ("a", "b")) -> pd.DataFrame:
    """One row per user turn of ``a`` and ``b`` side by side (columns: module docstring).

    Raises ``ValueError`` for labels that are not two different non-empty strings."""
    if (not isinstance(labels, (tuple, list)) or len(labels) != 2 or not all(isinstance(x, str) and x for x in labels)
            or labels[0] == labels[1]):
        raise ValueError(f"labels must be two different non-empty strings, got {labels!r}")
    left, right = (turn_segments(x).set_index("turn").add_suffix(f"_{label}") for x, label in zip((a, b), labels))
    table = left.join(right, how="outer").sort_index().reset_index()
    order = ["turn"] + [f"{field}_{label}" for field in _FIELDS for label in labels]
    table = table[order]
    for label in labels:
        column = f"interruptions_{label}"
        table[column] = table[column].fillna(0).astype(np.int64)
    table["gap_diff_ms"] = table[f"gap_ms_{labels[1]}"] - table[f"gap_ms_{labels[0]}"]
    table.attrs["labels"] = tuple(labels)
    return table


def plot_comparison(table: pd.DataFrame, *, title: str | None = "Replay comparison", width: float = 9.0):
    """Grouped bars per user turn for a :func:`compare` table: the gap (end of voice -> first
    audio) on top, the reply's duration below, one color per side, interrupted turns marked
    with a red ``x`` and tool calls with a green ``T``. Returns a matplotlib ``Figure``."""
    from matplotlib.figure import Figure

    from rtvoice_widget.plots import COLORS

    labels = table.attrs.get("labels") or tuple(c[len("gap_ms_"):] for c in table.columns if c.startswith("gap_ms_"))
    fig = Figure(figsize=(width, 5.0), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(table))
    bar = 0.8 / max(1, len(labels))
    colors = (COLORS["user"], COLORS["assistant"], COLORS["tool"], COLORS["system"])
    for ax, field, name in ((axes[0], "gap_ms", "end of voice → first audio (ms)"),
                            (axes[1], "duration_ms", "reply duration (ms)")):
        for k, label in enumerate(labels):
            values = pd.to_numeric(table[f"{field}_{label}"], errors="coerce").to_numpy(dtype=float)
            offset = (k - (len(labels) - 1) / 2) * bar
            ax.bar(x + offset, np.nan_to_num(values), width=bar, color=colors[k % len(colors)], label=label)
            for i, value in enumerate(values):
                top = 0.0 if not np.isfinite(value) else value
                if field == "gap_ms" and not np.isfinite(value):
                    ax.annotate("no audio", (x[i] + offset, 0), ha="center", va="bottom", fontsize=7, color="#888888")
                if table[f"interruptions_{label}"].iloc[i]:
                    ax.annotate("x", (x[i] + offset, top), ha="center", va="bottom", color=COLORS["interruption"])
                if isinstance(table[f"tool_calls_{label}"].iloc[i], str):
                    ax.annotate("T", (x[i] + offset, top), xytext=(0, 8), textcoords="offset points",
                                ha="center", va="bottom", fontsize=8, color=COLORS["tool"])
        ax.set_ylabel(name, fontsize=9)
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0].legend(frameon=False, fontsize=9)
    axes[1].set_xticks(x, [f"turn {n}" for n in table["turn"]])
    axes[1].annotate("x interrupted · T tool call", (1.0, 0.0), xycoords="figure fraction", ha="right",
                     va="bottom", fontsize=8, color="#666666")
    if title:
        axes[0].set_title(title, fontsize=11, loc="left")
    return fig
