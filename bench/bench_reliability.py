"""Reliability under hostile peers (issue #11): ``python bench/bench_reliability.py [--quick]``.

Three figures, each with its goal (the exit code is non-zero when one is missed):

1. **Player sends to a page that stopped reading** (``MicLink.send``, called on the session
   thread). Baseline, in the same run: today's design, a blocking ``websockets`` sync send to
   the same kind of peer. Goal: no send blocks; the page is dropped and logged.
2. **Hostile frames at a running session** (a scripted server: malformed JSON, binary frames,
   wrong field types, huge strings, distinct invented types). Goal: no exception escapes, every
   frame is in the log (a server row or a ``protocol.error``), the session answers afterwards.
   Ratio: hostile frames/s against well-formed frames/s, same session.
3. **Hostile clients at the local server** (a subprocess, echo LLM: oversized appends with
   ``turn_detection: null``, bad JSON, unknown types, connections opened and dropped). Goal: it
   stays up, answers a normal text turn afterwards, and its RSS stays within 100 MB of its start.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import websockets  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.sync.client import connect as sync_connect  # noqa: E402

from rtvoice_widget.mic_link import MicLink  # noqa: E402

CHUNK = bytes(9600)  # 200 ms of 24 kHz PCM16, as the player sends


def bench_stalled_page(n: int) -> bool:
    logging.getLogger("rtvoice_widget.mic_link").setLevel(logging.ERROR)  # the drop is expected
    # Baseline: the blocking send of today's MicLink (a sync websockets connection, no timeout).
    from websockets.sync.server import serve

    peers = []
    opened = threading.Event()

    def handler(connection):
        peers.append(connection)
        opened.set()
        threading.Event().wait(30)

    server = serve(handler, "127.0.0.1", 0, compression=None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.create_connection(("127.0.0.1", server.socket.getsockname()[1])) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        opened.wait(10)
        sent = [0]

        def baseline_session_thread():
            try:
                for _ in range(n):
                    peers[0].send(CHUNK)
                    sent[0] += 1
            except websockets.ConnectionClosed:
                pass  # released when the bench closes the peer

        thread = threading.Thread(target=baseline_session_thread, daemon=True)
        thread.start()
        thread.join(5)
        baseline_blocked = thread.is_alive()
        print(f"baseline (blocking send): {'BLOCKED' if baseline_blocked else 'done'} after {sent[0]} sends of 200 ms"
              f"{' (still blocked after 5 s: every later server event would stall)' if baseline_blocked else ''}")
        server.shutdown()
    thread.join(5)

    # Ours: a reading page, then one that stops reading.
    def timed_sends(link, conn, count):
        times, results = [], []
        for _ in range(count):
            started = time.perf_counter()
            results.append(link.send({"type": "audio", "item_id": "i"}, CHUNK, conn))
            times.append(time.perf_counter() - started)
        return times, results

    link = MicLink(lambda *_: None)
    try:
        with sync_connect(f"{link.url}?token={link.token}") as page:
            conn = json.loads(page.recv(timeout=10)[2:].split(b"}")[0] + b"}")["conn"]
            while link.conn != conn:
                time.sleep(0.01)
            drain = threading.Thread(target=lambda: [page.recv(timeout=10) for _ in range(200)], daemon=True)
            drain.start()
            reading, _ = timed_sends(link, conn, 200)
            drain.join(20)
        with sync_connect(f"{link.url}?token={link.token}", max_queue=1) as page:
            conn = json.loads(page.recv(timeout=10)[2:].split(b"}")[0] + b"}")["conn"]
            while link.conn != conn:
                time.sleep(0.01)
            stalled, results = timed_sends(link, conn, n)
        dropped_after = results.index(False) if False in results else None
        stalled = stalled[:dropped_after]  # the sends while it was connected
    finally:
        link.close()
    p50 = statistics.median(reading) * 1e6
    print(f"ours, reading page:  send p50 {p50:.1f} us, max {max(reading) * 1e6:.0f} us")
    print(f"ours, stalled page:  send p50 {statistics.median(stalled) * 1e6:.1f} us "
          f"({statistics.median(stalled) * 1e6 / p50:.2f}x the reading page), max {max(stalled) * 1e3:.2f} ms; "
          f"page dropped after {dropped_after} sends, overflows={link.overflows}")
    return dropped_after is not None and link.overflows == 1


def bench_hostile_server(n: int) -> bool:
    from scripted_server import Raw, ScriptedServer, voice_turn

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import RealtimeSession

    kinds = [
        lambda i: Raw("{not json " + str(i)),
        lambda i: Raw(b"\x00binary" * 10),
        lambda i: {"type": "response.output_audio.delta", "response_id": 5, "item_id": [i], "delta": "*"},
        lambda i: {"type": "error", "error": "x" * 100_000},
        lambda i: {"type": f"invented.{i}", "blob": "y" * 1000},
        lambda i: Raw("[1, 2]"),
    ]
    hostile = [kinds[i % len(kinds)](i) for i in range(n)]
    fine = [{"type": "rate_limits.updated", "rate_limits": []} for _ in range(n)]
    with ScriptedServer() as server, RealtimeSession(server.url, config=SessionConfig(turn_detection=None)) as s:
        s.wait_for("session.updated", timeout=10)
        rates = {}
        for name, frames in (("well-formed", fine), ("hostile", hostile)):
            before = s.metrics()["frames_received"]
            started = time.perf_counter()
            server.play(frames)
            while s.metrics()["frames_received"] < before + len(frames):
                time.sleep(0.005)
            rates[name] = len(frames) / (time.perf_counter() - started)
        mark = s.last_seq
        server.play(voice_turn(with_speech=False, audio_ms=200, response_id="resp_after"))
        s.wait_for("response.done", after=mark, timeout=30)
        df = s.events.to_pandas()
        logged = (df["source"] == "server").sum() + (df["type"] == "protocol.error").sum()
        received = s.metrics()["frames_received"]
        alive = s.connected and s.protocol.turns[-1].status == "completed"
    print(f"{n} hostile frames: {rates['hostile']:.0f} frames/s vs {rates['well-formed']:.0f} well-formed "
          f"({rates['hostile'] / rates['well-formed']:.2f}x); logged {logged} of {received} received; "
          f"answers afterwards: {alive}; type categories {len(df['type'].cat.categories)}")
    # Unparsable frames become protocol.error rows; wrong-typed ones are both a row and an error.
    return alive and logged >= received


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_hostile_clients(appends: int, events: int, connections: int) -> bool:
    token = secrets.token_urlsafe(32)
    env = dict(os.environ, RTVOICE_SERVER_TOKEN=token,
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    process = subprocess.Popen(
        [sys.executable, "-m", "rtvoice_widget.server", "--port", "0", "--vad", "energy", "--llm", "echo",
         "--exit-with-parent", "--log-level", "ERROR"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        url = next(line for line in process.stdout if line.startswith("rtvoice-server listening on ")).split()[-1]
        headers = {"Authorization": f"Bearer {token}"}
        start_rss = _rss_mb(process.pid)
        big = base64.b64encode(bytes(8 * 2 ** 20)).decode()
        peak = [start_rss]

        async def flood() -> None:
            async with connect(url, additional_headers=headers, max_size=None) as ws:
                await ws.send(json.dumps({"type": "session.update", "session": {
                    "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
                for _ in range(appends):
                    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": big}))
                    peak[0] = max(peak[0], _rss_mb(process.pid))
                bad = ["{nope", json.dumps({"type": "made.up"}), json.dumps({"type": "conversation.item.create",
                       "previous_item_id": "missing", "item": {"type": "message", "role": "user", "content": []}}),
                       json.dumps({"type": "session.update", "session": {"type": "realtime", "voice": 7}})]
                for i in range(events):
                    await ws.send(bad[i % len(bad)])
                await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
                while json.loads(await ws.recv())["type"] != "input_audio_buffer.cleared":
                    pass
            for _ in range(connections):
                try:
                    async with connect(url, additional_headers=headers):
                        pass
                except websockets.WebSocketException:
                    pass

        asyncio.run(flood())
        end_rss = _rss_mb(process.pid)

        async def text_turn() -> str:
            async with connect(url, additional_headers=headers) as ws:
                await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": "still there?"}]}}))
                await ws.send(json.dumps({"type": "response.create"}))
                while (event := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "response.done":
                    pass
                return event["response"]["status"]

        status = asyncio.run(text_turn())
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    print(f"local server: RSS {start_rss:.0f} MB at start, peak {peak[0]:.0f} MB, {end_rss:.0f} MB after "
          f"{appends} x 8 MiB appends (turn_detection null), {events} bad events, {connections} connections; "
          f"answers afterwards: {status}")
    return status == "completed" and end_rss - start_rss < 100 and peak[0] - start_rss < 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    q = args.quick
    ok = {
        "stalled page": bench_stalled_page(2000 if q else 5000),
        "hostile server": bench_hostile_server(1000 if q else 10_000),
        "hostile clients": bench_hostile_clients(20 if q else 100, 1000 if q else 10_000, 100 if q else 1000),
    }
    for name, passed in ok.items():
        print(f"{name:16s} {'ok' if passed else 'MISSED'}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
