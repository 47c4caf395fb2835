"""Saving, loading and plotting a long conversation.

    python bench/bench_analysis.py            # a simulated 10-minute session
    python bench/bench_analysis.py --quick    # 1 minute, a few seconds in all (CI smoke)

The session is simulated the way a live one fills its log and recorder: the microphone appends
20 ms frames the whole time, and every 10 s the user speaks 3 s and the assistant answers with
4 s of audio in 100 ms deltas plus transcript deltas (the full GA event sequence). Measured:
``save_session`` (Parquet + WAV), ``load_session``, the turns table and the three figures.
Baseline, in the same run: pickling the same DataFrame and arrays (pandas' fastest
serialisation of the same objects, no portability).

The timeline draws each waveform as a min/max envelope of a few thousand points; its baseline
is the naive figure (both tracks plotted sample by sample on the same axes layout).

Goals (asserted; ratios, since the machine is shared): saving at most 10x the pickle baseline,
loading at most 10x; the folder at most 2x the raw PCM16 audio + 5 MB with WAV (two mono tracks
and the stereo mix), 1x + 5 MB with ``audio="flac"``; the timeline faster than the naive
waveform figure.
"""

from __future__ import annotations

import argparse
import base64
import pickle
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from matplotlib.figure import Figure

from rtvoice_widget.audio import Recorder
from rtvoice_widget.events import EventLog
from rtvoice_widget.plots import event_counts, latency_distribution, timeline
from rtvoice_widget.saved import load_session, save_session

RATE = 24000
FRAME_MS = 20
CYCLE_MS = 10_000


def simulate(minutes: float) -> SimpleNamespace:
    log, recording = EventLog(), Recorder(RATE)
    rng = np.random.default_rng(0)
    frame = RATE * FRAME_MS // 1000
    total_ms = int(minutes * 60_000)
    speech = (rng.standard_normal(frame) * 3000).astype("<i2").tobytes()
    silence = bytes(frame * 2)
    log.append("server", {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}, 0.0)
    for t in range(0, total_ms, FRAME_MS):
        in_cycle = t % CYCLE_MS
        pcm = speech if 500 <= in_cycle < 3500 else silence
        log.append("client", {"type": "input_audio_buffer.append", "event_id": f"c{t}",
                              "audio": base64.b64encode(pcm).decode()}, float(t))
        recording.add_user(pcm, float(t))
        if in_cycle == 0 and t:
            turn = t // CYCLE_MS
            user, item, resp = f"u{turn}", f"a{turn}", f"r{turn}"
            start = t - CYCLE_MS
            log.append("server", {"type": "input_audio_buffer.speech_started", "event_id": f"s{turn}",
                                  "item_id": user, "audio_start_ms": start + 500}, start + 800.0)
            log.append("server", {"type": "input_audio_buffer.speech_stopped", "event_id": f"p{turn}",
                                  "item_id": user, "audio_end_ms": start + 3500}, start + 4000.0)
            log.append("server", {"type": "response.created", "event_id": f"rc{turn}",
                                  "response": {"id": resp, "status": "in_progress"}}, start + 4200.0)
            delta = (rng.standard_normal(RATE // 10) * 3000).astype("<i2").tobytes()
            for k in range(40):
                at = start + 4400.0 + k * 20
                log.append("server", {"type": "response.output_audio.delta", "event_id": f"d{turn}_{k}",
                                      "item_id": item, "response_id": resp,
                                      "delta": base64.b64encode(delta).decode()}, at)
                log.append("server", {"type": "response.output_audio_transcript.delta", "event_id": f"x{turn}_{k}",
                                      "item_id": item, "response_id": resp, "delta": "word "}, at)
                recording.add_assistant(item, delta, at)
            log.append("server", {"type": "response.done", "event_id": f"rd{turn}",
                                  "response": {"id": resp, "status": "completed"}}, start + 5300.0)
    return SimpleNamespace(events=log, recording=recording)


def timed(fn, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1-minute session (CI smoke)")
    args = parser.parse_args()
    minutes = 1.0 if args.quick else 10.0

    t_sim, session = timed(lambda: simulate(minutes))
    events = session.events.to_pandas()
    user, assistant = session.recording.user, session.recording.assistant
    raw_audio_bytes = 2 * 2 * max(len(user), len(assistant))
    print(f"simulated {minutes:g} min: {len(events):,} events, {raw_audio_bytes / 1e6:.1f} MB raw PCM16 "
          f"audio ({t_sim:.1f} s to simulate)")

    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, pickled = Path(tmp) / "session", Path(tmp) / "baseline.pkl"
        t_pickle_save, _ = timed(lambda: pickled.write_bytes(pickle.dumps((events, user, assistant), protocol=5)))
        t_pickle_load, _ = timed(lambda: pickle.loads(pickled.read_bytes()))
        t_save, _ = timed(lambda: save_session(session, folder, overwrite=True))
        t_load, saved = timed(lambda: load_session(folder))
        size = sum(p.stat().st_size for p in folder.iterdir())
        rows = [
            ("save_session", t_save, t_pickle_save, 10.0),
            ("load_session", t_load, t_pickle_load, 10.0),
        ]
        print(f"{'step':<16}{'seconds':>10}{'pickle':>10}{'ratio':>8}{'goal':>8}")
        for name, value, baseline, goal in rows:
            ratio = value / baseline
            print(f"{name:<16}{value:>10.3f}{baseline:>10.3f}{ratio:>7.1f}x{goal:>7.1f}x")
            if ratio > goal:
                failures.append(f"{name} is {ratio:.1f}x the pickle baseline (goal <= {goal}x)")
        # WAV: both mono tracks plus the stereo mix, i.e. twice the raw audio, plus the tables.
        flac = save_session(session, Path(tmp) / "flac", audio="flac")
        flac_size = sum(p.stat().st_size for p in flac.iterdir())
        for name, value, budget in (("folder (wav)", size, 2.0 * raw_audio_bytes + 5e6),
                                    ("folder (flac)", flac_size, 1.0 * raw_audio_bytes + 5e6)):
            print(f"{name:<16}{value / 1e6:>9.1f} MB (raw audio {raw_audio_bytes / 1e6:.1f} MB, "
                  f"goal <= {budget / 1e6:.1f} MB)")
            if value > budget:
                failures.append(f"{name} is {value / 1e6:.1f} MB (goal <= {budget / 1e6:.1f} MB)")

        def naive_timeline():
            fig = Figure(figsize=(12, 5.2), layout="constrained")
            for ax, track in zip(fig.subplots(3, 1, sharex=True, height_ratios=[2, 2, 1.6]),
                                 (saved.recording.user, saved.recording.assistant)):
                ax.plot(np.arange(track.size) / RATE, track, linewidth=0.5)
            return fig

        figures = {
            "naive waveforms": naive_timeline,
            "timeline": lambda: timeline(saved.events, saved.recording.user, saved.recording.assistant),
            "latency": lambda: latency_distribution(saved.turns),
            "event_counts": lambda: event_counts(saved.events),
        }
        seconds = {}
        for name, make in figures.items():
            seconds[name], _ = timed(lambda make=make: make().savefig(Path(tmp) / "figure.png", dpi=80))
            print(f"figure {name:<16}{seconds[name]:>6.2f} s")
        ratio = seconds["timeline"] / seconds["naive waveforms"]
        print(f"timeline / naive waveforms: {ratio:.2f}x (goal < 1x)")
        if ratio >= 1.0:
            failures.append(f"the timeline is {ratio:.2f}x the naive waveform figure (goal < 1x)")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
