"""Turn-taking benchmark: the gap a person hears, and replies that cut in on a pause.

    python bench/bench_turns.py            # 12 complete prompts, 14 paused ones, each mode
    python bench/bench_turns.py --quick    # 3 + 3 (smoke)
    python bench/bench_turns.py --first-words 4   # and semantic_vad with a 4-word first piece

Prompts are generated with espeak-ng (voice "echo", whatever the server's TTS) and streamed to the
local server as a microphone would: 20 ms chunks, each sent once its 20 ms have "passed".

1. Gap = end of the user's voice → first ``response.output_audio.delta`` at the client. End of
   voice is the end of the prompt's last voiced 20 ms frame (``rtvoice_widget.turn_table.voice_end_ms``,
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
   per turn (``LocalRealtimeServer.turn_end_stats``: the turn-ending asks, answered complete /
   incomplete / dropped, and the early asks that may only start the speculation).

Variants on complete prompts, interleaved with the others prompt by prompt: ``semantic`` (the
defaults), ``sem-before`` (as before issue 12's latency work: no second ask, the partials budget
from the 2 s longest wait, first voiced piece cut at 6 words), ``sem-prev`` / ``srv-prev``
(``semantic_vad`` / ``server_vad`` 500 ms with the defaults before the stage-by-stage pass: a
4-word first piece, no cap on the second, the speculative transcription at 160 ms; ``--no-prev``
skips them) and, with ``--first-words N`` (repeatable), ``sem-firstN`` (the defaults with the
first voiced piece cut at N words), with ``--early-ask-ms X``, ``sem-earlyX`` (the early ask at
X ms of silence, on a server of its own; 0 gives ``sem-noearly``), with
``--speculation-delay-ms X``, ``sem-specX`` (the speculative transcription at X ms of silence,
on a server of its own), with ``--no-prefill-variant``, ``sem-noprefill`` (no LLM prefill of the
partial transcripts while the user speaks, on a server of its own), with ``--batch1-variant``,
``sem-batch1`` (the reply's prompt and its first words on 1 thread, as before, not 2) and
``sem-nolead`` (the prompt on 2 threads, the first words on 1). Module-level settings are switched around each stream (one runs at a
time). ``--complete-only`` skips the paused prompts; ``--pause-ms`` sets their pause (700 by
default: shorter than auto's 900 ms recheck); ``--no-question-variant`` adds ``sem-noquestion``
(without the recheck's heard-question rule, ``segmenter.HEARD_QUESTION_ENDS_TURN``) to the
complete and the paused prompts. ``--stages`` prints each complete turn's
stage marks (``turn_stages.py``: silence heard, speculative transcription, end-of-turn decision,
LLM prompt evaluation, first voiced piece, its audio, first delta) and their medians, and
whether playback would stall after the first piece (the second piece's transcript delta
arriving after the first piece's audio, counted from its first delta, has played).

Goals (exit status 1 when missed): semantic_vad gap p50 <= 400 ms and p90 <= 600 ms on complete
prompts; false cut-ins <= 5 % of the hesitation prompts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import forget_last_question  # noqa: E402

import rtvoice_widget.server.connection as server_connection  # noqa: E402
import rtvoice_widget.server.dialogue.segmenter as server_segmenter  # noqa: E402
import rtvoice_widget.server.pipeline as server_pipeline  # noqa: E402
import rtvoice_widget.server.settings as server_settings  # noqa: E402
from rtvoice_widget.server import LocalRealtimeServer  # noqa: E402
from rtvoice_widget.server.engines import load_engines  # noqa: E402
from rtvoice_widget.server.engines.tts import EspeakTTS  # noqa: E402
from rtvoice_widget.turn_table import voice_end_ms  # noqa: E402
from turn_stages import STAGES, StageRecorder  # noqa: E402

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


def _old_partial_budget_ms(vad, partial_interval_ms):
    # Before issue 12: half the VAD's silence duration, semantic_vad's 2 s longest wait included.
    return min(partial_interval_ms or 0, vad.silence_duration_ms / 2 if vad else 0)


#: Module settings per variant (restored after each stream); early asks are a server knob.
PATCHES = {
    "sem-before": {
        (server_connection, "partial_budget_ms"): _old_partial_budget_ms,
        (server_settings, "SEMANTIC_TURN_END"): {k: (*v[:3], None, None) for k, v in server_settings.SEMANTIC_TURN_END.items()},
        (server_pipeline, "FIRST_PIECE_MAX_WORDS"): 6,
        (server_pipeline, "SECOND_PIECE_MAX_WORDS"): None,
    },
    # The defaults before the stage-by-stage pass on issue 12 (4-word first piece, no cap on the
    # second; the speculative transcription at 160 ms of silence, on the sem-before / *-prev servers).
    "sem-prev": {(server_pipeline, "FIRST_PIECE_MAX_WORDS"): 4, (server_pipeline, "SECOND_PIECE_MAX_WORDS"): None},
    "srv-prev": {(server_pipeline, "FIRST_PIECE_MAX_WORDS"): 4, (server_pipeline, "SECOND_PIECE_MAX_WORDS"): None},
}
#: LocalRealtimeServer options of the sem-before and *-prev servers.
PREVIOUS_SERVER = {"speculation_delay_ms": 160.0}


class patched:
    """Switch a variant's module settings on for one stream."""

    def __init__(self, mode: str) -> None:
        self.changes = PATCHES.get(mode, {})
        self.saved: dict = {}

    def __enter__(self) -> None:
        for (module, name), value in self.changes.items():
            self.saved[(module, name)] = getattr(module, name)
            setattr(module, name, value)

    def __exit__(self, *exc) -> None:
        for (module, name), value in self.saved.items():
            setattr(module, name, value)


