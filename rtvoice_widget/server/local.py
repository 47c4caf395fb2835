"""``ensure_local_server()``: the one local server a kernel process uses, started on first use.

Choice: a **subprocess** (``python -m rtvoice_widget.server --port 0 --exit-with-parent``), not
a thread in the kernel. The models keep both cores busy while a reply is generated; in a
subprocess that CPU time and the Python work around it (JSON, VAD framing) never hold the
kernel's GIL, so the session thread keeps streaming audio and cells stay responsive; a crash in
native model code cannot take the kernel down; and restarting the kernel frees the models' memory.
The price is a second Python process (~1-3 s extra start-up, paid once).

The subprocess prints its loading stages (``cli.STAGE_PREFIX`` lines, in words for a person:
"Loading speech recognition (whisper-base)"), which go to every ``progress`` callback of the
callers waiting for it. While no caller follows the start with a ``progress`` callback (a
headless ``RealtimeSession``), everything it prints also goes to this process's ``sys.stderr``,
until it prints its URL; ``VoiceChat`` shows the stages in its status line instead, so the cell
is not filled with the server's log. Either way a crash report quotes its last lines. It exits when
this process does: its stdin is a pipe from us, and it stops when that closes.

When it dies on its own (a signal from a native crash, the out-of-memory killer), the message of
:func:`rtvoice_widget.server.crash.describe_exit` names the signal, the stage or engine and what
to try: :func:`ensure_local_server` raises it as :class:`LocalServerCrashed` while starting, and
:func:`local_server_crash` hands it to a session whose connection just dropped. Nothing restarts
it by itself; the next :func:`ensure_local_server` call starts a fresh one (so one reconnect from
the user, never a loop). The output it keeps for that is bounded: the last
``OUTPUT_LINES`` lines.
"""

from __future__ import annotations

import atexit
import os
import secrets
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Callable

from .cli import READY_PREFIX, STAGE_PREFIX
from .crash import describe_exit

__all__ = ["ensure_local_server", "stop_local_server", "local_server_crash", "local_server_token",
           "LocalServerCrashed"]

#: Lines of the server's output kept for error messages (a faulthandler dump fits many times).
OUTPUT_LINES = 400

_lock = threading.Lock()
_server: "_Start | None" = None  # the server that printed its URL (running, or ended since)
_starting: "_Start | None" = None  # a start in progress, shared by every caller waiting for it


class LocalServerCrashed(RuntimeError):
    """The local server process died by itself (a signal, or an unexpected exit code); the
    message says how, where, and what to try."""


