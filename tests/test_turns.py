"""The turns table and latency summary, from event logs of real-shaped GA (and beta) events."""

from __future__ import annotations

import base64
import math
import time

import numpy as np
import pandas as pd
import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import TypeAdapter
from scripted_server import (
    assistant_audio_reply,
    assistant_response_end,
    assistant_response_start,
    function_call_turn,
    pcm16_tone,
    speech_started,
    speech_stopped_and_committed,
    truncated,
    user_transcript,
)

from rtvoice_widget.events import EventLog
from rtvoice_widget.turn_table import (
    LATENCY_COLUMNS,
    TURN_COLUMNS,
    latency_summary,
    turns_table,
)

SERVER = TypeAdapter(RealtimeServerEvent)
CLIENT = TypeAdapter(RealtimeClientEvent)


class Clock:
    """Appends events at explicit session-clock times, validating each against the SDK."""

    def __init__(self) -> None:
        self.log = EventLog()

    def server(self, t: float, *events: dict) -> None:
        for e in events:
            e = dict(e, event_id=e.get("event_id", f"event_{len(self.log)}"))
            SERVER.validate_python(e)
            self.log.append("server", e, t)

    def client(self, t: float, *events: dict) -> None:
        for e in events:
            CLIENT.validate_python(e)
            self.log.append("client", e, t)


def voice_exchange(c: Clock, t0: float, user: str, resp: str, asst: str, *, speech_ms: int = 1200,
                   created_after: float = 300.0, audio_after: float = 450.0, text_after: float = 460.0,
                   audio_ms: float = 600.0, user_text: str = "What's up?", reply: str = "All good here.") -> None:
    """User speaks from t0 for ``speech_ms``; the reply starts ``created_after`` ms after speech
    stopped, first audio ``audio_after`` ms after, first transcript ``text_after`` ms after."""
    c.server(t0, speech_started(user, 0))
    stop = t0 + speech_ms
    c.server(stop, *speech_stopped_and_committed(user, speech_ms))
    c.server(stop + 100, *user_transcript(user, user_text))
    start = assistant_response_start(resp, asst)
    c.server(stop + created_after, start[0])
    c.server(stop + created_after + 10, *start[1:])
    deltas = assistant_audio_reply(resp, asst, reply, pcm16_tone(audio_ms))
    audio = [e for e in deltas if e["type"] == "response.output_audio.delta"]
    texts = [e for e in deltas if e["type"] != "response.output_audio.delta"]
    c.server(stop + audio_after, audio[0])
    c.server(stop + text_after, *texts)
    c.server(stop + text_after + 5, *audio[1:])
    c.server(stop + 1000, *assistant_response_end(resp, asst, reply))


def test_voice_turn_rows_text_audio_and_latencies():
    c = Clock()
    voice_exchange(c, 1000.0, "item_u1", "resp_1", "item_a1")
    table = turns_table(c.log.to_pandas())
    assert tuple(table.columns) == TURN_COLUMNS
    assert table["role"].tolist() == ["user", "assistant"]
    user, asst = table.iloc[0], table.iloc[1]
    assert (user["item_id"], user["text"], user["started"], user["ended"], user["audio_ms"]) == (
        "item_u1", "What's up?", 1000.0, 2200.0, 1200.0)
    assert user["response_id"] is None and not user["interrupted"]
    assert all(math.isnan(user[c]) for c in LATENCY_COLUMNS)
    assert (asst["item_id"], asst["response_id"], asst["text"], asst["status"]) == (
        "item_a1", "resp_1", "All good here.", "completed")
    assert asst["started"] == 2510.0 and asst["ended"] == 3200.0
    assert asst["audio_ms"] == 600.0 and not asst["interrupted"] and math.isnan(asst["truncated_at_ms"])
    assert asst["speech_to_response_ms"] == 300.0
    assert asst["speech_to_first_audio_ms"] == 450.0
    assert asst["speech_to_first_text_ms"] == 460.0
    assert asst["response_duration_ms"] == 700.0


