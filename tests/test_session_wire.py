"""The session's wire path (rtvoice_widget/session/transport.py) against real scripted servers: audio written
from the caller's thread while the session thread is busy, a socket that fills up, and the
order of everything sent, on the wire and in the log. Every client event the server received
is validated with the SDK's ``RealtimeClientEvent`` at teardown."""

from __future__ import annotations

import base64
import threading
import time

import numpy as np
import pytest

from scripted_server import Abort, ScriptedServer, assistant_response_start, audio_deltas, pcm16_tone
from session_fixtures import MANUAL, open_session, server  # noqa: F401

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def session(open_session):
    return open_session(config=MANUAL)


def frame(n: int, samples: int = 480) -> bytes:
    """A frame whose samples all equal ``n``: its content says which frame it is."""
    return np.full(samples, n, np.int16).tobytes()


def appended(server: ScriptedServer) -> list[bytes]:
    return [base64.b64decode(e["audio"]) for e in server.client_events("input_audio_buffer.append")]


def test_audio_reaches_the_server_while_the_session_thread_is_busy(server, session):
    entered, release = threading.Event(), threading.Event()

    def slow_hook(item_id, response_id, pcm16):  # holds the session thread, like a slow callback
        entered.set()
        release.wait(20)

    session.on("output_audio", slow_hook)
    time.sleep(max(0.0, 0.5 - session.now_ms() / 1000))  # a session clock past the capture times below
    server.play(assistant_response_start("resp_busy", "item_busy")
                + audio_deltas("resp_busy", "item_busy", pcm16_tone(100), chunk_ms=100))
    try:
        assert entered.wait(10)
        captured = session.now_ms() - 200  # captured over the last 200 ms, as a mic would
        for n in range(10):
            session.send_audio(frame(n), captured_ms=captured + 20 * n)
        # Written from this thread: the server has them before the session thread is free.
        server.wait_for("input_audio_buffer.append", count=10, timeout=10)
        assert not release.is_set()
    finally:
        release.set()
    assert appended(server) == [frame(n) for n in range(10)]
    session.commit()
    server.wait_for("input_audio_buffer.commit")
    session.wait_for("input_audio_buffer.commit", timeout=5)
    appends = session.events.filter(type="input_audio_buffer.append")
    assert appends["audio_ms"].tolist() == [20.0] * 10
    assert [p["captured_ms"] for p in appends["payload"]] == pytest.approx([captured + 20 * n for n in range(10)])
    assert "audio" not in appends["payload"].iloc[0]
    # The recording has them at their capture times, as for queued frames.
    user = session.recording.user
    start = round(captured * 24)
    assert np.array_equal(np.round(user[start : start + 4800] * 32768).astype(np.int16),
                          np.repeat(np.arange(10, dtype=np.int16), 480))


def test_a_full_socket_loses_nothing_and_keeps_the_order(server, session):
    # ~16 MB of JSON while the server reads nothing: far more than the socket buffers hold, so
    # writes from this thread come up short and the rest must go out, in order, from the loop.
    count, samples = 250, 24000
    server.pause_reading()
    try:
        for n in range(count):
            session.send_audio(frame(n, samples))
        session.commit()
    finally:
        server.resume_reading()
    server.wait_for("input_audio_buffer.commit", timeout=60)
    assert appended(server) == [frame(n, samples) for n in range(count)]
    assert [e["type"] for e in server.client_events()][-1] == "input_audio_buffer.commit"
    session.wait_for("input_audio_buffer.commit", timeout=10)
    assert session.events.filter(type="input_audio_buffer.append")["audio_ms"].tolist() == [1000.0] * count
    assert session.connected


def test_the_log_lists_client_events_in_wire_order(server, session):
    # Appends written from several threads at once (the direct path) interleaved with commands
    # (the queue): the log's client rows must be in the order the server received them.
    per_thread = 30

    def sender(index: int) -> None:
        for n in range(per_thread):
            session.send_audio(frame(1000 * index + n))
            if n % 10 == 9:
                session.send_text(f"thread {index} message {n}", respond=False)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session.commit()
    server.wait_for("input_audio_buffer.commit")
    session.wait_for("input_audio_buffer.commit", timeout=5)
    on_wire = [e["type"] for e in server.client_events()]
    logged = [str(t) for t in session.events.filter(source="client")["type"]]
    assert logged == on_wire
    assert on_wire.count("conversation.item.create") == 3 * per_thread // 10
    # Each thread's frames arrived whole (one append per call), none lost, in its own order.
    for index in range(3):
        mine = [f for f in appended(server) if 1000 * index <= np.frombuffer(f, "<i2")[0] < 1000 * (index + 1)]
        assert mine == [frame(1000 * index + n) for n in range(per_thread)]


def test_calls_from_one_thread_go_out_in_call_order(server, session):
    session.send_audio(frame(1))
    session.send_text("between", respond=False)
    session.send_audio(frame(2))
    session.commit()
    session.send_audio(frame(3))
    session.clear_audio()
    server.wait_for("input_audio_buffer.clear")
    assert [e["type"] for e in server.client_events()][-6:] == [
        "input_audio_buffer.append", "conversation.item.create", "input_audio_buffer.append",
        "input_audio_buffer.commit", "input_audio_buffer.append", "input_audio_buffer.clear"]
    assert appended(server) == [frame(1), frame(2), frame(3)]


def test_audio_after_a_reconnect_goes_out_after_the_config(server, session):
    session.send_audio(frame(1))
    server.wait_for("input_audio_buffer.append")
    mark = session.last_seq
    server.play([Abort()])  # the TCP connection drops, no close frame
    session.wait_for("connection.restored", after=mark, timeout=10)
    session.send_audio(frame(2))
    server.wait_for("input_audio_buffer.append", connection=1)
    on_second = [e["type"] for e in server.client_events(connection=1)]
    assert on_second[0] == "session.update"
    assert appended(server) == [frame(1), frame(2)]
