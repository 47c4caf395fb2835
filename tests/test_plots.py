"""Plots of a conversation: the tables they draw (spans, interruptions, tool calls) and the figures.

The conversation is a real ``EventLog`` + ``Recorder`` fed the way a session feeds them: client
events from ``ClientProtocol``'s builders, server events from the scripted server's GA builders,
all validated against the official SDK types, at chosen session-clock times, with a microphone
that streams 20 ms frames the whole time (silence between utterances) and speech-like audio.

Set ``RTVOICE_PLOTS_DIR`` to keep the PNGs the tests render (to look at them).
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import TypeAdapter
from scripted_server import (
    assistant_audio_reply,
    assistant_response_end,
    assistant_response_start,
    function_call_turn,
    session_created,
    speech_started,
    speech_stopped_and_committed,
    user_transcript,
)

from rtvoice_widget.audio import Recorder, float32_to_pcm16
from rtvoice_widget.config import SessionConfig
from rtvoice_widget.events import EventLog
from rtvoice_widget.plots import (
    COLORS,
    assistant_speech_spans,
    event_counts,
    interruptions,
    latency_distribution,
    timeline,
    tool_calls,
    user_speech_spans,
)
from rtvoice_widget.protocol import ClientProtocol
from rtvoice_widget.turn_table import LATENCY_COLUMNS, turns_table

SERVER = TypeAdapter(RealtimeServerEvent)
CLIENT = TypeAdapter(RealtimeClientEvent)
RATE = 24000


def speech_like(ms: float, f0: float, seed: int) -> np.ndarray:
    """Voiced harmonics under a syllable-rate envelope: looks like speech on a waveform plot."""
    t = np.arange(int(RATE * ms / 1000)) / RATE
    rng = np.random.default_rng(seed)
    voiced = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in (1, 2, 3))
    syllables = np.clip(np.sin(2 * np.pi * 3.5 * t + rng.uniform(0, 6)), 0, None) ** 0.7
    edges = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    return (0.25 * voiced * syllables * edges).astype(np.float32)


# What the user says (start ms, duration ms) and what the assistant answers.
USER_SPEECH = [(500.0, 1500.0), (5500.0, 1500.0), (9500.0, 1000.0)]
MIC_END_MS = 13500.0
BARGE_IN_PLAYED_MS = 1400.0


class Conversation:
    """Builds the log and the recording; ``at(t, source, event)`` schedules one event."""

    def __init__(self) -> None:
        self.log = EventLog()
        self.recording = Recorder(RATE)
        self.protocol = ClientProtocol(SessionConfig())
        self.scheduled: list[tuple[float, int, str, dict, bytes | None]] = []

    def at(self, t_ms: float, source: str, event: dict, pcm16: bytes | None = None) -> None:
        if source == "server":  # the scripted server stamps ids as it sends; so do we
            event = {"event_id": f"event_{len(self.scheduled):05d}", **event}
        (CLIENT if source == "client" else SERVER).validate_python(event)
        self.scheduled.append((t_ms, len(self.scheduled), source, event, pcm16))

    def mic(self) -> None:
        track = np.zeros(int(RATE * MIC_END_MS / 1000), dtype=np.float32)
        for i, (start, length) in enumerate(USER_SPEECH):
            voice = speech_like(length, 130.0, seed=i)
            first = int(RATE * start / 1000)
            track[first: first + voice.size] = voice
        frame = RATE // 50
        for k in range(0, track.size, frame):
            pcm16 = float32_to_pcm16(track[k: k + frame])
            t = k * 1000 / RATE
            self.at(t, "client", self.protocol.append_audio(pcm16), pcm16)

    def reply(self, start: float, response_id: str, item_id: str, text: str, ms: float, seed: int,
              status: str = "completed", end_at: float | None = None) -> None:
        """A reply whose audio arrives twice as fast as real time, 100 ms per delta."""
        for step in assistant_response_start(response_id, item_id):
            self.at(start, "server", step)
        pcm = float32_to_pcm16(speech_like(ms, 210.0, seed))
        t = start + 40.0
        for step in assistant_audio_reply(response_id, item_id, text, pcm):
            if step["type"] == "response.output_audio.delta":
                t += 50.0
            self.at(t, "server", step)
        for step in assistant_response_end(response_id, item_id, text, status=status):
            self.at(end_at if end_at is not None else t + 5.0, "server", step)

    def user_turn(self, item_id: str, speech: tuple[float, float], text: str, stop_delay: float = 600.0) -> float:
        start, length = speech
        self.at(start + 300.0, "server", speech_started(item_id, int(start)))
        stopped = start + length + stop_delay
        for step in speech_stopped_and_committed(item_id, int(start + length)):
            self.at(stopped, "server", step)
        for step in user_transcript(item_id, text):
            self.at(stopped + 250.0, "server", step)
        return stopped

    def build(self) -> tuple[EventLog, Recorder]:
        for t, _, source, event, pcm16 in sorted(self.scheduled, key=lambda s: (s[0], s[1])):
            self.log.append(source, event, t)
            if pcm16 is not None and source == "client":
                self.recording.add_user(pcm16, t)
            elif event["type"] == "response.output_audio.delta":
                self.recording.add_assistant(event["item_id"], base64.b64decode(event["delta"]), t)
            elif event["type"] == "conversation.item.truncate":
                self.recording.truncate(event["item_id"], event["audio_end_ms"])
        return self.log, self.recording


def build_conversation() -> tuple[EventLog, Recorder]:
    c = Conversation()
    c.at(0.0, "server", session_created())
    c.at(2.0, "client", c.protocol.session_update())
    c.mic()
    # 1: a question and its answer.
    stopped = c.user_turn("item_u1", USER_SPEECH[0], "Hello, who are you?")
    c.reply(stopped + 150.0, "resp_1", "item_a1", "I am a voice assistant in your notebook.", 2000.0, 1)
    # 2: a question answered through a tool call, then spoken.
    stopped = c.user_turn("item_u2", USER_SPEECH[1], "What does a coffee cost?")
    for step in function_call_turn(name="price_of", arguments='{"item": "coffee"}', call_id="call_1",
                                   response_id="resp_2", item_id="item_fc"):
        c.at(stopped + 200.0, "server", step)
    c.at(stopped + 450.0, "client", c.protocol.function_call_output("call_1", '{"price": 3.5}'))
    c.at(stopped + 451.0, "client", c.protocol.create_response())
    # 3: the user barges in at 9.8 s while the answer plays (it started at 8.3 s).
    c.reply(8210.0, "resp_3", "item_a3", "A coffee costs three euros fifty, and if you would like", 2500.0, 3,
            status="cancelled", end_at=9850.0)
    c.at(9800.0, "server", speech_started("item_u3", 9500))
    c.at(9820.0, "client", c.protocol.truncate("item_a3", 0, BARGE_IN_PLAYED_MS))
    for step in speech_stopped_and_committed("item_u3", 10500):
        c.at(11100.0, "server", step)
    for step in user_transcript("item_u3", "Thanks, that is enough."):
        c.at(11300.0, "server", step)
    c.reply(11250.0, "resp_4", "item_a4", "You are welcome.", 1500.0, 4)
    return c.build()


@pytest.fixture(scope="module")
def conversation() -> tuple[pd.DataFrame, Recorder]:
    log, recording = build_conversation()
    return log.to_pandas(), recording


def rendered(fig: Figure, name: str, tmp_path: Path) -> np.ndarray:
    """Render to PNG (kept in RTVOICE_PLOTS_DIR when set) and decode it again."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    keep = os.environ.get("RTVOICE_PLOTS_DIR")
    folder = Path(keep) if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.png").write_bytes(buffer.getvalue())
    buffer.seek(0)
    return matplotlib.image.imread(buffer, format="png")