def test_barge_in_marks_the_reply_interrupted_with_the_played_ms():
    c = Clock()
    voice_exchange(c, 0.0, "item_u1", "resp_1", "item_a1")
    c.server(3000.0, speech_started("item_u2", 3000))
    start = assistant_response_start("resp_2", "item_a2")
    c.server(5000.0, *start)
    c.server(5100.0, *assistant_audio_reply("resp_2", "item_a2", "Once upon a time", pcm16_tone(2000)))
    c.server(5800.0, speech_started("item_u3", 5700))
    c.client(5810.0, {"type": "conversation.item.truncate", "item_id": "item_a2", "content_index": 0,
                      "audio_end_ms": 640})
    c.server(5820.0, *assistant_response_end("resp_2", "item_a2", "Once upon a time", status="cancelled"))
    c.server(5830.0, truncated("item_a2", 650))
    table = turns_table(c.log.to_pandas())
    assert table["role"].tolist() == ["user", "assistant", "user", "assistant", "user"]
    cut = table.set_index("item_id").loc["item_a2"]
    assert cut["interrupted"] and cut["status"] == "cancelled"
    assert cut["truncated_at_ms"] == 650.0  # the server's confirmation wins over the request
    assert cut["audio_ms"] == 2000.0  # received; what was heard is truncated_at_ms
    assert not table.set_index("item_id").loc["item_a1", "interrupted"]


def test_client_truncate_alone_is_enough():
    c = Clock()
    voice_exchange(c, 0.0, "item_u1", "resp_1", "item_a1")
    c.client(2500.0, {"type": "conversation.item.truncate", "item_id": "item_a1", "content_index": 0,
                      "audio_end_ms": 120})
    row = turns_table(c.log.to_pandas()).set_index("item_id").loc["item_a1"]
    assert row["interrupted"] and row["truncated_at_ms"] == 120.0


def test_function_call_turn_and_the_follow_up_response():
    c = Clock()
    c.server(0.0, speech_started("item_u1", 0))
    c.server(800.0, *speech_stopped_and_committed("item_u1", 800))
    c.server(900.0, *function_call_turn(name="get_weather", arguments='{"city": "Paris"}',
                                        response_id="resp_fc", item_id="item_fc"))
    c.client(950.0, {"type": "conversation.item.create",
                     "item": {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}},
             {"type": "response.create"})
    start = assistant_response_start("resp_2", "item_a2")
    c.server(1000.0, *start)
    c.server(1100.0, *assistant_audio_reply("resp_2", "item_a2", "It is sunny.", pcm16_tone(300)))
    c.server(1200.0, *assistant_response_end("resp_2", "item_a2", "It is sunny."))
    table = turns_table(c.log.to_pandas())
    assert table["role"].tolist() == ["user", "function_call", "assistant"]
    call = table.iloc[1]
    assert call["text"] == 'get_weather({"city": "Paris"})' and call["response_id"] == "resp_fc"
    assert call["speech_to_response_ms"] == 100.0
    follow = table.iloc[2]
    assert follow["text"] == "It is sunny." and math.isnan(follow["speech_to_response_ms"])
    assert follow["response_duration_ms"] == 200.0


BETA = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
}


def test_beta_event_names_give_the_same_table():
    c = Clock()
    voice_exchange(c, 1000.0, "item_u1", "resp_1", "item_a1")
    ga = c.log.to_pandas()
    beta_log = EventLog()
    for row in ga.itertuples():
        payload = dict(row.payload)
        if row.type in BETA:
            payload["type"] = BETA[row.type]
        if "delta" in payload or row.audio_ms:
            payload.setdefault("delta", base64.b64encode(b"\0\0" * int(row.audio_ms * 24)).decode())
        beta_log.append(row.source, payload, row.t_ms)
    assert set(BETA.values()) <= set(beta_log.to_pandas()["type"])
    pd.testing.assert_frame_equal(turns_table(beta_log.to_pandas()), turns_table(ga))


