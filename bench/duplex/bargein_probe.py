"""Where a barge-in's time goes (issue 15): ``python bench/duplex/bargein_probe.py [--tries 10]``.

The rig, page and server of bench/bench_duplex.py (full duplex, Chromium's canceller on). Per
try, on one wall clock (the page's clock is the machine's: ``t`` of a mic frame is ms since
the epoch), from the user's WAV starting on the mic bus (``said``):

- ``mic``: the capture time of the first mic frame that reached the kernel at -45 dBFS or more
  (rig, Chromium's capture and canceller);
- ``arrive``: when that frame arrived in the kernel (the page's speech hold, the transport);
- ``vad``: when the server's segmenter first got a speech probability >= its threshold for the
  audio after ``said`` (the server's queue, Silero), and ``started`` when it emitted
  ``speech_started`` (the onset rule), ``event``: when the kernel got it (the bench's latency).

``--clean``: the user talks with nothing playing (the floor of the rig, page and server).
Instruments by wrapping (observing only) MicIngest.push and Segmenter.speech_probs/_speech_started.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO), str(REPO / "bench")]

from bench_duplex import REPLIES, USERS, settle  # noqa: E402
from duplex_rig import DuplexChat, PulseRig, speech_wav, wait  # noqa: E402
from widget_harness.bridge import BrowserBridge, serve_static  # noqa: E402

from rtvoice_widget import mic_ingest  # noqa: E402
from rtvoice_widget.server.dialogue import segmenter as seg  # noqa: E402

FRAMES: list[tuple[float, float, float]] = []  # (arrival s, capture t ms, dBFS)
# In the page: when the capture worklet posted its first frame at -45 dBFS or more after
# window.__armed (wall ms), whether or not it was meant for the kernel.
PAGE_PROBE = """
(() => {
  const Node = window.AudioWorkletNode;
  window.__first = null; window.__armed = 0;
  window.AudioWorkletNode = class extends Node {
    constructor(ctx, name, opts) {
      super(ctx, name, opts);
      if (name === "rtv-capture") this.port.addEventListener("message", (e) => {
        const d = e.data;
        if (d && typeof d.level === "number" && window.__armed && window.__first === null && d.level >= 10 ** (-45 / 20))
          window.__first = performance.timeOrigin + performance.now();
      });
    }
  };
})();
"""
PROBS: list[tuple[float, float]] = []  # (wall s, prob)
STARTS: list[float] = []
LOCK = threading.Lock()


def instrument() -> None:
    push, probs, started = mic_ingest.MicIngest.push, seg.Segmenter.speech_probs, seg.Segmenter._speech_started

    def push_(self, content, buffers):
        pcm = np.frombuffer(bytes(buffers[0]), np.int16).astype(np.float64) / 32768 if buffers else np.zeros(1)
        with LOCK:
            FRAMES.append((time.time(), float(content.get("t", 0)), 10 * np.log10(np.mean(pcm ** 2) + 1e-10)))
        return push(self, content, buffers)

    def probs_(self, ps):
        now = time.time()
        with LOCK:
            PROBS.extend((now, p) for p in ps)
        return probs(self, ps)

    def started_(self, onset_ms, vad):
        with LOCK:
            STARTS.append(time.time())
        return started(self, onset_ms, vad)

    mic_ingest.MicIngest.push, seg.Segmenter.speech_probs, seg.Segmenter._speech_started = push_, probs_, started_


def breakdown(said: float, event: float | None) -> dict:
    with LOCK:
        loud = [(a, t) for a, t, db in FRAMES if t / 1000 >= said and db >= -45]
        vad = [w for w, p in PROBS if w >= said and p >= 0.5]
        starts = [w for w in STARTS if w >= said]
    ms = lambda x: None if x is None else round((x - said) * 1000)  # noqa: E731
    return {"mic": round(loud[0][1] - said * 1000) if loud else None, "arrive": ms(loud[0][0]) if loud else None,
            "vad": ms(vad[0]) if vad else None, "started": ms(starts[0]) if starts else None, "event": ms(event)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--clean", action="store_true")
    parser.add_argument("--echo-db", type=float, default=-6.0)
    parser.add_argument("--constraints", default="{}", help='JSON forced on getUserMedia, e.g. {"autoGainControl": false}')
    parser.add_argument("--out")
    args = parser.parse_args()
    instrument()
    from playwright.sync_api import sync_playwright

    from rtvoice_widget.server import LocalRealtimeServer
    from rtvoice_widget.server.engines import load_engines
    import soundfile as sf

    folder = Path(tempfile.mkdtemp(prefix="probe"))
    wavs = []
    for k, (text, v) in enumerate(USERS):
        w = speech_wav(text, folder / f"u{k}.wav", voice=v)
        wavs.append((w, 1000 * sf.info(str(w)).duration))
    engines = load_engines(vad="silero", asr="whisper-base", llm="echo", tts="espeak")
    http, base = serve_static()
    rng = random.Random(15)
    rows = []
    with LocalRealtimeServer(engines=engines, progress=None) as server, sync_playwright() as p, \
            PulseRig(echo_db=args.echo_db) as rig, BrowserBridge() as bridge:
        ctx = rig.launch(p, Path(tempfile.mkdtemp(prefix="probe-profile")), **json.loads(args.constraints))
        ctx.add_init_script(PAGE_PROBE)
        duplex = DuplexChat(server.url, ctx.new_page(), bridge)
        voice = rig.voice()
        try:
            duplex.open(base)
            item, asked = duplex.assistant_says(REPLIES[0])  # the echo check
            duplex.wait_over(item, asked, timeout=40)
            settle(duplex)
            for i in range(args.tries):
                wav, user_ms = wavs[i % len(wavs)]
                if not args.clean:
                    item, asked = duplex.assistant_says(REPLIES[(i + 3) % len(REPLIES)])
                    offset = rng.uniform(1000, 2500)
                    wait(lambda: duplex.played_ms(item) >= offset or duplex.rows("playback.flushed", asked), 20, "play")
                duplex.page.evaluate("window.__first = null; window.__armed = 1")
                said, seconds = voice.say(wav)
                try:
                    ev = wait(lambda: next(iter(duplex.rows("input_audio_buffer.speech_started", said)), None),
                              user_ms / 1000 + 4, "speech_started")[0]
                except AssertionError:
                    ev = None
                time.sleep(max(0.0, said + seconds - time.time()) + 1.0)
                row = breakdown(said, ev)
                first = duplex.page.evaluate("window.__first")
                row["worklet"] = None if first is None else round(first - said * 1000)
                rows.append(row)
                print(f"try {i + 1}: {row}", flush=True)
                settle(duplex)
            import subprocess
            vols = subprocess.run(["pactl", "list", "sources"], env=rig.env, capture_output=True, text=True).stdout
            print("rig source volumes (the AGC may move the mic's):",
                  [ln.strip() for ln in vols.splitlines() if ln.strip().startswith("Volume:")], flush=True)
        finally:
            voice.close()
            ctx.close()
            duplex.chat.close()
    http.shutdown()
    ev = sorted(r["event"] for r in rows if r["event"] is not None)
    summary = {"within_300": sum(1 for r in rows if r["event"] is not None and r["event"] <= 300), "tries": len(rows),
               "p50": statistics.median(ev) if ev else None,
               **{k + "_p50": statistics.median([r[k] for r in rows if r[k] is not None] or [0])
                  for k in ("worklet", "mic", "arrive", "vad", "started")}}
    print(json.dumps(summary))
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
