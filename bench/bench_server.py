"""Local server benchmark: voice-to-voice latency, ASR accuracy, real-time factors, soak.

    python bench/bench_server.py            # full: 20 prompts per mode, 2 min soak with 4 sessions
    python bench/bench_server.py --quick    # a few prompts, a short soak (CI smoke)

1. Latency, speech_stopped → first response.output_audio.delta, seen by a client that streams
   espeak-ng prompts in real time (20 ms chunks), p50/p90 over the prompts, for the server as
   shipped (speculative transcription + speculative reply + partials), the same without the
   speculative reply (the reply starts at speech_stopped), the same without periodic partials
   (they compete for the CPU), and a baseline server in the same run that transcribes only
   after speech_stopped. Per turn, the wire splits it into "speech_stopped → transcript"
   and "transcript → first audio"; the engines are also timed alone on the same prompts (ASR,
   LLM first token, LLM first voiced piece, its TTS), and the LLM's first evaluation after
   loading (what a cold first turn paid before the server warmed the model up at start).
2. ASR word error rate on the prompts, through the server and by the engine alone; real-time
   factors of ASR and TTS. Two baselines put the WERs in proportion: the engine alone with the
   speech moved by 50 and 100 ms in its window (greedy Whisper is sensitive to that, and the
   server's window starts where its VAD heard the onset, not where the bench put it), and the
   engine alone decoding greedily only, without the beam-search fallback (``asr.py``).
3. Soak: 4 concurrent sessions talking for 2 minutes: no errors, RSS stable.

Goals (exit status 1 when missed): p50 latency <= 350 ms; soak without errors; RSS growth over the
soak's second half < 10 % of its size.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rtvoice_widget.server import LocalRealtimeServer  # noqa: E402
from rtvoice_widget.server.chunking import ClauseChunker  # noqa: E402
from rtvoice_widget.server.engines import load_engines  # noqa: E402
from rtvoice_widget.server.engines.evaluation import word_errors  # noqa: E402
from rtvoice_widget.server.engines.tts import EspeakTTS  # noqa: E402
from rtvoice_widget.server.pipeline import transcribe, warm_llm  # noqa: E402
from rtvoice_widget.server.settings import SessionSettings  # noqa: E402
from rtvoice_widget.server.dialogue import warm_up_job  # noqa: E402

RATE = 24000
CHUNK_MS = 20
LEAD_MS = 300  # silence before each prompt, as a client's stream would have
# The engine alone also hears the prompts with less lead: the spread is what where the speech
# sits in Whisper's window does to the WER, the noise any WER comparison here lives with.
OTHER_LEADS_MS = (200, 250)
GOAL_P50_MS = 350.0

# The server's default instructions: the stage timings see the prompt the server's replies see.
SYSTEM = warm_up_job(SessionSettings("bench")).messages

PROMPTS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Tell me a fun fact about the moon.",
    "What color is the sky on a clear day?",
    "Can you recommend a good book to read?",
    "What is the boiling point of water?",
    "How do I make a cup of tea?",
    "What is the largest planet in our solar system?",
    "Why do leaves change color in autumn?",
    "What time zone is London in?",
    "Give me a synonym for happy.",
    "How far away is the sun?",
    "What is two plus two?",
    "Name three kinds of fruit.",
    "What language is spoken in Brazil?",
    "How many days are in a leap year?",
    "What do bees make?",
    "Who wrote the play Romeo and Juliet?",
    "What is the opposite of cold?",
    "How many continents are there?",
    "Which animal is known as the king of the jungle?",
    "What is the main ingredient in guacamole?",
]


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def spoken_turn(url: str, pcm: bytes, *, silence_ms: int = 500) -> dict:
    """Stream one prompt in real time on a fresh connection; return the turn's timings and texts."""
    from websockets.asyncio.client import connect

    marks: dict[str, float] = {}
    result: dict = {"errors": []}
    async with connect(url + "?model=bench", max_size=None) as ws:

        async def reader() -> None:
            async for frame in ws:
                event = json.loads(frame)
                now = time.perf_counter()
                kind = event["type"]
                if kind == "error":
                    result["errors"].append(event["error"]["message"])
                elif kind == "input_audio_buffer.speech_stopped":
                    marks.setdefault("stopped", now)
                elif kind == "conversation.item.input_audio_transcription.completed":
                    marks.setdefault("transcript", now)
                    result["transcript"] = event["transcript"]
                elif kind == "response.output_audio.delta":
                    marks.setdefault("first_audio", now)
                elif kind == "response.done":
                    result["status"] = event["response"]["status"]
                    if event["response"]["status"] == "failed":
                        result["errors"].append(json.dumps(event["response"]["status_details"]))
                    output = event["response"]["output"]
                    result["reply"] = output[0]["content"][0].get("transcript") if output else ""
                    return

        read = asyncio.create_task(reader())
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "silence_duration_ms": silence_ms}}}}}))
        step = 2 * RATE * CHUNK_MS // 1000
        start = time.perf_counter()
        for n, offset in enumerate(range(0, len(pcm), step)):
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(pcm[offset: offset + step]).decode()}))
            # Real-time pacing: speculation only helps if silence takes real time to arrive.
            delay = start + (n + 1) * CHUNK_MS / 1000 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if read.done():
                break
        await asyncio.wait_for(read, 120)
    if {"stopped", "first_audio"} <= marks.keys():
        result["latency_ms"] = (marks["first_audio"] - marks["stopped"]) * 1000
        if "transcript" in marks:
            result["asr_wait_ms"] = max(0.0, marks["transcript"] - marks["stopped"]) * 1000
            result["after_transcript_ms"] = (marks["first_audio"] - max(marks["transcript"], marks["stopped"])) * 1000
    return result


