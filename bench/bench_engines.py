"""Benchmark of the local server's offline engines on this machine.

    python bench/bench_engines.py           # all 24 prompts (~1 min on 2 cores)
    python bench/bench_engines.py --quick   # 3 prompts, a few seconds after model load

Measures, with a baseline from the same run for each:
- load times of the default engines (``load_engines()``);
- TTS (espeak-ng library) real-time factor, against the espeak-ng CLI baseline;
- ASR (Whisper-base, int8) word error rate, real-time factor and per-call latency on the espeak
  prompts for the default (unpadded window, greedy with a beam-5 re-decode of unsure decodes)
  against the padded 30 s window baseline, plus the unpadded variants greedy only, beam 5 and
  without the 5 s minimum window (full run only); the per-call latency is what a
  transcription started only after ``speech_stopped`` adds;
- LLM (SmolLM2-135M) first-token latency and tokens/s, against the speaking rate of the reply
  (the model must produce text faster than espeak can say it);
- VAD (Silero ONNX) cost per 32 ms frame, against the energy VAD and against real time.

Exits non-zero when a goal (``GOALS``) is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rtvoice_widget.server.engines import EnergyVAD, load_engines  # noqa: E402
from rtvoice_widget.server.engines.evaluation import spoken, word_error_rate  # noqa: E402
from rtvoice_widget.server.engines.tts import EspeakTTS  # noqa: E402

# Fixed prompts: no number words (Whisper writes digits, which WER would count as errors) and
# American spelling (Whisper's). Said by espeak's plain en-us voice, like a user would be.
PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the lights in the kitchen.",
    "What time does the train leave for the city?",
    "I would like a cup of coffee with milk.",
    "Tell me a short story about a friendly dragon.",
    "How is the weather going to be tomorrow morning?",
    "Can you remind me to call my sister tonight?",
    "The meeting has been moved to next Tuesday afternoon.",
    "Where is the nearest pharmacy from here?",
    "She sells sea shells by the sea shore.",
    "Play some relaxing music in the living room.",
    "My favorite color is a deep shade of blue.",
    "Could you explain how a rainbow is formed?",
    "We should leave early to avoid the traffic.",
    "The library closes early in the evening.",
    "Please add bread and cheese to my shopping list.",
    "Why is the sky dark at night?",
    "I forgot my umbrella at the office again.",
    "Open the window, it is getting warm in here.",
    "Who wrote the play about the prince of Denmark?",
    "Set an alarm for tomorrow morning.",
    "The children are playing football in the park.",
    "Translate good morning into French, please.",
    "Thank you, that was very helpful.",
]

LLM_PROMPTS = [
    "What is the capital of France?",
    "Give me a tip for sleeping better.",
    "What should I cook for dinner tonight?",
    "Why do cats purr?",
    "Tell me something interesting about the moon.",
]

USER_VOICE = "en-us"
SYSTEM = "You are a helpful voice assistant. Answer in one or two short sentences."

GOALS = {
    "asr_wer": ("<=", 0.10),
    "asr_rtf": ("<=", 0.5),
    # Accuracy must stay close to the padded window's: at most 3 points of WER worse.
    "asr_wer_minus_padded": ("<=", 0.03),
    "asr_speedup_vs_padded": (">=", 3.0),
    "tts_rtf": ("<=", 0.1),
    "llm_first_token_p50_ms": ("<=", 300.0),
    "llm_tokens_per_s": (">=", 30.0),
    "vad_silero_ms_per_frame": ("<=", 1.0),
    "load_total_s": ("<=", 20.0),
}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def bench_tts(tts: EspeakTTS, prompts: list[str]) -> dict:
    cli = EspeakTTS(backend="cli")
    results = {}
    for label, engine in (("library", tts), ("cli", cli)):
        seconds = audio_s = 0.0
        for prompt in prompts:
            started = time.perf_counter()
            audio = engine.synthesize(prompt)
            seconds += time.perf_counter() - started
            audio_s += len(audio) / engine.sample_rate
        results[label] = {"rtf": seconds / audio_s, "ms_per_prompt": 1000 * seconds / len(prompts)}
    return results


def bench_asr(asr, clips: list[np.ndarray], prompts: list[str]) -> dict:
    hypotheses, latencies, audio_s = [], [], 0.0
    cpu_started = time.process_time()
    for clip in clips:
        started = time.perf_counter()
        hypotheses.append(asr.transcribe(clip))
        latencies.append(time.perf_counter() - started)
        audio_s += len(clip) / asr.sample_rate
    cpu_s = time.process_time() - cpu_started
    worst = sorted(zip(prompts, hypotheses), key=lambda ph: -word_error_rate([ph[0]], [ph[1]]))[:3]
    return {
        "wer": word_error_rate(prompts, hypotheses),
        "rtf": sum(latencies) / audio_s,
        "latency_p50_ms": 1000 * percentile(latencies, 50),
        "latency_p90_ms": 1000 * percentile(latencies, 90),
        "mean_utterance_s": audio_s / len(clips),
        "cpu_s_per_utterance": cpu_s / len(clips),
        "worst": worst,
    }


def bench_llm(llm, prompts: list[str], tts: EspeakTTS) -> dict:
    first_token_ms, rates, speaking_rates = [], [], []
    for prompt in prompts:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        started = time.perf_counter()
        first = None
        pieces = []
        for chunk in llm.stream(messages, max_tokens=80):
            if first is None:
                first = time.perf_counter() - started
            pieces.append(chunk.text)
        total = time.perf_counter() - started
        first_token_ms.append(1000 * (first if first is not None else total))
        if len(pieces) > 1:
            rates.append((len(pieces) - 1) / max(total - first, 1e-9))
            # The baseline: how many of these tokens per second espeak needs to say the reply.
            said_s = len(tts.synthesize("".join(pieces))) / tts.sample_rate
            speaking_rates.append(len(pieces) / said_s)
    return {
        "first_token_p50_ms": percentile(first_token_ms, 50),
        "first_token_p90_ms": percentile(first_token_ms, 90),
        "tokens_per_s": statistics.median(rates),
        "speaking_tokens_per_s": statistics.median(speaking_rates),
    }


def bench_vad(vads: dict, audio: np.ndarray) -> dict:
    results = {}
    frames = [audio[i : i + 512] for i in range(0, len(audio) - 511, 512)]
    for label, vad in vads.items():
        stream = vad.new_stream()
        started = time.perf_counter()
        for frame in frames:
            stream.speech_prob(frame)
        results[label] = 1000 * (time.perf_counter() - started) / len(frames)
    return results


def check_goals(measured: dict[str, float], goals: dict[str, tuple[str, float]]) -> int:
    """Print each goal (``name: (op, bound)``, op ``<=`` or ``>=``) with its measured value; 1 if any
    was missed, else 0 (the bench's exit code)."""
    missed = []
    for name, (op, goal) in goals.items():
        value = measured[name]
        ok = value <= goal if op == "<=" else value >= goal
        print(f"goal {name} {op} {goal}: {value:.4g} {'ok' if ok else 'MISSED'}")
        if not ok:
            missed.append(name)
    return 1 if missed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 prompts, for a CI smoke run")
    args = parser.parse_args(argv)
    prompts = PROMPTS[:3] if args.quick else PROMPTS
    llm_prompts = LLM_PROMPTS[:2] if args.quick else LLM_PROMPTS

    # Wall-clock numbers mean little on a machine shared with other work: show how busy it was.
    print(f"# load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    started = time.perf_counter()
    engines = load_engines()
    load_s = time.perf_counter() - started
    tts = EspeakTTS()  # this bench's TTS figures are espeak-ng's; Piper's are bench_tts.py's
    print(f"# engines: {engines.info}")

    tts_result = bench_tts(tts, prompts)
    clips = [spoken(tts, p, engines.asr.sample_rate, voice=USER_VOICE, pad_s=0.2) for p in prompts]
    asr = engines.asr
    default_options = {"window": asr.window, "beam_size": asr.beam_size, "min_window_s": asr.min_window_s,
                       "fallback_logprob": asr.fallback_logprob}
    variants = {"default": default_options, "padded (baseline)": {**default_options, "window": "padded"}}
    if not args.quick:
        variants["greedy only"] = {**default_options, "fallback_logprob": None}
        variants["unpadded beam 5"] = {**default_options, "window": "unpadded", "beam_size": 5}
        variants["unpadded no min window"] = {**default_options, "window": "unpadded", "min_window_s": 0.0}
    asr_results = {}
    for label, options in variants.items():
        # The options are plain attributes read on every call: one loaded model serves all variants.
        for name, value in options.items():
            setattr(asr, name, value)
        asr.transcribe(clips[0])  # warm-up: the first call of a shape allocates CTranslate2 buffers
        asr_results[label] = bench_asr(asr, clips, prompts)
    for name, value in default_options.items():
        setattr(asr, name, value)
    asr_result, padded_result = asr_results["default"], asr_results["padded (baseline)"]
    llm_result = bench_llm(engines.llm, llm_prompts, tts)
    vad_result = bench_vad({"silero": engines.vad, "energy": EnergyVAD()}, np.concatenate(clips))

    measured = {
        "asr_wer": asr_result["wer"],
        "asr_rtf": asr_result["rtf"],
        "asr_wer_minus_padded": asr_result["wer"] - padded_result["wer"],
        "asr_speedup_vs_padded": padded_result["latency_p50_ms"] / asr_result["latency_p50_ms"],
        "tts_rtf": tts_result["library"]["rtf"],
        "llm_first_token_p50_ms": llm_result["first_token_p50_ms"],
        "llm_tokens_per_s": llm_result["tokens_per_s"],
        "vad_silero_ms_per_frame": vad_result["silero"],
        "load_total_s": load_s,
    }

    print(f"\nload: total {load_s:.2f} s  " + "  ".join(
        f"{r} {engines.info[r]['load_s']:.2f} s" for r in ("vad", "asr", "llm", "tts")))  # fmt: skip
    print(f"TTS  espeak library: RTF {tts_result['library']['rtf']:.4f} ({tts_result['library']['ms_per_prompt']:.1f} ms/prompt)"
          f" | baseline CLI: RTF {tts_result['cli']['rtf']:.4f} ({tts_result['cli']['ms_per_prompt']:.1f} ms/prompt)"
          f" | library is {tts_result['cli']['rtf'] / tts_result['library']['rtf']:.1f}x faster")  # fmt: skip
    print(f"ASR  whisper-base on {len(prompts)} prompts (mean {asr_result['mean_utterance_s']:.2f} s), default {default_options}:")
    for label, result in asr_results.items():
        print(f"     {label:20s} WER {100 * result['wer']:5.1f} %  RTF {result['rtf']:.3f}  "
              f"latency p50 {result['latency_p50_ms']:5.0f} ms  p90 {result['latency_p90_ms']:5.0f} ms  "
              f"CPU {result['cpu_s_per_utterance']:.2f} s/utterance  "
              f"p50 {padded_result['latency_p50_ms'] / result['latency_p50_ms']:.1f}x faster than padded")  # fmt: skip
    for reference, hypothesis in asr_result["worst"]:
        print(f"     worst: {reference!r} -> {hypothesis!r}")
    print(f"LLM  {engines.llm.name} on {len(llm_prompts)} prompts: first token p50 {llm_result['first_token_p50_ms']:.0f} ms, "
          f"p90 {llm_result['first_token_p90_ms']:.0f} ms; {llm_result['tokens_per_s']:.1f} tokens/s vs "
          f"{llm_result['speaking_tokens_per_s']:.1f} tokens/s spoken baseline "
          f"({llm_result['tokens_per_s'] / llm_result['speaking_tokens_per_s']:.1f}x faster than speech)")  # fmt: skip
    print(f"VAD  silero {vad_result['silero']:.3f} ms/frame vs energy baseline {vad_result['energy']:.3f} ms/frame "
          f"({vad_result['silero'] / vad_result['energy']:.1f}x); {32 / vad_result['silero']:.0f}x faster than real time")  # fmt: skip

    print(f"# load average after: {os.getloadavg()[0]:.1f}")
    goals = dict(GOALS)
    # Three prompts hold ~26 words: one word is ~4 points of WER, so allow one word's worth.
    reference_words = sum(len(p.split()) for p in prompts)
    goals["asr_wer_minus_padded"] = ("<=", max(GOALS["asr_wer_minus_padded"][1], 1.01 / reference_words))
    return check_goals(measured, goals)


if __name__ == "__main__":
    sys.exit(main())
