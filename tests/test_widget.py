"""VoiceChat driven through real ipywidgets comm messages against a real (scripted) server.

The browser side is played by :class:`widget_harness.bridge.CommRecorder`: it installs itself as
``comm.create_comm`` (the hook ipykernel uses), records every message the widget sends to the
front end and delivers front-end messages (custom messages with binary buffers, state updates)
through ipywidgets' own handler. The server is ``scripted_server.ScriptedServer``, a real
WebSocket server sending GA-shaped events; every client event it receives is validated against
the official SDK types.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from contextlib import contextmanager

import numpy as np
import pytest

from rtvoice_widget.audio_link import Gap, MicFrameOrder
from rtvoice_widget.widget import StaleFrameFilter, TranscriptView, VoiceChat
from scripted_server import (
    Close,
    ScriptedServer,
    assistant_audio_reply,
    assistant_response_end,
    assistant_response_start,
    pcm16_tone,
    session_updated,
    speech_started,
    speech_stopped_and_committed,
    voice_turn,
)
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect
from widget_harness.bridge import CommRecorder, wait_until

SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


def frame(i: int, ms: int = 20) -> bytes:
    """``ms`` of a distinct PCM16 signal at 24 kHz (sample values encode the frame index)."""
    n = 24 * ms
    return (np.arange(n, dtype=np.int16) + np.int16(i * 7)).astype("<i2").tobytes()


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def rec():
    with CommRecorder() as r:
        yield r


@pytest.fixture
def chat(server, rec):
    c = VoiceChat(url=server.url, api_key=SECRET, headphones=True)
    c.connect(timeout=10)
    server.wait_for("session.update")
    yield c
    c.close()


def appended_audio(server: ScriptedServer) -> bytes:
    return b"".join(base64.b64decode(e["audio"]) for e in server.client_events("input_audio_buffer.append"))


# -- audio browser -> server ----------------------------------------------------------------


def test_mic_frames_reach_the_server_in_order_and_intact(chat, server, rec):
    now = time.time() * 1000
    frames = [frame(i) for i in range(25)]
    for i, pcm in enumerate(frames):
        rec.browser_send(chat, {"type": "audio", "seq": i, "t": now + i * 20}, [pcm])
    wait_until(lambda: len(appended_audio(server)) >= sum(map(len, frames)), message="appended audio")
    assert appended_audio(server) == b"".join(frames)
    assert chat.metrics()["mic_frames_in"] == 25
    assert server.assert_client_events_valid() > 0


def test_late_burst_of_mic_frames_is_dropped_and_logged(chat, server, rec):
    now = time.time() * 1000
    rec.browser_send(chat, {"type": "audio", "seq": 0, "t": now}, [frame(0)])
    # Ten frames captured 3 s ago that arrive only now: the kernel was busy running a cell.
    for i in range(1, 11):
        rec.browser_send(chat, {"type": "audio", "seq": i, "t": now - 3000 + i * 20}, [frame(i)])
    rec.browser_send(chat, {"type": "audio", "seq": 11, "t": time.time() * 1000}, [frame(11)])
    wait_until(lambda: len(appended_audio(server)) >= 2 * len(frame(0)), message="fresh frames")
    assert appended_audio(server) == frame(0) + frame(11)
    drops = chat.events.filter(type="mic.stale_dropped").to_dict("records")
    assert len(drops) == 1 and drops[0]["payload"]["dropped_ms"] == pytest.approx(200)
    assert chat.metrics()["mic_frames_stale_dropped"] == 10


def test_bad_browser_messages_are_logged_and_lose_nothing(chat, server, rec):
    rec.browser_send(chat, {"type": "audio", "seq": 0, "t": 0})  # no buffer
    rec.browser_send(chat, {"type": "audio", "seq": 1, "t": 0}, [b"\x01\x02\x03"])  # odd length
    rec.browser_send(chat, {"type": "played", "item_id": "x", "ms": float("nan")})
    rec.browser_send(chat, {"type": "played", "item_id": "", "ms": 10})
    rec.browser_send(chat, {"type": "nonsense"})
    rec.browser_send(chat, {"type": "control", "action": "self-destruct"})
    rec.browser_send(chat, {"type": "text", "text": "   "})
    wait_until(lambda: len(chat.events.filter(type="widget.error")) >= 7, message="7 widget.error events")
    errors = chat.events.filter(type="widget.error")["text"].tolist()
    assert any("without a buffer" in e for e in errors)
    assert any("played_ms" in e for e in errors)
    assert any("nonsense" in e for e in errors)
    # The session is unharmed: a good frame still goes through, at once (the bad frames took
    # their places in the order, so it waits for nothing).
    rec.browser_send(chat, {"type": "audio", "seq": 2, "t": time.time() * 1000}, [frame(2)])
    wait_until(lambda: appended_audio(server) == frame(2), message="good frame after bad ones")
    assert chat.session.connected
    assert chat.events.filter(type="mic.gap").empty and chat._mic.order.held == 0
    for bad in ({"seq": -1}, {"seq": "3"}, {"seq": 3, "stream": 2 ** 32}, {}):
        rec.browser_send(chat, {"type": "audio", "t": time.time() * 1000, **bad}, [frame(3)])
    wait_until(lambda: sum("a uint32 is required" in e for e in chat.events.filter(type="widget.error")["text"]) == 4,
               message="4 errors for bad frame numbers")


def test_a_browser_buffer_overflow_is_logged(chat, server, rec):
    """The page reports audio its capped buffers dropped (js/lib: PlaybackQueue, PlayerHandover)."""
    rec.browser_send(chat, {"type": "playback", "state": "overflow", "buffer": "playback", "dropped": 3,
                            "dropped_ms": 1250.5, "detail": "the playback buffer was full: dropped 1251 ms"})
    rec.browser_send(chat, {"type": "playback", "state": "overflow", "buffer": "handover", "dropped": -1,
                            "dropped_ms": 20})
    rec.browser_send(chat, {"type": "playback", "state": "exploded"})
    wait_until(lambda: len(chat.events.filter(type="widget.error")) >= 2, message="2 widget.error events")
    row, = chat.events.filter(type="playback.overflow").to_dict("records")
    assert row["payload"]["buffer"] == "playback" and row["payload"]["dropped_ms"] == 1250.5
    assert row["payload"]["dropped"] == 3 and "dropped 1251 ms" in row["text"]
    errors = chat.events.filter(type="widget.error")["text"].tolist()
    assert any("dropped must be a number" in e for e in errors) and any("exploded" in e for e in errors)
    assert chat.session.connected


def test_a_barge_in_the_page_detected_is_logged_on_the_session_clock(chat, server, rec):
    """The page's double-talk detector sent the raw mic for a voice over the assistant
    (js/worklets/capture.js): logged as mic.double_talk, its time mapped like the mic frames'."""
    rec.browser_send(chat, {"type": "barge_in", "t": time.time() * 1000, "onset_ms": 200})
    wait_until(lambda: len(chat.events.filter(type="mic.double_talk")) == 1, message="mic.double_talk before any frame")
    assert "detected_ms" not in chat.events.filter(type="mic.double_talk").payload.iloc[0]  # no mapping yet
    captured = time.time() * 1000
    rec.browser_send(chat, {"type": "audio", "seq": 0, "t": captured}, [frame(0)])
    wait_until(lambda: appended_audio(server) == frame(0), message="a frame (the clock mapping)")
    rec.browser_send(chat, {"type": "barge_in", "t": captured + 500, "onset_ms": 200})
    rec.browser_send(chat, {"type": "barge_in", "t": "soon", "onset_ms": 200})
    wait_until(lambda: len(chat.events.filter(type="mic.double_talk")) == 2, message="a second mic.double_talk")
    row = chat.events.filter(type="mic.double_talk").to_dict("records")[-1]
    assert row["payload"]["onset_ms"] == 200 and "200 ms before" in row["text"]
    # 500 ms after the frame's capture, on the session clock the frame was placed by.
    assert row["payload"]["detected_ms"] == pytest.approx(chat._mic.page_to_session_ms(captured) + 500, abs=1)
    wait_until(lambda: any("t must be a finite number" in e for e in chat.events.filter(type="widget.error")["text"]),
               message="the bad report refused")
    assert chat.session.connected