def forget_last_question(engines) -> None:
    """Leave the shared LLM's KV cache holding the system prompt and a neutral user turn.

    The servers share one LLM, whose cache reuses the longest common prompt prefix: without
    this, the second server asked the same question finds it already evaluated (measured: the
    first server of each prompt came out 200 ms slower, whichever it was)."""
    for _ in engines.llm.stream([*SYSTEM, {"role": "user", "content": "Hello."}], max_tokens=1):
        pass


def measure_latency(servers: dict[str, str], prompts: list[tuple[str, bytes]], engines) -> dict[str, dict]:
    """Each prompt against each server in turn (interleaved, so load drift on a shared machine
    hits every configuration alike), from the same LLM cache state; per server: p50/p90 and the
    wire's split of the latency."""
    turns: dict[str, list[dict]] = {label: [] for label in servers}
    for text, pcm in prompts:
        for label, url in servers.items():
            forget_last_question(engines)
            turn = asyncio.run(spoken_turn(url, pcm))
            turn["prompt"] = text
            turns[label].append(turn)
            print(f"  [{label:>11}] {turn.get('latency_ms', float('nan')):7.0f} ms  heard {turn.get('transcript', '')!r}"
                  f" -> {turn.get('reply', '')[:60]!r}", flush=True)
    results = {}
    for label, done in turns.items():
        latencies = [t["latency_ms"] for t in done if "latency_ms" in t]
        results[label] = {
            "turns": done,
            "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90),
            "asr_wait_p50": percentile([t["asr_wait_ms"] for t in done if "asr_wait_ms" in t], 50),
            "after_transcript_p50": percentile([t["after_transcript_ms"] for t in done if "after_transcript_ms" in t], 50),
            "missing": len(done) - len(latencies),
            "errors": sum(len(t["errors"]) for t in done),
        }
    return results


def measure_cold_start(engines) -> dict:
    """The LLM's first evaluation after loading, then the same prompt again (cached)."""
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        warm_llm(engines.llm, warm_up_job(SessionSettings("bench")))
        timings.append((time.perf_counter() - started) * 1000)
    return {"first_eval_ms": timings[0], "cached_ms": timings[1]}


