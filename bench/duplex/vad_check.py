"""Would the project's Silero VAD hear the echo residue (self-interruption) or the user (barge-in)?

Run with the project's Python on WAVs written by aec_synth.py (*-full.wav: assistant from 0.5 s,
user from --user-at s) or browser_aec.py:

    python bench/duplex/vad_check.py --user-at 9.0 /tmp/duplex/out/*-full.wav

Per file: the longest run of speech frames (p > 0.5, 32 ms frames) before the user starts (an
echo-only stretch: >= 250 ms there would start a false turn), and the first speech onset at or
after the user starts (barge-in latency; a run of >= 3 frames counts as onset).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from rtvoice_widget.server.engines.vad import FRAME_SAMPLES, SileroVAD


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--user-at", type=float, required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    vad = SileroVAD()
    for path in args.files:
        x, sr = sf.read(path, dtype="float32")
        g = np.gcd(sr, 16000)
        x = resample_poly(x, 16000 // g, sr // g).astype(np.float32)
        stream = vad.new_stream()
        probs = np.array([stream.speech_prob(x[i: i + FRAME_SAMPLES]) for i in range(0, len(x) - FRAME_SAMPLES + 1, FRAME_SAMPLES)])
        sp = probs > 0.5
        t = np.arange(len(sp)) * FRAME_SAMPLES / 16000
        before = sp[t < args.user_at]
        longest, run = 0, 0
        for v in before:
            run = run + 1 if v else 0
            longest = max(longest, run)
        onset = None
        idx = np.flatnonzero(t >= args.user_at)
        for i in idx:
            if i + 3 <= len(sp) and sp[i: i + 3].all():
                onset = round((t[i] - args.user_at) * 1000)
                break
        print(json.dumps({"file": path.rsplit("/", 1)[-1], "echo_longest_speech_ms": longest * 32,
                          "echo_speech_frames_pct": round(100 * float(before.mean()), 1),
                          "barge_in_onset_ms": onset}), flush=True)


if __name__ == "__main__":
    main()
