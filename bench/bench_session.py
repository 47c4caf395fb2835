"""Kernel-side CPU cost of a live session, per second of audio streamed both ways.

A scripted Realtime server runs in a *separate process* (so its CPU is not counted) and answers
every ``input_audio_buffer.append`` with an ``response.output_audio.delta`` of the same audio:
the kernel sends and receives equal amounts, like a full-duplex conversation. The measured process
streams 20 ms frames in real time for ``--seconds`` and reports its own CPU time (all threads:
the caller's and the session's) divided by the seconds of audio streamed.

Baseline, measured in the same run against the same server: a bare ``websockets`` asyncio client
doing only the wire work (JSON + base64 each way), without our session, protocol, event log or
recorder. Goal: the session costs <= 3 % of one core per second of two-way audio.

    python bench/bench_session.py            # 30 s of audio per variant
    python bench/bench_session.py --quick    # 2 s per variant (CI smoke)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FRAME_MS = 20
RATE = 24000
GOAL_CPU_PERCENT = 3.0


# -- the echo server (child process) -----------------------------------------------------------


def serve_echo() -> None:
    """Print the URL, then echo appends as audio deltas until stdin closes."""
    from websockets.asyncio.server import serve

    async def handler(conn) -> None:
        await conn.send(json.dumps({"type": "session.created", "event_id": "e0", "session": {
            "type": "realtime", "object": "realtime.session", "id": "sess_bench", "model": "bench"}}))
        response_id, item_id, n = "resp_bench", "item_bench", 0
        started = False
        async for frame in conn:
            event = json.loads(frame)
            if event.get("type") != "input_audio_buffer.append":
                continue
            if not started:
                started = True
                await conn.send(json.dumps({"type": "response.created", "event_id": "e1", "response": {
                    "object": "realtime.response", "id": response_id, "status": "in_progress", "output": []}}))
                await conn.send(json.dumps({"type": "response.output_item.added", "event_id": "e2",
                                            "response_id": response_id, "output_index": 0, "item": {
                                                "id": item_id, "object": "realtime.item", "type": "message",
                                                "role": "assistant", "status": "in_progress", "content": []}}))
            n += 1
            await conn.send(json.dumps({
                "type": "response.output_audio.delta", "event_id": f"d{n}", "response_id": response_id,
                "item_id": item_id, "output_index": 0, "content_index": 0, "delta": event["audio"]}))

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, max_size=2**24, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"ws://127.0.0.1:{port}/v1/realtime", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


# -- the two clients ---------------------------------------------------------------------------


def frames(seconds: float) -> list[bytes]:
    n = int(seconds * 1000 / FRAME_MS)
    t = np.arange(int(RATE * FRAME_MS / 1000)) / RATE
    frame = (np.sin(2 * np.pi * 220 * t) * 0.2 * 32767).astype("<i2").tobytes()
    return [frame] * n


def paced(items: list[bytes], send) -> None:
    """Call ``send`` per frame on a real-time schedule (from this, the 'kernel main' thread)."""
    start = time.monotonic()
    for i, item in enumerate(items):
        delay = start + i * FRAME_MS / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(item)


def run_session(url: str, seconds: float) -> dict:
    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import RealtimeSession

    session = RealtimeSession(url, config=SessionConfig(turn_detection=None)).connect(timeout=20)
    received = threading.Event()
    chunks = {"n": 0}
    todo = frames(seconds)

    def on_audio(item_id, response_id, pcm16) -> None:
        chunks["n"] += 1
        if chunks["n"] == len(todo):
            received.set()

    session.on("output_audio", on_audio)
    cpu0, wall0 = time.process_time(), time.monotonic()
    paced(todo, session.send_audio)
    ok = received.wait(30)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    metrics = session.metrics()
    session.close()
    return {"cpu_s": cpu, "wall_s": wall, "ok": ok, "frames": len(todo), "chunks": chunks["n"],
            "events": metrics["events"]}


def run_baseline(url: str, seconds: float) -> dict:
    """The same traffic with a bare websockets client on its own loop thread: wire work only."""
    from websockets.asyncio.client import connect

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    todo = frames(seconds)
    received = threading.Event()
    state: dict = {"n": 0}

    async def open_and_read() -> None:
        ws = await connect(url, max_size=2**24, compression=None)
        state["ws"] = ws
        state["ready"].set()
        async for frame in ws:
            event = json.loads(frame)
            if event.get("type") == "response.output_audio.delta":
                base64.b64decode(event["delta"])
                state["n"] += 1
                if state["n"] == len(todo):
                    received.set()

    state["ready"] = threading.Event()
    reader = asyncio.run_coroutine_threadsafe(open_and_read(), loop)
    state["ready"].wait(20)
    ws = state["ws"]

    def send(frame: bytes) -> None:
        text = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode()})
        loop.call_soon_threadsafe(lambda: loop.create_task(ws.send(text)))

    cpu0, wall0 = time.process_time(), time.monotonic()
    paced(todo, send)
    ok = received.wait(30)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    asyncio.run_coroutine_threadsafe(ws.close(), loop).result(5)
    reader.cancel()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    return {"cpu_s": cpu, "wall_s": wall, "ok": ok, "frames": len(todo), "chunks": state["n"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s of audio per variant (CI smoke)")
    parser.add_argument("--seconds", type=float, default=None, help="audio seconds per variant (default 30)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_echo()
        return 0
    seconds = args.seconds or (2.0 if args.quick else 30.0)

    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("ws://"):
            print(f"echo server did not start (got {url!r})")
            return 2
        baseline = run_baseline(url, seconds)
        ours = run_session(url, seconds)
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()

    audio_s = seconds  # the same seconds were streamed in and received back
    base_pct = baseline["cpu_s"] / audio_s * 100
    ours_pct = ours["cpu_s"] / audio_s * 100
    print(f"audio streamed both ways: {audio_s:.1f} s in {FRAME_MS} ms frames "
          f"({ours['frames']} appends, {ours['chunks']} deltas received)")
    print(f"baseline (bare websockets client): {baseline['cpu_s']*1000:8.1f} ms CPU = {base_pct:5.2f} % of a core")
    print(f"RealtimeSession (protocol+log+rec): {ours['cpu_s']*1000:8.1f} ms CPU = {ours_pct:5.2f} % of a core "
          f"({ours['events']} events logged)")
    print(f"ratio session / baseline: {ours_pct / base_pct:.2f}x   goal: <= {GOAL_CPU_PERCENT:.1f} % of a core")
    # CPU time per operation grows on a contended machine; the load says how much to trust the figures.
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} during the run")
    failures = []
    if not (ours["ok"] and baseline["ok"]):
        failures.append(f"not all audio came back (session {ours['chunks']}, baseline {baseline['chunks']} "
                        f"of {ours['frames']})")
    if ours_pct > GOAL_CPU_PERCENT:
        failures.append(f"session CPU {ours_pct:.2f} % > goal {GOAL_CPU_PERCENT} %")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