def asr_wer(engines, prompts: list[tuple[str, bytes]], *, lead_ms: int = LEAD_MS, **asr_options) -> float:
    """The ASR engine's WER on the prompts with ``lead_ms`` of silence before the speech, with its
    attributes set to ``asr_options`` for the duration (call it while no server transcribes)."""
    asr = engines.asr
    saved = {name: getattr(asr, name) for name in asr_options}
    for name, value in asr_options.items():
        setattr(asr, name, value)
    try:
        errors = words = 0
        for text, pcm in prompts:
            shifted = bytes(2 * RATE * lead_ms // 1000) + pcm[2 * RATE * LEAD_MS // 1000:]
            e, n = word_errors(text, transcribe(asr, shifted))
            errors, words = errors + e, words + n
        return errors / max(1, words)
    finally:
        for name, value in saved.items():
            setattr(asr, name, value)


def measure_stages(engines, prompts: list[tuple[str, bytes]]) -> dict:
    """The engines alone on the same prompts: ASR time/RTF/WER, LLM first token, first TTS clause."""
    asr_s, asr_audio_s, errors, ref_words, llm_first, tts_first, tts_s, tts_audio_s = [], [], 0, 0, [], [], 0.0, 0.0
    llm_piece: list[float] = []
    for text, pcm in prompts:
        started = time.perf_counter()
        heard = transcribe(engines.asr, pcm)
        asr_s.append(time.perf_counter() - started)
        asr_audio_s.append(len(pcm) / 2 / RATE)
        e, n = word_errors(text, heard)
        errors, ref_words = errors + e, ref_words + n
        messages = [*SYSTEM, {"role": "user", "content": heard}]
        chunker = ClauseChunker()
        started = time.perf_counter()
        first_clause = None
        first_token_ms = None
        for chunk in engines.llm.stream(messages, max_tokens=60):
            if chunk.text and first_token_ms is None:
                first_token_ms = (time.perf_counter() - started) * 1000
                llm_first.append(first_token_ms)
            pieces = chunker.push(chunk.text)
            if pieces:
                first_clause = pieces[0]
                break
        first_clause = first_clause or " ".join(chunker.flush()) or heard
        llm_piece.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        audio = engines.tts.synthesize(first_clause)
        elapsed = time.perf_counter() - started
        tts_first.append(elapsed * 1000)
        tts_s += elapsed
        tts_audio_s += audio.size / engines.tts.sample_rate
    return {
        "asr_ms_p50": percentile([s * 1000 for s in asr_s], 50),
        "asr_rtf": sum(asr_s) / sum(asr_audio_s),
        "wer": errors / max(1, ref_words),
        "llm_first_token_ms_p50": percentile(llm_first, 50),
        "llm_first_piece_ms_p50": percentile(llm_piece, 50),
        "llm_first_piece_ms_p90": percentile(llm_piece, 90),
        "tts_first_clause_ms_p50": percentile(tts_first, 50),
        "tts_rtf": tts_s / max(tts_audio_s, 1e-9),
    }


def soak(url: str, prompts: list[tuple[str, bytes]], seconds: float, sessions: int = 4) -> dict:
    import psutil

    process = psutil.Process()
    rss: list[tuple[float, int]] = []
    errors: list[str] = []
    turns = [0]
    deadline = time.perf_counter() + seconds
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss.append((time.perf_counter(), process.memory_info().rss))
            stop.wait(1.0)

    async def talker(index: int) -> None:
        n = index
        while time.perf_counter() < deadline:
            try:
                turn = await spoken_turn(url, prompts[n % len(prompts)][1])
            except Exception as exc:  # a dropped connection is exactly what the soak looks for
                errors.append(f"session {index}: {type(exc).__name__}: {exc}")
                continue
            errors.extend(turn["errors"])
            if turn.get("status") != "completed":
                errors.append(f"session {index}: response {turn.get('status')}")
            turns[0] += 1
            n += sessions

    async def main() -> None:
        await asyncio.gather(*(talker(i) for i in range(sessions)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    asyncio.run(main())
    stop.set()
    sampler.join()
    half = [value for t, value in rss if t >= rss[0][0] + (rss[-1][0] - rss[0][0]) / 2]
    growth = (half[-1] - half[0]) / half[0] if len(half) > 1 else 0.0
    return {"turns": turns[0], "errors": errors, "rss_mb_start": rss[0][1] / 2**20,
            "rss_mb_end": rss[-1][1] / 2**20, "rss_growth_second_half": growth}


class ServerLog(logging.Handler):
    """What the servers log at DEBUG: each session's speculative-reply outcomes (added up) and
    each reply job's stage times (from the job's start: LLM first chunk, first voiced piece,
    its audio)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.totals = {"started": 0, "adopted": 0, "discarded": 0}
        self.reply_stages: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("session ended; speculative replies"):
            for key, value in record.args.items():  # logging unwraps a lone dict argument
                self.totals[key] += value
        elif record.msg.startswith("reply %s stages"):
            self.reply_stages.append(record.args[1])

    def stage_p50(self, stage: str) -> float:
        return percentile([s[stage] for s in self.reply_stages if stage in s], 50)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 prompts per mode and a 15 s soak")
    parser.add_argument("--llm", default="smollm2", help="LLM engine (default: the bundled smollm2)")
    parser.add_argument("--vad", default="silero")
    parser.add_argument("--prompts", type=int, default=None)
    parser.add_argument("--soak-seconds", type=float, default=None)
    args = parser.parse_args()
    n_prompts = args.prompts or (3 if args.quick else 20)
    soak_seconds = args.soak_seconds or (15.0 if args.quick else 120.0)

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    started = time.perf_counter()
    engines = load_engines(vad=args.vad, llm=args.llm)
    print(f"engines loaded in {time.perf_counter() - started:.1f} s: {engines.info}", flush=True)
    prompts = []
    # The user speaks with espeak-ng's "echo" (male) voice whatever the server's TTS, so the
    # prompts, and the ASR figures, stay those of earlier runs.
    user = EspeakTTS()
    for text in PROMPTS[:n_prompts]:
        spoken = to_pcm16(user.synthesize(text, voice="echo"))
        prompts.append((text, bytes(2 * RATE * LEAD_MS // 1000) + spoken + bytes(2 * RATE * 1200 // 1000)))

    counter = ServerLog()
    server_log = logging.getLogger("rtvoice_widget.server")
    server_log.setLevel(logging.DEBUG)
    server_log.addHandler(counter)
    cold = measure_cold_start(engines)
    stages = measure_stages(engines, prompts)
    wer_other_leads = {lead: asr_wer(engines, prompts, lead_ms=lead) for lead in OTHER_LEADS_MS}
    wer_greedy = asr_wer(engines, prompts, fallback_logprob=None)
    asr_stats_before = dict(getattr(engines.asr, "stats", {}))
    with LocalRealtimeServer(engines=engines, progress=None) as shipped, \
            LocalRealtimeServer(engines=engines, progress=None, speculative_reply=False) as at_stop, \
            LocalRealtimeServer(engines=engines, progress=None, partial_interval_ms=None) as quiet, \
            LocalRealtimeServer(engines=engines, progress=None, speculative=False) as baseline:
        print("latency: shipped = speculative transcription + speculative reply + partials every 1 s; "
              "reply-at-stop = the same but the reply starts at speech_stopped; no-partials = shipped without "
              "periodic partials; baseline = transcribe after speech_stopped", flush=True)
        results = measure_latency({"shipped": shipped.url, "reply-at-stop": at_stop.url, "no-partials": quiet.url,
                                   "baseline": baseline.url}, prompts, engines)
        speculation = dict(counter.totals)  # shipped and no-partials together, before the soak
        asr_stats = {k: v - asr_stats_before.get(k, 0) for k, v in getattr(engines.asr, "stats", {}).items()}
        fast, no_partials, slow = results["shipped"], results["no-partials"], results["baseline"]
        reply_at_stop = results["reply-at-stop"]
        print(f"soak: 4 sessions for {soak_seconds:.0f} s", flush=True)
        soaked = soak(shipped.url, prompts, soak_seconds)

    wer = [word_errors(t["prompt"], t.get("transcript", "")) for t in fast["turns"]]
    print()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (on 2 cores; numbers above "
          f"that are wall-clock inflate with it)")
    print(f"voice-to-voice (speech_stopped -> first audio), {len(prompts)} prompts:")
    print(f"  speculative: p50 {fast['p50']:.0f} ms, p90 {fast['p90']:.0f} ms "
          f"(wait for transcript p50 {fast['asr_wait_p50']:.0f} ms, transcript -> first audio p50 "
          f"{fast['after_transcript_p50']:.0f} ms); missing {fast['missing']}, errors {fast['errors']}")
    print(f"  reply at stop: p50 {reply_at_stop['p50']:.0f} ms, p90 {reply_at_stop['p90']:.0f} ms "
          f"(wait for transcript p50 {reply_at_stop['asr_wait_p50']:.0f} ms, transcript -> first audio p50 "
          f"{reply_at_stop['after_transcript_p50']:.0f} ms)")
    print(f"  no partials: p50 {no_partials['p50']:.0f} ms, p90 {no_partials['p90']:.0f} ms "
          f"(wait for transcript p50 {no_partials['asr_wait_p50']:.0f} ms)")
    print(f"  baseline:    p50 {slow['p50']:.0f} ms, p90 {slow['p90']:.0f} ms "
          f"(wait for transcript p50 {slow['asr_wait_p50']:.0f} ms)")
    print(f"  speculative replies (shipped + no-partials): {speculation['started']} started, "
          f"{speculation['adopted']} adopted, {speculation['discarded']} discarded; the other turns' "
          f"speculative transcript came after speech_stopped")
    print(f"  ratio shipped/baseline p50: {fast['p50'] / slow['p50']:.2f}; "
          f"shipped/reply-at-stop p50: {fast['p50'] / reply_at_stop['p50']:.2f}")
    print(f"reply jobs in the servers (all four, from the job's start), p50: LLM first chunk "
          f"{counter.stage_p50('llm_first_chunk_ms'):.0f} ms, first voiced piece {counter.stage_p50('first_piece_ms'):.0f} ms, "
          f"its audio {counter.stage_p50('first_audio_ms'):.0f} ms ({len(counter.reply_stages)} replies)")
    print(f"stages alone: ASR p50 {stages['asr_ms_p50']:.0f} ms (RTF {stages['asr_rtf']:.2f}), "
          f"LLM first token p50 {stages['llm_first_token_ms_p50']:.0f} ms, LLM first voiced piece p50/p90 "
          f"{stages['llm_first_piece_ms_p50']:.0f}/{stages['llm_first_piece_ms_p90']:.0f} ms, its TTS p50 "
          f"{stages['tts_first_clause_ms_p50']:.0f} ms (TTS RTF {stages['tts_rtf']:.3f})")
    print(f"LLM first evaluation after load (a cold first turn's extra cost, now paid at server start): "
          f"{cold['first_eval_ms']:.0f} ms; the same prompt cached: {cold['cached_ms']:.0f} ms")
    print(f"ASR WER: engine alone {stages['wer']:.1%}, through the server "
          f"{sum(e for e, _ in wer) / max(1, sum(n for _, n in wer)):.1%}")
    print(f"  baselines, engine alone: speech at {'/'.join(str(lead) for lead in OTHER_LEADS_MS)} ms instead of "
          f"{LEAD_MS} ms into the window {'/'.join(f'{w:.1%}' for w in wer_other_leads.values())}; greedy only "
          f"(no beam-search fallback) {wer_greedy:.1%}")
    if asr_stats.get("decoded"):
        print(f"  the servers' transcriptions redone with beam search: {asr_stats['redone']} of {asr_stats['decoded']}")
    print(f"soak: {soaked['turns']} turns, {len(soaked['errors'])} errors, RSS {soaked['rss_mb_start']:.0f} -> "
          f"{soaked['rss_mb_end']:.0f} MB (second half growth {soaked['rss_growth_second_half']:+.1%})")
    for error in soaked["errors"][:5]:
        print("  soak error:", error)

    failures = []
    if not fast["p50"] <= GOAL_P50_MS:
        failures.append(f"p50 latency {fast['p50']:.0f} ms > {GOAL_P50_MS:.0f} ms")
    if fast["missing"] or fast["errors"]:
        failures.append(f"{fast['missing']} turns without audio, {fast['errors']} errors")
    if soaked["errors"] or soaked["turns"] == 0:
        failures.append(f"soak: {len(soaked['errors'])} errors in {soaked['turns']} turns")
    if soaked["rss_growth_second_half"] > 0.10:
        failures.append(f"RSS grew {soaked['rss_growth_second_half']:.1%} in the soak's second half")
    for failure in failures:
        print("GOAL MISSED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
