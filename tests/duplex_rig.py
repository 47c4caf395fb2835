"""A real acoustic path for the widget in Chromium, shared by tests/test_duplex_rig.py and
bench/bench_duplex.py (issue 15).

:class:`PulseRig` runs ``bench/duplex/pulse_rig.sh``: a private PulseAudio whose null sink
"speaker" is Chromium's output and whose source "mic" (Chromium's input) carries that output
back as echo (``ECHO_DB`` below it, ~30 ms late) mixed with what :meth:`PulseRig.voice`
says into the "micbus" sink. Chromium runs on these real devices: no fake-device flags, and
without Playwright's default ``--mute-audio`` (it silences the output, so there is no echo).

:class:`DuplexChat` puts the widget's real front end (tests/widget_harness) in that Chromium,
against a real kernel-side ``VoiceChat`` and the real local server (Silero VAD, Whisper-base,
the echo LLM that repeats what it was told, espeak-ng): ``assistant_says(text)`` makes the
assistant speak ``text`` on the speaker path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from widget_harness.bridge import wait_until

REPO = Path(__file__).resolve().parent.parent
RIG_SCRIPT = REPO / "bench" / "duplex" / "pulse_rig.sh"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
]

# For baselines: the page's getUserMedia with some constraints overridden (e.g. the canceller
# off; the widget itself always asks for it on).
CONSTRAINTS_SCRIPT = """
(() => {
  const md = navigator.mediaDevices, gum = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => gum({ ...c, audio: { ...(c && c.audio), ...%s } });
})();
"""


class PulseRig:
    """The PulseAudio rig, started on enter and stopped on exit (only the daemon it started)."""

    def __init__(self, echo_db: float = -6.0) -> None:
        if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
            raise RuntimeError("the duplex rig needs PulseAudio: apt-get install -y pulseaudio pulseaudio-utils")
        self.echo_db = echo_db
        self.dir = tempfile.mkdtemp(prefix="rig", dir="/tmp")  # a unix socket path must be short
        self.server = f"unix:{self.dir}/native"
        self.env = {**os.environ, "PULSE_SERVER": self.server, "RIG_DIR": self.dir, "ECHO_DB": f"{echo_db:g}"}

    def __enter__(self) -> "PulseRig":
        subprocess.run(["bash", str(RIG_SCRIPT), "start"], env=self.env, check=True, capture_output=True, timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["bash", str(RIG_SCRIPT), "stop"], env=self.env, capture_output=True, timeout=30)
        if not os.environ.get("RIG_KEEP"):  # its log (pa.log) tells rig underruns from echo leaks
            shutil.rmtree(self.dir, ignore_errors=True)

    def voice(self) -> "MicBusVoice":
        """A stream into the mic bus that says WAVs at known instants (see :class:`MicBusVoice`)."""
        return MicBusVoice(self.env)

    def launch(self, playwright: Any, profile: Path, *, echo_cancellation: bool = True, **constraints: bool):
        """Chromium on the rig's devices, with its own profile (``constraints``: mic
        constraints forced on the page, e.g. ``autoGainControl=False``)."""
        ctx = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            ignore_default_args=["--mute-audio"], env=self.env, viewport={"width": 1180, "height": 1000})
        if not echo_cancellation:
            constraints["echoCancellation"] = False
        if constraints:
            import json

            ctx.add_init_script(CONSTRAINTS_SCRIPT % json.dumps(constraints))
        return ctx


class MicBusVoice:
    """The user's mouth: a ``pacat`` stream into the mic bus, fed continuously with silence, or
    with a WAV from the moment :meth:`say` is called, so the voice's onset is known (starting
    ``paplay`` per utterance would add its start-up, 50-200 ms on a loaded machine, unknown).

    The feeder writes 10 ms chunks into a pipe shrunk to one page (~43 ms of audio) that pacat
    drains as PulseAudio asks (20 ms target latency), so writes block at the pace of playback
    and the voice is heard at most ~70 ms after its first chunk is handed over. The onset
    :meth:`say` returns is the moment just before that hand-over: never later than the true
    one, so latencies measured from it are, if anything, too long.
    """

    RATE = 48000
    CHUNK = 480  # 10 ms

    def __init__(self, env: dict) -> None:
        import fcntl

        self.proc = subprocess.Popen(
            ["pacat", "--playback", "--raw", "--format=s16le", f"--rate={self.RATE}", "--channels=1",
             "--latency-msec=20", "-d", "micbus"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        fcntl.fcntl(self.proc.stdin.fileno(), 1031, 4096)  # F_SETPIPE_SZ: keep the backlog short
        self._lock = threading.Lock()
        self._queue: list = []  # int16 chunks of the utterance being said
        self._started: threading.Event | None = None
        self._onset = 0.0
        self._stop = threading.Event()
        self._burst = 0  # 10 ms chunks of the speaker's own output still to copy into the bus
        self._gain = 1.0
        self._tap = None  # parec on the speaker's monitor, started by the first burst()
        self._tapped: list = []  # its chunks not yet copied, oldest first
        self._env = env
        self._thread = threading.Thread(target=self._feed, name="micbus-voice", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        import numpy as np

        silence = np.zeros(self.CHUNK, np.int16).tobytes()
        while not self._stop.is_set():
            with self._lock:
                chunk = self._queue.pop(0) if self._queue else None
                first, self._started = (self._started, None) if chunk is not None and self._started else (None, self._started)
                if chunk is None and self._burst > 0:
                    self._burst -= 1
                    if self._tapped:
                        x = np.frombuffer(self._tapped.pop(0), np.int16).astype(np.float64) * self._gain
                        chunk = np.clip(x, -32768, 32767).astype(np.int16).tobytes()
            if first is not None:
                self._onset = time.time()
            try:
                self.proc.stdin.write(chunk if chunk is not None else silence)
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                return
            if first is not None:
                first.set()

    def say(self, wav: Path) -> tuple[float, float]:
        """Say ``wav`` (48 kHz mono int16) now: ``(wall time its voice starts at the latest
        possible moment minus the pipe, see the class doc), its duration in s)``."""
        import numpy as np
        import soundfile as sf

        samples, rate = sf.read(str(wav), dtype="int16")
        assert rate == self.RATE, rate
        samples = np.asarray(samples)
        pad = (-len(samples)) % self.CHUNK
        samples = np.concatenate([samples, np.zeros(pad, np.int16)])
        started = threading.Event()
        with self._lock:
            self._queue = [samples[i:i + self.CHUNK].tobytes() for i in range(0, len(samples), self.CHUNK)]
            self._started = started
        started.wait(5)
        return self._onset, len(samples) / rate

    def burst(self, ms: float, gain_db: float = -6.0) -> None:
        """A burst of echo the canceller did not cancel, as a stand-in for the ones Chromium's
        lets through now and then (docs/DUPLEX.md E): for ``ms`` from now, copy what the speaker
        plays into the mic bus ``gain_db`` below it, on top of the rig's echo path, ~60-80 ms
        later than that path (the tap's and this stream's buffering)."""
        if self._tap is None:
            self._tap = speaker_monitor(self._env, self.RATE)
            threading.Thread(target=self._read_tap, name="micbus-tap", daemon=True).start()
            time.sleep(0.3)
        with self._lock:
            self._tapped = self._tapped[-1:]  # from the speaker's latest audio on
            self._gain = 10 ** (gain_db / 20)
            self._burst = int(round(ms / 10))

    def _read_tap(self) -> None:
        while not self._stop.is_set():
            data = self._tap.stdout.read(self.CHUNK * 2)
            if not data or len(data) < self.CHUNK * 2:
                return
            with self._lock:
                self._tapped.append(data)
                del self._tapped[:-20]  # only the latest 200 ms are ever copied

    def close(self) -> None:
        self._stop.set()
        if self._tap is not None:
            self._tap.terminate()
            self._tap.wait(5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.terminate()
        self.proc.wait(5)
        self._thread.join(2)


def speaker_monitor(env: dict, rate: int) -> subprocess.Popen:
    """What the rig's speaker plays, as it plays: a ``parec`` on its monitor (mono int16 at
    ``rate`` on stdout, 10 ms latency)."""
    return subprocess.Popen(
        ["parec", "--raw", "--format=s16le", f"--rate={rate}", "--channels=1", "--latency-msec=10",
         "-d", "speaker.monitor"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)


def speech_wav(text: str, path: Path, voice: str = "en-us") -> Path:
    """espeak-ng speech at 48 kHz mono, leading silence trimmed (its onset is the start)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path),
                    "silence", "1", "0.01", "1%", "pad", "0", "0.3"], check=True)
    raw.unlink()
    return path


