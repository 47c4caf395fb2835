"""RealtimeSession against real scripted WebSocket servers (tests/scripted_server.py).

Every test ends by validating each client event the server received with the SDK's
``RealtimeClientEvent`` (the ``session`` fixture does it at teardown).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import numpy as np
import pytest

from rtvoice_widget.config import SessionConfig, TurnDetection
from rtvoice_widget.session import RealtimeSession, Reply, SessionClosedError, TalkReply
from scripted_server import (
    Abort,
    Close,
    Pause,
    Raw,
    ScriptedServer,
    assistant_audio_reply,
    assistant_response_start,
    audio_deltas,
    barge_in,
    error_event,
    function_call_turn,
    pcm16_tone,
    speech_started,
    truncated,
    voice_turn,
)
from session_fixtures import MANUAL, no_session_thread_survives, open_session, server  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def appended_bytes(server: ScriptedServer, connection: int | None = None) -> int:
    return sum(len(base64.b64decode(e["audio"])) for e in server.client_events("input_audio_buffer.append", connection=connection))


def log_types(session: RealtimeSession, source: str | None = None) -> list[str]:
    df = session.events.to_pandas()
    if source is not None:
        df = df[df["source"] == source]
    return [str(t) for t in df["type"]]


# -- connecting ----------------------------------------------------------------------------------


def test_connect_sends_config_first_and_logs_both_sides(server, open_session):
    s = open_session(config=SessionConfig(instructions="Be brief.", voice="cedar"))
    update = server.wait_for("session.update")[0]
    assert server.client_events()[0]["type"] == "session.update"
    assert update["session"]["instructions"] == "Be brief."
    assert update["session"]["audio"]["output"]["voice"] == "cedar"
    s.wait_for("session.updated", timeout=10)
    df = s.events.to_pandas()
    assert list(df["seq"]) == sorted(df["seq"])
    assert (np.diff(df["t_ms"].to_numpy()) >= 0).all()
    rows = {(str(r.source), str(r.type)) for r in df.itertuples()}
    assert {("local", "connection.opened"), ("client", "session.update"), ("server", "session.created"),
            ("server", "session.updated")} <= rows
    assert s.connected


def test_connect_to_nothing_is_a_clear_error():
    with ScriptedServer() as srv:
        url = srv.url
    session = RealtimeSession(url)
    with pytest.raises(ConnectionError, match="cannot connect"):
        session.connect(timeout=5)
    with pytest.raises(SessionClosedError):
        session.send_audio(np.zeros(480, np.int16))


def test_rejected_handshake_names_the_status_and_never_the_key():
    key = "sk-live-VERYSECRET-42"
    with ScriptedServer(reject_status=401) as srv:
        session = RealtimeSession(srv.url, api_key=key)
        with pytest.raises(ConnectionError, match="HTTP 401") as info:
            session.connect(timeout=5)
        assert srv.request_headers[0]["authorization"] == f"Bearer {key}"
    assert key not in str(info.value)
    assert key not in session.events.to_pandas().to_json(date_format="iso")


def test_connect_times_out_without_session_created():
    with ScriptedServer(greet=False) as srv:
        session = RealtimeSession(srv.url)
        with pytest.raises(TimeoutError, match="session.created"):
            session.connect(timeout=0.5)
        assert not session.connected


def test_api_key_reaches_the_server_only_in_the_header(server, open_session):
    key = "sk-proj-TOPSECRET-123456"
    s = open_session(api_key=key)
    s.send_text("hello")
    server.wait_for("response.create")
    assert server.request_headers[-1]["authorization"] == f"Bearer {key}"
    s.close()
    everything = [repr(s), repr(s.endpoint), json.dumps(s.metrics(), default=str), s.events.to_pandas().to_json(date_format="iso"),
                  json.dumps(server.client_events())]
    assert not any(key in text for text in everything)


# -- a voice turn --------------------------------------------------------------------------------


def test_full_voice_turn(server, open_session):
    s = open_session()
    received: list[tuple[str, str, bytes]] = []
    s.on("output_audio", lambda item_id, response_id, pcm: received.append((item_id, response_id, pcm)))
    done_rows: list[dict] = []
    s.on("response.done", done_rows.append)
    s.send_audio(pcm16_tone(1200, frequency=200))
    server.wait_for("input_audio_buffer.append")
    mark = s.last_seq
    script = voice_turn(audio_ms=1500, transcript="It is sunny and warm today.", item_id="item_a1", response_id="resp_a1")
    server.play(script)
    done = s.wait_for("response.done", after=mark, timeout=10)
    assert done["response_id"] == "resp_a1"
    assert done_rows and done_rows[-1]["seq"] == done["seq"]

    # All assistant audio went to the stream hook and the recorder, bit-exact.
    assert b"".join(p for _, _, p in received) == pcm16_tone(1500)
    assert {(i, r) for i, r, _ in received} == {("item_a1", "resp_a1")}
    assert len(s.recording.assistant) >= 1500 * 24
    assert len(s.recording.user) >= 1200 * 24

    # Every server event was logged in order, audio stripped but its duration kept.
    df = s.events.to_pandas()
    server_rows = df[(df["source"] == "server") & (df["seq"] > mark)]
    assert [str(t) for t in server_rows["type"]] == [e["type"] for e in script]
    deltas = server_rows[server_rows["type"] == "response.output_audio.delta"]
    assert deltas["audio_ms"].sum() == pytest.approx(1500)
    assert all("delta" not in p for p in deltas["payload"])
    transcript = "".join(df[df["type"] == "response.output_audio_transcript.delta"]["text"])
    assert transcript == "It is sunny and warm today."

    # The protocol's turn bookkeeping saw the same turn.
    turn = s.protocol.turns[-1]
    assert turn.response_id == "resp_a1" and turn.status == "completed" and not turn.interrupted
    metrics = s.metrics()
    assert metrics["turns"] >= 1 and metrics["audio_received_ms"] == pytest.approx(1500)
    assert metrics["frames_received"] >= len(script)


def test_talk_manual_turn_returns_reply(server, open_session):
    s = open_session(config=MANUAL)
    server.respond("response.create", lambda event, srv: voice_turn(with_speech=False, audio_ms=700, transcript="Hi there."))
    utterance = (np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220) * 0.2).astype(np.float32)  # 1 s at 16 kHz
    reply = s.talk(utterance, sample_rate=16000, realtime=False, timeout=10)
    assert isinstance(reply, TalkReply) and Reply is TalkReply  # Reply: the name it had first
    assert reply.transcript == "Hi there."
    assert reply.status == "completed"
    assert reply.audio.dtype == np.float32 and len(reply.audio) == 700 * 24
    np.testing.assert_allclose(reply.audio[:2400], np.frombuffer(pcm16_tone(100), "<i2") / 32768, atol=1e-6)
    assert reply.latency_ms is not None and reply.latency_ms >= 0
    assert reply.done_ms >= reply.first_audio_ms >= reply.input_end_ms >= reply.input_started_ms
    # 1 s of 16 kHz input became 1 s of 24 kHz PCM16, then commit + response.create.
    assert appended_bytes(server) == pytest.approx(48000, abs=4)
    types = [e["type"] for e in server.client_events()]
    assert types[-2:] == ["input_audio_buffer.commit", "response.create"]


def test_talk_server_vad_streams_trailing_silence_in_real_time(server, open_session):
    config = SessionConfig(turn_detection=TurnDetection(silence_duration_ms=200))
    s = open_session(config=config)
    heard = {"ms": 0.0, "stopped": False}

    # Counted in audio, not in appends: frames that queue up on a busy loop go out merged.
    def vad(event, srv):
        first = heard["ms"] == 0
        heard["ms"] += len(base64.b64decode(event["audio"])) / 48
        if first:
            return [voice_turn(audio_ms=300)[0]]  # speech_started
        if heard["ms"] >= 200 + 240 and not heard["stopped"]:  # 240 ms of trailing silence
            heard["stopped"] = True
            return voice_turn(audio_ms=300, transcript="Sure.")[1:]
        return None

    server.respond("input_audio_buffer.append", vad)
    reply = s.talk(pcm16_tone(200), realtime=True, timeout=10)
    assert reply.transcript == "Sure." and len(reply.audio) == 300 * 24
    # The reply came while talk() still streamed trailing silence: latency counts from the
    # end of the words (200 ms of tone), so it covers the 240 ms of silence the server waited.
    assert reply.first_audio_ms >= reply.input_end_ms
    assert reply.latency_ms >= 200
    assert reply.user_transcript == "What's the weather like?"
    # 200 ms speech + 500 ms silence (silence_duration_ms + 300) in 20 ms frames, paced.
    deadline = time.monotonic() + 10
    while appended_bytes(server) < 700 * 48 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert appended_bytes(server) == 700 * 48
    times = server.arrival_times("input_audio_buffer.append")
    assert times[-1] - times[0] >= 0.35  # paced, not dumped (700 ms would go out in milliseconds)


def test_talk_rejects_bad_audio_before_sending(server, open_session):
    s = open_session(config=MANUAL)
    for bad in (np.zeros(0, np.float32), np.array([0.1, np.nan], np.float32), np.zeros(10, np.int32), "not-a-file.wav"):
        with pytest.raises((TypeError, ValueError, OSError, RuntimeError)):
            s.talk(bad, timeout=1)
    time.sleep(0.1)
    assert server.client_events("input_audio_buffer.append") == []


# -- barge-in ------------------------------------------------------------------------------------


def test_barge_in_flushes_and_truncates_within_received_audio_repeatedly(server, open_session):
    s = open_session()
    flushed: list[str] = []
    s.on("flush", flushed.append)
    for round_ in range(3):
        item_id, response_id = f"item_b{round_}", f"resp_b{round_}"
        # The server sends 3 s of audio at once; the player reports 400 ms played, then the user talks.
        server.play(assistant_response_start(response_id, item_id)
                    + assistant_audio_reply(response_id, item_id, "A long story", pcm16_tone(3000)))
        s.wait_for("response.output_audio_transcript.delta", timeout=10)
        deadline = time.monotonic() + 10
        while s.protocol.items.get(item_id) is None or s.protocol.items[item_id].audio_received_ms < 3000:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        s.playback_progress(item_id, 400)
        script = barge_in(response_id=response_id, item_id=item_id, transcript="A long story")
        server.play(script[script.index(next(x for x in script if isinstance(x, Pause))) + 1 :])
        truncate = server.wait_for("conversation.item.truncate", count=round_ + 1)[-1]
        assert truncate["item_id"] == item_id and truncate["content_index"] == 0
        assert 400 <= truncate["audio_end_ms"] <= 3000
        server.play([truncated(item_id, truncate["audio_end_ms"])])
        s.wait_for("conversation.item.truncated", after=s.last_seq - 1 if round_ else -1, timeout=10)
        assert flushed[-1] == item_id
    assert flushed == ["item_b0", "item_b1", "item_b2"]
    assert log_types(s, "local").count("playback.flushed") == 3
    # interrupt_response=True (default): the server cancels, the client must not.
    assert server.client_events("response.cancel") == []
    assert all(t.interrupted for t in s.protocol.turns[-3:])


def test_barge_in_without_server_interrupt_sends_cancel(server, open_session):
    s = open_session(config=SessionConfig(turn_detection=TurnDetection(interrupt_response=False)))
    server.play(barge_in(sent_audio_ms=2000, item_id="item_c", response_id="resp_c", pause_before_interrupt=0.05)[:-5])
    truncate = server.wait_for("conversation.item.truncate")[0]
    assert truncate["item_id"] == "item_c" and 0 <= truncate["audio_end_ms"] <= 2000
    server.wait_for("response.cancel")
    assert s.wait_for("playback.flushed", timeout=5)["item_id"] == "item_c"
    s.wait_for("response.cancel", timeout=5)  # logged by the client once written
    types = log_types(s, "client")
    assert types.index("conversation.item.truncate") < types.index("response.cancel")


def _stream_reply(server: ScriptedServer, s: RealtimeSession, item_id: str, response_id: str, ms: int) -> None:
    server.play(assistant_response_start(response_id, item_id)
                + assistant_audio_reply(response_id, item_id, "A long story", pcm16_tone(ms)))
    deadline = time.monotonic() + 10
    while s.protocol.items.get(item_id) is None or s.protocol.items[item_id].audio_received_ms < ms:
        assert time.monotonic() < deadline, "reply audio did not arrive"
        time.sleep(0.01)


def test_live_player_truncates_at_its_final_flushed_position(server, open_session):
    # A long flush_timeout: the truncation must wait for the player's report, not the timer.
    s = open_session(live_player=True, flush_timeout=30)
    _stream_reply(server, s, "item_lp", "resp_lp", 3000)
    s.playback_progress("item_lp", 400)
    after = s.last_seq
    server.play([speech_started("item_user_lp")])
    s.wait_for("playback.flushed", after=after, timeout=10)
    assert server.client_events("conversation.item.truncate") == []
    assert s.protocol.truncations_due == ["item_lp"]
    # The player kept playing until the flush reached it.
    s.playback_progress("item_lp", 1234.5, flushed=True)
    (truncate,) = server.wait_for("conversation.item.truncate")
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("item_lp", 1234)
    s.wait_for("conversation.item.truncate", timeout=5)  # logged once written
    # The recording cuts the assistant track where the player stopped.
    assert s.protocol.items["item_lp"].truncated_at_ms == 1234
    assert server.client_events("response.cancel") == []  # the server cancels by itself


def test_live_player_that_never_reports_gets_the_estimate_after_the_timeout(server, open_session):
    s = open_session(live_player=True, flush_timeout=0.05)
    _stream_reply(server, s, "item_dead", "resp_dead", 3000)
    s.playback_progress("item_dead", 400)
    server.play([speech_started("item_user_dead")])
    (truncate,) = server.wait_for("conversation.item.truncate")
    assert truncate["item_id"] == "item_dead" and 400 <= truncate["audio_end_ms"] <= 3000
    assert s.protocol.truncations_due == []
    s.playback_progress("item_dead", 2000, flushed=True)  # too late: changes nothing
    # A marker queued after the late report: whatever the report sent would reach the server
    # first (the log's truncate row says nothing here: it was logged before the server read it).
    s.commit()
    server.wait_for("input_audio_buffer.commit")
    assert len(server.client_events("conversation.item.truncate")) == 1


def test_live_player_cancel_is_not_held(server, open_session):
    s = open_session(live_player=True, flush_timeout=30,
                     config=SessionConfig(turn_detection=TurnDetection(interrupt_response=False)))
    server.play(assistant_response_start("resp_cx", "item_cx")
                + audio_deltas("resp_cx", "item_cx", pcm16_tone(2000)))
    deadline = time.monotonic() + 10
    while s.protocol.items.get("item_cx") is None or s.protocol.items["item_cx"].audio_received_ms < 2000:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.play([speech_started("item_user_cx")])
    server.wait_for("response.cancel")
    assert server.client_events("conversation.item.truncate") == []
    s.playback_progress("item_cx", 700, flushed=True)
    assert server.wait_for("conversation.item.truncate")[0]["audio_end_ms"] == 700


def _start_audio(server: ScriptedServer, s: RealtimeSession, response_id: str, item_id: str, ms: int) -> None:
    """A response starts and ``ms`` of its audio arrive; it stays active (no response.done)."""
    server.play(assistant_response_start(response_id, item_id) + audio_deltas(response_id, item_id, pcm16_tone(ms)))
    deadline = time.monotonic() + 10
    while s.protocol.items.get(item_id) is None or s.protocol.items[item_id].audio_received_ms < ms:
        assert time.monotonic() < deadline, "reply audio did not arrive"
        time.sleep(0.01)


@pytest.mark.parametrize("stop", ["interrupt", "clear_output_audio"])
def test_interrupt_and_clear_output_audio_flush_and_truncate(server, open_session, stop):
    s = open_session()
    flushed: list[str] = []
    s.on("flush", flushed.append)
    _start_audio(server, s, "resp_int", "item_int", 2000)
    s.playback_progress("item_int", 300)
    getattr(s, stop)()
    assert flushed == ["item_int"]
    (truncate,) = server.wait_for("conversation.item.truncate")
    assert truncate["item_id"] == "item_int" and 300 <= truncate["audio_end_ms"] <= 2000
    if stop == "interrupt":
        server.wait_for("response.cancel")
        assert s.protocol.turns[-1].interrupted
        s.interrupt()  # nothing playing any more, response still active on the server: cancel only
        assert len(server.wait_for("response.cancel", count=2)) == 2
        assert len(server.client_events("conversation.item.truncate")) == 1
        return
    # clear_output_audio: the response goes on, and nothing but the truncation went out (no
    # cancel, no WebRTC-only output_audio_buffer.clear).
    s.commit()  # a marker: anything clear_output_audio() queued went out before it
    server.wait_for("input_audio_buffer.commit")
    sent = [e["type"] for e in server.client_events()]
    assert "response.cancel" not in sent and "output_audio_buffer.clear" not in sent
    assert s.protocol.active_response_id == "resp_int"
    server.assert_client_events_valid()


def test_interrupt_with_nothing_going_on_sends_nothing(server, open_session):
    s = open_session()
    before = len(server.client_events())
    s.interrupt()
    s.commit()  # a marker: anything interrupt() queued would go out before it
    server.wait_for("input_audio_buffer.commit")
    assert [e["type"] for e in server.client_events()[before:]] == ["input_audio_buffer.commit"]


def test_send_audio_places_user_audio_at_its_capture_time(server, open_session):
    s = open_session()
    tone = pcm16_tone(100)
    time.sleep(max(0.0, 1.5 - s.now_ms() / 1000))  # a session clock past 1 s
    captured = s.now_ms() - 1000  # captured a second ago (e.g. it waited behind a busy kernel)
    s.send_audio(tone, captured_ms=captured)
    s.send_audio(tone)
    server.wait_for("input_audio_buffer.append", count=2)
    appends = s.events.filter(type="input_audio_buffer.append").to_dict("records")
    while len(appends) < 2:
        time.sleep(0.01)
        appends = s.events.filter(type="input_audio_buffer.append").to_dict("records")
    assert appends[0]["payload"]["captured_ms"] == captured
    assert "captured_ms" not in appends[1]["payload"]
    user = s.recording.user
    first = int(np.flatnonzero(np.abs(user) > 0)[0])
    assert first == pytest.approx(captured * 24, abs=24)  # where it was captured, not sent
    # The wire never carries the capture time.
    assert all("captured_ms" not in e for e in server.client_events("input_audio_buffer.append"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "10", True])
def test_send_audio_refuses_a_bad_capture_time(open_session, bad):
    s = open_session()
    with pytest.raises(ValueError, match="captured_ms"):
        s.send_audio(pcm16_tone(20), captured_ms=bad)
    assert s.metrics()["audio_sent_ms"] == 0


# -- tools ---------------------------------------------------------------------------------------


def test_function_call_round_trip(server, open_session):
    s = open_session(config=MANUAL)
    calls: list[tuple[str, str]] = []

    @s.tool
    def get_weather(city: str, unit: str = "celsius") -> dict:
        """Current weather for a city.

        Args:
            city: The city name.
            unit: celsius or fahrenheit.
        """
        calls.append((city, threading.current_thread().name))
        return {"city": city, "temperature": 21, "unit": unit}

    update = server.wait_for("session.update", count=2)[-1]
    assert [t["name"] for t in update["session"]["tools"]] == ["get_weather"]
    server.play(function_call_turn(name="get_weather", arguments='{"city": "Paris"}', call_id="call_1"))
    output = server.wait_for("conversation.item.create")[0]
    assert output["item"]["type"] == "function_call_output" and output["item"]["call_id"] == "call_1"
    assert json.loads(output["item"]["output"]) == {"city": "Paris", "temperature": 21, "unit": "celsius"}
    server.wait_for("response.create")
    assert calls and calls[0][0] == "Paris"
    assert calls[0][1] != "rtvoice-session"  # a sync tool runs off the session loop
    types = [e["type"] for e in server.client_events()]
    assert types.index("conversation.item.create") < types.index("response.create")
    assert "tool.call" in log_types(s, "local") and "tool.result" in log_types(s, "local")


def test_async_tool_and_failing_tool_keep_the_session(server, open_session):
    s = open_session(config=MANUAL)

    async def lookup(term: str) -> str:
        """Look a term up."""
        await asyncio.sleep(0.01)
        return f"{term} means yes"

    def explode(x: int) -> int:
        """Always fails."""
        raise RuntimeError("boom")

    s.tool(lookup)
    s.tool(explode)
    server.play(function_call_turn(name="lookup", arguments='{"term": "oui"}', call_id="call_a"))
    first = server.wait_for("conversation.item.create")[0]
    assert first["item"]["output"] == "oui means yes"
    server.play(function_call_turn(name="explode", arguments='{"x": 1}', call_id="call_b"))
    second = server.wait_for("conversation.item.create", count=2)[1]
    assert "boom" in json.loads(second["item"]["output"])["error"]
    server.play(function_call_turn(name="explode", arguments='{"x": "not a number"', call_id="call_c"))
    third = server.wait_for("conversation.item.create", count=3)[2]
    assert "error" in json.loads(third["item"]["output"])
    server.wait_for("response.create", count=3)
    errors = s.events.filter(category="error")
    assert list(errors["type"]).count("tool.error") == 2
    # Still usable.
    s.send_text("thanks")
    server.wait_for("response.create", count=4)


# -- reconnecting --------------------------------------------------------------------------------


def test_reconnect_after_abort_resends_current_config(server, open_session):
    s = open_session(config=MANUAL)
    s.update(instructions="Speak like a pirate.")
    server.wait_for("session.update", count=2, connection=0)
    server.play([Abort()])
    server.wait_for_connections(2)
    update = server.wait_for("session.update", connection=1)[0]
    assert update["session"]["instructions"] == "Speak like a pirate."
    s.wait_for("connection.restored", timeout=10)
    assert server.client_events(connection=1)[0]["type"] == "session.update"
    s.send_audio(pcm16_tone(100))
    s.commit()
    server.wait_for("input_audio_buffer.commit", connection=1)
    types = log_types(s, "local")
    assert types.index("connection.lost") < types.index("connection.reconnecting") < types.index("connection.restored")
    assert s.metrics()["reconnects"] == 1


def test_server_closing_mid_response_is_survived(server, open_session):
    s = open_session(config=MANUAL)
    script = voice_turn(with_speech=False, audio_ms=2000, item_id="item_m", response_id="resp_m")
    server.play(script[:8] + [Close(1011, "internal error")])
    server.wait_for_connections(2)
    s.wait_for("connection.restored", timeout=10)
    lost = s.wait_for("connection.lost")
    assert lost["payload"]["code"] == 1011 and "internal error" in lost["text"]
    server.respond("response.create", lambda e, srv: voice_turn(with_speech=False, audio_ms=200, transcript="Back."))
    reply = s.talk(pcm16_tone(100), realtime=False, timeout=10)
    assert reply.transcript == "Back."


def test_gives_up_after_the_configured_limit():
    server = ScriptedServer().start()
    s = RealtimeSession(server.url, max_reconnect_attempts=3, reconnect_delay=0.01, max_reconnect_delay=0.02)
    try:
        s.connect(timeout=10)
        server.stop()  # closes the connection and refuses new ones
        failed = s.wait_for("connection.failed", timeout=20)
        assert failed["category"] == "error" and "3 reconnect attempts" in failed["text"]
        types = log_types(s, "local")
        assert types.count("connection.reconnecting") == 3
        assert types.count("connection.error") == 3
        with pytest.raises(SessionClosedError, match="gave up"):
            s.send_audio(pcm16_tone(20))
        with pytest.raises(SessionClosedError):
            s.commit()
        assert server.assert_client_events_valid() >= 1
    finally:
        s.close()
        server.stop()


# -- bad input from the server ---------------------------------------------------------------------


def test_malformed_frames_become_error_events_and_nothing_is_lost(server, open_session):
    s = open_session(config=MANUAL)
    errors: list[dict] = []
    s.on("error", errors.append)
    mark = s.last_seq
    bad = [
        Raw("this is not json"),
        Raw(b"\x00\x01binary"),
        Raw("[1, 2, 3]"),
        Raw('{"no_type": true}'),
        {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "output_index": 0,
         "content_index": 0, "delta": "***not base64***"},
        {"type": "some.future_event", "payload": 1},
        error_event("Invalid value for 'voice'.", param="session.audio.output.voice"),
    ]
    script = bad + voice_turn(with_speech=False, audio_ms=300, response_id="resp_after", item_id="item_after")
    server.play(script)
    s.wait_for("response.done", after=mark, timeout=10)
    df = s.events.to_pandas()
    new = df[df["seq"] > mark]
    protocol_errors = new[new["type"] == "protocol.error"]
    assert len(protocol_errors) == 5  # 4 unparsable frames + the bad base64
    assert "malformed JSON" in protocol_errors["text"].iloc[0]
    assert "binary frame" in protocol_errors["text"].iloc[1]
    assert "some.future_event" in list(new["type"])
    error_rows = new[(new["source"] == "server") & (new["type"] == "error")]
    assert error_rows["text"].iloc[0] == "Invalid value for 'voice'." and error_rows["category"].iloc[0] == "error"
    assert len([r for r in errors if r["seq"] > mark]) == 6
    # Every frame the server sent is in the log: as a server event, or (unparsable) as a protocol error.
    unparsable = 4
    assert s.metrics()["frames_received"] == (df["source"] == "server").sum() + unparsable
    assert list(new[new["source"] == "server"]["type"])[-len(script) + unparsable:] == [e["type"] for e in script[unparsable:]]
    assert s.connected and s.metrics()["protocol_errors"] == 5
    assert len(s.recording.assistant) >= 300 * 24


def test_oversized_frame_drops_the_connection_then_recovers(server, open_session):
    s = open_session(max_frame_bytes=2**16)
    server.play([{"type": "some.big_event", "blob": "x" * 2**17}])
    s.wait_for("connection.restored", timeout=10)
    errors = s.events.filter(type="protocol.error")
    assert "max_frame_bytes" in errors["text"].iloc[0]
    s.send_text("still there?")
    server.wait_for("response.create", connection=1)


# -- bad input from the caller --------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100, 48000])
@pytest.mark.parametrize("kind", ["int16", "float32", "float64", "bytes"])
def test_send_audio_dtype_and_rate_matrix(server, open_session, kind, rate):
    s = open_session(config=MANUAL)
    n = rate // 10  # 100 ms
    wave = np.sin(np.arange(n) / rate * 2 * np.pi * 300) * 0.5
    if kind == "bytes":
        audio = (wave * 32767).astype("<i2").tobytes()
    elif kind == "int16":
        audio = (wave * 32767).astype(np.int16)
    else:
        audio = wave.astype(kind)
    ms = s.send_audio(audio, sample_rate=rate)
    assert ms == pytest.approx(100, abs=0.1)
    s.commit()
    server.wait_for("input_audio_buffer.commit")
    assert appended_bytes(server) == pytest.approx(4800, abs=4)
    pcm = np.frombuffer(b"".join(base64.b64decode(e["audio"]) for e in server.client_events("input_audio_buffer.append")), "<i2")
    # The 300 Hz tone survives resampling: its peak is near 0.5 full scale.
    assert 0.4 < np.abs(pcm[200:-200]).max() / 32768 < 0.6


@pytest.mark.parametrize(
    "audio, rate",
    [
        (np.zeros(0, np.float32), 24000),
        (np.array([0.0, np.nan, 0.1], np.float32), 24000),
        (np.array([0.0, np.inf], np.float64), 24000),
        (np.zeros(100, np.int32), 24000),
        (np.zeros((10, 10, 2), np.float32), 24000),
        (b"\x00\x01\x02", 24000),
        ("hello", 24000),
        (np.zeros(100, np.float32), 0),
        (np.zeros(100, np.float32), -16000),
        (np.zeros(10 * 60 * 24000, np.int16), 24000),  # 10 min in one call: over the outbox cap
    ],
)
def test_send_audio_bad_input_raises_and_sends_nothing(server, open_session, audio, rate):
    s = open_session(config=MANUAL)
    with pytest.raises((TypeError, ValueError)):
        s.send_audio(audio, sample_rate=rate)
    s.commit()
    server.wait_for("input_audio_buffer.commit")
    assert server.client_events("input_audio_buffer.append") == []


def test_invalid_commands_raise_at_the_call_site_and_the_session_stays_usable(server, open_session):
    s = open_session(config=MANUAL)
    with pytest.raises(ValueError, match="voice"):
        s.update(voice="")
    with pytest.raises(ValueError, match="unknown"):
        s.update(not_a_field=1)
    with pytest.raises(ValueError, match="model"):
        s.update(model="another-model")
    with pytest.raises(ValueError, match="unknown field"):
        s.create_response(bogus=True)
    with pytest.raises(ValueError):
        s.send_text("   ")
    with pytest.raises(ValueError):
        s.playback_progress("item", float("nan"))
    with pytest.raises(ValueError):
        s.playback_progress("", 10)
    with pytest.raises(TypeError):
        s.on("error", "not callable")
    s.update(speed=1.2)
    update = server.wait_for("session.update", count=2)[-1]
    assert update["session"]["audio"]["output"]["speed"] == 1.2
    assert len(server.client_events("session.update")) == 2  # the failed updates sent nothing


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_reconnect_attempts=-1),
        dict(reconnect_delay=0),
        dict(connect_timeout=float("nan")),
        dict(max_frame_bytes=10),
        dict(config={"voice": "alloy"}),
    ],
)
def test_invalid_session_options(kwargs):
    with pytest.raises((TypeError, ValueError)):
        RealtimeSession("ws://127.0.0.1:1/v1/realtime", **kwargs)


def test_callback_errors_are_logged_not_fatal(server, open_session):
    s = open_session(config=MANUAL)

    def bad_row_callback(row):
        raise KeyError("oops")

    def bad_audio_hook(item_id, response_id, pcm):
        raise RuntimeError("speaker on fire")

    s.on("response.done", bad_row_callback)
    s.on("output_audio", bad_audio_hook)
    mark = s.last_seq
    server.play(voice_turn(with_speech=False, audio_ms=200))
    s.wait_for("response.done", after=mark, timeout=10)
    deadline = time.monotonic() + 10
    while True:
        errors = s.events.filter(category="error", source="local")
        texts = " | ".join(errors["text"].astype(str))
        if "oops" in texts and "speaker on fire" in texts or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert "oops" in texts and "speaker on fire" in texts
    assert set(errors["type"]) <= {"subscriber.error", "log.subscriber_error", "callback.error"}
    assert len(s.recording.assistant) >= 200 * 24
    s.send_text("ok")
    server.wait_for("response.create")


# -- threading -----------------------------------------------------------------------------------


def test_keeps_streaming_while_the_main_thread_is_blocked(server, open_session):
    s = open_session(config=MANUAL)
    frame = pcm16_tone(20)
    stop = threading.Event()

    def feeder():
        while not stop.is_set():
            s.send_audio(frame)
            time.sleep(0.02)

    thread = threading.Thread(target=feeder)
    thread.start()
    server.respond("input_audio_buffer.append", lambda e, srv: None)
    blocked_from = time.monotonic()
    time.sleep(1.0)  # the kernel's main thread busy in a cell
    blocked_until = time.monotonic()
    stop.set()
    thread.join()
    during = [t for t in server.arrival_times("input_audio_buffer.append") if blocked_from <= t <= blocked_until]
    # Frames kept arriving through the block (in both of its halves), not in one burst after it.
    middle = (blocked_from + blocked_until) / 2
    assert len(during) >= 10
    assert any(t < middle for t in during) and any(t > middle for t in during)


def test_server_audio_is_received_while_the_main_thread_sleeps(server, open_session):
    s = open_session()
    chunks: list[float] = []
    s.on("output_audio", lambda item_id, response_id, pcm: chunks.append(time.monotonic()))
    server.play(assistant_response_start("resp_s", "item_s")
                + [step for d in assistant_audio_reply("resp_s", "item_s", "x", pcm16_tone(1000)) for step in (d, Pause(0.05))],
                wait=False)
    start = time.monotonic()
    time.sleep(0.8)
    end = time.monotonic()
    middle = (start + end) / 2
    assert any(start <= t < middle for t in chunks) and any(middle < t <= end for t in chunks)


def test_async_with_from_asyncio_code(server):
    async def main() -> list[str]:
        async with RealtimeSession(server.url, config=MANUAL) as s:
            server.respond("response.create", lambda e, srv: voice_turn(with_speech=False, audio_ms=200, transcript="Async hi."))
            mark = s.last_seq
            s.send_text("hello from asyncio")
            done = await asyncio.to_thread(s.wait_for, "response.done", after=mark, timeout=10)
            assert done["category"] == "ai_response"
            texts = s.events.filter(type="response.output_audio_transcript.delta")["text"]
        assert not s.connected
        return list(texts)

    assert "".join(asyncio.run(main())) == "Async hi."
    assert server.client_events("conversation.item.create")[0]["item"]["content"][0]["text"] == "hello from asyncio"


def test_close_flushes_queued_events_and_is_idempotent(server):
    s = RealtimeSession(server.url, config=MANUAL).connect(timeout=10)
    for _ in range(50):
        s.send_audio(pcm16_tone(20))
    s.commit()
    s.close()
    s.close()
    # close() returns once the socket closed; the server may still be reading what came before.
    server.wait_for("input_audio_buffer.commit")
    # A burst goes out whole and in order, one append per call.
    appends = len(server.client_events("input_audio_buffer.append"))
    assert appended_bytes(server) == 50 * 20 * 48 and appends == 50
    assert server.client_events()[-1]["type"] == "input_audio_buffer.commit"
    assert log_types(s, "local")[-1] == "connection.closed"
    assert log_types(s, "client").count("input_audio_buffer.append") == appends
    assert s.events.filter(type="input_audio_buffer.append")["audio_ms"].sum() == pytest.approx(50 * 20)
    with pytest.raises(SessionClosedError):
        s.send_text("after close")


def test_events_sent_while_reconnecting_go_out_after_the_config(server, open_session):
    # The audio must not turn stale while it waits (that rule: tests/test_security.py).
    s = open_session(config=MANUAL, reconnect_delay=0.5, stale_audio_ms=10_000)
    server.play([Abort()])
    s.wait_for("connection.lost", timeout=10)
    assert not s.connected
    s.send_audio(pcm16_tone(60))
    s.commit()
    server.wait_for("input_audio_buffer.commit", connection=1)
    types = [e["type"] for e in server.client_events(connection=1)]
    assert types == ["session.update", "input_audio_buffer.append", "input_audio_buffer.commit"]
    assert appended_bytes(server, connection=1) == 60 * 48
    # Logged once, when really sent (the log entry follows the socket write).
    s.wait_for("input_audio_buffer.commit", timeout=5)
    assert log_types(s, "client").count("input_audio_buffer.commit") == 1


def test_zero_reconnect_attempts_gives_up_at_the_first_loss(server, open_session):
    s = open_session(max_reconnect_attempts=0)
    server.play([Close(1001, "going away")])
    failed = s.wait_for("connection.failed", timeout=10)
    assert "0 reconnect attempts" in failed["text"]
    assert server.connection_count == 1
    with pytest.raises(SessionClosedError):
        s.send_text("anyone?")


def test_talk_accepts_a_wav_path(server, open_session, tmp_path):
    from rtvoice_widget.audio import write_wav

    path = write_wav(tmp_path / "hello.wav", np.full(8000, 0.1, np.float32), sample_rate=8000)
    s = open_session(config=MANUAL)
    server.respond("response.create", lambda e, srv: voice_turn(with_speech=False, audio_ms=100, transcript="Heard you."))
    reply = s.talk(path, realtime=False, timeout=10)
    assert reply.transcript == "Heard you."
    assert appended_bytes(server) == pytest.approx(48000, abs=4)  # 1 s at 8 kHz → 1 s at 24 kHz


def test_lifecycle_errors_and_thread_cleanup(server):
    s = RealtimeSession(server.url)
    with pytest.raises(SessionClosedError, match="connect"):
        s.commit()
    s.connect(timeout=10)
    thread = s._thread
    with pytest.raises(RuntimeError, match="already"):
        s.connect()
    s.close()
    assert thread is not None and not thread.is_alive()
    assert not s.connected and "closed" in repr(s)


def test_talk_waits_through_a_tool_call_for_the_spoken_answer(server, open_session):
    s = open_session(config=MANUAL)

    @s.tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    responses = iter([
        function_call_turn(name="add", arguments='{"a": 2, "b": 3}', call_id="call_add", response_id="resp_fc"),
        voice_turn(with_speech=False, audio_ms=400, transcript="Two plus three is five.", response_id="resp_say"),
    ])
    server.respond("response.create", lambda e, srv: next(responses, None))
    reply = s.talk(pcm16_tone(300), realtime=False, timeout=10)
    assert reply.response_ids == ["resp_fc", "resp_say"]
    assert reply.transcript == "Two plus three is five." and len(reply.audio) == 400 * 24
    output = server.client_events("conversation.item.create")[0]["item"]
    assert output == {"type": "function_call_output", "call_id": "call_add", "output": "5"}


def test_debug_logging_never_prints_the_key(server, caplog):
    import logging

    key = "sk-debug-LEAKCHECK-777"
    caplog.set_level(logging.DEBUG)
    with RealtimeSession(server.url, api_key=key, config=MANUAL) as s:
        s.send_text("hi")
        server.wait_for("response.create")
    assert server.request_headers[0]["authorization"] == f"Bearer {key}"
    assert caplog.records  # logging was on (websockets logs the connection at INFO)...
    assert key not in caplog.text  # ...but never the handshake headers


def test_send_audio_property_any_supported_input_becomes_24k_pcm16(server, open_session):
    from hypothesis import given, settings, strategies as st

    s = open_session(config=MANUAL)
    sent = {"bytes": 0}

    @settings(max_examples=40, deadline=None, database=None)
    @given(
        rate=st.sampled_from([8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]),
        n=st.integers(min_value=1, max_value=4000),
        dtype=st.sampled_from(["int16", "float32", "float64"]),
        stereo=st.booleans(),
        seed=st.integers(0, 2**16),
    )
    def check(rate, n, dtype, stereo, seed):
        rng = np.random.default_rng(seed)
        shape = (n, 2) if stereo else (n,)
        x = rng.uniform(-1, 1, shape)
        x = (x * 32767).astype(np.int16) if dtype == "int16" else x.astype(dtype)
        ms = s.send_audio(x, sample_rate=rate)
        expected_samples = n * 24000 / rate
        assert abs(ms * 24 - expected_samples) <= 1
        sent["bytes"] += int(round(ms * 48))

    check()
    s.commit()
    server.wait_for("input_audio_buffer.commit")
    assert appended_bytes(server) == sent["bytes"]
    assert s.connected


@pytest.mark.parametrize(
    "event",
    [
        {"type": "response.output_audio.delta", "response_id": "r_odd", "item_id": "i_odd", "output_index": 0,
         "content_index": 0, "delta": base64.b64encode(b"abc").decode()},  # half a sample
        {"type": "response.done", "response": "not an object"},
        {"type": "conversation.item.truncated"},  # required fields missing
        {"type": "response.function_call_arguments.done", "call_id": 5},
    ],
    ids=["odd_audio", "response_not_object", "missing_fields", "call_id_not_str"],
)
def test_wrongly_shaped_server_events_are_error_events(server, open_session, event):
    s = open_session(config=MANUAL)
    mark = s.last_seq
    server.play(assistant_response_start("r_odd", "i_odd") + [event])
    error = s.wait_for("error", after=mark, timeout=10)
    assert error["type"] == "protocol.error" and error["source"] == "local"
    # The offending event itself is logged too, and the session goes on.
    assert event["type"] in log_types(s, "server")
    mark = s.last_seq
    server.play(voice_turn(with_speech=False, audio_ms=100, response_id="r_next", item_id="i_next"))
    assert s.wait_for("response.done", after=mark, timeout=10)["response_id"] == "r_next"
    assert s.connected


def test_frames_queued_while_the_loop_is_busy_all_go_out_in_order(server, open_session):
    s = open_session(config=MANUAL)
    entered, release = threading.Event(), threading.Event()

    def slow_hook(item_id, response_id, pcm16):  # holds the session thread, like a slow callback
        entered.set()
        release.wait(10)

    s.on("output_audio", slow_hook)
    server.play(assistant_response_start("resp_busy", "item_busy")
                + audio_deltas("resp_busy", "item_busy", pcm16_tone(100), chunk_ms=100))
    assert entered.wait(10)
    frames = [np.full(480, n, np.int16) for n in range(10)]
    for frame in frames:
        s.send_audio(frame)  # does not wait for the blocked loop
    release.set()
    s.commit()
    server.wait_for("input_audio_buffer.commit")
    appends = server.client_events("input_audio_buffer.append")
    # Written from this thread or queued for the loop: one append per call, in order, before
    # the commit (tests/test_session_wire.py checks which path they take).
    assert [base64.b64decode(e["audio"]) for e in appends] == [f.tobytes() for f in frames]
    assert server.client_events()[-1]["type"] == "input_audio_buffer.commit"
    s.wait_for("input_audio_buffer.commit", timeout=5)
    assert s.events.filter(type="input_audio_buffer.append")["audio_ms"].tolist() == [20.0] * 10


def test_metrics_headline_gap_runs_from_the_end_of_the_recorded_voice(server, open_session):
    """``median_voice_to_first_audio_ms`` comes from the user audio the session recorded, so it
    holds for any backend: here the scripted server reports speech_stopped whenever it likes."""
    s = open_session()
    assert s.metrics()["median_voice_to_first_audio_ms"] is None
    time.sleep(1.6)  # the mic audio below was captured over the last 1.5 s, as a live mic's is
    captured = (s.now_ms() - 1500) // 20 * 20  # on the 20 ms frame grid of the voice check
    tone = (np.sin(np.arange(24000) / 24000 * 2 * np.pi * 220) * 0.3).astype(np.float32)  # 1 s of voice
    s.send_audio(tone, 24000, captured_ms=captured)
    s.send_audio(np.zeros(12000, np.float32), 24000, captured_ms=captured + 1000)  # then 500 ms of silence
    server.wait_for("input_audio_buffer.append", count=2)
    server.play(voice_turn(audio_ms=400, response_id="resp_v1", item_id="item_v1"))
    s.wait_for("response.done", timeout=10)
    turn = s.protocol.turns[-1]
    voice_end = captured + 1000
    expected = turn.first_audio_ms - voice_end
    assert expected > 0
    metrics = s.metrics()
    assert metrics["median_voice_to_first_audio_ms"] == pytest.approx(expected)
    assert metrics["p90_voice_to_first_audio_ms"] == pytest.approx(expected)  # one turn: p90 = p50
    # The live turns table has it too (the session passes its recording), not only a snapshot.
    live = s.transcript().set_index("item_id").loc["item_v1"]
    assert live["voice_end_ms"] == pytest.approx(voice_end)
    assert live["voice_to_first_audio_ms"] == pytest.approx(expected)
    # The scripted speech_stopped arrives with the reply, so the server-side figure differs.
    assert metrics["median_speech_to_first_audio_ms"] != pytest.approx(expected)
    from rtvoice_widget.saved import snapshot

    row = snapshot(s).turns.set_index("item_id").loc["item_v1"]
    assert row["voice_end_ms"] == pytest.approx(voice_end)
    assert row["voice_to_first_audio_ms"] == pytest.approx(expected)