# -- audio server -> browser, flush and truncate ---------------------------------------------


def test_assistant_audio_goes_to_the_browser_as_binary_buffers(chat, server, rec):
    server.play(voice_turn(audio_ms=600, transcript="It is sunny and warm today."))
    wait_until(lambda: sum(len(b[0]) for _, b in rec.custom("audio")) >= 600 * 48, message="600 ms of audio")
    audio = rec.custom("audio")
    assert b"".join(b[0] for _, b in audio) == pcm16_tone(600)
    item_ids = {c["item_id"] for c, _ in audio}
    assert len(item_ids) == 1
    # Base64 never travels between kernel and browser: the JSON part carries no audio.
    assert all(set(c) == {"type", "item_id", "response_id"} for c, _ in audio)


def test_barge_in_flushes_the_browser_and_truncates_at_played_ms(chat, server, rec):
    item, resp = "item_asst_bargein", "resp_bargein"
    server.play(assistant_response_start(resp, item) + assistant_audio_reply(resp, item, "A long story", pcm16_tone(3000)))
    # All of it first: a report is clamped to the audio received so far.
    wait_until(lambda: sum(len(b[0]) for _, b in rec.custom("audio")) >= 3000 * 48, message="audio at the browser")
    # The player reports what it really played so far.
    rec.browser_send(chat, {"type": "played", "item_id": item, "ms": 400.0})
    wait_until(lambda: chat.session.protocol.items[item].played_ms == 400.0, message="played ms reached protocol")
    server.play([speech_started("item_user_2", 0)] + assistant_response_end(resp, item, "A long story", status="cancelled"))
    flush = wait_until(lambda: rec.custom("flush"), message="flush message")
    assert flush[0][0] == {"type": "flush", "item_id": item}
    truncate = server.wait_for("conversation.item.truncate")[0]
    assert truncate["item_id"] == item
    assert 400 <= truncate["audio_end_ms"] <= 3000
    # A late report from the player after the flush changes nothing.
    rec.browser_send(chat, {"type": "played", "item_id": item, "ms": 2900.0, "flushed": True})
    assert server.assert_client_events_valid() > 0
    wait_until(lambda: any(e["id"] == item and e["interrupted"] for c, _ in rec.custom("transcript")
                           for e in c["entries"]), message="interrupted transcript entry")


def test_interrupt_button_cancels_and_flushes(chat, server, rec):
    item, resp = "item_asst_stop", "resp_stop"
    server.play(assistant_response_start(resp, item) + assistant_audio_reply(resp, item, "Hello", pcm16_tone(1000)))
    # The reply must have reached the kernel, or there is nothing to interrupt yet.
    wait_until(lambda: rec.custom("audio"), message="reply audio at the browser")
    rec.browser_send(chat, {"type": "control", "action": "interrupt"})
    server.wait_for("response.cancel")
    assert rec.custom("flush")


def test_barge_in_truncates_where_the_browser_stopped_playing(server, rec):
    # flush_timeout long: the truncate must come from the browser's report, not the fallback.
    chat = VoiceChat(url=server.url, api_key=SECRET, headphones=True, flush_timeout=30)
    try:
        chat.connect(timeout=10)
        item, resp = "item_asst_exact", "resp_exact"
        server.play(assistant_response_start(resp, item)
                    + assistant_audio_reply(resp, item, "A long story", pcm16_tone(3000)))
        # All of it first: a report is clamped to the audio received so far.
        wait_until(lambda: sum(len(b[0]) for _, b in rec.custom("audio")) >= 3000 * 48, message="audio at the browser")
        rec.browser_send(chat, {"type": "played", "item_id": item, "ms": 400.0})
        wait_until(lambda: chat.session.protocol.items[item].played_ms == 400.0, message="progress")
        server.play([speech_started("item_user_exact", 0)])
        assert wait_until(lambda: rec.custom("flush"), message="flush")[0][0] == {"type": "flush", "item_id": item}
        assert server.client_events("conversation.item.truncate") == []
        # What the worklet answers to the flush (widget.js adds t and the latencies).
        rec.browser_send(chat, {"type": "played", "item_id": item, "ms": 912.5, "flushed": True,
                                "t": time.time() * 1000, "output_latency_ms": 20.0, "base_latency_ms": 5.3})
        (truncate,) = server.wait_for("conversation.item.truncate")
        assert (truncate["item_id"], truncate["audio_end_ms"]) == (item, 912)
        assert server.assert_client_events_valid() > 0
    finally:
        chat.close()


