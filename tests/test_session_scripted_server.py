"""The scripted test server itself: its events are real GA shapes and it behaves as documented.

Other test files trust this helper, so it is tested against the official SDK types and the
official ``openai`` realtime client (not against our own session).
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter, ValidationError

import scripted_server as ss
from scripted_server import Abort, Close, Pause, Raw, ScriptedServer

pytestmark = pytest.mark.timeout(60)

SERVER_EVENT = TypeAdapter(RealtimeServerEvent)


def scripts() -> dict[str, list]:
    return {
        "voice_turn": ss.voice_turn(),
        "voice_turn_no_speech": ss.voice_turn(with_speech=False, audio_ms=250),
        "barge_in": ss.barge_in(),
        "function_call_turn": ss.function_call_turn(),
        "singles": [ss.session_created(), ss.session_updated({"type": "realtime", "instructions": "x"}),
                    ss.error_event(), ss.truncated("item_1", 120), ss.speech_started("item_2", 40)],
    }


@pytest.mark.parametrize("name", list(scripts()))
def test_every_scripted_event_validates_as_a_ga_server_event(name):
    events = [step for step in scripts()[name] if isinstance(step, dict)]
    assert events
    for event in events:
        SERVER_EVENT.validate_python({"event_id": "event_1", **event})


def test_the_validator_can_fail():
    broken = ss.voice_turn()[-1]
    broken = {**broken, "event_id": "e", "response": {**broken["response"], "status": "exploded"}}
    with pytest.raises(ValidationError):
        SERVER_EVENT.validate_python(broken)


def test_voice_turn_order_and_audio():
    turn = ss.voice_turn(audio_ms=1000, transcript="one two three")
    types = [e["type"] for e in turn]
    assert types[:3] == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                         "input_audio_buffer.committed"]
    assert types[-5:] == ["response.output_audio.done", "response.output_audio_transcript.done",
                          "response.content_part.done", "response.output_item.done", "response.done"]
    audio = b"".join(base64.b64decode(e["delta"]) for e in turn if e["type"] == "response.output_audio.delta")
    assert audio == ss.pcm16_tone(1000) and len(audio) == 48000
    words = "".join(e["delta"] for e in turn if e["type"] == "response.output_audio_transcript.delta")
    assert words == "one two three"


def test_barge_in_ends_cancelled_after_a_new_speech_start():
    steps = ss.barge_in(item_id="item_x")
    pause = next(i for i, s in enumerate(steps) if isinstance(s, Pause))
    assert steps[pause + 1]["type"] == "input_audio_buffer.speech_started"
    assert steps[-1]["type"] == "response.done" and steps[-1]["response"]["status"] == "cancelled"


def test_official_sdk_client_talks_to_the_scripted_server():
    """The openai SDK's own realtime client connects, sends, and parses what we play."""
    with ScriptedServer() as server:
        base = server.url.rsplit("/realtime", 1)[0]

        async def main() -> list[str]:
            client = AsyncOpenAI(api_key="sk-test", websocket_base_url=base)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.session.update(session={"type": "realtime", "instructions": "hi"})
                await conn.input_audio_buffer.append(audio=base64.b64encode(ss.pcm16_tone(20)).decode())
                seen = []
                async for event in conn:
                    seen.append(event.type)
                    if event.type == "session.updated":
                        await asyncio.to_thread(server.play, ss.voice_turn(audio_ms=200))
                    if event.type == "response.done":
                        return seen
            return seen

        seen = asyncio.run(main())
        assert seen[:2] == ["session.created", "session.updated"] and seen[-1] == "response.done"
        assert server.request_headers[0]["authorization"] == "Bearer sk-test"
        assert [e["type"] for e in server.client_events()] == ["session.update", "input_audio_buffer.append"]
        assert server.assert_client_events_valid() == 2


def test_records_raw_frames_responders_close_and_abort():
    import websockets.sync.client as sync_client

    with ScriptedServer() as server:
        server.respond("ping.me", lambda event, srv: [{"type": "pong", "n": event["n"]}])
        with sync_client.connect(server.url) as ws:
            assert json.loads(ws.recv())["type"] == "session.created"
            ws.send("not json")
            ws.send(json.dumps({"type": "ping.me", "n": 7}))
            reply = json.loads(ws.recv())
            assert reply["type"] == "pong" and reply["n"] == 7 and reply["event_id"].startswith("event_srv_")
            server.play([Raw("raw text"), Close(4000, "bye")])
            assert ws.recv() == "raw text"
            with pytest.raises(Exception) as info:
                ws.recv()
            assert "4000" in str(info.value)
        assert server.raw_frames() == ["not json"]
        assert [e["type"] for e in server.client_events()] == ["ping.me"]

        with sync_client.connect(server.url) as ws:
            ws.recv()
            server.play([Abort()])
            with pytest.raises(Exception) as info:
                ws.recv()
            assert "1006" in str(info.value) or "no close frame" in str(info.value)
        assert server.connection_count == 2


def test_wait_for_times_out_clearly():
    with ScriptedServer() as server:
        with pytest.raises(TimeoutError, match="response.create"):
            server.wait_for("response.create", timeout=0.1)


def test_rejecting_server_and_stop_refuses_connections():
    import websockets.sync.client as sync_client
    from websockets.exceptions import InvalidStatus

    with ScriptedServer(reject_status=403) as server:
        with pytest.raises(InvalidStatus) as info:
            sync_client.connect(server.url, additional_headers={"Authorization": "Bearer k"})
        assert info.value.response.status_code == 403
        assert server.request_headers[0]["authorization"] == "Bearer k"
    with pytest.raises(OSError):
        sync_client.connect(server.url, open_timeout=2)