def colored_fraction(image: np.ndarray, hex_color: str) -> float:
    rgb = np.array([int(hex_color[i: i + 2], 16) / 255 for i in (1, 3, 5)])
    return float(np.mean(np.all(np.abs(image[..., :3] - rgb) < 0.04, axis=-1)))


# -- the tables behind the timeline -----------------------------------------------------------

def test_user_speech_spans_land_on_the_recorded_speech(conversation):
    events, recording = conversation
    spans = user_speech_spans(events)
    assert list(spans["item_id"]) == ["item_u1", "item_u2", "item_u3"]
    assert spans["start_ms"].tolist() == pytest.approx([s for s, _ in USER_SPEECH])
    assert spans["end_ms"].tolist() == pytest.approx([s + n for s, n in USER_SPEECH])
    user = recording.user
    for start, end in zip(spans["start_ms"], spans["end_ms"]):
        inside = user[int(start * RATE / 1000): int(end * RATE / 1000)]
        before = user[int((start - 300) * RATE / 1000): int(start * RATE / 1000)]
        assert np.sqrt(np.mean(inside ** 2)) > 0.05
        assert np.abs(before).max() < 1e-3


def test_user_speech_spans_fall_back_to_event_times_without_mic_audio(conversation):
    events, _ = conversation
    without_mic = events[events["type"] != "input_audio_buffer.append"]
    spans = user_speech_spans(without_mic)
    assert spans["start_ms"].tolist() == pytest.approx([800.0, 5800.0, 9800.0])