def test_interrupt_button_truncates_at_the_browser_position_and_cancels(server, rec):
    chat = VoiceChat(url=server.url, api_key=SECRET, flush_timeout=30)
    try:
        chat.connect(timeout=10)
        item, resp = "item_asst_button", "resp_button"
        server.play(assistant_response_start(resp, item)
                    + assistant_audio_reply(resp, item, "Hello", pcm16_tone(2000)))
        wait_until(lambda: chat.session.protocol.items.get(item) is not None
                   and chat.session.protocol.items[item].audio_received_ms >= 2000, message="audio")
        rec.browser_send(chat, {"type": "control", "action": "interrupt"})
        server.wait_for("response.cancel")  # at once, not after the browser's report
        flushes = [c for c, _ in rec.custom("flush")]
        assert flushes[0] == {"type": "flush", "item_id": item}
        rec.browser_send(chat, {"type": "played", "item_id": item, "ms": 640.0, "flushed": True})
        (truncate,) = server.wait_for("conversation.item.truncate")
        assert (truncate["item_id"], truncate["audio_end_ms"]) == (item, 640)
        assert server.assert_client_events_valid() > 0
    finally:
        chat.close()


def test_mic_frames_are_placed_at_their_capture_time(chat, server, rec):
    now = time.time() * 1000
    # Frame 0 arrives as fast as frames ever do; frame 1 was captured 300 ms before it arrived.
    rec.browser_send(chat, {"type": "audio", "seq": 0, "t": now}, [frame(0)])
    rec.browser_send(chat, {"type": "audio", "seq": 1, "t": time.time() * 1000 - 300}, [frame(1)])
    wait_until(lambda: len(chat.events.filter(type="input_audio_buffer.append")) >= 2, message="appends")
    first, second = chat.events.filter(type="input_audio_buffer.append")["payload"].tolist()[:2]
    # Same clocks on both ends of the subtraction: only the 300 ms extra transit remains.
    assert first["captured_ms"] - second["captured_ms"] == pytest.approx(300, abs=5)
    assert all("captured_ms" not in e for e in server.client_events("input_audio_buffer.append"))


# -- events, transcript, stats ----------------------------------------------------------------


def test_events_and_transcript_reach_the_browser_batched(chat, server, rec):
    server.play(voice_turn(user_text="What's the weather like?", transcript="It is sunny and warm today.", audio_ms=800))
    wait_until(lambda: any(r["type"] == "response.done" for c, _ in rec.custom("events") for r in json.loads(c["rows_json"])),
               message="response.done row")
    batches = [json.loads(c["rows_json"]) for c, _ in rec.custom("events")]
    rows = [r for batch in batches for r in batch]
    assert len(batches) < len(rows)  # batched, not one message per event
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    types = {r["type"] for r in rows}
    assert {"session.created", "session.update", "response.output_audio.delta", "response.done"} <= types
    # Audio is stripped from rows: only its duration travels.
    delta = next(r for r in rows if r["type"] == "response.output_audio.delta")
    assert "delta" not in delta["payload"] and delta["audio_ms"] > 0
    wait_until(lambda: len([e for c, _ in rec.custom("transcript") for e in c["entries"] if e["final"]]) >= 2,
               message="final transcript entries")
    finals = {e["role"]: e["text"] for c, _ in rec.custom("transcript") for e in c["entries"] if e["final"]}
    assert finals == {"user": "What's the weather like?", "assistant": "It is sunny and warm today."}
    # The stats trait follows (at most twice a second) and ends with the whole turn counted.
    wait_until(lambda: chat.stats.get("audio_out_s") == 0.8, message="stats with all reply audio")
    assert chat.stats["turns"] == 1 and chat.stats["interruptions"] == 0


def test_live_transcript_and_stats_measure_from_the_end_of_the_voice(chat, server, rec):
    """The live turns table carries the end-of-voice columns (from the recorded mic audio), the
    player's first rendered sample becomes voice_to_first_sound_ms on the same clock, and the
    stats panel's headline is the end-of-voice gap."""
    voice = (np.sin(np.arange(480) / 24000 * 2 * np.pi * 220) * 0.3 * 32767).astype("<i2").tobytes()
    quiet = bytes(960)
    for i in range(25):  # 300 ms of voice, 200 ms of silence, paced and stamped like a live mic
        rec.browser_send(chat, {"type": "audio", "seq": i, "t": time.time() * 1000}, [voice if i < 15 else quiet])
        time.sleep(0.02)
    server.wait_for("input_audio_buffer.append", count=25)
    item, resp = "item_asst_sound", "resp_sound"
    server.play(voice_turn(audio_ms=400, response_id=resp, item_id=item))
    wait_until(lambda: chat.events.filter(type="response.done").shape[0], message="response.done")
    # What widget.js sends once the worklet rendered the first sample: 30 ms ago, page clock.
    sent_ms = chat.session.now_ms()
    rec.browser_send(chat, {"type": "played", "item_id": item, "ms": 100.0, "t": time.time() * 1000,
                            "started_t": time.time() * 1000 - 30, "output_latency_ms": 12.0})
    rec.browser_send(chat, {"type": "played", "item_id": item, "ms": 200.0, "t": time.time() * 1000,
                            "started_t": time.time() * 1000 - 30})  # later reports repeat it
    (started,) = wait_until(lambda: chat.events.filter(type="playback.started")["payload"].tolist(),
                            message="playback.started")
    assert started["item_id"] == item and started["output_latency_ms"] == 12.0
    assert started["started_ms"] == pytest.approx(sent_ms - 30, abs=25)
    row = chat.transcript().set_index("item_id").loc[item]
    assert 0 < row["voice_end_ms"] < row["voice_end_ms"] + row["voice_to_first_audio_ms"] < sent_ms
    assert row["voice_to_first_sound_ms"] == pytest.approx(started["started_ms"] - row["voice_end_ms"])
    # The event log alone has no recorded audio: the same table without the voice columns.
    assert np.isnan(chat.events.transcript().set_index("item_id").loc[item, "voice_to_first_audio_ms"])
    metrics = chat.metrics()
    assert metrics["median_voice_to_first_audio_ms"] == pytest.approx(row["voice_to_first_audio_ms"])
    assert metrics["p90_voice_to_first_audio_ms"] == pytest.approx(row["voice_to_first_audio_ms"])
    stats = wait_until(lambda: chat.stats if chat.stats.get("voice_gap_last_ms") is not None else None,
                       message="stats with the end-of-voice gap")
    assert stats["voice_gap_last_ms"] == stats["voice_gap_median_ms"] == pytest.approx(row["voice_to_first_audio_ms"])
    assert stats["latency_median_ms"] == pytest.approx(metrics["median_speech_to_first_audio_ms"])