def test_push_to_talk_counts_appended_audio_and_measures_from_commit():
    c = Clock()
    for k in range(25):  # 500 ms of mic audio in 20 ms frames
        c.client(k * 20.0, {"type": "input_audio_buffer.append",
                            "audio": base64.b64encode(pcm16_tone(20)).decode()})
    c.client(500.0, {"type": "input_audio_buffer.commit"}, {"type": "response.create"})
    c.server(520.0, {"type": "input_audio_buffer.committed", "event_id": "e1", "item_id": "item_u1",
                     "previous_item_id": None})
    c.server(600.0, *assistant_response_start("resp_1", "item_a1"))
    table = turns_table(c.log.to_pandas())
    user = table.iloc[0]
    assert (user["role"], user["audio_ms"], user["ended"]) == ("user", 500.0, 520.0)
    assert table.iloc[1]["speech_to_response_ms"] == 80.0


def test_cleared_buffer_is_not_counted():
    c = Clock()
    c.client(0.0, {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm16_tone(100)).decode()})
    c.client(100.0, {"type": "input_audio_buffer.clear"})
    c.client(120.0, {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm16_tone(40)).decode()})
    c.server(200.0, {"type": "input_audio_buffer.committed", "event_id": "e", "item_id": "u", "previous_item_id": None})
    assert turns_table(c.log.to_pandas())["audio_ms"].tolist() == [40.0]


def test_typed_user_message_is_a_turn():
    c = Clock()
    item = {"id": "item_t", "type": "message", "role": "user", "object": "realtime.item", "status": "completed",
            "content": [{"type": "input_text", "text": "Hello by keyboard"}]}
    c.client(0.0, {"type": "conversation.item.create", "item": {k: v for k, v in item.items() if k not in ("object", "status")}})
    c.server(10.0, {"type": "conversation.item.added", "event_id": "e", "previous_item_id": None, "item": item})
    c.server(60.0, *assistant_response_start("resp_1", "item_a1"))
    table = turns_table(c.log.to_pandas())
    assert table.iloc[0][["role", "text", "started", "ended"]].tolist() == ["user", "Hello by keyboard", 10.0, 10.0]
    assert table.iloc[1]["speech_to_response_ms"] == 50.0


def test_empty_and_unrelated_logs_give_an_empty_table():
    log = EventLog()
    assert tuple(turns_table(log.to_pandas()).columns) == TURN_COLUMNS
    log.local("mic.started", 0.0)
    assert len(turns_table(log.to_pandas())) == 0
    with pytest.raises(ValueError, match="missing columns"):
        turns_table(pd.DataFrame({"type": []}))


def test_latency_summary_percentiles():
    c = Clock()
    created = [200.0, 300.0, 400.0, 500.0, 1000.0]
    for k, after in enumerate(created):
        voice_exchange(c, 10_000.0 * k, f"u{k}", f"r{k}", f"a{k}", created_after=after,
                       audio_after=after + 100, text_after=after + 150)
    summary = latency_summary(c.log.to_pandas())
    assert list(summary.index) == list(LATENCY_COLUMNS)
    assert list(summary.columns) == ["count", "mean", "p50", "p90", "max"]
    row = summary.loc["speech_to_response_ms"]
    assert row["count"] == 5 and row["p50"] == 400.0 and row["max"] == 1000.0
    assert row["p90"] == pytest.approx(np.percentile(created, 90))
    assert summary.loc["speech_to_first_audio_ms", "p50"] == 500.0
    assert summary.loc["speech_to_first_text_ms", "mean"] == pytest.approx(np.mean(created) + 150)
    pd.testing.assert_frame_equal(latency_summary(turns_table(c.log.to_pandas())), summary)
    empty = latency_summary(EventLog().to_pandas())
    assert (empty["count"] == 0).all() and empty["p50"].isna().all()


def test_frames_with_nan_for_missing_strings_give_the_same_table():
    """A log read back with plain pandas (pd.read_parquet) has NaN, not None, for absent ids."""
    c = Clock()
    voice_exchange(c, 0.0, "item_u1", "resp_1", "item_a1")
    df = c.log.to_pandas()
    plain = df.astype({"item_id": "string", "response_id": "string", "text": "string", "event_id": "string"})
    plain["source"] = plain["source"].astype(str)
    plain["type"] = plain["type"].astype(str)
    assert plain["response_id"].isna().any()
    pd.testing.assert_frame_equal(turns_table(plain), turns_table(df))