def session_for(mode: str) -> dict:
    if mode.startswith("sem"):
        turn = {"type": "semantic_vad", "eagerness": "auto"}
    elif mode.startswith("srv"):
        turn = {"type": "server_vad", "silence_duration_ms": 500}
    else:
        turn = {"type": "server_vad", "silence_duration_ms": int(mode.removeprefix("server"))}
    return {"type": "realtime", "audio": {"input": {"turn_detection": turn}}}


async def stream(url: str, mode: str, pcm: bytes, *, stop_at_first_audio: bool, linger: bool = False) -> dict:
    """Stream ``pcm`` paced like a microphone; return wall-clock marks (relative to the stream's
    start) and the turn events. Ends at the first audio delta (``stop_at_first_audio``), else
    when the whole stream is sent: its 2.5 s tail outlasts every mode's longest silence.
    ``linger``: stop at the second voiced piece instead (its transcript delta, or response.done),
    noting when it came (``second_piece``) and how much audio the first piece had."""
    from websockets.asyncio.client import connect

    marks: dict[str, float] = {}
    events: list[dict] = []
    audio_ms = [0.0]
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
                if kind == "input_audio_buffer.speech_stopped":
                    marks.setdefault("speech_stopped", now)
                if kind == "response.output_audio.delta":
                    audio_ms[0] += len(base64.b64decode(event["delta"])) / 48
                if kind == "response.output_audio.delta" and "first_audio" not in marks:
                    marks["first_audio"] = now
                    marks["response_id"] = event["response_id"]
                    if stop_at_first_audio and not linger:
                        finished.set()
                        return
                if linger and "first_audio" in marks and (
                        kind == "response.output_audio_transcript.delta" or kind == "response.done"):
                    if kind == "response.output_audio_transcript.delta":
                        marks["second_piece"] = now
                    marks["first_piece_audio_ms"] = audio_ms[0]
                    finished.set()
                    return

        await ws.send(json.dumps({"type": "session.update", "session": session_for(mode)}))
        read = asyncio.create_task(reader())
        step = 2 * RATE * CHUNK_MS // 1000
        start = time.perf_counter()
        marks["t0"] = start
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