def test_assistant_spans_queue_items_and_cut_truncated_ones(conversation):
    events, recording = conversation
    spans = assistant_speech_spans(events).set_index("item_id")
    assert list(spans.index) == ["item_a1", "item_a3", "item_a4"]
    assert spans.loc["item_a1", "end_ms"] - spans.loc["item_a1", "start_ms"] == pytest.approx(2000.0)
    assert bool(spans.loc["item_a3", "truncated"]) and not bool(spans.loc["item_a1", "truncated"])
    a3 = spans.loc["item_a3"]
    assert a3["end_ms"] - a3["start_ms"] == pytest.approx(BARGE_IN_PLAYED_MS)
    # The recorder lays the next reply after the (cut) previous one: the spans say the same.
    assert spans.loc["item_a4", "start_ms"] == pytest.approx(max(11250.0 + 90.0, a3["end_ms"]))
    assistant = recording.assistant
    for start, end in zip(spans["start_ms"], spans["end_ms"]):
        inside = assistant[int(start * RATE / 1000): int(end * RATE / 1000)]
        assert np.sqrt(np.mean(inside ** 2)) > 0.05


def test_interruptions_and_tool_calls(conversation):
    events, _ = conversation
    cuts = interruptions(events)
    assert cuts[["t_ms", "item_id", "audio_end_ms", "kind"]].values.tolist() == [
        [9820.0, "item_a3", BARGE_IN_PLAYED_MS, "truncate"]]
    calls = tool_calls(events)
    assert calls[["call_id", "name", "arguments"]].values.tolist() == [["call_1", "price_of", '{"item": "coffee"}']]
    assert calls["end_ms"].iloc[0] - calls["start_ms"].iloc[0] == pytest.approx(250.0)


def test_a_cancelled_response_without_truncate_counts_as_an_interruption(conversation):
    events, _ = conversation
    no_truncate = events[events["type"] != "conversation.item.truncate"]
    cuts = interruptions(no_truncate)
    assert cuts[["t_ms", "item_id", "kind"]].values.tolist() == [[9850.0, "item_a3", "cancelled"]]


# -- figures ---------------------------------------------------------------------------------

