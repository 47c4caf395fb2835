"""Turn-taking benchmark: the gap a person hears, and replies that cut in on a pause.

    python bench/bench_turns.py            # 12 complete prompts, 14 paused ones, each mode
    python bench/bench_turns.py --quick    # 3 + 3 (smoke)

Prompts are generated with espeak-ng (voice "echo", whatever the server's TTS) and streamed to the
local server as a microphone would: 20 ms chunks, each sent once its 20 ms have "passed".

1. Gap = end of the user's voice → first ``response.output_audio.delta`` at the client. End of
   voice is the end of the prompt's last voiced 20 ms frame (``rtvoice_widget.turns.voice_end_ms``,
   the turns table's definition), placed on the wall clock where the paced stream delivered it.
   Complete questions, ``semantic_vad`` (auto: Smart Turn v3.2 after 200 ms) against
   ``server_vad`` with 500 ms of silence, interleaved prompt by prompt, from the same LLM cache
   state (``bench_server.forget_last_question``).
2. False cut-ins: prompts with a 700 ms mid-sentence pause ("I'd like to book a table for, um
   ... (700 ms) ... four people tonight."). A cut-in is a turn ended inside the pause
   (``speech_stopped`` before the speech resumes), which starts a reply there. Against
   ``server_vad`` with 200 ms and 500 ms windows. Two kinds: *hesitation* (the first part ends
   in "um"/"uh", as people's mid-sentence pauses mostly do) and *bare* (the fragment alone:
   espeak-ng speaks it with sentence-final intonation, which is what the model listens to).
3. The end-of-turn model's own cost: CPU ms per decision (features + inference) and decisions
   per turn.

Goals (exit status 1 when missed): semantic_vad gap p50 <= 400 ms and p90 <= 600 ms on complete
prompts; false cut-ins <= 5 % of the hesitation prompts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import forget_last_question  # noqa: E402

from rtvoice_widget.server import LocalRealtimeServer  # noqa: E402
from rtvoice_widget.server.engines import load_engines  # noqa: E402
from rtvoice_widget.server.engines.tts import EspeakTTS  # noqa: E402
from rtvoice_widget.turns import voice_end_ms  # noqa: E402

RATE = 24000
CHUNK_MS = 20
LEAD_MS = 300
PAUSE_MS = 700
GOAL_P50_MS, GOAL_P90_MS, GOAL_CUT_INS = 400.0, 600.0, 0.05

COMPLETE = [
    "What is the tallest mountain in the world?",
    "Can you tell me a short joke?",
    "How many hours are in a week?",
    "What is the capital of Japan?",
    "Why is the ocean salty?",
    "What should I cook for dinner tonight?",
    "How do airplanes stay in the air?",
    "What is the speed of light?",
    "Who painted the Mona Lisa?",
    "How many strings does a guitar have?",
    "What is the weather usually like in Spain?",
    "Could you explain what a black hole is?",
]
HESITATION = [
    ("I'd like to book a table for, um", "four people tonight."),
    ("Set a timer for, uh", "ten minutes please."),
    ("Could you remind me to call my, uh", "sister tomorrow morning?"),
    ("I need a flight from London to, um", "Rome next Friday."),
    ("Play some music by, um", "the Beatles."),
    ("What's the weather going to be like in, uh", "Berlin this weekend?"),
    ("Can you tell me how to, um", "bake a loaf of bread?"),
    ("I want to know the, the", "population of Canada."),
    ("Tell me about the history of, uh", "the Roman empire."),
    ("My favourite food is, um", "pizza, what is yours?"),
]
BARE = [
    ("I'd like to book a table for", "four people tonight."),
    ("Set a timer for", "ten minutes please."),
    ("Tell me about the history of", "the Roman empire."),
    ("I need a flight from London to", "Rome next Friday."),
]


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return bytes(2 * RATE * ms // 1000)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def session_for(mode: str) -> dict:
    if mode == "semantic":
        turn = {"type": "semantic_vad", "eagerness": "auto"}
    else:
        turn = {"type": "server_vad", "silence_duration_ms": int(mode.removeprefix("server"))}
    return {"type": "realtime", "audio": {"input": {"turn_detection": turn}}}


async def stream(url: str, mode: str, pcm: bytes, *, stop_at_first_audio: bool) -> dict:
    """Stream ``pcm`` paced like a microphone; return wall-clock marks (relative to the stream's
    start) and the turn events. Ends at the first audio delta (``stop_at_first_audio``), else
    when the whole stream is sent: its 2.5 s tail outlasts every mode's longest silence."""
    from websockets.asyncio.client import connect

    marks: dict[str, float] = {}
    events: list[dict] = []
    sent_all = asyncio.Event()
    finished = asyncio.Event()
    async with connect(url + "?model=bench", max_size=None) as ws:
        start = 0.0

        async def reader() -> None:
            async for frame in ws:
                event = json.loads(frame)
                kind = event["type"]
                now = time.perf_counter() - start
                if kind in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "error",
                            "conversation.item.input_audio_transcription.completed"):
                    events.append(event)
                if kind == "response.output_audio.delta" and "first_audio" not in marks:
                    marks["first_audio"] = now
                    if stop_at_first_audio:
                        finished.set()
                        return

        await ws.send(json.dumps({"type": "session.update", "session": session_for(mode)}))
        read = asyncio.create_task(reader())
        step = 2 * RATE * CHUNK_MS // 1000
        start = time.perf_counter()
        for n, offset in enumerate(range(0, len(pcm), step)):
            # A microphone delivers each chunk once it has been captured: at the end of its 20 ms.
            delay = start + (n + 1) * CHUNK_MS / 1000 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(pcm[offset: offset + step]).decode()}))
            if finished.is_set():
                break
        sent_all.set()
        if stop_at_first_audio:
            try:
                await asyncio.wait_for(finished.wait(), 60)
            except asyncio.TimeoutError:
                marks["timeout"] = 1.0
        else:
            await asyncio.sleep(0.1)  # the last frames' VAD decisions
        read.cancel()
    return {"marks": marks, "events": events}