class DuplexChat:
    """A VoiceChat on the local server, shown in a rig Chromium page through the harness bridge.

    Records the wall time each event type arrives at (``arrivals``), and the page's ``played``
    reports (``window.harness.sent``).
    """

    def __init__(self, server_url: str, page: Any, bridge: Any, **chat_options: Any) -> None:
        from rtvoice_widget.widget import VoiceChat

        self.page = page
        self.bridge = bridge
        self.chat = VoiceChat(url=server_url, **chat_options)
        self.arrivals: list[tuple[float, dict]] = []
        self._lock = threading.Lock()
        self.chat.on("*", self._note)

    def _note(self, row: dict) -> None:
        with self._lock:
            self.arrivals.append((time.time(), row))

    def rows(self, type_: str, since: float = 0.0) -> list[tuple[float, dict]]:
        with self._lock:
            return [(t, r) for t, r in self.arrivals if r["type"] == type_ and t >= since]

    def open(self, base: str, timeout: float = 120.0) -> None:
        """Load the page and connect from it, like a person; wait for the mic to be live."""
        self.page.goto(f"{base}/index.html?ws={self.bridge.port}")
        self.page.wait_for_function("window.harness.ready", timeout=30000)
        self.page.locator(".rtv-header .rtv-primary").first.click()
        wait(lambda: self.chat.ready, timeout, "the session to be ready")
        wait(lambda: self.rows("mic.live"), 30, "the mic to be live")

    def item(self, item_id: str):
        return self.chat.session.protocol.items.get(item_id)

    def played_ms(self, item_id: str) -> float:
        """What the page's player reported as rendered (the truncation point's source)."""
        item = self.item(item_id)
        return item.played_ms if item is not None else 0.0

    def assistant_says(self, text: str, timeout: float = 60.0) -> tuple[str, float]:
        """Ask the echo LLM to repeat ``text``; return ``(item_id, wall time it was asked)``
        once its audio started playing."""
        asked = time.time()
        self.chat.say(text)
        _, added = wait(lambda: next(iter(self.rows("response.output_item.added", asked)), None), timeout,
                        "the reply to start")
        item_id = added["item_id"]
        wait(lambda: self.played_ms(item_id) > 0, timeout, "the reply to play")
        return item_id, asked

    def wait_over(self, item_id: str, asked: float, timeout: float = 90.0) -> str:
        """Wait until the reply is over: "played" to its end, or "stopped" (cancelled, flushed)."""
        def over():
            done = self.rows("response.done", asked)
            if not done:
                return None
            if done[0][1]["payload"].get("response", {}).get("status") != "completed":
                return "stopped"
            item = self.item(item_id)
            if self.rows("playback.flushed", asked):
                return "stopped"
            return "played" if item.played_ms >= item.audio_received_ms - 25 else None
        return wait(over, timeout, "the reply to be over")


def wait(predicate, timeout: float, what: str, interval: float = 0.02):
    # The rig's waits run from seconds to a minute: a failure says which one ran out.
    return wait_until(predicate, timeout, f"{what} (after {timeout:g} s)", interval)
