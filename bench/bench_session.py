"""Kernel-side CPU cost of a live session, per second of audio streamed both ways.

A scripted Realtime server runs in a *separate process* (so its CPU is not counted) and answers
every ``input_audio_buffer.append`` with an ``response.output_audio.delta`` of the same audio:
the kernel sends and receives equal amounts, like a full-duplex conversation. The measured process
streams 20 ms frames in real time and reports its own CPU time (all threads: the caller's and the
session's) divided by the seconds of audio streamed.

Baseline: a bare ``websockets`` asyncio client on its own loop thread doing only the wire work
(JSON + base64 each way), without our session, protocol, event log or recorder. The session
beats it on its own wire path (``rtvoice_widget/session/transport.py``: frames written from the caller's
thread, messages handled where the transport delivers them), which spares the loop wake-ups the
baseline pays. Also printed, not asserted: the *floor*, the same traffic with nothing but a
pre-framed ``sendall`` per frame and a thread parsing frames in a blocking ``recv`` (the cost
of the system calls and thread wake-ups alone, under any client). CPU time per
operation swells on a loaded machine, so baseline and session run *interleaved* in the same run
(rounds in ABBA order, each variant on a fresh connection) and the figures are medians over the
rounds. Goals, both asserted: the session costs <= 3 % of one core per second of two-way audio
(absolute), and its own overhead on top of the wire work is <= 25 % of the baseline (relative:
median session/baseline ratio of the paired rounds <= 1.25, which holds on a busy machine too).

    python bench/bench_session.py            # 6 rounds x 8 s of audio per variant
    python bench/bench_session.py --quick    # 2 rounds x 1.5 s per variant (CI smoke)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
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
GOAL_RATIO = 1.25


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
    todo = frames(seconds)
    expected = sum(map(len, todo))
    received = threading.Event()
    got = {"bytes": 0}

    def on_audio(item_id, response_id, pcm16) -> None:
        # Appends that queued up while the loop was busy go out merged: count bytes, not chunks.
        got["bytes"] += len(pcm16)
        if got["bytes"] >= expected:
            received.set()

    session.on("output_audio", on_audio)
    cpu0, wall0 = time.process_time(), time.monotonic()
    paced(todo, session.send_audio)
    ok = received.wait(30)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    metrics = session.metrics()
    session.close()
    return {"cpu_s": cpu, "wall_s": wall, "ok": ok, "sent": expected, "received": got["bytes"],
            "events": metrics["events"]}


def run_baseline(url: str, seconds: float) -> dict:
    """The same traffic with a bare websockets client on its own loop thread: wire work only."""
    from websockets.asyncio.client import connect

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    todo = frames(seconds)
    expected = sum(map(len, todo))
    received = threading.Event()
    state: dict = {"bytes": 0}

    async def open_and_read() -> None:
        ws = await connect(url, max_size=2**24, compression=None)
        state["ws"] = ws
        state["ready"].set()
        async for frame in ws:
            event = json.loads(frame)
            if event.get("type") == "response.output_audio.delta":
                state["bytes"] += len(base64.b64decode(event["delta"]))
                if state["bytes"] >= expected:
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
    return {"cpu_s": cpu, "wall_s": wall, "ok": ok, "sent": expected, "received": state["bytes"]}


def run_floor(url: str, seconds: float) -> dict:
    """The same traffic with the least a client can do: one blocking ``sendall`` of a frame
    framed once in advance, and a thread blocking in ``recv`` that only parses the frames
    (websockets' sans-I/O protocol). No event loop, JSON, base64, log or recorder: what is left
    is the cost of the system calls and thread wake-ups, the floor under any client."""
    from websockets.client import ClientProtocol
    from websockets.frames import Opcode
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    uri = parse_uri(url)
    protocol = ClientProtocol(uri, max_size=2**24)
    sock = socket.create_connection((uri.host, uri.port), timeout=20)
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    while not any(isinstance(e, Response) for e in protocol.events_received()):
        protocol.receive_data(sock.recv(65536))
    sock.settimeout(None)
    todo = frames(seconds)
    protocol.send_text(json.dumps({"type": "input_audio_buffer.append",
                                   "audio": base64.b64encode(todo[0]).decode()}).encode())
    framed = b"".join(protocol.data_to_send())
    received = threading.Event()
    state = {"deltas": 0}

    def read() -> None:
        while True:
            data = sock.recv(2**16)
            if not data:
                return
            protocol.receive_data(data)
            for event in protocol.events_received():
                if event.opcode is Opcode.TEXT and b"response.output_audio.delta" in event.data:
                    state["deltas"] += 1
                    if state["deltas"] >= len(todo):
                        received.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    cpu0, wall0 = time.process_time(), time.monotonic()
    paced([framed] * len(todo), sock.sendall)
    ok = received.wait(30)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    protocol.send_close(1000)  # the server answers and closes: the reader sees the end
    sock.sendall(b"".join(protocol.data_to_send()))
    reader.join(5)
    sock.close()
    expected = sum(map(len, todo))
    return {"cpu_s": cpu, "wall_s": wall, "ok": ok, "sent": expected,
            "received": state["deltas"] * len(todo[0])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds x 1.5 s per variant (CI smoke)")
    parser.add_argument("--seconds", type=float, default=None, help="audio seconds per variant and round (default 8)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per variant (default 6)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_echo()
        return 0
    seconds = args.seconds or (1.5 if args.quick else 8.0)
    rounds = args.rounds or (2 if args.quick else 6)
    # Bound the whole run: a hung connection must not hang CI.
    signal.alarm(int(rounds * 3 * (seconds + 40)) + 30)

    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    baselines: list[dict] = []
    sessions: list[dict] = []
    floors: list[dict] = []
    loads: list[float] = []
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("ws://"):
            print(f"echo server did not start (got {url!r})")
            return 2
        for index in range(rounds):
            # ABBA: neither variant always runs first, so a drifting machine load cancels out.
            order = (run_baseline, run_session) if index % 2 == 0 else (run_session, run_baseline)
            results = {run_baseline: baselines, run_session: sessions, run_floor: floors}
            for run in (*order, run_floor):
                results[run].append(run(url, seconds))
            loads.append(os.getloadavg()[0])
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()

    # The same seconds were streamed in and received back in each round.
    base_pcts = [r["cpu_s"] / seconds * 100 for r in baselines]
    ours_pcts = [r["cpu_s"] / seconds * 100 for r in sessions]
    floor_pcts = [r["cpu_s"] / seconds * 100 for r in floors]
    base_pct, ours_pct = statistics.median(base_pcts), statistics.median(ours_pcts)
    ratio = statistics.median([o / b for o, b in zip(ours_pcts, base_pcts)])
    overhead_pp = statistics.median([o - b for o, b in zip(ours_pcts, base_pcts)])
    print(f"audio streamed both ways: {rounds} rounds x {seconds:.1f} s per variant, {FRAME_MS} ms frames, "
          f"interleaved ABBA")
    print(f"baseline (bare websockets client): median {base_pct:5.2f} % of a core   "
          f"rounds: {' '.join(f'{p:.2f}' for p in base_pcts)}")
    print(f"RealtimeSession (protocol+log+rec): median {ours_pct:5.2f} % of a core   "
          f"rounds: {' '.join(f'{p:.2f}' for p in ours_pcts)}   "
          f"({sessions[-1]['events']} events logged in the last round)")
    print(f"floor (syscalls + wake-ups only):    median {statistics.median(floor_pcts):5.2f} % of a core   "
          f"rounds: {' '.join(f'{p:.2f}' for p in floor_pcts)}   (not a goal: what no client can go under)")
    print(f"session's own overhead: median {overhead_pp:+.2f} percentage points, "
          f"ratio session / baseline {ratio:.2f}x   goal: <= {GOAL_RATIO:.2f}x")
    print(f"absolute: {ours_pct:.2f} % of a core   goal: <= {GOAL_CPU_PERCENT:.1f} %")
    # CPU time per operation grows on a contended machine; the load says how much to trust the figures.
    print(f"machine: {os.cpu_count()} cores, load average {min(loads):.1f}..{max(loads):.1f} during the run")
    failures = []
    for name, results in (("session", sessions), ("baseline", baselines), ("floor", floors)):
        for r in results:
            if not r["ok"]:
                failures.append(f"{name}: not all audio came back ({r['received']} of {r['sent']} bytes)")
    if ratio > GOAL_RATIO:
        failures.append(f"session overhead ratio {ratio:.2f}x > goal {GOAL_RATIO:.2f}x")
    if ours_pct > GOAL_CPU_PERCENT:
        failures.append(f"session CPU {ours_pct:.2f} % > goal {GOAL_CPU_PERCENT} %"
                        + (f" (the bare baseline alone needs {base_pct:.2f} % on this machine now)"
                           if base_pct > GOAL_CPU_PERCENT else ""))
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