def test_timeline_draws_every_element(conversation, tmp_path):
    events, recording = conversation
    fig = timeline(events, recording.user, recording.assistant)
    assert isinstance(fig, Figure)
    ax_user, ax_ai, ax_lanes = fig.axes
    assert ax_user.get_shared_x_axes().joined(ax_user, ax_lanes)
    assert [t.get_text() for t in ax_lanes.get_yticklabels()] == ["user", "assistant", "tools"]
    bars = [c for c in ax_lanes.collections if isinstance(c, PolyCollection)]
    drawn = sum(len(c.get_paths()) for c in bars)
    assert drawn == 3 + 3 + 1  # user turns, replies (one hatched), the tool call
    assert any(b.get_hatch() for b in bars)
    for ax in fig.axes:
        red = [line for line in ax.get_lines() if line.get_color() == COLORS["interruption"]]
        assert [line.get_xdata()[0] for line in red] == pytest.approx([9.82])
    labels = [t.get_text() for t in ax_lanes.texts]
    assert labels[0] == "price_of()"
    assert any(label.startswith(" Hello, who") for label in labels)
    assert any(label.startswith(" A coffee costs") and label.endswith("…") for label in labels)
    assert "3 user turns, 3 replies, 1 interruption, 1 tool call" in fig._suptitle.get_text()
    assert ax_lanes.get_xlim()[1] >= MIC_END_MS / 1000
    image = rendered(fig, "timeline", tmp_path)
    assert colored_fraction(image, COLORS["user"]) > 0.01
    assert colored_fraction(image, COLORS["assistant"]) > 0.01


def test_timeline_without_audio_or_speech(tmp_path):
    log = EventLog()
    log.append("server", session_created(), 0.0)
    events = log.to_pandas()
    fig = timeline(events)
    assert len(fig.axes) == 1
    fig = timeline(events, np.zeros(0, np.float32), np.zeros(0, np.float32))
    assert [t.get_text() for t in fig.axes[0].texts] == ["no audio recorded"]
    rendered(fig, "timeline_empty", tmp_path)


def test_latency_distribution_marks_p50_and_p90(conversation, tmp_path):
    events, _ = conversation
    turns = turns_table(events)
    first_audio = turns["speech_to_first_audio_ms"].dropna()
    assert len(first_audio) == 2  # the tool turn answers in a second response: not attributed
    fig = latency_distribution(turns)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == list(reversed(LATENCY_COLUMNS))
    notes = [t.get_text() for t in ax.texts]
    p50, p90 = np.percentile(first_audio, [50, 90])
    row = LATENCY_COLUMNS.index("speech_to_first_audio_ms")
    assert notes[row] == f"p50 {p50:.0f} ms · p90 {p90:.0f} ms · n = 2"
    rendered(fig, "latency", tmp_path)


def test_latency_distribution_rejects_unknown_columns(conversation):
    events, _ = conversation
    with pytest.raises(KeyError, match="no_such_ms"):
        latency_distribution(turns_table(events), ["no_such_ms"])


def test_event_counts_add_up_per_category(conversation, tmp_path):
    events, _ = conversation
    fig = event_counts(events)
    assert len(fig.axes) == 5
    counts = events["category"].value_counts()
    for ax in fig.axes:
        name, total = ax.get_title(loc="left").split(": ")
        heights = sum(p.get_height() for p in ax.patches)
        assert heights == int(total) == counts.get(name, 0)
    assert fig.axes[-1].get_xlabel() == "seconds since session start (bins of 0.5 s)"
    rendered(fig, "event_counts", tmp_path)
    with pytest.raises(ValueError, match="bin_s"):
        event_counts(events, bin_s=0)


def test_plots_show_nothing_and_need_no_pyplot():
    code = (
        "import sys, numpy as np\n"
        "from rtvoice_widget.events import EventLog\n"
        "from rtvoice_widget.plots import timeline, event_counts\n"
        "log = EventLog(); log.append('server', {'type': 'session.created', 'session': {}}, 0.0)\n"
        "df = log.to_pandas()\n"
        "timeline(df, np.zeros(2400, np.float32), np.zeros(0, np.float32)).savefig(sys.argv[1])\n"
        "event_counts(df)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    env = dict(os.environ, MPLBACKEND="Agg")
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"rtvoice-plot-{os.getpid()}.png"
    try:
        subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=env, timeout=120)
        assert out.stat().st_size > 1000
    finally:
        out.unlink(missing_ok=True)
