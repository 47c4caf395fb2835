"""Kernel-side echo cancellation on a synthetic echo path (issue 15, feasibility).

Run in a throwaway venv holding the candidate libraries (never the project's environment):

    python -m venv /tmp/aecvenv
    /tmp/aecvenv/bin/pip install numpy scipy soundfile livekit pywebrtc-audio pyaec
    espeak-ng -v en-us -s 160 -w /tmp/duplex/far.wav "...18 s of assistant speech..."
    espeak-ng -v en-gb+f3 -p 70 -s 150 -w /tmp/duplex/near.wav "Stop please, I want to know ..."
    /tmp/aecvenv/bin/python bench/duplex/aec_synth.py --far /tmp/duplex/far.wav \
        --near /tmp/duplex/near.wav --out /tmp/duplex/out

Scene: the assistant (far end) talks from 0.5 s on; the mic hears it through a room-like impulse
response (bulk delay, direct path, exponentially decaying diffuse tail, RT60 ~0.3 s) at the same
level as the user's voice (signal-to-echo ratio 0 dB, like a laptop's speaker beside its mic),
optionally through a soft-clipping loudspeaker; the user (near end) talks over it from 9 s on
(double talk), plus a -65 dBFS noise floor. Every canceller gets the exact far-end signal as its
reference, streamed in 10 ms frames like the kernel would get it. Reported:
- ERLE (dB): mic power / output power over far-end-only 10 ms frames after the first 2 s;
- near-end kept: correlation of the output with the clean user voice during double talk, and the
  output WAV of that stretch for a WER check (bench/duplex/wer.py, run with the project's Python);
- CPU: process CPU time per 10 ms frame (includes the libraries' own threads).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve, resample_poly


def load(path: str, fs: int) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32")
    if x.ndim > 1:
        x = x.mean(axis=1)
    g = np.gcd(sr, fs)
    return resample_poly(x, fs // g, sr // g).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def room_ir(fs: int, delay_ms: float, rt60: float = 0.3, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_delay = int(fs * delay_ms / 1000)
    n_tail = int(fs * rt60)
    t = np.arange(n_tail) / fs
    tail = rng.standard_normal(n_tail) * np.exp(-6.9 * t / rt60) * 0.25  # -60 dB at rt60
    tail[: int(0.002 * fs)] = 0.0  # first reflections start 2 ms after the direct path
    h = np.zeros(n_delay + n_tail, dtype=np.float64)
    h[n_delay] = 1.0
    h[n_delay:] += tail
    return h


def scene(far: np.ndarray, near: np.ndarray, fs: int, delay_ms: float, ser_db: float, nonlinear: bool):
    n = int(fs * 0.5) + len(far) + int(fs * 1.5)
    far_sig = np.zeros(n, np.float32)
    far_sig[int(fs * 0.5): int(fs * 0.5) + len(far)] = far / rms(far) * 10 ** (-20 / 20)  # -20 dBFS
    near_sig = np.zeros(n, np.float32)
    s0 = int(fs * 9.0)
    near_sig[s0: s0 + len(near)] = near / rms(near) * 10 ** (-26 / 20)  # user at -26 dBFS RMS
    speaker = np.tanh(3 * far_sig) / 3 if nonlinear else far_sig
    echo = fftconvolve(speaker, room_ir(fs, delay_ms))[:n]
    # echo level: SER (user RMS over echo RMS, both while active) = ser_db
    active_far = np.abs(far_sig) > 1e-4
    echo *= rms(near_sig[s0: s0 + len(near)]) / (rms(echo[active_far]) * 10 ** (ser_db / 20))
    noise = np.random.default_rng(2).standard_normal(n) * 10 ** (-65 / 20)
    mic = (echo + near_sig + noise).astype(np.float32)
    return far_sig, near_sig, mic, (s0, s0 + len(near))


def frames(x: np.ndarray, fs: int):
    f = fs // 100
    for i in range(0, len(x) - f + 1, f):
        yield i, x[i: i + f]


def to_i16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def run_livekit(mic, far, fs, delay_hint):
    from livekit import rtc

    apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
    f = fs // 100
    out = np.zeros_like(mic)
    for i, m in frames(mic, fs):
        ref = rtc.AudioFrame(to_i16(far[i: i + f]).tobytes(), fs, 1, f)
        apm.process_reverse_stream(ref)
        cap = rtc.AudioFrame(to_i16(m).tobytes(), fs, 1, f)
        apm.set_stream_delay_ms(delay_hint)
        apm.process_stream(cap)
        out[i: i + f] = np.frombuffer(bytes(cap.data), np.int16) / 32768.0
    return out


def run_pywebrtc(mic, far, fs, delay_hint):
    from pywebrtc_audio import EchoCanceller

    aec = EchoCanceller(sample_rate=fs, num_channels=1, stream_delay_ms=delay_hint)
    f = fs // 100
    out = np.zeros_like(mic)
    for i, m in frames(mic, fs):
        out[i: i + f] = aec.process(to_i16(m), to_i16(far[i: i + f])) / 32768.0
    return out


def run_pyaec(mic, far, fs, delay_hint, tail_ms=500, preprocess=False):
    from pyaec import Aec

    f = fs // 100
    aec = Aec(f, int(fs * tail_ms / 1000), fs, preprocess)  # speexdsp: filter must span delay + tail
    out = np.zeros_like(mic)
    for i, m in frames(mic, fs):
        out[i: i + f] = np.asarray(aec.cancel_echo(to_i16(m).tolist(), to_i16(far[i: i + f]).tolist()), np.float32) / 32768.0
    return out


RUNNERS = {"none": None, "livekit-apm": run_livekit, "pywebrtc-audio": run_pywebrtc, "pyaec-speex": run_pyaec,
           "pyaec-speex-pp": lambda *a: run_pyaec(*a, preprocess=True)}


def best_corr(a: np.ndarray, b: np.ndarray, fs: int, max_lag_ms=30) -> float:
    best = 0.0
    L = int(fs * max_lag_ms / 1000)
    for lag in range(-L, L + 1, max(1, fs // 8000)):
        x = a[max(0, lag): len(a) + min(0, lag)]
        y = b[max(0, -lag): len(b) + min(0, -lag)]
        c = float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))
        best = max(best, c)
    return best


def measure(name, out, mic, far_sig, near_sig, dt, fs):
    f = fs // 100
    n = len(mic) // f
    far_e = np.array([rms(far_sig[i * f:(i + 1) * f]) for i in range(n)])
    near_e = np.array([rms(near_sig[i * f:(i + 1) * f]) for i in range(n)])
    far_only = (far_e > 10 ** (-45 / 20)) & (near_e < 1e-6)
    far_only[: 200] = False  # skip the first 2 s (convergence), reported separately
    conv = (far_e > 10 ** (-45 / 20)) & (near_e < 1e-6)
    conv[200:] = False
    def erle(mask):
        m = np.concatenate([mic[i * f:(i + 1) * f] for i in np.flatnonzero(mask)])
        o = np.concatenate([out[i * f:(i + 1) * f] for i in np.flatnonzero(mask)])
        return 10 * np.log10((rms(m) ** 2) / (rms(o) ** 2))
    # per-frame ERLE distribution (frames where the echo is loud enough to measure)
    per = []
    for i in np.flatnonzero(far_only):
        m, o = rms(mic[i * f:(i + 1) * f]), rms(out[i * f:(i + 1) * f])
        if m > 10 ** (-50 / 20):
            per.append(20 * np.log10(m / max(o, 1e-9)))
    a, b = dt
    pad = int(0.3 * fs)
    seg = slice(a - pad, b + pad)
    return {
        "name": name,
        "erle_db": round(erle(far_only), 1),
        "erle_first2s_db": round(erle(conv), 1),
        "erle_p10_db": round(float(np.percentile(per, 10)), 1),
        "erle_median_db": round(float(np.median(per)), 1),
        "dt_corr_with_user": round(best_corr(out[seg], near_sig[seg], fs), 3),
        "dt_user_level_db": round(20 * np.log10(rms(out[seg]) / rms(near_sig[seg])), 1),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--far", required=True)
    ap.add_argument("--near", required=True)
    ap.add_argument("--out", default="/tmp/duplex/out")
    ap.add_argument("--fs", type=int, default=16000)
    ap.add_argument("--delays", default="40,150")
    ap.add_argument("--ser", type=float, default=0.0)
    ap.add_argument("--libs", default=",".join(RUNNERS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    far, near = load(args.far, args.fs), load(args.near, args.fs)
    results = []
    for nonlinear in (False, True):
        for delay in [float(d) for d in args.delays.split(",")]:
            far_sig, near_sig, mic, dt = scene(far, near, args.fs, delay, args.ser, nonlinear)
            tag = f"d{int(delay)}{'-nl' if nonlinear else ''}"
            pad = int(0.3 * args.fs)
            sf.write(f"{args.out}/user-clean.wav", near_sig[dt[0] - pad: dt[1] + pad], args.fs)
            for lib in args.libs.split(","):
                t0 = time.process_time()
                out = mic.copy() if RUNNERS[lib] is None else RUNNERS[lib](mic, far_sig, args.fs, int(delay))
                cpu_ms = (time.process_time() - t0) * 1000 / (len(mic) // (args.fs // 100))
                r = measure(lib, out, mic, far_sig, near_sig, dt, args.fs)
                r.update(scene=tag, fs=args.fs, ser_db=args.ser, cpu_ms_per_10ms=round(cpu_ms, 3))
                sf.write(f"{args.out}/{tag}-{lib}-dt.wav", out[dt[0] - pad: dt[1] + pad], args.fs)
                sf.write(f"{args.out}/{tag}-{lib}-full.wav", out, args.fs)
                print(json.dumps(r), flush=True)
                results.append(r)
    with open(f"{args.out}/results.json", "w") as fh:
        json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
