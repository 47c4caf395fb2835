"""Reliability under hostile peers (issue #11): ``python bench/bench_reliability.py [--quick]``.

Five parts, each with its goal (the exit code is non-zero when one is missed):

1. **Player sends to a page that stopped reading** (``AudioLink.send``, called on the session
   thread). Baseline, in the same run: a blocking ``websockets`` sync send to the same kind of
   peer. Goal: no send blocks; the page is dropped and logged.
2. **Fuzzed server frames at a running session** (a scripted server): 10,000 frames of ten
   kinds (malformed JSON, binary, not an object, no type, a type that is no string, wrong field
   types, bad base64, a 100 kB error string; and, not bad, a 100 kB delta for an unknown item
   and invented types), then 100,000 frames of distinct invented types. Goal, exactly: frames
   received = server rows + unparsable frames' ``protocol.error`` rows; each bad frame is one
   ``error``-category row; no exception escapes (no ERROR log record, no thread dies); the log
   refuses nothing; the type tables stay bounded; a normal turn is answered afterwards (found
   by ``wait_for("response.done")``). Ratio: frames/s against well-formed frames, same session.
3. **50 server drops mid-response** while a mic streams 20 ms frames in real time; every 5th
   outage outlasts the stale rule (the first reconnect is refused for 0.7 s). Goal: each
   reconnect within 2 s (``connection.lost`` to the next ``session.created``), the current
   config re-sent first on each, every mic frame logged as sent or as dropped, log rows = frames
   both ways with no refused row, no audio sent to a new session that was older than
   ``stale_audio_ms`` when it came back, a turn answered afterwards.
4. **Bad caller input** (wrong dtype, NaN, empty, a 10-minute array, bad rate, invalid config,
   empty text). Goal: each raises ``TypeError``/``ValueError`` at the call, nothing is sent, the
   session answers afterwards.
5. **Hostile clients at the local server** (a subprocess, echo LLM: oversized appends with
   ``turn_detection: null``, bad JSON, unknown types, connections opened and dropped). Goal: it
   stays up, answers a normal text turn afterwards, and its RSS stays within 100 MB of its start.

``--quick``: 2,000 fuzzed + 20,000 typed frames, 10 drops, smaller floods.
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

from rtvoice_widget.audio_link import AudioLink  # noqa: E402
from scripted_server import Abort, Raw, ScriptedServer, voice_turn  # noqa: E402

CHUNK = bytes(9600)  # 200 ms of 24 kHz PCM16, as the player sends


def bench_stalled_page(n: int) -> bool:
    logging.getLogger("rtvoice_widget.audio_link").setLevel(logging.ERROR)  # the drop is expected
    # Baseline: the blocking send of today's AudioLink (a sync websockets connection, no timeout).
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
    # The peer's socket closes first: websockets 17's shutdown() waits for the blocked send.
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

    link = AudioLink(lambda *_: None)
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


class _Escapes(logging.Handler):
    """Counts what escaped: ERROR records (asyncio's "Task exception was never retrieved", the
    session's last-resort reports) and exceptions that ended a thread."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []
        self._hook = threading.excepthook

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()[:200]}")

    def __enter__(self) -> "_Escapes":
        logging.getLogger().addHandler(self)
        threading.excepthook = lambda args: self.records.append(f"thread {args.thread}: {args.exc_value!r}")
        return self

    def __exit__(self, *exc_info) -> None:
        logging.getLogger().removeHandler(self)
        threading.excepthook = self._hook