@pytest.mark.timeout(60)
def test_a_live_session_log_gives_the_turns_the_protocol_measured():
    """Two independent bookkeepers, one clock: the turns table rebuilt from a real session's log
    (scripted GA server over a real WebSocket) agrees with the protocol's own turns, and the
    recorder cut the interrupted reply where the truncation said."""
    from scripted_server import Pause, ScriptedServer, barge_in, voice_turn

    from rtvoice_widget.session import RealtimeSession

    with ScriptedServer() as server:
        session = RealtimeSession(server.url, reconnect_delay=0.02)
        try:
            session.connect(timeout=10)
            session.wait_for("session.updated", timeout=10)
            session.send_audio(pcm16_tone(400, frequency=200))
            server.play(voice_turn(audio_ms=800, transcript="Sunny today.", user_text="Weather?",
                                   user_item_id="item_u1", item_id="item_a1", response_id="resp_1"))
            session.wait_for("response.done", timeout=10)
            session.playback_progress("item_a1", 800)  # the player finished the first reply
            mark = session.last_seq
            server.play(assistant_response_start("resp_2", "item_a2")
                        + assistant_audio_reply("resp_2", "item_a2", "A long story", pcm16_tone(3000)))
            session.wait_for("response.output_audio_transcript.delta", after=mark, timeout=10)
            deadline = time.monotonic() + 10
            while session.protocol.items.get("item_a2") is None or \
                    session.protocol.items["item_a2"].audio_received_ms < 3000:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            session.playback_progress("item_a2", 400)
            script = barge_in(response_id="resp_2", item_id="item_a2", transcript="A long story")
            mark = session.last_seq
            server.play(script[script.index(next(x for x in script if isinstance(x, Pause))) + 1:])
            request = server.wait_for("conversation.item.truncate")[-1]
            server.play([truncated("item_a2", request["audio_end_ms"])])
            session.wait_for("conversation.item.truncated", after=mark, timeout=10)
            table = session.events.transcript()
            protocol_turns = {t.response_id: t for t in session.protocol.turns}
            recorder_assistant = session.recording.tracks_pcm16()[1]
        finally:
            session.close()

    replies = table[table["role"] == "assistant"].set_index("response_id")
    assert list(replies.index) == ["resp_1", "resp_2"]
    assert replies.loc["resp_1", "text"] == "Sunny today."
    assert table[table["role"] == "user"]["text"].iloc[0] == "Weather?"
    for response_id, row in replies.iterrows():
        turn = protocol_turns[response_id]
        for ours, theirs in [("speech_to_response_ms", turn.response_latency_ms),
                             ("speech_to_first_audio_ms", turn.first_audio_latency_ms),
                             ("speech_to_first_text_ms", turn.first_transcript_latency_ms),
                             ("response_duration_ms", turn.duration_ms)]:
            if theirs is None:
                assert math.isnan(row[ours]), (response_id, ours)
            else:
                assert row[ours] == pytest.approx(theirs), (response_id, ours)
        assert row["interrupted"] == turn.interrupted
    cut = replies.loc["resp_2"]
    assert cut["interrupted"] and cut["truncated_at_ms"] == request["audio_end_ms"]
    assert 400 <= cut["truncated_at_ms"] < 3000
    # The recorder holds item_a1 whole and item_a2 only up to the truncation.
    heard = np.count_nonzero(recorder_assistant) / 24  # the tone's few exact zeros: < 5 ms/s
    assert heard == pytest.approx(800 + cut["truncated_at_ms"], abs=10)
    assert not replies.loc["resp_1", "interrupted"]


def _user_track(total_ms: int, voiced: list[tuple[int, int]], level: float = 0.2) -> np.ndarray:
    """A 24 kHz float32 user track: a 220 Hz tone over each ``(start_ms, end_ms)``, silence elsewhere."""
    track = np.zeros(total_ms * 24, dtype=np.float32)
    for start, end in voiced:
        n = (end - start) * 24
        track[start * 24:end * 24] = level * np.sin(np.arange(n) / 24000 * 2 * np.pi * 220)
    return track