def test_a_view_that_says_hello_gets_the_history(chat, server, rec):
    server.play(voice_turn(audio_ms=200))
    server.wait_for("session.update")
    wait_until(lambda: len(chat.events) > 10, message="events")
    time.sleep(0.3)  # let the pump flush, so the history is complete
    rec.browser_send(chat, {"type": "control", "action": "hello"})
    history = wait_until(lambda: [c for c, _ in rec.custom("events") if c.get("reset")], message="history")
    seqs = [r["seq"] for r in json.loads(history[-1]["rows_json"])]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) >= 10
    assert [c for c, _ in rec.custom("transcript") if c.get("reset")]


# -- text, settings, modes ---------------------------------------------------------------------


def test_typed_text_becomes_a_user_message_and_a_response(chat, server, rec):
    rec.browser_send(chat, {"type": "text", "text": "Hi <b>there</b>"})
    item = server.wait_for("conversation.item.create")[0]["item"]
    assert item["role"] == "user" and item["content"][0] == {"type": "input_text", "text": "Hi <b>there</b>"}
    server.wait_for("response.create")
    chat.say("And now from Python")
    server.wait_for("conversation.item.create", count=2)


def test_settings_from_the_browser_apply_live(chat, server, rec):
    rec.browser_set(chat, voice="cedar", speed=1.2)
    updates = wait_until(lambda: [e for e in server.client_events("session.update")
                                  if e["session"].get("audio", {}).get("output", {}).get("speed") == 1.2],
                         message="session.update with speed")
    assert updates[-1]["session"]["audio"]["output"]["voice"] == "cedar"
    assert chat.session.config.voice == "cedar"
    rec.browser_set(chat, vad_threshold=0.8, silence_ms=900)
    td = wait_until(lambda: [e["session"]["audio"]["input"]["turn_detection"] for e in server.client_events("session.update")
                             if (e["session"].get("audio", {}).get("input", {}).get("turn_detection") or {}).get("threshold") == 0.8],
                    message="threshold update")[-1]
    assert td["silence_duration_ms"] == 900 and td["type"] == "server_vad"
    server.assert_client_events_valid()


def test_invalid_setting_is_refused_shown_and_reverted(chat, server, rec):
    before = len(server.client_events("session.update"))
    rec.browser_set(chat, speed=7.0)
    assert "speed" in chat.settings_error
    assert chat.speed == 1.0 and chat.session.config.speed == 1.0
    time.sleep(0.2)
    assert len(server.client_events("session.update")) == before
    rec.browser_set(chat, speed=1.1)
    assert chat.settings_error == ""


def test_push_to_talk_commits_on_release(chat, server, rec):
    rec.browser_set(chat, mode="push_to_talk")
    wait_until(lambda: any("turn_detection" in e["session"].get("audio", {}).get("input", {})
                           and e["session"]["audio"]["input"]["turn_detection"] is None
                           for e in server.client_events("session.update")), message="manual turn detection")
    rec.browser_send(chat, {"type": "control", "action": "ptt_start"})
    server.wait_for("input_audio_buffer.clear")
    rec.browser_send(chat, {"type": "audio", "seq": 0, "t": time.time() * 1000}, [frame(0, 100)])
    rec.browser_send(chat, {"type": "control", "action": "ptt_end"})
    server.wait_for("input_audio_buffer.commit")
    server.wait_for("response.create")
    names = [e["type"] for e in server.client_events()]
    assert names.index("input_audio_buffer.append") < names.index("input_audio_buffer.commit") < names.index("response.create")
    rec.browser_set(chat, mode="continuous")
    wait_until(lambda: (server.client_events("session.update")[-1]["session"]["audio"]["input"].get("turn_detection") or {}).get("type") == "server_vad",
               message="server VAD back")
    server.assert_client_events_valid()


def test_muting_mid_sentence_sends_the_silence_that_ends_the_turn(chat, server, rec):
    # The browser stops sending on mute; without this the server's VAD would wait for a silence
    # that never comes and the words spoken so far would get no answer.
    spoken = frame(0, 200)
    rec.browser_send(chat, {"type": "audio", "seq": 0, "t": time.time() * 1000}, [spoken])
    server.play([speech_started("item_u1", 0)])
    chat.session.wait_for("input_audio_buffer.speech_started", timeout=10)
    wait_until(lambda: len(appended_audio(server)) >= len(spoken), message="spoken audio")
    rec.browser_set(chat, mode="mute")
    silence_ms = chat.session.config.turn_detection.silence_duration_ms + 200
    wait_until(lambda: len(appended_audio(server)) >= len(spoken) + 48 * silence_ms, message="closing silence")
    assert appended_audio(server) == spoken + bytes(48 * silence_ms)
    [logged] = chat.events.filter(type="mic.muted_mid_speech").to_dict("records")
    assert f"{silence_ms} ms of silence" in logged["text"]
    # Muting when nobody is speaking sends nothing.
    server.play(speech_stopped_and_committed("item_u1", 200))
    chat.session.wait_for("input_audio_buffer.committed", timeout=10)
    rec.browser_set(chat, mode="continuous")
    rec.browser_set(chat, mode="mute")
    rec.browser_send(chat, {"type": "text", "text": "probe"})
    server.wait_for("conversation.item.create")
    assert appended_audio(server) == spoken + bytes(48 * silence_ms)
    server.assert_client_events_valid()


def test_python_update_mirrors_into_the_settings_traits(chat, server):
    chat.update(voice="sage", instructions="Be brief.")
    assert chat.voice == "sage" and chat.instructions == "Be brief."
    with pytest.raises(ValueError, match="speed"):
        chat.update(speed=0)
    assert chat.speed == 1.0


# -- connection state ------------------------------------------------------------------------


