"""Full duplex on speakers (issue 15): ``python bench/bench_duplex.py [--turns 20] [--tries 20]``.

One run, four variants in turn, each in a fresh Chromium on the same PulseAudio rig with a real
echo path (tests/duplex_rig.py: the speaker's output reaches the mic ``--echo-db`` below it,
~30 ms late; the user's voice is played into the mic bus), against the real local server
(Silero VAD, Whisper-base, the echo LLM, espeak-ng) and a real kernel-side VoiceChat:

- ``aec``: the default: full duplex once the page's echo check passed (Chromium's canceller on),
  the mic read from its track by a worker, the double-talk detector on the raw mic
  (js/lib/double-talk.js) sending the raw mic for a voice the canceller still hides; per try
  ``dtd_ms``, its first detection after the voice started (the page's clock, the same as the
  bench's) and ``double_talk``, whether the kernel logged that it acted (``mic.double_talk``),
  per turn ``dtd_false``, its detections with nobody talking;
- ``hold``: ``aec`` without the detector (the speech hold alone: the default before it);
- ``half``: today's half-duplex on speakers (``full_duplex=False``: the mic is held while the
  assistant is audible);
- ``none``: no cancellation: the canceller off and the mic always open (``headphones=True``);
- ``match`` (only when asked for): ``aec`` with the echo match experiment on
  (js/lib/echo-match.js, off by default);
- ``graph`` (only when asked for): ``aec`` with the mic taken through the Web Audio graph's
  input, the default before the track's reader moved to a worker;
- ``dtd`` (only when asked for): ``aec`` with the detector measuring only (``act: false``).

``--bursts MS``: in every turn, 1-3 s into the reply, copy MS ms of the speaker's output into
the mic bus on top of the rig's echo (tests/duplex_rig.py ``MicBusVoice.burst``), a stand-in for
the echo bursts Chromium's canceller lets through now and then (docs/DUPLEX.md E); a burst the
server heard is a self-interruption (``bursts_heard``).

Per variant: ``--turns`` assistant turns of 5 s or more played on the speaker with nobody
talking (a self-interruption: the server heard speech in them, or the reply was stopped);
``--tries`` barge-ins: the user's WAV starts 1-2.5 s into a reply, and the detection latency is
from its first sample reaching the mic bus (the "air": tests/duplex_rig.py's MicBusVoice) to the
``speech_started`` event arriving in the kernel; ``voice_in_mic_ms`` is when the kernel's
recording of the mic first reached -45 dBFS after it (rig, capture, the canceller's double-talk
onset); the mic level while only the
assistant talks (ERLE = the ``none`` level minus this one; in ``aec`` the page's own measure
per reply, ``echo.measured``, since frames that do not look like speech never leave the page;
elsewhere what the kernel recorded from the mic); the word
error rate of the user's words (all transcripts of the try, Whisper-base); and whether each
barge-in's truncation is exactly the position the player reported.

Goals (variant ``aec``): 0 self-interruptions, >= 95 % of barge-ins detected within 300 ms,
ERLE >= 25 dB; exits 1 when one is missed. ``--quick``: 2 turns and 2 tries.
Results: bench/duplex/results/bench_duplex.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO)]  # the rig and the page harness live with the tests

from duplex_rig import DuplexChat, PulseRig, speech_wav, wait  # noqa: E402
from widget_harness.bridge import BrowserBridge, serve_static  # noqa: E402

from rtvoice_widget.server.engines.evaluation import word_error_rate  # noqa: E402

# Each becomes "You said: <text>." in espeak-ng's voice: 5.5-7 s.
REPLIES = [
    "the quick brown fox jumps over the lazy dog while seven tired sailors row their small boat across the harbour",
    "tomorrow morning the weather will be cloudy with light rain in the north and sunny spells later in the south",
    "to bake bread mix flour water salt and yeast then knead the dough and leave it to rise for about two hours",
    "the museum opens at nine on weekdays and at ten on weekends and the guided tours start every hour on the hour",
    "our train leaves platform four at half past eight and arrives in the city just after eleven if it runs on time",
    "remember to water the plants on the balcony twice a week and to move them inside when the nights get colder",
    "the library has a large collection of old maps and letters that visitors can read in the quiet reading room",
    "a good night of sleep helps memory and mood so try to go to bed at the same time and keep the room dark",
    "the river runs through three towns before it reaches the sea and in spring it often floods the low fields",
    "she planted tomatoes beans and carrots in the garden and by the end of summer they had more than they could eat",
]
USERS = [
    ("stop please, tell me about the trains to Boston instead", "en-gb+f3"),
    ("wait, what time does the museum open on Sunday", "en-us+m3"),
    ("hold on, I need the recipe for pancakes", "en-gb+f3"),
    ("sorry to interrupt, is it going to snow tomorrow", "en-us+m3"),
]
VARIANTS = {
    "aec": ({}, True),
    "half": ({"full_duplex": False}, True),
    "none": ({"headphones": True}, False),
    "match": ({}, True),
    "graph": ({}, True),
    "hold": ({}, True),
    "dtd": ({}, True),
}
# Page switches set before the widget loads (js/lib/capture.js): the double-talk detector's
# options (``--dtd-options``, true: its defaults) and its reports kept for the results, where it
# is on; ``match`` adds the echo match experiment (js/lib/echo-match.js, off by default), its
# verdicts on held frames kept; ``graph`` takes the mic through the Web Audio graph's input
# instead of reading it from its track (the default before the worker reader).
DTD = "window.rtvDoubleTalk = %(dtd)s; window.rtvDoubleTalkLog = [];"
PAGE_SCRIPTS = {"aec": DTD, "half": DTD, "none": DTD,
                "match": DTD + " window.rtvEchoMatch = %(match)s; window.rtvEchoMatchLog = [];",
                "graph": DTD + " window.rtvMicFromTrack = false;",
                "hold": "window.rtvDoubleTalk = false;",
                "dtd": "(() => { const o = %(dtd)s; window.rtvDoubleTalk = {...(o === true ? {} : o), act: false}; })();"
                       " window.rtvDoubleTalkLog = [];"}
DTD_REPORTS = {"aec", "match", "graph", "dtd"}  # the variants whose tries and turns report the detector's
GOAL_MS = 300


def dbfs(pcm16: np.ndarray) -> float:
    x = pcm16.astype(np.float64) / 32768.0
    return float(10 * np.log10(np.mean(x * x) + 1e-10)) if len(x) else float("nan")


def settle(duplex: DuplexChat) -> None:
    """Between trials: nothing playing, nobody heard, a quiet second."""
    duplex.chat.mode = "mute"
    duplex.chat.interrupt()
    time.sleep(1.2)
    duplex.chat.mode = "continuous"
    time.sleep(0.3)


def run_variant(name: str, server, playwright, args, user_wavs, base: str) -> dict:
    chat_options, ec = VARIANTS[name]
    rng = random.Random(15)
    burst_rng = random.Random(16)  # its own: the barge-ins' offsets stay those of runs without bursts
    out: dict = {"variant": name, "turns": [], "tries": []}
    with PulseRig(echo_db=args.echo_db) as rig, BrowserBridge() as bridge:
        forced = {"autoGainControl": False} if args.agc_off else {}
        ctx = rig.launch(playwright, Path(tempfile.mkdtemp(prefix="duplex-profile")), echo_cancellation=ec, **forced)
        ctx.add_init_script(PAGE_SCRIPTS[name] % {"dtd": args.dtd_options or "true", "match": args.match_options or "true"})
        duplex = DuplexChat(server.url, ctx.new_page(), bridge, **chat_options)
        voice = rig.voice()
        try:
            duplex.open(base)
            session = duplex.chat.session
            for i in range(args.turns):
                if name in DTD_REPORTS:
                    dtd_hits(duplex)  # what came before this turn is not its
                try:
                    item, asked = duplex.assistant_says(REPLIES[i % len(REPLIES)])
                except AssertionError as exc:  # e.g. its reply to its own echo was still going
                    out["turns"].append({"audio_ms": 0, "outcome": str(exc), "self_interrupted": True, "mic_dbfs": None})
                    settle(duplex)
                    continue
                start_ms = session.now_ms()
                turn_at = time.time()
                burst_at = None
                if args.bursts:
                    # Past the onset guard (600 ms, mic closed) and before the reply's end.
                    time.sleep(burst_rng.uniform(1.0, 3.0))
                    burst_at = time.time()
                    voice.burst(args.bursts, args.burst_db)
                try:
                    outcome = duplex.wait_over(item, asked, timeout=40)
                except AssertionError:
                    outcome = "never ended"
                end_ms = session.now_ms()
                heard = [r for t, r in duplex.rows("input_audio_buffer.speech_started", asked)]
                # The mic while only the assistant talks; the first 2.5 s of a variant's first
                # reply are the echo check's (mic held), so they are left out everywhere.
                level = dbfs(duplex.chat.recording.user_pcm16(start_ms + (2500 if i == 0 else 500), end_ms))
                turn = {"audio_ms": round(duplex.item(item).audio_received_ms), "outcome": outcome,
                        "self_interrupted": bool(heard) or outcome != "played", "mic_dbfs": round(level, 1)}
                if burst_at is not None:
                    turn["burst"] = burst_report(duplex, name, burst_at, args.bursts)
                if name in DTD_REPORTS:  # detections with only the assistant talking (+ the burst)
                    hits, state = dtd_hits(duplex)
                    turn["dtd_false"] = [{"after_start_ms": round(h["t"] - turn_at * 1000), "score": h["score"],
                                          "excess_db": round(h["excessDb"], 1), "bands_db": h.get("bandsDb"),
                                          "mic_db": h.get("micDb"), "lag_ms": h.get("lagMs"),
                                          "in_burst": burst_at is not None and burst_at * 1000 <= h["hopT"] <= burst_at * 1000 + args.bursts + 300}
                                         for h in hits]
                    turn["dtd_state"] = state
                    turn["double_talk"] = bool(duplex.rows("mic.double_talk", asked))  # acted on the echo
                out["turns"].append(turn)
                print(f"  {name} turn {i + 1}: {turn}", flush=True)
                settle(duplex)
            # With the mic in full duplex, frames that do not look like speech never leave the page
            # (js/lib/speech-hold.js): what the mic heard is the page's own measure per reply.
            measured = duplex.chat.events.filter(type="echo.measured")
            out["echo_measured"] = [{k: p.get(k) for k in ("return_loss_db", "playback_dbfs", "mic_dbfs", "measured_ms")}
                                    for p in measured.payload]
            for i in range(args.tries):
                wav, text, user_ms = user_wavs[i % len(user_wavs)]
                offset = rng.uniform(1000, 2500)
                if name in DTD_REPORTS:
                    dtd_hits(duplex)  # what came before this try is not its
                try:
                    item, asked = duplex.assistant_says(REPLIES[(i + 3) % len(REPLIES)])
                    wait(lambda: duplex.played_ms(item) >= offset or duplex.rows("playback.flushed", asked),
                         20, "the reply to play a while")
                    if duplex.played_ms(item) < offset:
                        raise AssertionError("the reply stopped before the user spoke (it interrupted itself)")
                except AssertionError as exc:
                    out["tries"].append({"offset_ms": round(offset), "latency_ms": None, "during_playback": False,
                                         "wer": 1.0, "heard": "", "truncation_exact": None, "skipped": str(exc)})
                    print(f"  {name} barge-in {i + 1}: skipped: {exc}", flush=True)
                    settle(duplex)
                    continue
                playing_left = duplex.item(item).audio_received_ms - duplex.played_ms(item)
                before = dtd_hits(duplex)[0] if name in DTD_REPORTS else []
                said, seconds = voice.say(wav)
                said_ms = session.now_ms() + (said - time.time()) * 1000
                try:
                    started = wait(lambda: next(iter(duplex.rows("input_audio_buffer.speech_started", said)), None),
                                   user_ms / 1000 + 4, "speech_started")
                    latency = (started[0] - said) * 1000
                except AssertionError:
                    latency = None
                time.sleep(max(0.0, said + seconds - time.time()))
                # Every turn the user's audio opened is transcribed before the next try.
                time.sleep(1.0)
                wait(lambda: len(duplex.rows("input_audio_buffer.committed", said)) <= len(
                    duplex.rows("conversation.item.input_audio_transcription.completed", said))
                    + len(duplex.rows("conversation.item.input_audio_transcription.failed", said)), 20, "transcripts")
                transcript = " ".join(r.get("text") or "" for _, r in duplex.rows(
                    "conversation.item.input_audio_transcription.completed", said)).strip()
                truncates = [r["payload"] for _, r in duplex.rows("conversation.item.truncate", said)
                             if r["payload"].get("item_id") == item]
                exact = None
                if truncates:
                    played = duplex.item(item).played_ms
                    exact = abs(truncates[0]["audio_end_ms"] - played) < 1.0
                # Where the time goes: from starting the WAV to its voice in what the kernel
                # recorded from the mic (rig, capture, canceller), and from there to the event.
                mic = duplex.chat.recording.user_pcm16(said_ms, said_ms + 3000).astype(np.float64) / 32768
                frames = mic[: len(mic) // 480 * 480].reshape(-1, 480)
                loud = np.flatnonzero(10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-10) > -45)
                onset = float(loud[0] * 20) if len(loud) else None
                try_ = {"offset_ms": round(offset), "reply_left_ms": round(playing_left),
                        "voice_in_mic_ms": onset,
                        "latency_ms": None if latency is None else round(latency),
                        "during_playback": latency is not None and latency < playing_left,
                        "wer": round(word_error_rate([text], [transcript]), 3), "heard": transcript,
                        "truncation_exact": exact}
                if name in DTD_REPORTS:  # the detector's first detection after the voice started
                    hits, state = dtd_hits(duplex)
                    after = [h for h in before + hits if h["t"] >= said * 1000]
                    try_["dtd_ms"] = round(after[0]["t"] - said * 1000) if after else None
                    try_["double_talk"] = bool(duplex.rows("mic.double_talk", said))
                    try_["dtd_hop_ms"] = round(after[0]["hopT"] - said * 1000) if after and after[0]["hopT"] is not None else None
                    try_["dtd_score"] = after[0]["score"] if after else None
                    try_["dtd_before_voice"] = len([h for h in before + hits if h["t"] < said * 1000])
                    try_["dtd_state"] = state
                if name == "match":  # the echo match's verdicts on the voice's first held frames
                    log = duplex.page.evaluate("window.rtvEchoMatchLog.splice(0)")
                    try_["scores"] = [round(r[2], 2) for r in log if r[0] >= said * 1000 and r[1] >= 10 ** (-50 / 20)][:10]
                out["tries"].append(try_)
                print(f"  {name} barge-in {i + 1}: {try_}", flush=True)
                settle(duplex)
            checks = duplex.chat.events.filter(type=["echo.full_duplex", "echo.half_duplex"])
            out["echo_check"] = [{"type": t, **{k: p.get(k) for k in ("return_loss_db", "playback_dbfs", "mic_dbfs")}}
                                 for t, p in zip(checks.type, checks.payload)]
        finally:
            if args.log:
                t0 = duplex.arrivals[0][0] if duplex.arrivals else 0
                with open(args.log, "a") as fh:
                    for t, r in duplex.arrivals:
                        if r["type"] not in ("response.output_audio.delta", "response.output_audio_transcript.delta"):
                            fh.write(f"{name} {t - t0:8.3f} {r['type']} {r.get('item_id') or ''} {(r.get('text') or '')[:80]}\n")
            voice.close()
            if args.log:
                duplex.chat.recording.to_wav(f"{args.log}.{name}.wav")
            ctx.close()
            duplex.chat.close()
    return out


def dtd_hits(duplex: DuplexChat) -> tuple[list[dict], dict | None]:
    """The double-talk detector's detections the page logged since the last call (each
    {t: page ms when it decided, hopT, score, excessDb, lagMs}) and what it had learnt then."""
    log = duplex.page.evaluate("window.rtvDoubleTalkLog.splice(0)")
    hits = [h for _, found, _ in log for h in found if h.get("t") is not None]
    if not log:
        return hits, None
    # The most bands any hop had over the prediction since the last call (the margin left).
    return hits, {**log[-1][2], "maxScore": max(s["maxScore"] for _, _, s in log if s)}


def burst_report(duplex: DuplexChat, name: str, at: float, ms: float) -> dict:
    """What the page's capture saw of an injected burst (from its start to 500 ms after its
    end): the loudest frame (dBFS), and with the echo match its verdicts on the held frames."""
    out: dict = {"heard": bool(duplex.rows("input_audio_buffer.speech_started", at))}
    if name == "match":
        log = duplex.page.evaluate("window.rtvEchoMatchLog.splice(0)")
        rows = [r for r in log if at * 1000 <= r[0] <= at * 1000 + ms + 500]
        loud = [r for r in rows if r[1] >= 10 ** (-50 / 20)]
        out.update({"held_loud": len(loud), "matched": sum(bool(r[3]) for r in loud),
                    "max_dbfs": round(20 * np.log10(max((r[1] for r in rows), default=1e-5)), 1),
                    "scores": [round(r[2], 2) for r in loud], "lags_ms": [r[4] for r in loud]})
    return out


def summarise(result: dict) -> dict:
    turns, tries = result["turns"], result["tries"]
    lat = [t["latency_ms"] for t in tries]
    within = sum(1 for t in tries if t["latency_ms"] is not None and t["latency_ms"] <= GOAL_MS and t["during_playback"])
    found = sorted(x for x in lat if x is not None)
    if result.get("echo_measured"):
        levels = [e["mic_dbfs"] for e in result["echo_measured"]]
    else:
        levels = [t["mic_dbfs"] for t in turns if (not t["self_interrupted"] or result["variant"] == "none")
                  and t["mic_dbfs"] is not None and np.isfinite(t["mic_dbfs"])]
        if levels and max(levels) <= -99.9:
            levels = []  # half-duplex: the mic was held, nothing was sent to measure
    return {
        "self_interruptions": sum(t["self_interrupted"] for t in turns), "turns": len(turns),
        "shortest_turn_s": round(min((t["audio_ms"] for t in turns if t["audio_ms"]), default=0) / 1000, 1),
        "barge_in_within_300ms": within, "tries": len(tries),
        "barge_in_p50_ms": round(statistics.median(found)) if found else None,
        "barge_in_max_ms": found[-1] if found else None,
        "missed": sum(x is None for x in lat),
        "mic_dbfs_far_end_only": round(statistics.median(levels), 1) if levels else None,
        "user_wer": round(statistics.mean(t["wer"] for t in tries), 3) if tries else None,
        "truncation_exact": f"{sum(t['truncation_exact'] is True for t in tries)}/{sum(t['truncation_exact'] is not None for t in tries)}",
        "echo_check": result.get("echo_check"),
        "bursts_heard": f"{sum(t['burst']['heard'] for t in turns if 'burst' in t)}/{sum('burst' in t for t in turns)}",
        **(dtd_summary(turns, tries) if result["variant"] in DTD_REPORTS else {}),
    }


def dtd_summary(turns: list[dict], tries: list[dict]) -> dict:
    """The double-talk detector: latency from the air over the tries, false alarms over the turns."""
    ms = sorted(t["dtd_ms"] for t in tries if t.get("dtd_ms") is not None)
    q = lambda p: round(float(np.percentile(ms, p))) if ms else None  # noqa: E731
    false = [t.get("dtd_false", []) for t in turns]
    return {"dtd": {
        "tries": sum("dtd_ms" in t for t in tries), "detected": len(ms), "acted": sum(t.get("double_talk", False) for t in tries),
        "within_100ms": sum(x <= 100 for x in ms),
        "within_150ms": sum(x <= 150 for x in ms), "p50_ms": q(50), "p90_ms": q(90), "max_ms": ms[-1] if ms else None,
        "before_voice_in_tries": sum(t.get("dtd_before_voice", 0) for t in tries),
        "turns_with_false_alarm": sum(bool(f) for f in false), "false_alarms": sum(len(f) for f in false),
        "turns_acted_on": sum(t.get("double_talk", False) for t in turns),
        "false_alarms_in_burst": sum(h["in_burst"] for f in false for h in f),
    }}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--echo-db", type=float, default=-6.0)
    parser.add_argument("--variants", default="aec,hold,half,none")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--agc-off", action="store_true", help="force autoGainControl off in the page (an experiment)")
    parser.add_argument("--bursts", type=float, default=0,
                        help="in every turn, copy this many ms of the speaker's output into the mic bus "
                             "(a stand-in for an echo burst the canceller lets through; docs/DUPLEX.md E)")
    parser.add_argument("--burst-db", type=float, default=-6.0, help="the copy's level relative to the playback")
    parser.add_argument("--match-options", help="JSON options for the echo match (variant match), e.g. '{\"maxLagMs\": 1000}'")
    parser.add_argument("--dtd-options", help="JSON options for the double-talk detector (variant dtd), e.g. '{\"marginDb\": 8}'")
    parser.add_argument("--log", help="append every event the kernel got (but audio deltas) to this file")
    parser.add_argument("--out", default=str(REPO / "bench" / "duplex" / "results" / "bench_duplex.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.turns, args.tries = 2, 2

    from playwright.sync_api import sync_playwright

    from rtvoice_widget.server import LocalRealtimeServer
    from rtvoice_widget.server.engines import load_engines

    folder = Path(tempfile.mkdtemp(prefix="duplex-bench"))
    user_wavs = []
    for k, (text, voice) in enumerate(USERS):
        wav = speech_wav(text, folder / f"user{k}.wav", voice=voice)
        import soundfile as sf
        user_wavs.append((wav, text, 1000 * sf.info(str(wav)).duration))
    engines = load_engines(vad="silero", asr="whisper-base", llm="echo", tts="espeak")
    http, base = serve_static()
    results, summary = {}, {}
    started = time.perf_counter()
    with LocalRealtimeServer(engines=engines, progress=None) as server, sync_playwright() as p:
        for name in args.variants.split(","):
            print(f"== {name}", flush=True)
            results[name] = run_variant(name, server, p, args, user_wavs, base)
            summary[name] = summarise(results[name])
            print(json.dumps({name: summary[name]}), flush=True)
    http.shutdown()
    if "none" in summary and summary["none"]["mic_dbfs_far_end_only"] is not None:
        for name, s in summary.items():
            if name != "none" and s["mic_dbfs_far_end_only"] is not None:
                s["erle_db"] = round(summary["none"]["mic_dbfs_far_end_only"] - s["mic_dbfs_far_end_only"], 1)
    print(f"\n{'':6s} {'self-int.':>10s} {'barge-in<=300ms':>16s} {'p50 ms':>7s} {'missed':>7s} "
          f"{'mic dBFS':>9s} {'ERLE dB':>8s} {'user WER':>9s} {'trunc. exact':>13s}")
    for name, s in summary.items():
        print(f"{name:6s} {s['self_interruptions']:>4d}/{s['turns']:<5d} {s['barge_in_within_300ms']:>9d}/{s['tries']:<6d} "
              f"{str(s['barge_in_p50_ms']):>7s} {s['missed']:>7d} {str(s['mic_dbfs_far_end_only']):>9s} "
              f"{str(s.get('erle_db', '-')):>8s} {str(s['user_wer']):>9s} {s['truncation_exact']:>13s}")
    print(f"({time.perf_counter() - started:.0f} s; echo {args.echo_db:g} dB; shortest turn "
          f"{min(s['shortest_turn_s'] for s in summary.values())} s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "summary": summary, "runs": results}, indent=1))

    missed = []
    a = summary.get("aec") or summary.get("match")
    if a:
        if a["self_interruptions"]:
            missed.append(f"{a['self_interruptions']} self-interruptions")
        if a["tries"] and a["barge_in_within_300ms"] < 0.95 * a["tries"]:
            missed.append(f"barge-in within {GOAL_MS} ms in {a['barge_in_within_300ms']}/{a['tries']}")
        if a.get("erle_db") is not None and a["erle_db"] < 25:
            missed.append(f"ERLE {a['erle_db']} dB")
    print("goals met" if not missed else "MISSED: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
