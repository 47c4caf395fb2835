"""Spoken questions, one conversation, through the official SDK: right answers and words heard.

    python bench/bench_spoken.py                        # 75 questions, SmolLM2 and the default LLM
    python bench/bench_spoken.py --quick                # 18 questions
    python bench/bench_spoken.py --models smollm2 qwen2.5-0.5b --voices piper espeak

What issue 13 asks of the offline conversation a new user meets, measured end to end: each
question of ``bench/questions.py`` is rendered as speech, streamed in real time (20 ms chunks,
300 ms of silence before, 1.5 s after) to an in-process ``LocalRealtimeServer`` over the
official ``openai`` SDK's Realtime client (``client.realtime.connect``), with the session the
widget sends by default (``SessionConfig().to_session()``: its turn detection, its input
transcription), all questions in ONE conversation, as a person would ask them. The next
question starts once the previous answer's ``response.done`` has come.

Reported per model and voice, against the first model (SmolLM2-135M by default) in the same run
(the default engines' LLM is what ``llm="auto"`` picks: Qwen2.5-Coder-1.5B with the local extra):

- accuracy: replies (the assistant's audio transcript) containing an accepted answer
  (``questions.is_correct``), also among the questions the server heard word-perfectly, so an
  ASR slip and a wrong answer can be told apart;
- WER through the server: the server's own input transcription
  (``conversation.item.input_audio_transcription.completed``) against the question's text;
- repeated openings (a reply whose first four words repeat an earlier reply's: template copying);
- the gap a person hears: end of the question's voice (its last voiced 20 ms frame, as in the
  turns table) -> the answer's first ``response.output_audio.delta`` at the client, p50/p90.
  The stream is paced in real time, so this is the product's own gap on this machine under
  whatever else runs on it; compare models within one run.

A model may carry engine settings for one run: ``--models "qwen2.5-0.5b:temperature=0,repeat_penalty=1"``
(attributes of the loaded ``LlamaCppLLM``: temperature, repeat_penalty, system_note,
max_sentences, history; put back after the run).

Voices for the user's side: ``piper`` (the neural voice the server speaks with; closest here to
a person) and ``espeak`` (formant synthesis, harder for Whisper). Neither is a person: the WER of
real voices differs; both are reported so the gap between them is visible.

Goals (issue 13; exit status 1 when missed, for the first voice): accuracy >= 90 % with the
default engines, WER through the server <= 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from questions import QUESTIONS, QUICK_IDS, is_correct, normalise  # noqa: E402

from rtvoice_widget.config import SessionConfig  # noqa: E402
from rtvoice_widget.pcm import SAMPLE_RATE  # noqa: E402
from rtvoice_widget.server import LocalRealtimeServer  # noqa: E402
from rtvoice_widget.server.engines.evaluation import spoken, word_errors  # noqa: E402
from rtvoice_widget.server.engines.loader import resolved_llm  # noqa: E402
from rtvoice_widget.turn_table import voice_end_ms  # noqa: E402

CHUNK_MS = 20
LEAD_MS = 300
TAIL_MS = 1500
GOAL_ACCURACY = 0.90
GOAL_WER = 0.10
BASELINE = "smollm2"
# Named system notes for variants (``qwen2.5-0.5b:system_note=direct``); any other value is the note itself.
NOTES: dict[str, str] = {
    "direct": "Answer the question the user just asked: start with the answer itself, in one short sentence.",
}
DEFAULT_MODEL = resolved_llm("auto")  # what a new user gets (qwen2.5-1.5b with the local extra)


def render(voice: str, texts: list[str]) -> list[bytes]:
    """Each text as 24 kHz PCM16 said by ``voice`` ("piper" or "espeak")."""
    if voice == "piper":
        from rtvoice_widget.server.engines.tts_piper import PiperTTS

        tts = PiperTTS()
    else:
        from rtvoice_widget.server.engines.tts import EspeakTTS

        tts = EspeakTTS()
    out = []
    for text in texts:
        audio = spoken(tts, text, SAMPLE_RATE)
        out.append((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return out


def silence(ms: int) -> bytes:
    return bytes(2 * SAMPLE_RATE * ms // 1000)


async def converse(url: str, questions: list[dict], audio: list[bytes]) -> list[dict]:
    """Ask every question in one conversation; one row per question."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="local", websocket_base_url=url.removesuffix("/realtime"))
    rows: list[dict] = []
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=SessionConfig().to_session())
        events: asyncio.Queue = asyncio.Queue()

        async def read() -> None:
            try:
                async for event in conn:
                    # Stamped on arrival: _ask reads the queue only after it has sent the tail.
                    await events.put((time.perf_counter(), event))
            except Exception as exc:  # the bench must say why the conversation ended, then stop
                print(f"   connection ended: {exc!r}", flush=True)
                raise
            print("   connection closed by the server", flush=True)

        reader = asyncio.create_task(read())
        try:
            for n, (question, pcm) in enumerate(zip(questions, audio), 1):
                if reader.done():
                    break
                started = time.perf_counter()
                rows.append(await _ask(conn, events, question, pcm))
                row = rows[-1]
                print(f"   {n:>2}/{len(questions)} {'ok' if row['correct'] else 'NO'} {time.perf_counter() - started:5.1f} s"
                      f"{'  ' + '; '.join(row['errors']) if row['errors'] else ''}", flush=True)
        finally:
            reader.cancel()
    return rows


