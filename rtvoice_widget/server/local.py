"""``ensure_local_server()``: the one local server a kernel process uses, started on first use.

Choice: a **subprocess** (``python -m rtvoice_widget.server --port 0 --exit-with-parent``), not
a thread in the kernel. The models keep both cores busy while a reply is generated; in a
subprocess that CPU time and the Python work around it (JSON, VAD framing) never hold the
kernel's GIL, so the session thread keeps streaming audio and cells stay responsive; a crash in
native model code cannot take the kernel down; and restarting the kernel frees the models' memory.
The price is a second Python process (~1-3 s extra start-up, paid once).

The subprocess prints its loading progress, which is relayed to this process's ``sys.stderr``
(a notebook shows it under the cell that started the chat), then its URL. It exits when this
process does: its stdin is a pipe from us, and it stops when that closes.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from pathlib import Path

from .cli import READY_PREFIX

__all__ = ["ensure_local_server", "stop_local_server"]

_lock = threading.Lock()
_process: subprocess.Popen | None = None
_url: str | None = None


def ensure_local_server(
    *,
    vad: str = "silero",
    asr: str = "whisper-base",
    llm: str = "smollm2",
    tts: str = "espeak",
    llm_url: str | None = None,
    llm_model: str | None = None,
    timeout: float = 300.0,
) -> str:
    """URL of this process's local server, starting it (once) with these engines if needed.

    Later calls return the running server's URL whatever engines they name: one server per
    kernel, so the models load once. Raises ``RuntimeError`` with the server's output if it
    fails to start, ``TimeoutError`` after ``timeout`` seconds (first-time model setup included).
    """
    global _process, _url
    with _lock:
        if _process is not None and _process.poll() is None and _url is not None:
            return _url
        command = [sys.executable, "-m", "rtvoice_widget.server", "--host", "127.0.0.1", "--port", "0",
                   "--exit-with-parent", "--vad", vad, "--asr", asr, "--llm", llm, "--tts", tts]
        if llm_url:
            command += ["--llm-url", llm_url] + (["--llm-model", llm_model] if llm_model else [])
        # The child must import this very package, even when it is on sys.path but not installed.
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env=env,
        )
        ready = threading.Event()
        found: list[str] = []
        output: list[str] = []

        def relay() -> None:
            # Progress goes to our stderr until the server is up; afterwards the pipe is only
            # drained (a full pipe would block the server's logging).
            for line in process.stdout:
                if line.startswith(READY_PREFIX) and not ready.is_set():
                    found.append(line[len(READY_PREFIX):].strip())
                    ready.set()
                elif not ready.is_set():
                    output.append(line)
                    sys.stderr.write(line)
            ready.set()

        threading.Thread(target=relay, name="rtvoice-server-output", daemon=True).start()
        if not ready.wait(timeout):
            process.kill()
            raise TimeoutError(f"the local server did not start within {timeout} s")
        if not found:
            process.wait(timeout=5)
            raise RuntimeError("the local server failed to start:\n" + "".join(output[-20:]))
        _process, _url = process, found[0]
        return _url


def stop_local_server() -> None:
    """Stop the server ``ensure_local_server`` started (also done at interpreter exit)."""
    global _process, _url
    with _lock:
        process, _process, _url = _process, None, None
    if process is None or process.poll() is not None:
        return
    process.stdin.close()  # the server's --exit-with-parent watch sees EOF and shuts down cleanly
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


atexit.register(stop_local_server)
