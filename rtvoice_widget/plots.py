"""Figures of a conversation, built from the event log and the recording.

Each function returns a new ``matplotlib.figure.Figure`` and shows nothing: figures are made
with the object API (never ``pyplot``), so no global state changes, any backend (Agg included)
works and nothing pops up as a side effect. In a notebook the returned figure displays as the
cell's value; ``fig.savefig("x.png")`` writes it.

- :func:`timeline`: user and assistant waveforms over one time axis, with user speech,
  assistant speech, interruptions and tool calls marked (from the events).
- :func:`latency_distribution`: the latency columns of the turns table, one strip per column
  with its p50 and p90.
- :func:`event_counts`: events per category per time bin, one row per category.

The span tables the timeline draws (:func:`user_speech_spans`, :func:`assistant_speech_spans`,
:func:`interruptions`, :func:`tool_calls`) live in :mod:`rtvoice_widget.spans`, which needs no
matplotlib, and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rtvoice_widget.pcm import SAMPLE_RATE
from rtvoice_widget.spans import assistant_speech_spans, interruptions, tool_calls, user_speech_spans
from rtvoice_widget.turn_table import LATENCY_COLUMNS

__all__ = [
    "COLORS",
    "assistant_speech_spans",
    "event_counts",
    "interruptions",
    "latency_distribution",
    "timeline",
    "tool_calls",
    "user_speech_spans",
]

#: One color per role and per event category, shared by every figure.
COLORS = {
    "user": "#1f77b4",
    "assistant": "#e6780b",
    "tool": "#2ca02c",
    "interruption": "#d62728",
    "user_speech": "#1f77b4",
    "ai_response": "#e6780b",
    "system": "#7f7f7f",
    "error": "#d62728",
    "connection": "#9467bd",
}
_CATEGORIES = ("user_speech", "ai_response", "system", "error", "connection")
def _envelope(samples: np.ndarray, sample_rate: int, points: int = 4000):
    """Min/max per bucket: draws the true shape of long audio with a few thousand points."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    bucket = max(1, samples.size // points)
    shaped = samples[: samples.size // bucket * bucket].reshape(-1, bucket)
    t = (np.arange(shaped.shape[0]) * bucket + bucket / 2) / sample_rate
    return t, shaped.min(axis=1), shaped.max(axis=1)


def _draw_waveform(ax, samples, sample_rate, color, label):
    t, low, high = _envelope(samples, sample_rate)
    if t.size:
        ax.fill_between(t, low, high, color=color, linewidth=0.4, alpha=0.85)
        peak = float(max(np.abs(low).max(), np.abs(high).max()))
    else:
        peak = 0.0
    limit = max(peak * 1.1, 0.05)
    ax.set_ylim(-limit, limit)
    ax.set_ylabel(label, rotation=0, ha="right", va="center")
    ax.set_yticks([])
    ax.axhline(0, color="#bbbbbb", linewidth=0.5, zorder=0)
    if not t.size:
        ax.text(0.5, 0.5, "no audio recorded", transform=ax.transAxes, ha="center",
                va="center", color="#888888")


def timeline(events: pd.DataFrame, user: np.ndarray | None = None,
             assistant: np.ndarray | None = None, *, sample_rate: int = SAMPLE_RATE,
             title: str | None = "Conversation timeline", width: float = 12.0) -> Figure:
    """The conversation on one time axis (seconds since session start).

    Rows: the user's waveform with their speech spans shaded, the assistant's waveform with its
    speech spans, and a lane chart of user speech, assistant speech (hatched when truncated) and
    tool calls (labelled with the function name). Interruptions are red lines across all rows.
    ``user`` / ``assistant`` are the recording's float32 tracks (omit them for events only).
    """
    user_spans = user_speech_spans(events)
    ai_spans = assistant_speech_spans(events)
    cuts = interruptions(events)
    calls = tool_calls(events)

    with_audio = user is not None or assistant is not None
    fig = Figure(figsize=(width, 5.2 if with_audio else 2.4), layout="constrained")
    if with_audio:
        ax_user, ax_ai, ax_lanes = fig.subplots(3, 1, sharex=True, height_ratios=[2, 2, 1.6])
        _draw_waveform(ax_user, user if user is not None else np.zeros(0), sample_rate,
                       COLORS["user"], "user")
        _draw_waveform(ax_ai, assistant if assistant is not None else np.zeros(0), sample_rate,
                       COLORS["assistant"], "assistant")
        for span in user_spans.itertuples(index=False):
            ax_user.axvspan(span.start_ms / 1000, span.end_ms / 1000, color=COLORS["user"],
                            alpha=0.10, linewidth=0)
        for span in ai_spans.itertuples(index=False):
            ax_ai.axvspan(span.start_ms / 1000, span.end_ms / 1000, color=COLORS["assistant"],
                          alpha=0.10, linewidth=0)
        axes = [ax_user, ax_ai, ax_lanes]
    else:
        ax_lanes = fig.subplots(1, 1)
        axes = [ax_lanes]

    ends = [0.0, float(events["t_ms"].max()) / 1000 if len(events) else 0.0]
    for track in (user, assistant):
        if track is not None:
            ends.append(len(track) / sample_rate)
    span_s = max(ends) * 1.01 or 1.0
    lanes = {"user": 2, "assistant": 1, "tools": 0}
    bar = 0.6
    narrowest_ms = span_s * 1000 * 0.004  # a 2 ms tool call must still show

    def bars(spans: pd.DataFrame, lane: str, color: str, **style):
        if len(spans):
            ranges = [(s / 1000, max(e - s, narrowest_ms) / 1000)
                      for s, e in zip(spans["start_ms"], spans["end_ms"])]
            ax_lanes.broken_barh(ranges, (lanes[lane] - bar / 2, bar), facecolors=color, **style)

    bars(user_spans, "user", COLORS["user"])
    if len(ai_spans):
        bars(ai_spans[~ai_spans["truncated"]], "assistant", COLORS["assistant"])
        bars(ai_spans[ai_spans["truncated"]], "assistant", COLORS["assistant"], hatch="////",
             edgecolor="white", linewidth=0)
    if len(calls):
        ended = calls["end_ms"].fillna(calls["start_ms"])
        bars(pd.DataFrame({"start_ms": calls["start_ms"], "end_ms": ended}), "tools", COLORS["tool"])
        for call in calls.itertuples(index=False):
            ax_lanes.annotate(f"{call.name}()", (call.start_ms / 1000, lanes["tools"] + bar / 2),
                              xytext=(0, 2), textcoords="offset points", fontsize=8,
                              color=COLORS["tool"], va="bottom", annotation_clip=False)
    ax_lanes.set_yticks(list(lanes.values()), [f"{name}" for name in lanes])
    ax_lanes.set_ylim(-0.7, 2.7)
    ax_lanes.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax_lanes.set_axisbelow(True)

    for cut in cuts.itertuples(index=False):
        for ax in axes:
            ax.axvline(cut.t_ms / 1000, color=COLORS["interruption"], linewidth=1.2, linestyle="--")
        axes[0].annotate("interrupted", (cut.t_ms / 1000, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(3, -3), textcoords="offset points", fontsize=8, va="top",
                         color=COLORS["interruption"])

    ax_lanes.set_xlim(0, span_s)
    ax_lanes.set_xlabel("seconds since session start")
    _label_bars(ax_lanes, events, user_spans, lanes["user"], span_s, width)
    _label_bars(ax_lanes, events, ai_spans, lanes["assistant"], span_s, width)
    for ax in axes:
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    if title:
        counts = ", ".join(_plural(n, word) for n, word in (
            (len(user_spans), "user turn"), (len(ai_spans), "reply"), (len(cuts), "interruption"),
            (len(calls), "tool call")))
        fig.suptitle(f"{title} — {counts}", fontsize=11)
    return fig


def _label_bars(ax, events: pd.DataFrame, spans: pd.DataFrame, lane: float, span_s: float,
                width_in: float, fontsize: float = 7.5) -> None:
    """Write each turn's words inside its bar, cut to what fits (an ellipsis marks the cut)."""
    if not len(spans):
        return
    from rtvoice_widget.turn_table import turns_table

    texts = dict(zip(*turns_table(events)[["item_id", "text"]].T.values))
    points_per_s = width_in * 72 * 0.85 / span_s  # the lanes axis spans most of the figure
    for span in spans.itertuples(index=False):
        text = texts.get(span.item_id)
        if not isinstance(text, str) or not text.strip():
            continue
        fits = int((span.end_ms - span.start_ms) / 1000 * points_per_s / (fontsize * 0.6)) - 1
        if fits < 4:
            continue
        text = " ".join(text.split())
        label = text if len(text) <= fits else text[: fits - 1].rstrip() + "…"
        ax.text(span.start_ms / 1000, lane, " " + label, va="center", ha="left", fontsize=fontsize,
                color="white", clip_on=True)


def latency_distribution(turns: pd.DataFrame, columns: Sequence[str] | None = None, *,
                         title: str | None = "Latency per turn", width: float = 9.0) -> Figure:
    """One horizontal strip per latency column (milliseconds) of the turns table
    (:func:`rtvoice_widget.turn_table.turns_table`): every turn as a dot, a box from p25 to p75, a
    line from min to max, marks at p50 (dark) and p90 (red), and the figures written at the
    right. ``columns`` defaults to :data:`rtvoice_widget.turn_table.LATENCY_COLUMNS`; turns without
    a value (NaN) are left out."""
    columns = list(columns if columns is not None else LATENCY_COLUMNS)
    missing = [c for c in columns if c not in turns.columns]
    if missing:
        raise KeyError(f"turns table has no columns {missing}; it has {list(turns.columns)}")
    fig = Figure(figsize=(width, 1.2 + 0.75 * max(1, len(columns))), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # fixed jitter: the same data draws the same figure
    for row, column in enumerate(columns):
        values = pd.to_numeric(turns[column], errors="coerce").dropna().to_numpy(dtype=float)
        y = len(columns) - 1 - row
        if values.size == 0:
            summary = "no values"
        else:
            low, q1, p50, q3, p90, high = np.percentile(values, [0, 25, 50, 75, 90, 100])
            ax.hlines(y, low, high, color="#6a8fb5", linewidth=1.0, zorder=1)
            ax.barh(y, q3 - q1, left=q1, height=0.5, color="#dbe8f5", edgecolor="#6a8fb5", zorder=2)
            ax.scatter(values, y + rng.uniform(-0.15, 0.15, values.size), s=18, color=COLORS["user"],
                       alpha=0.75, zorder=3, linewidths=0)
            ax.vlines(p50, y - 0.3, y + 0.3, color="#1f4e79", linewidth=2.0, zorder=4)
            ax.vlines(p90, y - 0.3, y + 0.3, color=COLORS["interruption"], linewidth=1.5, zorder=4)
            summary = f"p50 {p50:.0f} ms · p90 {p90:.0f} ms · n = {values.size}"
        ax.annotate(summary, (1.0, y), xycoords=("axes fraction", "data"), xytext=(8, 0),
                    textcoords="offset points", va="center", fontsize=9,
                    color="#888888" if values.size == 0 else "#222222", annotation_clip=False)
    ax.set_yticks(range(len(columns)), [c for c in reversed(columns)])
    ax.set_ylim(-0.6, len(columns) - 0.4)
    ax.set_xlabel("milliseconds")
    ax.set_xlim(left=0)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return fig


def _bin_width_s(span_s: float, bins: int) -> float:
    # A "nice" width (1, 2, 5 × 10^k s) giving about the wanted number of bins.
    raw = max(span_s / max(bins, 1), 1e-3)
    exponent = np.floor(np.log10(raw))
    for step in (1, 2, 5, 10):
        if step * 10 ** exponent >= raw:
            return float(step * 10 ** exponent)
    return float(10 ** (exponent + 1))


def event_counts(events: pd.DataFrame, *, bins: int = 40, bin_s: float | None = None,
                 title: str | None = "Events per category", width: float = 10.0) -> Figure:
    """Events per category over time: one row per category (its own y scale, since audio
    appends outnumber everything else), bars per time bin of ``bin_s`` seconds (default: a
    round width giving about ``bins`` bins). Each row's title gives the category's total."""
    t_s = events["t_ms"].to_numpy(dtype=float) / 1000
    span = float(t_s.max()) if t_s.size else 1.0
    step = float(bin_s) if bin_s is not None else _bin_width_s(span, bins)
    if not step > 0:
        raise ValueError(f"bin_s must be positive, got {bin_s!r}")
    edges = np.arange(0.0, span + step, step)
    if edges.size < 2:
        edges = np.array([0.0, step])
    fig = Figure(figsize=(width, 1.1 * len(_CATEGORIES) + 0.8), layout="constrained")
    axes = fig.subplots(len(_CATEGORIES), 1, sharex=True)
    category = events["category"].astype(str).to_numpy()
    for ax, name in zip(axes, _CATEGORIES):
        counts, _ = np.histogram(t_s[category == name], bins=edges)
        ax.bar(edges[:-1], counts, width=step * 0.9, align="edge", color=COLORS[name])
        ax.set_title(f"{name}: {counts.sum()}", loc="left", fontsize=9, color=COLORS[name], pad=2)
        ax.set_ylim(0, max(1, counts.max()) * 1.15)
        ax.yaxis.set_major_locator(_integer_locator())
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[-1].set_xlim(edges[0], edges[-1])
    axes[-1].set_xlabel(f"seconds since session start (bins of {step:g} s)")
    if title:
        fig.suptitle(f"{title} — {len(events)} events", fontsize=11)
    return fig


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def _integer_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=3, integer=True)