class _Start:
    """One server subprocess: relays its output until it prints its URL, then keeps a tail of it
    and, once it ends, what its end means (``crash``)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env=env,
        )
        self.done = threading.Event()  # the URL came, or the process ended
        self.ended = threading.Event()  # the process ended and ``crash`` is final
        self.url: str | None = None
        self.output: deque[str] = deque(maxlen=OUTPUT_LINES)
        self.stage: str | None = None  # the latest stage, for callers that start listening late
        self.stopping = False  # we asked it to end (stop_local_server, a start timeout)
        self.crash: str | None = None
        self.token = env.get("RTVOICE_SERVER_TOKEN")  # the secret it requires, handed over by env
        self._listeners: list[Callable[[str], None]] = []
        threading.Thread(target=self._relay, name="rtvoice-server-output", daemon=True).start()

    def listen(self, progress: Callable[[str], None]) -> None:
        """Call ``progress(stage)`` with the current stage (if any) and each later one."""
        with _lock:
            if self.done.is_set():
                return
            self._listeners.append(progress)
            stage = self.stage
        if stage is not None:
            self._tell(progress, stage)

    def _tell(self, progress: Callable[[str], None], stage: str) -> None:
        try:
            progress(stage)
        except Exception as exc:  # a broken callback must not stop the relay (it drains the pipe)
            sys.stderr.write(f"rtvoice-server: progress callback {progress!r:.60} failed: {exc!r}; not called again\n")
            with _lock:
                if progress in self._listeners:
                    self._listeners.remove(progress)

    def _relay(self) -> None:
        # Progress goes to our stderr until the server is up; afterwards the pipe is drained (a
        # full pipe would block the server's logging) into the bounded tail a crash report reads.
        for line in self.process.stdout:
            if self.done.is_set():
                self.output.append(line)
                continue
            if line.startswith(READY_PREFIX):
                self.url = line[len(READY_PREFIX):].strip()
                self._finish()
                continue
            self.output.append(line)
            stage = line[len(STAGE_PREFIX):].strip() if line.startswith(STAGE_PREFIX) else None
            with _lock:
                if stage is not None:
                    self.stage = stage
                listeners = list(self._listeners)
            if not listeners:
                # Nobody shows the stages (a headless caller): the log is the progress it sees.
                sys.stderr.write(line)
            elif stage is not None:
                for progress in listeners:
                    self._tell(progress, stage)
        self._finish()
        returncode = self.process.wait()
        if returncode != 0 and not self.stopping:
            self.crash = describe_exit(returncode, list(self.output), stage=self.stage,
                                       serving=self.url is not None)
        self.ended.set()

    def stop(self, timeout: float = 10.0) -> None:
        """End the process: EOF on its stdin (its --exit-with-parent watch shuts it down
        cleanly), SIGKILL after ``timeout`` seconds."""
        self.stopping = True
        if self.process.poll() is not None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()

    def _finish(self) -> None:
        with _lock:
            self._listeners.clear()
        self.done.set()


def ensure_local_server(
    *,
    vad: str = "silero",
    asr: str = "whisper-base",
    llm: str = "auto",
    tts: str = "auto",
    llm_url: str | None = None,
    llm_model: str | None = None,
    timeout: float = 300.0,
    progress: Callable[[str], None] | None = None,
) -> str:
    """URL of this process's local server, starting it (once) with these engines if needed.

    Later calls return the running server's URL whatever engines they name: one server per
    kernel, so the models load once; a call made while another is starting the server waits for
    that start. ``progress(stage)`` is called (on a relay thread: keep it short) with each
    loading stage the server reports while this call waits, in words for a person, e.g.
    ``"Loading speech recognition (whisper-base)"``; first with the current stage when the start
    was already under way, never when the server was running already. Raises ``RuntimeError``
    with the server's output if it fails to start, ``TimeoutError`` after ``timeout`` seconds
    (first-time model setup included; the server is stopped); :class:`LocalServerCrashed`
    (a ``RuntimeError``) naming the signal, the stage and what to try when it died by itself.
    After a crash (at start or later) the next call starts a fresh server.
    """
    global _server, _starting
    with _lock:
        if _server is not None and _server.process.poll() is None:
            return _server.url
        if _starting is None:
            command = [sys.executable, "-m", "rtvoice_widget.server", "--host", "127.0.0.1", "--port", "0",
                       "--exit-with-parent", "--vad", vad, "--asr", asr, "--llm", llm, "--tts", tts]
            if llm_url:
                command += ["--llm-url", llm_url] + (["--llm-model", llm_model] if llm_model else [])
            # The child must import this very package, even when it is on sys.path but not installed.
            env = dict(os.environ)
            package_root = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
            # A fresh secret per server process, by environment: a command line shows in process lists.
            env["RTVOICE_SERVER_TOKEN"] = secrets.token_urlsafe(32)
            _starting = _Start(command, env)
        start = _starting
    if progress is not None:
        start.listen(progress)
    finished = start.done.wait(timeout)
    with _lock:
        if _starting is start:
            _starting = None
            if finished and start.url is not None:
                _server = start
        if _server is start:
            return start.url
    if not finished:
        start.stopping = True
        start.process.kill()
        raise TimeoutError(f"the local server did not start within {timeout} s")
    if not start.ended.wait(5):
        start.stopping = True
        start.process.kill()
    if start.crash is not None:
        raise LocalServerCrashed(start.crash)
    raise RuntimeError("the local server failed to start:\n" + "".join(list(start.output)[-20:]))


def _server_for(url: str) -> "_Start | None":
    """The server this process started whose URL is ``url`` (a query, ``?model=...``, aside)."""
    with _lock:
        server = _server
    if server is None or server.url is None or url.split("?", 1)[0] != server.url.split("?", 1)[0]:
        return None
    return server


def local_server_crash(url: str, wait: float = 0.0) -> str | None:
    """Why the local server that served ``url`` died by itself, or ``None`` (still running,
    stopped by us, or not ours). ``url`` may carry a query (``?model=...``). Waits up to
    ``wait`` seconds for a dying process to end, e.g. right after its socket dropped."""
    server = _server_for(url)
    if server is None:
        return None
    if wait > 0 and server.process.poll() is None:
        try:
            server.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
    if server.process.poll() is None:
        return None
    server.ended.wait(5)  # the relay reads the last of the output, then decides
    return server.crash


def local_server_token(url: str) -> str | None:
    """The secret the local server serving ``url`` requires (as ``Authorization: Bearer``), or
    ``None`` when ``url`` is not this process's server. ``url`` may carry a query."""
    server = _server_for(url)
    if server is None:
        return None
    return server.token


def stop_local_server() -> None:
    """Stop the server ``ensure_local_server`` started (also done at interpreter exit)."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stop()


atexit.register(stop_local_server)