async def _ask(conn, events: asyncio.Queue, question: dict, pcm: bytes) -> dict:
    row = {"id": question["id"], "question": question["question"], "heard": "", "reply": "", "errors": []}
    stream = silence(LEAD_MS) + pcm + silence(TAIL_MS)
    step = 2 * SAMPLE_RATE * CHUNK_MS // 1000
    # End of the question's voice in the stream (the turns table's definition), in ms from its start.
    voice_end = voice_end_ms(np.frombuffer(stream, "<i2"), SAMPLE_RATE, len(stream) / (2 * SAMPLE_RATE) * 1000,
                             lookback_ms=len(stream) / (2 * SAMPLE_RATE) * 1000)
    start = time.perf_counter()
    first_audio = None
    for n, offset in enumerate(range(0, len(stream), step)):
        await conn.input_audio_buffer.append(audio=base64.b64encode(stream[offset: offset + step]).decode())
        # Real time: turn detection and speculation depend on silence taking time to arrive.
        delay = start + (n + 1) * CHUNK_MS / 1000 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    deadline = time.perf_counter() + 120
    heard: list[str] = []
    seen: list[str] = []  # event types, to say what a turn that got no answer did get
    while time.perf_counter() < deadline:
        try:
            arrived, event = await asyncio.wait_for(events.get(), deadline - time.perf_counter())
        except asyncio.TimeoutError:
            row["errors"].append(f"no response.done in 120 s; events: {_runs(seen)}")
            break
        kind = event.type
        seen.append(kind)
        if kind == "response.output_audio.delta" and first_audio is None:
            first_audio = arrived
        if kind == "conversation.item.input_audio_transcription.completed":
            heard.append(event.transcript)
        elif kind == "error":
            row["errors"].append(event.error.message)
        elif kind == "response.done":
            texts = [part.transcript or part.text or ""
                     for item in event.response.output or [] if item.type == "message"
                     for part in item.content or []]
            row["reply"] = " ".join(t for t in texts if t).strip()
            row["status"] = event.response.status
            if event.response.status == "failed":
                row["errors"].append(f"response failed: {event.response.status_details}")
            # A cancelled empty response is a turn the server split at a pause: the rest follows.
            if event.response.status != "cancelled" or row["reply"]:
                break
    # A reply can come before the final transcript; take what has arrived by then and a little after.
    while not heard:
        try:
            _, event = await asyncio.wait_for(events.get(), 5)
        except asyncio.TimeoutError:
            break
        if event.type == "conversation.item.input_audio_transcription.completed":
            heard.append(event.transcript)
    row["heard"] = " ".join(heard).strip()
    # The paced stream delivered the end of voice at start + voice_end (the sending loop keeps
    # real time); the first audio delta of the answer after it is the gap a person hears.
    row["gap_ms"] = (first_audio - start) * 1000 - voice_end if first_audio is not None else None
    row["correct"] = is_correct(row["reply"], question["accept"])
    row["word_errors"], row["words"] = word_errors(_spelling(question["question"]), _spelling(row["heard"]))
    return row


# Whisper writes American spelling and digits; the questions are in British spelling with number
# words. Neither difference is a word misheard, so both sides are normalised before counting.
_AMERICAN = {"centimetres": "centimeters", "metre": "meter", "metres": "meters", "kilometres": "kilometers",
             "litre": "liter", "litres": "liters", "grey": "gray", "favourite": "favorite"}


def _spelling(text: str) -> str:
    return " ".join(_AMERICAN.get(w, w) for w in normalise(text))


def _runs(types: list[str]) -> str:
    """``a a a b`` -> ``a x3, b``."""
    out: list[list] = []
    for t in types:
        if out and out[-1][0] == t:
            out[-1][1] += 1
        else:
            out.append([t, 1])
    return ", ".join(t if n == 1 else f"{t} x{n}" for t, n in out)


def _opening(text: str) -> str:
    return " ".join(text.lower().split()[:4])