def complete_gaps(servers: dict[str, str], prompts: list[tuple[str, bytes]], engines) -> tuple[dict, dict]:
    """Per mode: the gaps (ms), and how much audio after the voice end each turn ended at
    (``speech_stopped.audio_end_ms`` - voice end: the turn detection's share of the gap)."""
    gaps: dict[str, list[float]] = {mode: [] for mode in servers}
    detect: dict[str, list[float]] = {mode: [] for mode in servers}
    for text, pcm in prompts:
        voice_end = voice_end_ms(np.frombuffer(pcm, "<i2"), RATE, len(pcm) / 48)
        for mode, url in servers.items():
            forget_last_question(engines)
            turn = asyncio.run(stream(url, mode, pcm, stop_at_first_audio=True))
            first = turn["marks"].get("first_audio")
            gap = first * 1000 - voice_end if first is not None else float("nan")
            gaps[mode].append(gap)
            stops = [e["audio_end_ms"] for e in turn["events"] if e["type"] == "input_audio_buffer.speech_stopped"]
            detected = stops[0] - voice_end if stops else float("nan")
            detect[mode].append(detected)
            print(f"  [{mode:>9}] gap {gap:6.0f} ms (turn ended {detected:4.0f} ms of audio after the voice)  {text!r}",
                  flush=True)
    return gaps, detect


