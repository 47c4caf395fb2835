"""TTS benchmark: Piper (en_US-joe-medium, the default voice) against espeak-ng, same run.

    python bench/bench_tts.py           # 24 sentences, 8 clauses (~2 min on 2 cores)
    python bench/bench_tts.py --quick   # 3 sentences, 3 clauses

Measures, each for Piper and for the espeak-ng library as the baseline, with the ratio:
- load: import + construction (Piper: read the 63 MB ONNX, check its SHA-256, open the
  onnxruntime session), each in a fresh subprocess so neither finds the other's imports warm;
- real-time factor over the sentences of ``bench_engines.PROMPTS`` (wall clock and CPU time: CPU
  time is what a busy machine inflates least), and Piper with 2 onnxruntime threads, not 1;
- time to first clause audio: ``synthesize`` of a typical 8-word clause, as the server calls it
  for the first clause of a reply (its audio is sent when that call returns); p50 and p90;
- word error rate of Whisper-base (the server's ASR) on the same sentences said by each, and
  (full run) Piper's under each OpenAI voice name.

Exits non-zero when a goal (``GOALS``) is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engines import PROMPTS, check_goals  # noqa: E402

from rtvoice_widget.server.engines.asr import WhisperASR  # noqa: E402
from rtvoice_widget.server.engines.evaluation import spoken, word_error_rate  # noqa: E402
from rtvoice_widget.server.engines.tts import EspeakTTS  # noqa: E402
from rtvoice_widget.server.engines.tts_piper import PiperTTS  # noqa: E402

# Eight-word clauses, as the server's chunker hands the TTS the first piece of a reply.
CLAUSES = [
    "The capital of France is Paris, of course.",
    "I would suggest a warm cup of tea.",
    "Cats purr when they feel calm and safe.",
    "The moon takes about a month to orbit.",
    "Try going to bed at the same time.",
    "A simple pasta with tomatoes would be nice.",
    "Rainbows form when sunlight bends through falling raindrops.",
    "That sounds like a great plan for tonight.",
]

GOALS = {
    "piper_wer": ("<=", 0.10),
    "piper_wer_minus_espeak": ("<=", 0.02),
    "piper_rtf": ("<=", 0.15),
    "piper_first_clause_p50_ms": ("<=", 250.0),
    "piper_load_s": ("<=", 3.0),
}

_LOAD = """
import json, sys, time
sys.path.insert(0, {root!r})
started = time.perf_counter()
from rtvoice_widget.server.engines.{module} import {cls}
engine = {cls}()
engine.synthesize("Hi.")
print(json.dumps({{"load_s": time.perf_counter() - started}}))
"""


def load_seconds(module: str, cls: str) -> float:
    """Import + construct + a first one-word synthesis, in a fresh interpreter."""
    code = _LOAD.format(root=str(ROOT), module=module, cls=cls)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["load_s"]


def rtf(tts, sentences: list[str]) -> dict:
    wall = cpu = audio_s = 0.0
    for sentence in sentences:
        started, cpu_started = time.perf_counter(), time.process_time()
        audio = tts.synthesize(sentence)
        wall += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        audio_s += len(audio) / tts.sample_rate
    return {"rtf": wall / audio_s, "cpu_rtf": cpu / audio_s, "audio_s": audio_s}


def first_clause_ms(tts, clauses: list[str]) -> dict:
    times, cpu = [], []
    for clause in clauses:
        started, cpu_started = time.perf_counter(), time.process_time()
        tts.synthesize(clause)
        times.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.process_time() - cpu_started))
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90)),
            "cpu_p50": float(np.percentile(cpu, 50))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 sentences and 3 clauses")
    args = parser.parse_args(argv)
    sentences = PROMPTS[:3] if args.quick else PROMPTS
    clauses = CLAUSES[:3] if args.quick else CLAUSES

    print(f"# load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    load = {"piper": load_seconds("tts_piper", "PiperTTS"), "espeak": load_seconds("tts", "EspeakTTS")}
    engines = {"piper": PiperTTS(), "espeak": EspeakTTS()}
    two_threads = PiperTTS(threads=2)
    for tts in (*engines.values(), two_threads):
        tts.synthesize("Warm up.")  # first runs allocate onnxruntime buffers

    speed = {name: rtf(tts, sentences) for name, tts in engines.items()}
    speed["piper 2 threads"] = rtf(two_threads, sentences)
    first = {name: first_clause_ms(tts, clauses) for name, tts in engines.items()}
    first["piper 2 threads"] = first_clause_ms(two_threads, clauses)

    asr = WhisperASR("whisper-base")
    heard = {name: [asr.transcribe(spoken(tts, s, asr.sample_rate, pad_s=0.2)) for s in sentences]
             for name, tts in engines.items()}
    wer = {name: word_error_rate(sentences, hypotheses) for name, hypotheses in heard.items()}
    piper = engines["piper"]
    voice_wer = {} if args.quick else {
        voice: word_error_rate(sentences, [asr.transcribe(spoken(piper, s, asr.sample_rate, voice=voice, pad_s=0.2))
                                           for s in sentences])
        for voice in piper.voices
    }

    words = sum(len(s.split()) for s in sentences)
    print(f"load (import + open + first word, fresh process): piper {load['piper']:.2f} s, "
          f"espeak {load['espeak']:.2f} s ({load['piper'] / load['espeak']:.1f}x)")
    print(f"RTF over {len(sentences)} sentences ({speed['piper']['audio_s']:.0f} s of piper speech):")
    for name, r in speed.items():
        print(f"     {name:15s} wall {r['rtf']:.4f}  CPU {r['cpu_rtf']:.4f}  "
              f"({r['rtf'] / speed['espeak']['rtf']:.1f}x espeak's wall RTF)")
    print(f"first clause audio ({len(clauses)} clauses of 8 words):")
    for name, r in first.items():
        print(f"     {name:15s} p50 {r['p50']:6.1f} ms  p90 {r['p90']:6.1f} ms  CPU p50 {r['cpu_p50']:6.1f} ms  "
              f"({r['p50'] / first['espeak']['p50']:.1f}x espeak's p50)")
    print(f"Whisper-base WER on {len(sentences)} sentences ({words} words): piper {100 * wer['piper']:.1f} %, "
          f"espeak {100 * wer['espeak']:.1f} %")
    for name in engines:
        for reference, hypothesis in zip(sentences, heard[name]):
            if word_error_rate([reference], [hypothesis]) > 0:
                print(f"     {name}: {reference!r} -> {hypothesis!r}")
    if voice_wer:
        print("piper WER per voice: " + ", ".join(f"{v} {100 * w:.1f} %" for v, w in voice_wer.items()))
    print(f"# load average after: {os.getloadavg()[0]:.1f}")

    measured = {
        "piper_wer": wer["piper"],
        "piper_wer_minus_espeak": wer["piper"] - wer["espeak"],
        "piper_rtf": speed["piper"]["rtf"],
        "piper_first_clause_p50_ms": first["piper"]["p50"],
        "piper_load_s": load["piper"],
    }
    return check_goals(measured, GOALS)


if __name__ == "__main__":
    sys.exit(main())