def test_status_follows_the_connection(server, rec):
    chat = VoiceChat(url=server.url, reconnect_delay=0.05)
    created = []
    chat.on("session.created", created.append)  # registered once, must survive new sessions
    try:
        assert chat.status == "disconnected"
        chat.connect(timeout=10)
        assert chat.status == "connected"
        assert chat.backend_label and SECRET not in chat.backend_label
        statuses = []
        chat.observe(lambda ch: statuses.append(ch["new"]), names="status")
        server.play([Close(1011, "server restarting")])
        wait_until(lambda: server.connection_count >= 2, message="reconnect")
        wait_until(lambda: chat.status == "connected" and "reconnecting" in statuses, message="status cycle")
        chat.disconnect()
        assert chat.status == "disconnected"
        # Connect again from the UI: a fresh session, same widget.
        rec.browser_send(chat, {"type": "control", "action": "connect"})
        wait_until(lambda: chat.status == "connected", message="reconnected from the UI")
        # Three server sessions: the first, its automatic reconnect, the one from the UI.
        wait_until(lambda: len(created) == 3, message="callback on every session")
    finally:
        chat.close()


def test_connection_failure_is_shown_not_silent(rec):
    chat = VoiceChat(url="ws://127.0.0.1:9/v1/realtime", max_reconnect_attempts=0, connect_timeout=2)
    try:
        with pytest.raises(ConnectionError):
            chat.connect()
        assert chat.status == "error" and "127.0.0.1:9" in chat.error
    finally:
        chat.close()


# -- the key stays in the kernel -------------------------------------------------------------


def test_api_key_never_reaches_the_browser_or_widget_state(chat, server, rec):
    server.play(voice_turn(audio_ms=300))
    rec.browser_send(chat, {"type": "text", "text": "hello"})
    rec.browser_send(chat, {"type": "control", "action": "hello"})
    server.wait_for("response.create")
    time.sleep(0.3)
    # The key was really used (the server saw it) ...
    assert any(SECRET in v for h in server.request_headers for v in h.values())
    # ... and appears in no message to the front end, no buffer, no state.
    assert rec.messages
    for msg_type, data, buffers in rec.messages:
        assert SECRET not in json.dumps(data, default=str)
        assert all(SECRET.encode() not in b for b in buffers)
    assert SECRET not in json.dumps(chat.get_state(), default=str)
    assert SECRET not in repr(chat) and SECRET not in repr(chat.session)


# -- pure helpers ------------------------------------------------------------------------------


def test_stale_filter_drops_a_burst_but_adopts_a_lasting_delay():
    f = StaleFrameFilter(max_delay_ms=500, rebase_after_ms=2000)
    assert not f.is_stale(0, 10)  # baseline transit 10 ms
    # A busy cell held 5 s of frames back; they arrive within 100 ms: all but the newest are stale.
    burst = [f.is_stale(capture, 5010 + capture / 50) for capture in range(20, 5000, 20)]
    assert all(burst[:-25]) and f.rebased == 0
    # From now on the kernel lags 3 s behind for good: after 2 s of that the lag is the new normal.
    lagging = [f.is_stale(capture, capture + 3000) for capture in range(10000, 16000, 20)]
    assert any(lagging) and not any(lagging[-150:])
    assert f.rebased == 1


def test_stale_filter_uses_relative_transit_not_absolute_clocks():
    f = StaleFrameFilter(max_delay_ms=500)
    skew = 123_456.0  # the page clock is two minutes off: irrelevant
    assert not f.is_stale(1000, 1000 + skew + 5)
    assert not f.is_stale(1020, 1020 + skew + 300)
    assert f.is_stale(1040, 1040 + skew + 900)
    assert not f.is_stale(1060, 1060 + skew + 2)  # a faster frame lowers the baseline
    assert f.dropped == 1


def test_transcript_view_partials_finals_and_interruptions():
    t = TranscriptView()
    rows = [
        {"type": "conversation.item.added", "source": "server", "item_id": "u1",
         "payload": {"item": {"id": "u1", "type": "message", "role": "user", "content": [{"type": "input_audio"}]}}},
        {"type": "conversation.item.input_audio_transcription.delta", "item_id": "u1", "text": "Hel"},
        {"type": "conversation.item.input_audio_transcription.delta", "item_id": "u1", "text": "lo"},
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "text": "Hi "},
        {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1", "text": " Hello. "},
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "text": "there"},
        {"type": "response.done", "payload": {"response": {"status": "cancelled", "output": [{"id": "a1"}]}}},
        {"type": "conversation.item.added", "source": "server", "item_id": "u2",
         "payload": {"item": {"id": "u2", "role": "user", "content": [{"type": "input_text", "text": "typed"}]}}},
    ]
    changed = [t.consume(r) for r in rows]
    assert changed[1] == [{"id": "u1", "role": "user", "text": "Hel", "final": False, "interrupted": False}]
    assert t.snapshot() == [
        {"id": "u1", "role": "user", "text": "Hello.", "final": True, "interrupted": False},
        {"id": "a1", "role": "assistant", "text": "Hi there", "final": False, "interrupted": True},
        {"id": "u2", "role": "user", "text": "typed", "final": True, "interrupted": False},
    ]
    assert t.consume({"type": "rate_limits.updated"}) == []


# -- the audio link (audio straight between the page's audio worker and the kernel) ------------


def link_frame(t: float, seq: int, pcm: bytes, sent: float | None = None, stream: int = 0) -> bytes:
    """A page -> kernel mic-link frame, as js/worklets/link-worker.js builds it."""
    return struct.pack("<ddII", t, t if sent is None else sent, stream, seq) + pcm


def link_message(data: bytes) -> tuple[dict, bytes]:
    """A kernel -> page mic-link message: (JSON header, payload)."""
    (length,) = struct.unpack_from("<H", data)
    return json.loads(data[2:2 + length]), data[2 + length:]


def link_info(chat, rec) -> dict:
    """What the page learns about the audio link (through Jupyter) when it says hello."""
    rec.browser_send(chat, {"type": "control", "action": "hello"})
    info = wait_until(lambda: rec.custom("mic_link"), message="mic_link message")[-1][0]
    assert info["url"].startswith("ws://127.0.0.1:")
    return info


def greeted(link, info: dict):
    """The kernel proves itself first on the link, with the key the page got through Jupyter."""
    header, payload = link_message(link.recv(timeout=10))
    assert header == {"type": "hello", "key": info["key"], "conn": header["conn"]} and payload == b""
    return link