def cut_ins(servers: dict[str, str], prompts: list[tuple[str, bytes, float]], engines) -> dict[str, list[bool]]:
    """Per mode, per prompt: whether a turn ended inside the pause (before ``resume_ms``)."""
    out: dict[str, list[bool]] = {mode: [] for mode in servers}
    for text, pcm, resume_ms in prompts:
        for mode, url in servers.items():
            forget_last_question(engines)
            turn = asyncio.run(stream(url, mode, pcm, stop_at_first_audio=False))
            stops = [e["audio_end_ms"] for e in turn["events"] if e["type"] == "input_audio_buffer.speech_stopped"]
            cut = any(stop < resume_ms for stop in stops)
            out[mode].append(cut)
            print(f"  [{mode:>9}] {'CUT IN' if cut else 'ok    '} stops at {stops} (resume {resume_ms:.0f})  {text!r}",
                  flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 complete and 3 paused prompts")
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument("--vad", default="silero")
    args = parser.parse_args()

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    engines = load_engines(vad=args.vad, llm=args.llm, turn_end="smart-turn")
    print(f"engines: {engines.info}", flush=True)
    # espeak-ng, not the server's default Piper: the bare fragments rely on espeak's sentence-final
    # intonation, and the prompts stay those of earlier runs.
    user = EspeakTTS()
    speak = lambda text: to_pcm16(user.synthesize(text, voice="echo"))  # noqa: E731
    complete_texts = COMPLETE[:3] if args.quick else COMPLETE
    hesitation = HESITATION[:2] if args.quick else HESITATION
    bare = BARE[:1] if args.quick else BARE
    complete = [(t, silence(LEAD_MS) + speak(t) + silence(2500)) for t in complete_texts]

    def paused(pairs):
        out = []
        for first, rest in pairs:
            head = silence(LEAD_MS) + speak(first)
            resume_ms = voice_end_ms(np.frombuffer(head, "<i2"), RATE, len(head) / 48) + PAUSE_MS
            # The pause is 700 ms from the end of the voice (espeak's own trailing silence included).
            head = head[: int(resume_ms - PAUSE_MS) * 48] + silence(PAUSE_MS)
            out.append((f"{first} ... {rest}", head + speak(rest) + silence(2500), resume_ms))
        return out

    hesitation_prompts, bare_prompts = paused(hesitation), paused(bare)

    with LocalRealtimeServer(engines=engines, progress=None) as server:
        url = server.url
        print("complete prompts: gap = end of voice -> first audio delta", flush=True)
        gaps, detect = complete_gaps({"semantic": url, "server500": url}, complete, engines)
        calls_before, cpu_before = engines.turn_end.calls, engines.turn_end.cpu_ms
        print("paused prompts (700 ms mid-sentence pause): false cut-ins", flush=True)
        modes = {"semantic": url, "server200": url, "server500": url}
        cuts_hesitation = cut_ins(modes, hesitation_prompts, engines)
        cuts_bare = cut_ins(modes, bare_prompts, engines)
        calls, cpu = engines.turn_end.calls, engines.turn_end.cpu_ms

    print()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores)")
    sem, base = gaps["semantic"], gaps["server500"]
    print(f"gap end of voice -> first audio, {len(complete)} complete prompts:")
    print(f"  semantic_vad (auto): p50 {percentile(sem, 50):.0f} ms, p90 {percentile(sem, 90):.0f} ms "
          f"(turn ended p50 {percentile(detect['semantic'], 50):.0f} ms after the voice)")
    print(f"  server_vad 500 ms:   p50 {percentile(base, 50):.0f} ms, p90 {percentile(base, 90):.0f} ms "
          f"(turn ended p50 {percentile(detect['server500'], 50):.0f} ms after the voice)")
    print(f"  ratio semantic/server500 p50: {percentile(sem, 50) / percentile(base, 50):.2f}")
    for label, cuts, n in (("hesitation", cuts_hesitation, len(hesitation_prompts)), ("bare", cuts_bare, len(bare_prompts))):
        print(f"false cut-ins, {n} {label} prompts: " + ", ".join(
            f"{mode} {sum(c)}/{n} ({sum(c) / n:.0%})" for mode, c in cuts.items()))
    print(f"end-of-turn model: {calls} decisions, {cpu / max(calls, 1):.0f} ms CPU each "
          f"({(calls - calls_before)} on the {len(hesitation_prompts) + len(bare_prompts)} paused prompts' "
          f"semantic runs: one per pause of 200 ms or more)")

    missed = []
    if not percentile(sem, 50) <= GOAL_P50_MS:
        missed.append(f"gap p50 {percentile(sem, 50):.0f} > {GOAL_P50_MS:.0f} ms")
    if not percentile(sem, 90) <= GOAL_P90_MS:
        missed.append(f"gap p90 {percentile(sem, 90):.0f} > {GOAL_P90_MS:.0f} ms")
    rate = sum(cuts_hesitation["semantic"]) / len(hesitation_prompts)
    if rate > GOAL_CUT_INS:
        missed.append(f"false cut-ins {rate:.0%} > {GOAL_CUT_INS:.0%}")
    print("goals: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