def complete_gaps(servers: dict[str, str], prompts: list[tuple[str, bytes]], engines,
                  recorder: StageRecorder | None = None) -> tuple[dict, dict, dict]:
    """Per mode: the gaps (ms), how much audio after the voice end each turn ended at
    (``speech_stopped.audio_end_ms`` - voice end: the turn detection's share of the gap), and,
    with a ``recorder``, each turn's stage marks (``turn_stages.py``)."""
    gaps: dict[str, list[float]] = {mode: [] for mode in servers}
    detect: dict[str, list[float]] = {mode: [] for mode in servers}
    stages: dict[str, list[dict]] = {mode: [] for mode in servers}
    for text, pcm in prompts:
        voice_end = voice_end_ms(np.frombuffer(pcm, "<i2"), RATE, len(pcm) / 48)
        for mode, url in servers.items():
            forget_last_question(engines)
            if recorder is not None:
                recorder.reset()
            with patched(mode):
                turn = asyncio.run(stream(url, mode, pcm, stop_at_first_audio=True, linger=recorder is not None))
            first = turn["marks"].get("first_audio")
            if recorder is not None:
                marks = turn["marks"]
                ms = lambda key: marks[key] * 1000 if key in marks else None  # noqa: E731
                stages[mode].append(recorder.turn(marks["t0"], voice_end, ms("speech_stopped"), ms("first_audio"),
                                                  marks.get("response_id")))
                if "second_piece" in marks:
                    # Playback of the first piece (from its first delta) ends before the second arrives.
                    stages[mode][-1]["stall"] = max(0.0, (marks["second_piece"] - marks["first_audio"]) * 1000
                                                    - marks["first_piece_audio_ms"])
                print_stages(mode, stages[mode][-1])
            gap = first * 1000 - voice_end if first is not None else float("nan")
            gaps[mode].append(gap)
            stops = [e["audio_end_ms"] for e in turn["events"] if e["type"] == "input_audio_buffer.speech_stopped"]
            detected = stops[0] - voice_end if stops else float("nan")
            detect[mode].append(detected)
            print(f"  [{mode:>10}] gap {gap:6.0f} ms (turn ended {detected:4.0f} ms of audio after the voice)  {text!r}",
                  flush=True)
    return gaps, detect, stages


def _fmt(value) -> str:
    return "   -" if value is None else f"{value:4.0f}"


def print_stages(mode: str, turn: dict) -> None:
    """One turn's stage marks, ms after the end of the voice (see ``turn_stages.py``)."""
    print(f"  [{mode:>10}] stages: " + " ".join(f"{name} {_fmt(turn.get(name))}" for name in STAGES)
          + f" | stall {_fmt(turn.get('stall'))} | audio: silence {_fmt(turn.get('silence_audio'))}, "
          f"llm eval {turn.get('llm_eval_tokens')} tok, "
          f"turn-end cpu {_fmt(turn.get('turn_end_cpu_ms'))}, "
          f"{'speculative' if turn.get('speculative') else 'at stop'}",
          flush=True)


def stage_medians(stages: dict[str, list[dict]]) -> None:
    print("stage marks, p50 over turns, ms after the end of the voice (turn_stages.py):")
    print("  " + " " * 12 + " ".join(f"{name[:11]:>11}" for name in STAGES))
    for mode, turns in stages.items():
        row = []
        for name in STAGES:
            values = [t[name] for t in turns if t.get(name) is not None]
            row.append(f"{percentile(values, 50):11.0f}" if values else f"{'-':>11}")
        speculative = sum(1 for t in turns if t.get("speculative"))
        stalls = [t["stall"] for t in turns if t.get("stall") is not None]
        print(f"  {mode:>12}" + " ".join(row) + f"  ({speculative}/{len(turns)} speculative replies used; playback "
              f"would stall after the first piece in {sum(1 for x in stalls if x > 0)}/{len(stalls)}, "
              f"p90 {percentile(stalls, 90):.0f} ms)")


def cut_ins(servers: dict[str, str], prompts: list[tuple[str, bytes, float]], engines) -> dict[str, list[bool]]:
    """Per mode, per prompt: whether a turn ended inside the pause (before ``resume_ms``)."""
    out: dict[str, list[bool]] = {mode: [] for mode in servers}
    for text, pcm, resume_ms in prompts:
        for mode, url in servers.items():
            forget_last_question(engines)
            with patched(mode):
                turn = asyncio.run(stream(url, mode, pcm, stop_at_first_audio=False))
            stops = [e["audio_end_ms"] for e in turn["events"] if e["type"] == "input_audio_buffer.speech_stopped"]
            cut = any(stop < resume_ms for stop in stops)
            out[mode].append(cut)
            print(f"  [{mode:>10}] {'CUT IN' if cut else 'ok    '} stops at {stops} (resume {resume_ms:.0f})  {text!r}",
                  flush=True)
    return out


