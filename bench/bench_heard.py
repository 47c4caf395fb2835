"""End of the user's voice -> first sound of the answer, in the air (issue 12): ``python bench/bench_heard.py``.

What a person hears, end to end: the widget in Chromium on the PulseAudio rig (tests/duplex_rig.py:
real devices, no fake-mic flags), the kernel-side ``VoiceChat``, and the local server with the
default engines (Silero VAD + Smart Turn, Whisper-base, the default LLM, Piper). Each turn, a
spoken question (espeak-ng) is played into the rig's mic bus; the rig's speaker is recorded (a
``parec`` on its monitor, 10 ms chunks). The gap is from the end of the question's voice in the
mic bus (its last 10 ms at -45 dBFS or more, on the wall clock) to the first 10 ms of the
speaker at -50 dBFS or more after it. Both ends carry the rig's own buffering (the voice is
handed to the bus up to ~70 ms before it is heard, and the monitor is read ~10-20 ms after it
played), so the figure is if anything too long, equally for every variant.

Beside it, per turn, the session's own figures for the same reply (the turns table):
``voice_to_first_audio_ms`` (end of voice in the recorded mic -> first audio delta) and
``voice_to_first_sound_ms`` (-> the page's player rendering it). They start from the end of the
voice *as the kernel recorded it*, so they cannot see how late the mic's audio reached the page;
the heard gap can (``unseen_ms``: heard gap minus ``voice_to_first_audio_ms``, per turn), in two
parts: ``capture_ms``, the end of the voice in the kernel's recording (session clock, mapped to
the wall clock: one process) after the end in the air, and ``playback_ms``, the first delta's
arrival -> the first sound in the air (the rig's buffering is in both).

Variants, each in a fresh Chromium against the same server (its models loaded once):
``track`` (the default: the page reads the mic from its track in a worker), ``graph`` (the
mic through the Web Audio graph's input, the default before; ``window.rtvMicFromTrack =
false``) and, when asked for, ``track-2thr`` (``track`` with the LLM's busy guard off: a
reply's prompt on two threads whatever the load average says). The echo path is turned down (``--echo-db``, default -60: as with headphones) and the
widget runs with ``headphones=True``, so the mic is always open and nothing else decides.
After the first sound, each reply plays ``--listen`` seconds and is interrupted.

The server is the subprocess a ``VoiceChat()`` starts for a user (``ensure_local_server``, with
``--llm``); ``--server inline`` runs a ``LocalRealtimeServer`` in this process instead (the layout
before, where the models' Python work shared the GIL with the session and the browser driver;
``track-2thr`` needs it, its switch lives in this process).

Prints p50 / p90 per variant and the ratio track / graph (same run); results in
bench/results/bench_heard.json. The issue's goal (p50 <= 400 ms, p90 <= 600 ms under
``semantic_vad``) is reported, not asserted here: bench/bench_turns.py asserts it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from duplex_rig import DuplexChat, PulseRig, speaker_monitor, speech_wav, wait  # noqa: E402
from widget_harness.bridge import BrowserBridge, serve_static  # noqa: E402

from bench_turns import COMPLETE  # noqa: E402

VARIANTS = {"track": "", "graph": "window.rtvMicFromTrack = false;", "track-2thr": ""}
# Server-side switches per variant: ``track-2thr`` runs each reply's prompt on two llama.cpp
# threads even when the load average says the machine is busy (the browser and PulseAudio here).
NO_BUSY_GUARD = {"track-2thr"}
VOICE_DBFS = -45.0  # the end of the question: its last 10 ms at this level or more
SOUND_DBFS = -50.0  # the first sound of the answer at the speaker


class SpeakerTap:
    """The rig's speaker as heard: (wall time a 10 ms chunk was read, its level in dBFS)."""

    RATE = 48000
    CHUNK = 480

    def __init__(self, env: dict) -> None:
        self.proc = speaker_monitor(env, self.RATE)
        self.levels: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="speaker-tap", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            data = self.proc.stdout.read(self.CHUNK * 2)
            if not data or len(data) < self.CHUNK * 2:
                return
            x = np.frombuffer(data, np.int16).astype(np.float64) / 32768.0
            level = float(10 * np.log10(np.mean(x * x) + 1e-12))
            with self._lock:
                self.levels.append((time.time(), level))
                del self.levels[:-6000]  # the last minute

    def first_sound_after(self, t: float) -> float | None:
        with self._lock:
            return next((when for when, level in self.levels if when > t and level >= SOUND_DBFS), None)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def voice_end_s(wav: Path) -> float:
    """Where the voice in ``wav`` ends: the end of its last 10 ms at ``VOICE_DBFS`` or more."""
    import soundfile as sf

    x, rate = sf.read(str(wav), dtype="float64")
    n = rate // 100
    chunks = x[: len(x) // n * n].reshape(-1, n)
    loud = np.flatnonzero(10 * np.log10(np.mean(chunks**2, axis=1) + 1e-12) >= VOICE_DBFS)
    return float((loud[-1] + 1) * n / rate)


def run_variant(name: str, server_url: str, playwright, base: str, questions, args) -> list[dict]:
    from rtvoice_widget.server.engines import llm_llama

    busy = llm_llama._busy
    if name in NO_BUSY_GUARD:
        llm_llama._busy = lambda: False
    try:
        return _run_variant(name, server_url, playwright, base, questions, args)
    finally:
        llm_llama._busy = busy


def _run_variant(name: str, server_url: str, playwright, base: str, questions, args) -> list[dict]:
    rows = []
    with PulseRig(echo_db=args.echo_db) as rig:
        with BrowserBridge() as bridge:
            ctx = rig.launch(playwright, Path(tempfile.mkdtemp(prefix="heard-profile")))
            if VARIANTS[name]:
                ctx.add_init_script(VARIANTS[name])
            duplex = DuplexChat(server_url, ctx.new_page(), bridge, headphones=True)
            duplex.chat.turn_detection = args.turn_detection
            voice, tap = rig.voice(), SpeakerTap(rig.env)
            try:
                duplex.open(base)
                reads = duplex.rows("mic.live")[-1][1]["payload"].get("reads")
                print(f"  mic read from: {reads}", flush=True)
                time.sleep(1.0)
                session = duplex.chat.session
                # Session clock -> wall clock (one process, one monotonic source: a fixed offset).
                wall_minus_session_ms = time.time() * 1000 - session.now_ms()
                onsets: list[float] = []
                for i, (text, wav, end_s) in enumerate(questions):
                    onset, _ = voice.say(wav)
                    onsets.append(onset)
                    end = onset + end_s
                    try:
                        heard = wait(lambda: tap.first_sound_after(end), 30, "the answer's first sound")
                    except AssertionError:
                        heard = None
                    time.sleep(args.listen)
                    duplex.chat.interrupt()
                    time.sleep(1.5)  # the reply flushed, the mic quiet again
                    row = {"turn": i, "question": text, "heard_gap_ms": None if heard is None else round((heard - end) * 1000)}
                    rows.append(row)
                # The session's own figures for the same replies (in order; one reply per question).
                table = duplex.chat.transcript()
                replies = table[(table["role"] == "assistant") & table["voice_to_first_audio_ms"].notna()]
                for row, (_, reply) in zip(rows, replies.iterrows()):
                    row["voice_to_first_audio_ms"] = round(float(reply["voice_to_first_audio_ms"]))
                    sound = reply["voice_to_first_sound_ms"]
                    row["voice_to_first_sound_ms"] = None if sound != sound else round(float(sound))
                    row["answer"] = str(reply.get("text", ""))[:80]
                    if row["heard_gap_ms"] is not None:  # what the session's own figure cannot see
                        row["unseen_ms"] = row["heard_gap_ms"] - row["voice_to_first_audio_ms"]
                        # ... in two parts: the end of the voice in the kernel's recording after
                        # the air, and the first delta's arrival -> the first sound in the air.
                        end_air_ms = (onsets[row["turn"]] + questions[row["turn"]][2]) * 1000
                        recorded_end_ms = float(reply["voice_end_ms"]) + wall_minus_session_ms
                        row["capture_ms"] = round(recorded_end_ms - end_air_ms)
                        row["playback_ms"] = row["unseen_ms"] - row["capture_ms"]
                for row in rows:
                    print(f"  {name} {row}", flush=True)
            finally:
                tap.close()
                voice.close()
                ctx.close()
                duplex.chat.close()
    return rows


def pct(values: list[float], q: float) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.percentile(values, q))) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--variants", default="graph,track")
    parser.add_argument("--turn-detection", default="semantic_vad", choices=("semantic_vad", "server_vad"))
    parser.add_argument("--echo-db", type=float, default=-60.0)
    parser.add_argument("--listen", type=float, default=1.0, help="seconds of each answer played before interrupting it")
    parser.add_argument("--llm", default="auto")
    parser.add_argument("--server", default="process", choices=("process", "inline"),
                        help="process: the server a VoiceChat starts (a subprocess, as a user gets it); "
                             "inline: a LocalRealtimeServer thread in this process (the layout before)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_heard.json"))
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from rtvoice_widget.server import LocalRealtimeServer, ensure_local_server
    from rtvoice_widget.server.engines import load_engines

    folder = Path(tempfile.mkdtemp(prefix="heard"))
    questions = []
    for k in range(args.turns):
        text = COMPLETE[k % len(COMPLETE)]
        wav = speech_wav(text, folder / f"q{k}.wav")
        questions.append((text, wav, voice_end_s(wav)))
    if NO_BUSY_GUARD & set(args.variants.split(",")) and args.server != "inline":
        print("track-2thr switches the LLM's busy guard in this process: the server runs inline", flush=True)
        args.server = "inline"
    if args.server == "inline":
        engines = load_engines(llm=args.llm)
        served = LocalRealtimeServer(engines=engines, progress=None)
        llm_name = engines.llm.name
    else:
        served, llm_name = contextlib.nullcontext(), args.llm
    http, base = serve_static()
    results: dict[str, list[dict]] = {}
    started = time.perf_counter()
    with served as server, sync_playwright() as p:
        # The subprocess is what VoiceChat() starts for a user; its URL carries this process's token.
        url = server.url if server is not None else ensure_local_server(llm=args.llm)
        for name in args.variants.split(","):
            print(f"== {name}", flush=True)
            results[name] = run_variant(name, url, p, base, questions, args)
    http.shutdown()
    summary = {}
    for name, rows in results.items():
        summary[name] = {col: {"p50": pct([r.get(col) for r in rows], 50), "p90": pct([r.get(col) for r in rows], 90)}
                         for col in ("heard_gap_ms", "voice_to_first_audio_ms", "voice_to_first_sound_ms", "unseen_ms",
                                     "capture_ms", "playback_ms")}
        summary[name]["missed"] = sum(r["heard_gap_ms"] is None for r in rows)
    print(f"\n{'':6s} {'heard p50/p90':>15s} {'first delta p50/p90':>21s} {'first sound p50/p90':>21s} "
          f"{'heard - first delta':>21s} {'capture':>9s} {'playback':>9s} missed")
    for name, s in summary.items():
        cells = [f"{s[c]['p50']}/{s[c]['p90']}" for c in ("heard_gap_ms", "voice_to_first_audio_ms", "voice_to_first_sound_ms",
                                                          "unseen_ms", "capture_ms", "playback_ms")]
        print(f"{name:6s} {cells[0]:>15s} {cells[1]:>21s} {cells[2]:>21s} {cells[3]:>21s} {cells[4]:>9s} {cells[5]:>9s} "
              f"{s['missed']:>6d}")
    if "track" in summary and "graph" in summary and summary["graph"]["heard_gap_ms"]["p50"]:
        ratio = summary["track"]["heard_gap_ms"]["p50"] / summary["graph"]["heard_gap_ms"]["p50"]
        print(f"heard gap p50, track / graph (same run): {ratio:.2f}; the part the session's figure cannot see, "
              f"p50: {summary['track']['unseen_ms']['p50']} vs {summary['graph']['unseen_ms']['p50']} ms")
    print(f"({time.perf_counter() - started:.0f} s, {args.turn_detection}, LLM {llm_name}, server {args.server})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "summary": summary, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