def test_voice_end_comes_from_the_recorded_user_audio_not_from_speech_stopped():
    c = Clock()
    # The user's voice ends at 1700 ms; the server's VAD reports speech_stopped 500 ms later.
    voice_exchange(c, 1000.0, "item_u1", "resp_1", "item_a1", speech_ms=1200, audio_after=450.0)
    track = _user_track(4000, [(1000, 1700)])
    track[1700 * 24:] += np.float32(1e-3)  # room noise at -60 dBFS is not voice
    table = turns_table(c.log.to_pandas(), user_audio=track).set_index("item_id")
    assistant = table.loc["item_a1"]
    assert assistant["voice_end_ms"] == 1700.0
    first_audio = 2200.0 + 450.0
    assert assistant["voice_to_first_audio_ms"] == first_audio - 1700.0
    assert assistant["speech_to_first_audio_ms"] == 450.0  # the server-side column stays beside it
    assert math.isnan(table.loc["item_u1"]["voice_to_first_audio_ms"])
    # Without the recording the column is there but empty; int16 tracks give the same figure.
    assert math.isnan(turns_table(c.log.to_pandas()).set_index("item_id").loc["item_a1", "voice_end_ms"])
    as_int16 = (track * 32767).astype(np.int16)
    assert turns_table(c.log.to_pandas(), user_audio=as_int16).set_index("item_id").loc[
        "item_a1", "voice_end_ms"] == 1700.0
    summary = latency_summary(turns_table(c.log.to_pandas(), user_audio=track))
    assert summary.loc["voice_to_first_audio_ms", "count"] == 1


def test_voice_end_ignores_voice_after_the_first_reply_audio_and_rejects_bad_tracks():
    from rtvoice_widget.turn_table import voice_end_ms

    track = _user_track(5000, [(500, 1230), (3000, 3500)])
    assert voice_end_ms(track, 24000, 2000.0) == 1240.0  # the frame [1220, 1240) holds voice
    assert voice_end_ms(track, 24000, 3600.0) == 3500.0
    assert math.isnan(voice_end_ms(track, 24000, 400.0))
    assert math.isnan(voice_end_ms(np.zeros(0, np.float32), 24000, 100.0))
    with pytest.raises(ValueError, match="mono"):
        voice_end_ms(np.zeros((10, 2), np.float32), 24000, 100.0)


def test_voice_to_first_sound_comes_from_the_players_playback_started():
    c = Clock()
    voice_exchange(c, 1000.0, "item_u1", "resp_1", "item_a1", speech_ms=1200, audio_after=450.0)
    # The widget logs when the page's player rendered the item's first sample (session clock),
    # after the fact; a second report for the same item, or one for an unknown item, is ignored.
    c.log.local("playback.started", 2800.0, item_id="item_a1", started_ms=2720.0, output_latency_ms=10.0)
    c.log.local("playback.started", 2900.0, item_id="item_a1", started_ms=2850.0)
    c.log.local("playback.started", 2900.0, item_id="item_nobody", started_ms=2850.0)
    track = _user_track(4000, [(1000, 1700)])
    table = turns_table(c.log.to_pandas(), user_audio=track).set_index("item_id")
    assert "item_nobody" not in table.index
    assistant = table.loc["item_a1"]
    assert assistant["voice_to_first_audio_ms"] == 2650.0 - 1700.0
    assert assistant["voice_to_first_sound_ms"] == 2720.0 - 1700.0
    assert math.isnan(table.loc["item_u1"]["voice_to_first_sound_ms"])
    # No recorded voice, no gap; no player report, no sound column.
    assert math.isnan(turns_table(c.log.to_pandas()).set_index("item_id").loc["item_a1", "voice_to_first_sound_ms"])
    summary = latency_summary(turns_table(c.log.to_pandas(), user_audio=track))
    assert summary.loc["voice_to_first_sound_ms", "p50"] == 1020.0
    # EventLog.transcript() takes the track too (RealtimeSession.transcript() passes its recording).
    assert c.log.transcript(track).set_index("item_id").loc["item_a1", "voice_to_first_sound_ms"] == 1020.0