def summarise(rows: list[dict]) -> dict:
    n = len(rows)
    gaps = [r["gap_ms"] for r in rows if r.get("gap_ms") is not None]
    exact = [r for r in rows if r["word_errors"] == 0]
    openings: set[str] = set()
    repeated = 0
    for r in rows:
        opening = _opening(r["reply"])
        repeated += bool(opening) and opening in openings
        openings.add(opening)
    return {
        "questions": n,
        "correct": sum(r["correct"] for r in rows),
        "accuracy": sum(r["correct"] for r in rows) / max(1, n),
        "wer": sum(r["word_errors"] for r in rows) / max(1, sum(r["words"] for r in rows)),
        "heard_exactly": len(exact),
        "accuracy_when_heard_exactly": sum(r["correct"] for r in exact) / max(1, len(exact)),
        "repeated_openings": repeated,
        "errors": sum(len(r["errors"]) for r in rows),
        "gap_ms_p50": round(float(np.percentile(gaps, 50))) if gaps else None,
        "gap_ms_p90": round(float(np.percentile(gaps, 90))) if gaps else None,
    }


def parse_variant(spec: str) -> tuple[str, dict]:
    """``"qwen2.5-0.5b:temperature=0,repeat_penalty=1"`` -> the LLM choice and engine settings
    (attributes of the loaded engine: temperature, repeat_penalty, system_note, max_sentences,
    history). Values are parsed as JSON where they can be (numbers, null), else kept as text."""
    model, _, rest = spec.partition(":")
    settings = {}
    for pair in filter(None, rest.split(",")):
        key, _, value = pair.partition("=")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return model, settings


def run(spec: str, voice: str, questions: list[dict], audio: list[bytes], show: bool) -> dict:
    model, settings = parse_variant(spec)
    server = LocalRealtimeServer(engines={"llm": model}, progress=None)
    url = server.start()
    llm = server.engines.llm
    # The engine is cached per process: put back what a variant changed, for the next run.
    saved = {key: getattr(llm, key) for key in settings}
    for key, value in settings.items():
        setattr(llm, key, NOTES.get(value, value) if key == "system_note" else value)
    try:
        t0 = time.perf_counter()
        rows = asyncio.run(converse(url, questions, audio))
        elapsed = time.perf_counter() - t0
    finally:
        server.stop()
        for key, value in saved.items():
            setattr(llm, key, value)
    if show:
        for r in rows:
            mark = "ok " if r["correct"] else "NO "
            print(f"  {mark}{r['question']!r}\n     heard {r['heard']!r}\n     reply {r['reply']!r}", flush=True)
    summary = summarise(rows)
    summary.update(model=spec, voice=voice, seconds=round(elapsed, 1))
    return {"summary": summary, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK_IDS)} questions instead of {len(QUESTIONS)}")
    parser.add_argument("--models", nargs="+", default=list(dict.fromkeys([BASELINE, DEFAULT_MODEL])),
                        help="LLM choices (load_engines(llm=...)); the first is the baseline")
    parser.add_argument("--voices", nargs="+", default=["piper"], choices=["piper", "espeak"])
    parser.add_argument("--seed", type=int, default=13, help="question order (topics mixed)")
    parser.add_argument("--show", action="store_true", help="print every question, what was heard and the reply")
    parser.add_argument("--json", type=Path, default=None, help="save every row here")
    args = parser.parse_args(argv)

    questions = [q for q in QUESTIONS if not args.quick or q["id"] in QUICK_IDS]
    random.Random(args.seed).shuffle(questions)
    results = []
    for voice in args.voices:
        audio = render(voice, [q["question"] for q in questions])
        for model in args.models:
            print(f"== {model}, {voice} voice, {len(questions)} questions in one conversation", flush=True)
            result = run(model, voice, questions, audio, args.show)
            results.append(result)
            print("   " + json.dumps(result["summary"]), flush=True)

    print("\nmodel            voice   accuracy        WER    heard exactly  acc. when heard  repeated  vs first model"
          "  gap p50/p90 ms")
    base: dict[str, dict] = {}
    for result in results:
        s = result["summary"]
        first = base.setdefault(s["voice"], s)
        ratio = s["accuracy"] / first["accuracy"] if first["accuracy"] else float("nan")
        print(f"{s['model']:<16} {s['voice']:<7} {s['correct']:>3}/{s['questions']} ({s['accuracy']:.0%})"
              f"  {s['wer']:6.1%}  {s['heard_exactly']:>5}/{s['questions']}"
              f"        {s['accuracy_when_heard_exactly']:6.0%}       {s['repeated_openings']:>3}      {ratio:.2f}x"
              f"        {s['gap_ms_p50']}/{s['gap_ms_p90']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))

    default = [r["summary"] for r in results if r["summary"]["model"] == DEFAULT_MODEL
               and r["summary"]["voice"] == args.voices[0]]
    missed = []
    for s in default:
        if s["accuracy"] < GOAL_ACCURACY:
            missed.append(f"accuracy {s['accuracy']:.0%} < {GOAL_ACCURACY:.0%}")
        if s["wer"] > GOAL_WER:
            missed.append(f"WER {s['wer']:.1%} > {GOAL_WER:.0%}")
    print("goals: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