@contextmanager
def open_link(info: dict):
    """The page's side of the audio link, opened with the Jupyter-given token and greeted."""
    with ws_connect(f"{info['url']}?token={info['token']}") as link:
        greeted(link, info)
        yield link


def send_link_frames(chat, server, link, count: int) -> None:
    """Frames ``0..count-1`` over the link once it is up; back when the session appended them."""
    wait_until(lambda: chat._audio_link.connected, message="link connected")
    now = time.time() * 1000
    for i in range(count):
        link.send(link_frame(now + 20 * i, i, frame(i)))
    wait_until(lambda: len(server.client_events("input_audio_buffer.append")) >= count, message="appends")


def test_on_msg_callbacks_see_link_frames_as_jupyter_ones(chat, server, rec):
    """Link frames reach every ``on_msg`` callback (through VoiceChat.on_msg, no private
    ipywidgets path); a removed callback gets none, and a failing one stops nothing."""
    seen, gone = [], []
    chat.on_msg(lambda _w, content, buffers: seen.append((content.get("via"), content.get("seq"), bytes(buffers[0]))))
    chat.on_msg(lambda *_: 1 / 0)
    removed = lambda *args: gone.append(args)  # noqa: E731
    chat.on_msg(removed)
    chat.on_msg(removed, remove=True)
    info = link_info(chat, rec)
    with open_link(info) as link:
        send_link_frames(chat, server, link, 3)
    assert [s for s in seen if s[0] == "link"] == [("link", i, frame(i)) for i in range(3)]
    assert gone == []


def test_mic_link_carries_mic_frames_in_and_assistant_audio_and_flushes_out(chat, server, rec):
    info = link_info(chat, rec)
    with open_link(info) as link:
        send_link_frames(chat, server, link, 10)
        assert appended_audio(server) == b"".join(frame(i) for i in range(10))
        assert chat.metrics()["mic_frames_via_link"] == 10
        # The recording places them at their capture time, as for frames through Jupyter.
        row = chat.events.filter(type="input_audio_buffer.append").iloc[-1]
        assert row["payload"]["captured_ms"] <= row["t_ms"]

        # Assistant audio comes back over the link, not as Jupyter messages.
        server.play(voice_turn(audio_ms=400, transcript="Sunny."))
        received = b""
        while len(received) < 400 * 48:
            header, payload = link_message(link.recv(timeout=10))
            assert header["type"] == "audio" and header["item_id"]
            item = header["item_id"]
            received += payload
        assert received == pcm16_tone(400)
        assert not rec.custom("audio")
        # A flush (the Interrupt button) takes the same path, so it cannot overtake audio.
        rec.browser_send(chat, {"type": "control", "action": "interrupt"})
        flushes = [link_message(link.recv(timeout=10)) for _ in range(2)]
        assert [h["type"] for h, _ in flushes] == ["flush", "flush"] and not any(p for _, p in flushes)
        assert {h["item_id"] for h, _ in flushes} == {item, None}  # the session's, then the widget's own
    # The page went away: audio goes through Jupyter again.
    wait_until(lambda: not chat._audio_link.connected, message="link closed")
    server.play(voice_turn(audio_ms=100))
    wait_until(lambda: rec.custom("audio"), message="audio through Jupyter")
    # Token and key are for this page only: never in the widget's (saved) state.
    state = json.dumps(chat.get_state(), default=str)
    assert info["token"] not in state and info["key"] not in state


def test_mic_link_refuses_a_wrong_token_and_shrugs_off_bad_frames(chat, server, rec):
    info = link_info(chat, rec)
    for url in (info["url"], f"{info['url']}?token=wrong{info['token']}"):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url)
        assert refused.value.response.status_code == 403
    with open_link(info) as link:
        link.send("not binary")
        link.send(b"\x00" * 10)  # shorter than the header
        link.send(link_frame(1.0, 0, b"\x01\x02\x03"))  # odd PCM16 byte count
        link.send(link_frame(time.time() * 1000, 0, frame(1)))
        wait_until(lambda: server.client_events("input_audio_buffer.append"), message="the good frame")
        assert chat._audio_link.rejected == 3
        assert appended_audio(server) == frame(1)


def test_ready_only_after_the_server_confirms_the_session(rec):
    with ScriptedServer(auto_session_updated=False) as server:
        chat = VoiceChat(url=server.url, mic_link=False)
        try:
            assert not chat.ready and chat.waiting_for == ""
            chat.connect(timeout=10)
            update = server.wait_for("session.update")[0]
            assert chat.status == "connected" and not chat.ready
            assert chat.waiting_for == "Starting the session\u2026"
            server.play([session_updated(update["session"])])
            wait_until(lambda: chat.ready, message="ready")
            assert chat.waiting_for == ""
            chat.disconnect()
            assert not chat.ready
        finally:
            chat.close()


# -- mic frames through two transports: in capture order, once each -------------------------


def test_frame_order_releases_in_sequence_and_drops_duplicates():
    order: MicFrameOrder[str] = MicFrameOrder(max_held=5)
    assert order.push(7, 0, "a") == (["a"], [])
    assert order.push(7, 2, "c") == ([], []) and order.held == 1
    assert order.push(7, 2, "c again") == ([], [])  # held twice: once is enough
    assert order.push(7, 1, "b") == (["b", "c"], [])
    assert order.push(7, 1, "b again") == ([], [])  # already released
    assert (order.duplicates, order.late, order.missing, order.held) == (2, 0, 0, 0)


def test_frame_order_gives_up_on_a_gap_when_too_much_waits_behind_it():
    order: MicFrameOrder[int] = MicFrameOrder(max_held=3)
    for seq in (2, 3, 4):
        assert order.push(1, seq, seq) == ([], [])
    assert order.push(1, 5, 5) == ([2, 3, 4, 5], [Gap(stream=1, first=0, count=2)])
    assert order.push(1, 1, 1) == ([], [])  # came after all: late, dropped (order first)
    assert order.push(1, 6, 6) == ([6], [])
    assert (order.late, order.missing, order.duplicates) == (1, 2, 0)