def wait_stats(server: LocalRealtimeServer, timeout_s: float = 5.0) -> dict:
    """The server's summed end-of-turn stats once its connections have ended (they are added
    as each one closes, on the server's loop)."""
    deadline = time.monotonic() + timeout_s
    stats = server.turn_end_stats
    while time.monotonic() < deadline:
        time.sleep(0.2)
        again = server.turn_end_stats
        if again == stats:
            break
        stats = again
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 complete and 3 paused prompts")
    parser.add_argument("--llm", default="auto", help="the default engines pick qwen2.5-1.5b (qwen2.5-0.5b, then smollm2, without its wheels)")
    parser.add_argument("--vad", default="silero")
    parser.add_argument("--first-words", type=int, action="append", default=[],
                        help="also run semantic_vad with the first voiced piece cut at this many words; repeatable")
    parser.add_argument("--no-before", action="store_true", help="skip the sem-before variant")
    parser.add_argument("--no-prev", action="store_true", help="skip the sem-prev and srv-prev variants")
    parser.add_argument("--early-ask-ms", type=float, action="append", default=[],
                        help="also run semantic_vad with the early ask at this silence (0: without it); repeatable")
    parser.add_argument("--speculation-delay-ms", type=float, action="append", default=[],
                        help="also run semantic_vad with the speculative transcription at this silence; repeatable")
    parser.add_argument("--no-prefill-variant", action="store_true",
                        help="also run semantic_vad without the LLM prefill of the partial transcripts (sem-noprefill)")
    parser.add_argument("--complete-only", action="store_true", help="skip the paused prompts")
    parser.add_argument("--no-question-variant", action="store_true",
                        help="and sem-noquestion: semantic_vad without the recheck's heard-question rule "
                             "(segmenter.HEARD_QUESTION_ENDS_TURN), on complete and paused prompts")
    parser.add_argument("--pause-ms", type=float, default=PAUSE_MS,
                        help=f"the paused prompts' mid-sentence pause (default {PAUSE_MS} ms)")
    parser.add_argument("--lead-words", type=int, action="append", default=[],
                        help="and sem-leadN: the reply's first N words generated on two threads (repeatable)")
    parser.add_argument("--batch1-variant", action="store_true",
                        help="and sem-batch1 (semantic_vad, the reply's prompt and first words on 1 thread, as before) "
                             "and sem-nolead (the prompt on 2 threads, the first words on 1)")
    parser.add_argument("--stages", action="store_true",
                        help="print each complete turn's stage marks (silence, ASR, LLM, TTS; turn_stages.py)")
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
            resume_ms = voice_end_ms(np.frombuffer(head, "<i2"), RATE, len(head) / 48) + args.pause_ms
            # The pause runs from the end of the voice (espeak's own trailing silence included).
            head = head[: int(resume_ms - args.pause_ms) * 48] + silence(int(args.pause_ms))
            out.append((f"{first} ... {rest}", head + speak(rest) + silence(2500), resume_ms))
        return out

    hesitation_prompts, bare_prompts = paused(hesitation), paused(bare)

    variants = ["semantic"] + ([] if args.no_before else ["sem-before"]) + ([] if args.no_prev else ["sem-prev"])
    for words in args.first_words:
        name = f"sem-first{words}"
        PATCHES[name] = {(server_pipeline, "FIRST_PIECE_MAX_WORDS"): words}
        variants.append(name)
    early_variants = {f"sem-early{ms:.0f}" if ms else "sem-noearly": {"early_ask_ms": ms or None}
                      for ms in args.early_ask_ms}
    early_variants.update({f"sem-spec{ms:.0f}": {"speculation_delay_ms": ms} for ms in args.speculation_delay_ms})
    if args.no_prefill_variant:
        early_variants["sem-noprefill"] = {"prefill": False}
    if args.batch1_variant:
        if not hasattr(engines.llm, "batch_threads"):
            parser.error("--batch1-variant needs a llama.cpp LLM")
        PATCHES["sem-batch1"] = {(engines.llm, "batch_threads"): 1}
        PATCHES["sem-nolead"] = {(engines.llm, "lead_words"): 0}
        variants += ["sem-batch1", "sem-nolead"]
    if args.no_question_variant:
        PATCHES["sem-noquestion"] = {(server_segmenter, "HEARD_QUESTION_ENDS_TURN"): False}
        variants.append("sem-noquestion")
    for words in args.lead_words:
        PATCHES[f"sem-lead{words}"] = {(engines.llm, "lead_words"): words}
        variants.append(f"sem-lead{words}")
    variants += list(early_variants)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(LocalRealtimeServer(engines=engines, progress=None))
        before = stack.enter_context(LocalRealtimeServer(engines=engines, progress=None, early_ask_ms=None,
                                                         **PREVIOUS_SERVER))
        previous = stack.enter_context(LocalRealtimeServer(engines=engines, progress=None, **PREVIOUS_SERVER))
        others = {name: stack.enter_context(LocalRealtimeServer(engines=engines, progress=None, **options))
                  for name, options in early_variants.items()}
        url = server.url
        urls = {name: before.url if name == "sem-before" else previous.url if name.endswith("-prev")
                else others[name].url if name in others else url for name in variants}
        print("complete prompts: gap = end of voice -> first audio delta", flush=True)
        recorder = stack.enter_context(StageRecorder()) if args.stages else None
        servers = {**urls, "server500": url, **({} if args.no_prev else {"srv-prev": previous.url})}
        gaps, detect, stages = complete_gaps(servers, complete, engines, recorder)
        stats_complete = wait_stats(server)
        other_stats = {name: wait_stats(other) for name, other in others.items()}
        before_complete = wait_stats(before) if "sem-before" in variants else None
        print(f"paused prompts ({args.pause_ms:.0f} ms mid-sentence pause): false cut-ins", flush=True)
        modes = {"semantic": url, **({"sem-noquestion": url} if args.no_question_variant else {}),
                 "server200": url, "server500": url}
        if args.complete_only:
            hesitation_prompts, bare_prompts = [], []
        cuts_hesitation = cut_ins(modes, hesitation_prompts, engines)
        cuts_bare = cut_ins(modes, bare_prompts, engines)
        stats_all = wait_stats(server)

    print()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores)")
    base = gaps["server500"]
    print(f"gap end of voice -> first audio, {len(complete)} complete prompts (same run, interleaved):")
    for name in gaps:
        g = gaps[name]
        print(f"  {name:>12}: p50 {percentile(g, 50):4.0f} ms, p90 {percentile(g, 90):4.0f} ms, "
              f"ratio to server500 p50 {percentile(g, 50) / percentile(base, 50):.2f} "
              f"(turn ended p50 {percentile(detect[name], 50):.0f} ms after the voice)")
    if args.stages:
        stage_medians(stages)
        asr_stats = getattr(engines.asr, "stats", None)
        if asr_stats:
            print(f"ASR: {asr_stats['decoded']} decodes, {asr_stats['redone']} redone with beam search "
                  "(greedy below the confidence bar)")
    sem = gaps["semantic"]
    for label, cuts, n in (("hesitation", cuts_hesitation, len(hesitation_prompts)), ("bare", cuts_bare, len(bare_prompts))):
        if not n:
            continue
        print(f"false cut-ins, {n} {label} prompts: " + ", ".join(
            f"{mode} {sum(c)}/{n} ({sum(c) / n:.0%})" for mode, c in cuts.items()))
    n_semantic_complete = len(complete) * (len(variants) - ("sem-before" in variants) - ("sem-prev" in variants)
                                           - len(others))
    n_paused = len(hesitation_prompts) + len(bare_prompts)
    paused_stats = {k: stats_all[k] - stats_complete[k] for k in stats_all}
    for label, stats, turns in (("complete prompts", stats_complete, n_semantic_complete),
                                ("paused prompts", paused_stats, n_paused),
                                ("complete prompts, sem-before", before_complete, len(complete)),
                                *((f"complete prompts, {name}", st, len(complete)) for name, st in other_stats.items())):
        if stats is None or not turns:
            continue
        decisions = stats["asked"] + stats["early"]
        print(f"end-of-turn model, {label} ({turns} turns): {decisions / turns:.1f} decisions per turn "
              f"({stats['asked'] / turns:.1f} turn-ending: {stats['complete']} complete "
              f"({stats['heard_question']} on a heard question), {stats['incomplete']} "
              f"incomplete, {stats['dropped']} dropped; {stats['early'] / turns:.1f} early, "
              f"{stats['early_speculated']} started the speculation), "
              f"{stats['cpu_ms'] / max(decisions, 1):.0f} ms CPU per decision")

    missed = []
    if not percentile(sem, 50) <= GOAL_P50_MS:
        missed.append(f"gap p50 {percentile(sem, 50):.0f} > {GOAL_P50_MS:.0f} ms")
    if not percentile(sem, 90) <= GOAL_P90_MS:
        missed.append(f"gap p90 {percentile(sem, 90):.0f} > {GOAL_P90_MS:.0f} ms")
    rate = sum(cuts_hesitation["semantic"]) / max(len(hesitation_prompts), 1)
    if rate > GOAL_CUT_INS:
        missed.append(f"false cut-ins {rate:.0%} > {GOAL_CUT_INS:.0%}")
    print("goals: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