def _wait(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    raise TimeoutError(f"timed out waiting for {what}")


# Fuzzed server frames by kind: (build(i), server rows, protocol.error rows, error rows) each.
# A frame that does not parse as an object with a string type is a protocol.error and no
# server row; a parsed one the protocol refuses is both; a server error event is an error row.
FUZZ = {
    "malformed JSON": (lambda i: Raw("{not json " + str(i)), 0, 1, 1),
    "binary frame": (lambda i: Raw(b"\x00binary" * 10), 0, 1, 1),
    "not an object": (lambda i: Raw(f"[{i}, 2]"), 0, 1, 1),
    "no type": (lambda i: Raw(json.dumps({"event_id": f"e{i}"})), 0, 1, 1),
    "type not a string": (lambda i: Raw(json.dumps({"type": i})), 0, 1, 1),
    "wrong field types": (lambda i: {"type": "response.output_audio.delta", "response_id": i, "item_id": [i],
                                     "delta": "*"}, 1, 1, 1),
    "bad base64 audio": (lambda i: {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i",
                                    "delta": "*" * 7}, 1, 1, 1),
    "huge error string": (lambda i: {"type": "error", "error": "x" * 100_000}, 1, 0, 1),
    # Not bad: a server may send what this client does not know; logged, never an error.
    "huge delta, unknown item": (lambda i: {"type": "response.output_text.delta", "item_id": f"nope{i}",
                                            "delta": "y" * 100_000}, 1, 0, 0),
    "invented type": (lambda i: {"type": f"invented.{i}", "blob": "y" * 1000}, 1, 0, 0),
}


def bench_fuzzed_server(n: int, n_types: int) -> bool:
    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.events import MAX_TYPES
    from rtvoice_widget.protocol import MAX_IGNORED_TYPES
    from rtvoice_widget.session import RealtimeSession

    kinds = list(FUZZ.items())
    fuzzed = [kinds[i % len(kinds)] for i in range(n)]
    frames = [build(i) for i, (_, (build, *_)) in enumerate(fuzzed)]
    expected = [sum(spec[k] for _, spec in fuzzed) for k in (1, 2, 3)]  # server, protocol.error, error rows
    fine = [{"type": "rate_limits.updated", "rate_limits": []} for _ in range(n)]
    flood = [{"type": f"flood.{i}"} for i in range(n_types)]
    ok = True
    with _Escapes() as escapes, ScriptedServer() as server, \
            RealtimeSession(server.url, config=SessionConfig(turn_detection=None)) as s:
        s.wait_for("session.updated", timeout=10)
        rates = {}
        for name, batch in (("well-formed", fine), ("fuzzed", frames), ("distinct types", flood)):
            before, mark = s.metrics()["frames_received"], s.last_seq
            started = time.perf_counter()
            server.play(batch)
            _wait(lambda: s.metrics()["frames_received"] >= before + len(batch), f"{name} frames", 600)
            rates[name] = len(batch) / (time.perf_counter() - started)
            received = s.metrics()["frames_received"] - before
            df = s.events.to_pandas()
            df = df[df["seq"] > mark]
            server_rows = int((df["source"] == "server").sum())
            errors = int((df["type"] == "protocol.error").sum())
            error_rows = int((df["category"] == "error").sum())
            # The protocol.error rows of frames that parsed say "could not handle <type>".
            unparsed = int(((df["type"] == "protocol.error")
                            & ~df["text"].fillna("").str.startswith("could not handle")).sum())
            if name == "fuzzed":
                want = expected
            else:
                want = [len(batch), 0, 0]
            exact = received == len(batch) and server_rows + unparsed == received \
                and [server_rows, errors, error_rows] == want
            print(f"  {name:15s} {len(batch):7d} frames, {rates[name]:8.0f} frames/s: logged {server_rows} server "
                  f"rows + {unparsed} unparsable = {server_rows + unparsed} of {received} received; "
                  f"{errors} protocol.error, {error_rows} error rows (expected {want[1]}, {want[2]}): "
                  f"{'exact' if exact else 'MISMATCH'}")
            ok &= exact
        mark = s.last_seq
        server.play(voice_turn(with_speech=False, audio_ms=200, response_id="resp_after"))
        done = s.wait_for("response.done", after=mark, timeout=30)
        df = s.events.to_pandas()
        alive = s.connected and s.protocol.turns[-1].status == "completed" and done["type"] == "response.done"
        categories = len(df["type"].cat.categories)
        ignored = len(s.protocol.ignored_types)
        unlogged = s.metrics()["events_unlogged"]
    print(f"  fuzzed {rates['fuzzed'] / rates['well-formed']:.2f}x, distinct types "
          f"{rates['distinct types'] / rates['well-formed']:.2f}x the well-formed rate; type categories "
          f"{categories} (<= {MAX_TYPES}), ignored types {ignored} (<= {MAX_IGNORED_TYPES}); rows refused by the "
          f"log {unlogged}; exceptions escaped {len(escapes.records)}; answers afterwards: {alive}")
    for line in escapes.records[:5]:
        print(f"    escaped: {line}")
    return ok and alive and not escapes.records and categories <= MAX_TYPES and ignored <= MAX_IGNORED_TYPES \
        and unlogged == 0


def bench_drop_soak(drops: int) -> bool:
    """Server drops mid-response while a mic streams in real time; every 5th outage outlasts the
    stale rule (the server refuses the first reconnect for 0.7 s)."""
    import base64

    import numpy as np

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import RealtimeSession

    instructions = "Answer like a lighthouse keeper."
    ok = True
    with _Escapes() as escapes, ScriptedServer() as server, \
            RealtimeSession(server.url, config=SessionConfig(turn_detection=None)) as s:
        s.wait_for("session.updated", timeout=10)
        s.update(instructions=instructions)  # the config each reconnect must restore: the current one
        captured: dict[int, float] = {}  # mic frame tag -> session ms of its last sample
        stop = threading.Event()

        def mic() -> None:
            started, k = time.monotonic(), 0
            while not stop.is_set():
                k += 1
                captured[k] = s.now_ms()
                s.send_audio(np.full(480, k, np.int16), captured_ms=captured[k] - 20)
                time.sleep(max(0.0, started + k * 0.02 - time.monotonic()))

        thread = threading.Thread(target=mic, daemon=True)
        thread.start()
        for i in range(drops):
            time.sleep(0.1)  # the mic streams on this connection for a while
            mark = s.last_seq
            long_outage = i % 5 == 4
            if long_outage:
                server.reject_status = 503
                threading.Timer(0.7, lambda: setattr(server, "reject_status", None)).start()
            turn = voice_turn(with_speech=False, audio_ms=2000)
            server.play(turn[:8] + [Abort()])  # response.created, some audio, then the drop
            s.wait_for("session.created", after=mark, timeout=30)
        time.sleep(0.3)
        stop.set()
        thread.join(5)
        mark = s.last_seq
        server.play(voice_turn(with_speech=False, audio_ms=200, response_id="resp_final"))
        s.wait_for("response.done", after=mark, timeout=30)
        alive = s.connected and s.protocol.turns[-1].status == "completed"
        time.sleep(0.5)  # the last frames reach the server
        df = s.events.to_pandas()
        metrics = s.metrics()
    # Each reconnect: connection.lost -> the next session.created.
    lost = df.loc[df["type"] == "connection.lost", "t_ms"].tolist()
    created = df.loc[(df["type"] == "session.created") & (df["source"] == "server"), "t_ms"].tolist()
    gaps = [next(c for c in created if c > t) - t for t in lost]
    # Config restored: every connection after the first starts with session.update carrying it.
    restored = all(
        (events := server.client_events(connection=j)) and events[0]["type"] == "session.update"
        and events[0]["session"].get("instructions") == instructions
        for j in range(1, drops + 1))
    # No stale audio: a frame captured before connection j came back and sent on it was at most
    # stale_audio_ms old when it did (the session's session.created time of that connection).
    worst = 0.0
    received = 0
    for j in range(1, drops + 1):
        appends = server.client_events("input_audio_buffer.append", connection=j)
        received += len(appends)
        for event in appends:
            tag = int(np.frombuffer(base64.b64decode(event["audio"])[:2], "<i2")[0])
            if captured[tag] < created[j]:
                worst = max(worst, created[j] - captured[tag])
    received += len(server.client_events("input_audio_buffer.append", connection=0))
    dropped = df[df["type"] == "connection.outbox_dropped"]
    stale_ms = float(dropped["payload"].map(lambda p: p["audio_ms"] if p["reason"] == "stale" else 0).sum())
    dropped_appends = int(dropped["payload"].map(lambda p: p["appends"]).sum())
    logged_appends = int((df["type"] == "input_audio_buffer.append").sum())
    # Nothing unaccounted: each mic frame is a logged append or a logged drop, each server frame
    # a server row, each written event a client row, and the log refused nothing.
    accounted = len(captured) == logged_appends + dropped_appends
    rows_ok = (df["source"] == "server").sum() == metrics["frames_received"] \
        and (df["source"] == "client").sum() == metrics["frames_sent"] and metrics["events_unlogged"] == 0 \
        and list(df["seq"]) == list(range(len(df)))
    within = max(gaps) < 2000 and len(gaps) == drops
    print(f"  {drops} drops mid-response: reconnect p50 {statistics.median(gaps):.0f} ms, max {max(gaps):.0f} ms "
          f"(goal < 2000); config restored on {drops} of {drops} reconnects: {restored}")
    print(f"  mic: {len(captured)} frames = {logged_appends} sent (logged) + {dropped_appends} dropped (logged, "
          f"{stale_ms:.0f} ms stale): {accounted}; {received} reached the server, {logged_appends - received} "
          f"lost in flight at the drops (written, never read)")
    print(f"  oldest audio sent to a new session: {worst:.0f} ms old when it came back (goal <= "
          f"{s.stale_audio_ms:.0f}); log: {len(df)} rows, seq without holes, rows = frames both ways, "
          f"refused 0: {rows_ok}; exceptions escaped {len(escapes.records)}; answers afterwards: {alive}")
    for line in escapes.records[:5]:
        print(f"    escaped: {line}")
    ok = within and restored and accounted and rows_ok and worst <= s.stale_audio_ms and stale_ms > 0 \
        and alive and not escapes.records
    return ok


def bench_bad_caller() -> bool:
    import numpy as np

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import RealtimeSession

    cases = {
        "wrong dtype (int32)": lambda s: s.send_audio(np.zeros(480, np.int32)),
        "NaN samples": lambda s: s.send_audio(np.full(480, np.nan, np.float32)),
        "empty array": lambda s: s.send_audio(np.zeros(0, np.float32)),
        "10-minute array": lambda s: s.send_audio(np.zeros(10 * 60 * 24000, np.float32)),
        "bad sample rate": lambda s: s.send_audio(np.zeros(480, np.float32), sample_rate=0),
        "invalid config value": lambda s: s.update(voice=7),
        "unknown config field": lambda s: s.update(not_a_field=1),
        "invalid config object": lambda s: RealtimeSession(server.url, config={"voice": "alloy"}),
        "empty text": lambda s: s.send_text("   "),
    }
    results = []
    with _Escapes() as escapes, ScriptedServer() as server, \
            RealtimeSession(server.url, config=SessionConfig(turn_detection=None)) as s:
        s.wait_for("session.updated", timeout=10)
        sent = len(server.client_events())
        for name, call in cases.items():
            started = time.perf_counter()
            try:
                call(s)
            except (TypeError, ValueError) as exc:
                results.append((name, type(exc).__name__, str(exc).splitlines()[0], time.perf_counter() - started))
            else:
                results.append((name, None, "no exception", 0.0))
        time.sleep(0.2)
        nothing_sent = len(server.client_events()) == sent
        server.respond("response.create", lambda e, srv: voice_turn(with_speech=False, audio_ms=200,
                                                                   transcript="Still here."))
        reply = s.talk(np.zeros(4800, np.float32), realtime=False, timeout=30)
        alive = s.connected and reply.transcript == "Still here."
    for name, kind, message, seconds in results:
        print(f"  {name:22s} {kind or 'NONE':10s} {seconds * 1000:6.1f} ms  {message[:100]}")
    print(f"  nothing sent for them: {nothing_sent}; answers afterwards: {alive}; exceptions escaped "
          f"{len(escapes.records)}")
    return all(kind for _, kind, _, _ in results) and nothing_sent and alive and not escapes.records


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
        "fuzzed server": bench_fuzzed_server(2000 if q else 10_000, 20_000 if q else 100_000),
        "server drops": bench_drop_soak(10 if q else 50),
        "bad caller input": bench_bad_caller(),
        "hostile clients": bench_hostile_clients(20 if q else 100, 1000 if q else 10_000, 100 if q else 1000),
    }
    for name, passed in ok.items():
        print(f"{name:18s} {'ok' if passed else 'MISSED'}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