def test_frame_order_give_up_and_new_streams():
    order: MicFrameOrder[int] = MicFrameOrder(max_held=10)
    order.push(1, 0, 0)
    order.push(1, 2, 2)
    order.push(1, 5, 5)
    assert order.give_up() == ([2, 5], [Gap(1, 1, 1), Gap(1, 3, 2)])
    assert order.give_up() == ([], [])
    order.push(1, 7, 7)
    # The mic restarted: what the old stream held goes first, the new one starts at 0.
    assert order.push(2, 1, 21) == ([7], [Gap(1, 6, 1)])
    assert order.push(2, 0, 20) == ([20, 21], [])
    assert order.push(1, 8, 8) == ([], [])  # the old stream is over: late
    assert order.late == 1
    with pytest.raises(ValueError):
        MicFrameOrder(0)


def test_frames_through_jupyter_and_the_link_reach_the_session_in_order_once(chat, server, rec):
    """Around the moment the link opens the page sends some frames both ways, and the link is
    faster: frames 10..14 (and copies of 5..9) over the link arrive before 0..9 through Jupyter.
    The session gets 0..14 once each, in capture order."""
    info = link_info(chat, rec)
    frames = [frame(i) for i in range(15)]
    now = time.time() * 1000
    with open_link(info) as link:
        for i in range(5, 15):
            link.send(link_frame(now + 20 * i, i, frames[i], stream=9))
        wait_until(lambda: chat._mic.order.held == 10, message="link frames waiting for 0..4")
        assert not server.client_events("input_audio_buffer.append")
        for i in range(10):
            rec.browser_send(chat, {"type": "audio", "stream": 9, "seq": i, "t": now + 20 * i}, [frames[i]])
        wait_until(lambda: len(appended_audio(server)) >= sum(map(len, frames)), message="all frames")
    assert appended_audio(server) == b"".join(frames)
    metrics = chat.metrics()
    assert (metrics["mic_frames_in"], metrics["mic_frames_duplicate"], metrics["mic_frames_missing"]) == (15, 5, 0)
    assert metrics["mic_frames_via_link"] == 10  # the first copy of 5..9 to arrive went on
    assert chat.events.filter(type="mic.gap").empty
    assert server.assert_client_events_valid() > 0


def test_a_frame_that_never_comes_is_given_up_within_the_stale_window(server, rec):
    """Frame 0 is lost and the mic goes quiet after frame 2: nothing would push 1 and 2 out, so
    after half of ``stale_frame_ms`` they go on without it (fresh enough to pass the stale
    filter), and the gap is logged."""
    chat = VoiceChat(url=server.url, stale_frame_ms=300, mic_link=False)
    try:
        chat.connect(timeout=10)
        now = time.time() * 1000
        for i in (1, 2):
            rec.browser_send(chat, {"type": "audio", "stream": 4, "seq": i, "t": now + 20 * i}, [frame(i)])
        gap = wait_until(lambda: chat.events.filter(type="mic.gap").to_dict("records"), message="gap logged")[0]
        assert gap["payload"]["first_seq"] == 0 and gap["payload"]["missing_ms"] == 20
        wait_until(lambda: appended_audio(server) == frame(1) + frame(2), message="frames after the gap")
        # The lost frame turns up after all: too late, dropped, counted.
        rec.browser_send(chat, {"type": "audio", "stream": 4, "seq": 0, "t": now}, [frame(0)])
        assert chat.metrics()["mic_frames_late"] == 1
        assert appended_audio(server) == frame(1) + frame(2)
    finally:
        chat.close()


def test_mute_and_push_to_talk_deliver_waiting_frames_first(chat, server, rec):
    """Words held behind a missing frame are part of the turn that muting or releasing the
    push-to-talk key ends: they reach the server before the silence / the commit."""
    now = time.time() * 1000
    rec.browser_send(chat, {"type": "control", "action": "ptt_start"})
    rec.browser_send(chat, {"type": "audio", "stream": 5, "seq": 1, "t": now}, [frame(1)])
    assert chat._mic.order.held == 1
    rec.browser_send(chat, {"type": "control", "action": "ptt_end"})
    server.wait_for("input_audio_buffer.commit")
    types = [e["type"] for e in server.client_events() if e["type"].startswith("input_audio_buffer.")]
    assert types[-2:] == ["input_audio_buffer.append", "input_audio_buffer.commit"]
    assert appended_audio(server) == frame(1)


def test_player_audio_hands_over_to_each_link_connection_behind_a_marker(chat, server, rec):
    """Assistant audio that went through Jupyter must play before audio that goes over the link
    after it: the page holds link audio of connection ``conn`` until Jupyter delivers the
    ``player_link`` marker for it, which the kernel sends after all its earlier Jupyter audio."""
    info = link_info(chat, rec)
    server.play(voice_turn(audio_ms=200, transcript="Before the link."))
    wait_until(lambda: sum(len(b[0]) for _, b in rec.custom("audio")) >= 200 * 48, message="audio through Jupyter")
    conns = []
    for _ in range(2):
        with ws_connect(f"{info['url']}?token={info['token']}") as link:
            conn = link_message(link.recv(timeout=10))[0]["conn"]
            conns.append(conn)
            marker = wait_until(lambda: [c for c, _ in rec.custom("player_link") if c["conn"] == conn],
                                message="hand-over marker")
            assert marker == [{"type": "player_link", "conn": conn}]
            jupyter_audio = len(rec.custom("audio"))
            server.play(voice_turn(audio_ms=100, transcript="Over the link."))
            header, payload = link_message(link.recv(timeout=10))
            while header["type"] == "flush":  # the turn's speech_started flushes first
                header, payload = link_message(link.recv(timeout=10))
            assert header["type"] == "audio" and len(payload) > 0
            assert len(rec.custom("audio")) == jupyter_audio
        wait_until(lambda: not chat._audio_link.connected, message="link closed")
    assert conns[1] == conns[0] + 1
    # In the Jupyter stream, each marker comes after every audio message sent before it.
    kinds = [c["type"] for c, _ in rec.custom() if c["type"] in ("audio", "player_link")]
    first_marker = kinds.index("player_link")
    assert kinds[:first_marker] == ["audio"] * first_marker and first_marker >= 1


# -- the embedded server's loading stages, shown while Connect waits ---------------------------


