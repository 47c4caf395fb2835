"""A server process that died, described for a person: which signal, in which stage or engine, what to try.

The server subprocess runs native model code (llama.cpp, CTranslate2, onnxruntime); when that
crashes the process dies by a signal, and all the parent sees is a closed pipe and a negative
return code. :func:`describe_exit` turns that into one message. The engine comes from the stage
the server last reported while starting, or, once it was serving, from the Python traceback that
``faulthandler`` (enabled by the CLI) prints on SIGSEGV, SIGILL, SIGFPE, SIGBUS and SIGABRT: the
innermost frame of an engine module names it. SIGKILL leaves no traceback; it is almost always
the kernel's out-of-memory killer or a person.

Pure functions of the return code and the output lines, so every case is tested without a crash.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence

from .engines.native_cpu import EXTRA_BUFFERS_ENV, PORTABLE_REBUILD

__all__ = ["describe_exit", "engine_in_traceback"]

# Path fragments of a traceback frame (or words of a stage) -> the engine, in words.
_ENGINES = (
    (("llama_cpp", "llm_llama", "language model"), "the language model (llama.cpp)"),
    (("faster_whisper", "ctranslate2", "engines/asr", "speech recognition"),
     "speech recognition (faster-whisper on CTranslate2)"),
    (("engines/vad", "voice detection"), "voice detection (Silero VAD on onnxruntime)"),
    (("engines/tts", "espeak", "piper", "speech synthesis"), "speech synthesis"),
)
_LLM = _ENGINES[0][1]

_WHAT = {
    signal.SIGSEGV: "a segmentation fault in native code",
    signal.SIGILL: "an illegal instruction: native code compiled for another CPU",
    signal.SIGBUS: "a bus error in native code",
    signal.SIGFPE: "an arithmetic fault in native code",
    signal.SIGABRT: "an abort in native code",
    signal.SIGKILL: "SIGKILL from outside the process",
}

_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+ in (?P<function>\S+)')
_THREAD = re.compile(r"^(?P<current>Current thread|Thread) 0x[0-9a-f]+")


def engine_in_traceback(lines: Sequence[str]) -> str | None:
    """The engine whose code a ``faulthandler`` dump shows running, in words, or ``None``.

    The crashing ("Current") thread is read first, then the others; in each, the innermost
    frame (faulthandler prints most recent first) that belongs to an engine wins."""
    threads: list[tuple[bool, list[str]]] = []
    for line in lines:
        thread = _THREAD.match(line)
        if thread:
            threads.append((thread["current"] == "Current thread", []))
        elif threads and (frame := _FRAME.match(line)):
            threads[-1][1].append(frame["path"].replace("\\", "/"))
    for _, paths in sorted(threads, key=lambda t: not t[0]):
        for path in paths:
            engine = _engine_named_in(path)
            if engine is not None:
                return engine
    return None


def _engine_named_in(text: str) -> str | None:
    lowered = text.lower()
    for fragments, engine in _ENGINES:
        if any(fragment in lowered for fragment in fragments):
            return engine
    return None


def describe_exit(returncode: int, output: Sequence[str], *, stage: str | None, serving: bool) -> str:
    """One message for a server process that ended with ``returncode``.

    ``output`` is the tail of what it printed (stdout and stderr), ``stage`` the last loading
    stage it reported ("Warming up the language model"), ``serving`` whether it had started
    serving. The message names the signal (or exit code), the stage or engine, what to try, and
    ends with the last lines of output."""
    engine = engine_in_traceback(output)
    if engine is None and not serving and stage:
        engine = _engine_named_in(stage)
    where = (f"while {stage[:1].lower()}{stage[1:]}" if not serving and stage
             else "during the conversation" if serving else "while starting")
    if engine is not None and (serving or not stage or _engine_named_in(stage) != engine):
        where += f", in {engine}"
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
            name = sig.name
        except ValueError:
            sig, name = None, f"signal {-returncode}"
        what = f"killed by {name} ({_WHAT.get(sig, 'a signal')})"
    else:
        sig, what = None, f"exited with code {returncode}"
    advice = _advice(sig, engine)
    tail = "".join(line if line.endswith("\n") else line + "\n" for line in output[-12:]).rstrip()
    message = f"the local server crashed {where}: {what}.\nWhat to try: {advice}"
    if tail:
        message += f"\nIts last output:\n{tail}"
    return message


def _advice(sig: signal.Signals | None, engine: str | None) -> str:
    again = "Connecting again starts a fresh server."
    if sig == signal.SIGILL:
        return ("the installed native library uses instructions this CPU lacks, typically a "
                "llama-cpp-python wheel built on another machine and reused from a shared pip cache "
                f"or image layer. Rebuild it for this CPU: {PORTABLE_REBUILD} . {again}")
    if sig == signal.SIGKILL:
        return ("a SIGKILL is almost always the kernel's out-of-memory killer (see `dmesg`) or a "
                f"person; free memory or choose smaller models. {again}")
    if engine == _LLM:
        return (f"set {EXTRA_BUFFERS_ENV}=off before starting (weights not repacked for this CPU), "
                f"or rebuild llama.cpp without native flags: {PORTABLE_REBUILD} ; a server with "
                f"--llm-url uses no local language model. {again}")
    return (f"reinstall the package of the engine named above; report the output below if it "
            f"happens again. {again}")