@pytest.mark.models
@pytest.mark.timeout(300)
def test_ensure_local_server_reports_each_loading_stage_to_every_waiting_caller(capfd):
    import threading

    from rtvoice_widget.server import ensure_local_server, stop_local_server

    stop_local_server()  # a fresh start: the stages happen again
    first: list[str] = []
    joined: list[str] = []
    urls: list[str] = []
    joiners_in = threading.Event()

    def first_progress(stage: str) -> None:
        first.append(stage)
        if stage.startswith("Loading speech recognition"):
            joiners_in.wait(60)  # hold the relay here until the other callers joined this start

    def broken(stage: str) -> None:
        raise RuntimeError("a broken progress callback")

    callers = [threading.Thread(target=lambda p=p, k=k: urls.append(ensure_local_server(progress=p, **k)))
               for p, k in ((first_progress, {"vad": "energy", "llm": "echo"}), (joined.append, {}), (broken, {}))]
    try:
        callers[0].start()
        wait_until(lambda: len(first) == 2, timeout=60, message="the ASR stage")
        for caller in callers[1:]:
            caller.start()
        # Joining a start under way: the current stage at once (then the rest).
        wait_until(lambda: joined and "a broken progress callback" in capfd.readouterr().err,
                   timeout=30, message="the joiners told the current stage")
        joiners_in.set()
        for caller in callers:
            caller.join(60)
        assert first == ["Loading voice detection (energy)", "Loading speech recognition (whisper-base)",
                         "Loading the language model (echo)", "Loading speech synthesis (auto)",
                         "Loading end-of-turn detection (auto)", "Warming up the language model"]
        assert joined == first[1:]
        assert len(urls) == 3 and len(set(urls)) == 1 and urls[0].startswith("ws://127.0.0.1:")
        again: list[str] = []
        assert ensure_local_server(progress=again.append) == urls[0] and again == []  # running: no stages
    finally:
        joiners_in.set()
        for caller in callers:
            if caller.is_alive():
                caller.join(60)
        stop_local_server()


@pytest.mark.models
@pytest.mark.timeout(300)
def test_connect_shows_what_the_offline_server_is_loading(rec):
    from rtvoice_widget.server import stop_local_server

    stop_local_server()
    chat = VoiceChat(backend="local", mic_link=False)
    shown: list[str] = []
    chat.observe(lambda change: shown.append(change["new"]), names="waiting_for")
    try:
        chat.connect(timeout=60)
        wait_until(lambda: chat.ready, timeout=120, message="ready")
    finally:
        chat.close()
        stop_local_server()
    assert shown[0] == "Loading the offline models (the first start takes a while)\u2026"
    from rtvoice_widget.server.engines.loader import resolved_llm

    llm = resolved_llm("auto")  # what the default names on this install (qwen2.5-1.5b with [local])
    for stage in ("Loading speech recognition (whisper-base)\u2026", f"Loading the language model ({llm})\u2026"):
        assert stage in shown, shown
    assert shown[-2:] == ["Starting the session\u2026", ""], shown


def test_push_to_talk_ends_after_the_last_frame_captured_while_held(chat, server, rec):
    """The key's release comes through Jupyter, the last frames over the (here: slower) link:
    the turn is committed only once frames up to ``through`` reached the session."""
    info = link_info(chat, rec)
    now = time.time() * 1000
    with open_link(info) as link:
        rec.browser_send(chat, {"type": "control", "action": "ptt_start"})
        for i in range(2):
            rec.browser_send(chat, {"type": "audio", "stream": 6, "seq": i, "t": now + 20 * i}, [frame(i)])
        rec.browser_send(chat, {"type": "control", "action": "ptt_end", "stream": 6, "through": 3})
        assert chat._mic._then is not None  # waiting for frames 2 and 3
        assert chat.events.filter(type="input_audio_buffer.commit").empty
        for i in (2, 3):
            link.send(link_frame(now + 20 * i, i, frame(i), stream=6))
        server.wait_for("input_audio_buffer.commit")
    types = [e["type"] for e in server.client_events() if e["type"].startswith("input_audio_buffer.")]
    assert types[-5:] == ["input_audio_buffer.append"] * 4 + ["input_audio_buffer.commit"]
    assert appended_audio(server) == b"".join(frame(i) for i in range(4))
    server.wait_for("response.create")
    assert chat.events.filter(type="mic.gap").empty


def test_push_to_talk_ends_anyway_when_its_last_frames_never_come(server, rec):
    chat = VoiceChat(url=server.url, stale_frame_ms=300, mic_link=False)
    try:
        chat.connect(timeout=10)
        now = time.time() * 1000
        rec.browser_send(chat, {"type": "control", "action": "ptt_start"})
        rec.browser_send(chat, {"type": "audio", "stream": 8, "seq": 0, "t": now}, [frame(0)])
        rec.browser_send(chat, {"type": "control", "action": "ptt_end", "stream": 8, "through": 2})
        server.wait_for("input_audio_buffer.commit")
        gap = chat.events.filter(type="mic.gap").to_dict("records")
        assert [(g["payload"]["first_seq"], g["payload"]["missing_frames"]) for g in gap] == [(1, 2)]
        assert appended_audio(server) == frame(0)
        # Nothing numbered before the release (-1): committed at once.
        rec.browser_send(chat, {"type": "control", "action": "ptt_start"})
        rec.browser_send(chat, {"type": "control", "action": "ptt_end", "stream": 8, "through": -1})
        assert chat._mic._then is None
        wait_until(lambda: len(server.client_events("input_audio_buffer.commit")) == 2, message="second commit")
    finally:
        chat.close()


def test_frame_order_skip_through_and_covers():
    order: MicFrameOrder[int] = MicFrameOrder(max_held=10)
    assert order.covers(3, -1) and not order.covers(3, 0)  # a stream not seen yet: wait for its frames
    order.push(3, 0, 0)
    order.push(3, 2, 2)
    order.push(3, 5, 5)
    assert order.covers(3, 0) and not order.covers(3, 2)
    assert order.skip_through(3, 3) == ([2], [Gap(3, 1, 1), Gap(3, 3, 1)])
    assert order.covers(3, 3) and order.held == 1
    assert order.push(3, 4, 4) == ([4, 5], [])
    assert order.skip_through(3, 1) == ([], [])
    # Skipping through frames of a stream that has not begun starts it, with its gap.
    assert order.skip_through(4, 1) == ([], [Gap(4, 0, 2)])
    assert order.covers(3, 99) and order.push(4, 2, 42) == ([42], [])
    assert order.missing == 4
