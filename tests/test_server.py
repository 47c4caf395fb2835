"""The local server over real WebSockets, with cheap engines (energy VAD, EchoLLM) plus the bundled
Whisper-base ASR and the default TTS (Piper, espeak-ng without it), so spoken turns are real speech
end to end. The user's side is spoken by espeak-ng whatever the server's TTS: its words are the
ones these tests were written against (Whisper-base hears Piper's "Paris" as "pairs" 9 times in 12).

Every event any test receives goes through ``Client.recv``/the SDK wrapper, which validates it
against the official ``RealtimeServerEvent``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import subprocess
import sys

import numpy as np
import pytest
import websockets
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter
from websockets.asyncio.client import connect

from rtvoice_widget.server import LocalRealtimeServer, ensure_local_server, local_server_token, stop_local_server
from rtvoice_widget.server.cli import READY_PREFIX, STAGE_PREFIX
from rtvoice_widget.server.engines import load_engines
from rtvoice_widget.server.engines.tts import EspeakTTS

SERVER_EVENT = TypeAdapter(RealtimeServerEvent)
RATE = 24000
TIMEOUT = 120  # per event; generous because the CI machine is shared


@pytest.fixture(scope="module")
def engines():
    return load_engines(vad="energy", llm="echo")


@pytest.fixture(scope="module")
def server(engines):
    with LocalRealtimeServer(engines=engines) as running:
        yield running


@functools.lru_cache(maxsize=1)
def user_voice() -> EspeakTTS:
    return EspeakTTS()


def speech(engines, text: str, lead_ms: int = 300, tail_ms: int = 1000) -> bytes:
    """``text`` spoken by espeak-ng (the user), as 24 kHz PCM16 with silence around it."""
    audio = user_voice().synthesize(text)
    assert engines.tts.sample_rate == RATE
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    return bytes(2 * RATE * lead_ms // 1000) + pcm + bytes(2 * RATE * tail_ms // 1000)


def chunks(pcm: bytes, ms: int = 20):
    step = 2 * RATE * ms // 1000
    for i in range(0, len(pcm), step):
        yield {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + step]).decode()}


class Client:
    """A raw WebSocket client that validates every server event it receives."""

    def __init__(self, websocket) -> None:
        self.ws = websocket
        self.events: list[dict] = []

    async def send(self, event: dict | str) -> None:
        await self.ws.send(event if isinstance(event, (str, bytes)) else json.dumps(event))

    async def recv(self) -> dict:
        event = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
        SERVER_EVENT.validate_python(event)
        self.events.append(event)
        return event

    async def until(self, type: str, **match) -> dict:
        while True:
            event = await self.recv()
            if event["type"] == type and all(event.get(k) == v for k, v in match.items()):
                return event

    async def text_turn(self, text: str) -> dict:
        await self.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
        await self.send({"type": "response.create"})
        return await self.until("response.done")

    def of(self, type: str) -> list[dict]:
        return [e for e in self.events if e["type"] == type]


async def open_client(url: str, **kwargs) -> Client:
    client = Client(await connect(url + "?model=rtvoice-test", max_size=None, **kwargs))
    assert (await client.recv())["type"] == "session.created"
    return client


async def test_official_sdk_holds_a_whole_spoken_turn(server, engines):
    sdk = AsyncOpenAI(api_key="local", websocket_base_url=server.url.removesuffix("/realtime"))
    received: list[dict] = []
    async with sdk.realtime.connect(model="gpt-realtime") as conn:
        created = json.loads(await conn.recv_bytes())
        assert created["type"] == "session.created" and created["session"]["model"] == "gpt-realtime"
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": {
            "type": "server_vad", "silence_duration_ms": 500}}}})
        for event in chunks(speech(engines, "What is the weather like in Paris today?")):
            await conn.input_audio_buffer.append(audio=event["audio"])
        while True:
            event = json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT))
            SERVER_EVENT.validate_python(event)
            received.append(event)
            if event["type"] == "response.done":
                break
    types = [e["type"] for e in received]
    for expected in ("session.updated", "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                     "input_audio_buffer.committed", "conversation.item.input_audio_transcription.completed",
                     "response.created", "response.output_audio.delta", "response.output_audio_transcript.done"):
        assert expected in types, expected
    transcript = next(e for e in received if e["type"].endswith("transcription.completed"))["transcript"]
    assert "weather" in transcript.lower() and "paris" in transcript.lower()
    reply = next(e for e in received if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert "paris" in reply.lower()  # EchoLLM repeats what it was told: the transcript reached the LLM
    audio = b"".join(base64.b64decode(e["delta"]) for e in received if e["type"] == "response.output_audio.delta")
    assert len(audio) > 2 * RATE // 2  # more than half a second of speech
    assert received[-1]["response"]["status"] == "completed"


async def test_first_audio_leaves_before_the_reply_is_complete(server):
    client = await open_client(server.url)
    sentence = "This sentence is one clause of a longer reply, "
    await client.text_turn(sentence * 6)
    types = [e["type"] for e in client.events]
    first_audio = types.index("response.output_audio.delta")
    last_text = len(types) - 1 - types[::-1].index("response.output_audio_transcript.delta")
    assert first_audio < last_text
    assert len(client.of("response.output_audio_transcript.delta")) >= 6
    await client.ws.close()


async def test_bad_input_gets_errors_and_the_connection_stays_up(server):
    client = await open_client(server.url)
    bad = [
        "{oops",
        json.dumps({"type": "no.such.event"}),
        json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}),
        json.dumps({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0, "audio_end_ms": "1"}),
        json.dumps({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0, "audio_end_ms": 1}),
        b'\xff\xfe binary garbage',
    ]
    for frame in bad:
        await client.send(frame)
        error = await client.until("error")
        assert error["error"]["message"] and error["error"]["type"] == "invalid_request_error"
    done = await client.text_turn("still here")
    assert done["response"]["status"] == "completed"
    await client.ws.close()


async def test_truncate_beyond_the_audio_is_rejected_then_a_valid_one_accepted(server):
    client = await open_client(server.url)
    await client.text_turn("a short reply please")
    item = client.of("response.output_item.done")[-1]["item"]
    audio_ms = sum(len(base64.b64decode(e["delta"])) for e in client.of("response.output_audio.delta")) / 48
    await client.send({"type": "conversation.item.truncate", "item_id": item["id"], "content_index": 0,
                       "audio_end_ms": int(audio_ms) + 1000})
    assert (await client.until("error"))["error"]["param"] == "audio_end_ms"
    await client.send({"type": "conversation.item.truncate", "item_id": item["id"], "content_index": 0,
                       "audio_end_ms": int(audio_ms / 2)})
    truncated = await client.until("conversation.item.truncated")
    assert truncated["item_id"] == item["id"] and truncated["audio_end_ms"] == int(audio_ms / 2)
    await client.ws.close()


async def test_barge_in_cancels_the_reply_again_and_again(server, engines):
    client = await open_client(server.url)
    await client.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 400}}}}})
    await client.until("session.updated")
    interruption = speech(engines, "Stop please.", lead_ms=0, tail_ms=800)
    long_reply = "and then the story went on for a while, " * 40
    for round in range(3):
        # A long reply from a text turn, interrupted by speech as soon as its audio flows.
        await client.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": long_reply}]}})
        await client.send({"type": "response.create"})
        created = await client.until("response.created")
        await client.until("response.output_audio.delta")
        for event in chunks(interruption):
            await client.send(event)
        await client.until("input_audio_buffer.speech_started")
        done = await client.until("response.done")
        while done["response"]["id"] != created["response"]["id"]:
            done = await client.until("response.done")
        assert done["response"]["status"] == "cancelled", round
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        answer = await client.until("response.done")  # the reply to the interruption itself
        assert answer["response"]["status"] == "completed"
        assert "stop" in answer["response"]["output"][0]["content"][0]["transcript"].lower()
    await client.ws.close()


async def test_function_calling_round_trip(server):
    client = await open_client(server.url)
    await client.send({"type": "session.update", "session": {"type": "realtime", "tools": [{
        "type": "function", "name": "get_weather", "description": "Get the weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]}})
    await client.until("session.updated")
    done = await client.text_turn("What is the weather in Paris?")
    call = done["response"]["output"][0]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert client.of("response.function_call_arguments.done")[-1]["call_id"] == call["call_id"]
    await client.send({"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": call["call_id"], "output": "sunny and 21 degrees"}})
    await client.send({"type": "response.create"})
    spoken = await client.until("response.done")
    assert "sunny" in spoken["response"]["output"][0]["content"][0]["transcript"]
    await client.ws.close()


async def test_sessions_are_independent(server):
    first, second = await open_client(server.url), await open_client(server.url)
    await first.send({"type": "session.update", "session": {"type": "realtime", "instructions": "only mine"}})
    assert (await first.until("session.updated"))["session"]["instructions"] == "only mine"
    done_a, done_b = await asyncio.gather(first.text_turn("apples"), second.text_turn("bananas"))
    assert "apples" in done_a["response"]["output"][0]["content"][0]["transcript"]
    assert "bananas" in done_b["response"]["output"][0]["content"][0]["transcript"]
    await second.send({"type": "response.create"})
    await second.until("response.done")
    # The second session's history never saw the first one's words.
    assert "apples" not in json.dumps(second.events)
    await first.ws.close()
    await second.ws.close()


async def test_wrong_path_is_404(server):
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        await connect(server.url.replace("/v1/realtime", "/v1/chat"))
    assert info.value.response.status_code == 404


async def test_token_is_required_when_set(engines):
    with LocalRealtimeServer(engines=engines, token="s3cret") as guarded:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                await connect(guarded.url, additional_headers=headers)
            assert info.value.response.status_code == 401
        for headers in ({"Authorization": "Bearer s3cret"}, {"api-key": "s3cret"}):
            client = await open_client(guarded.url, additional_headers=headers)
            await client.ws.close()


def test_binding_beyond_loopback_needs_a_token(engines):
    with pytest.raises(ValueError, match="token"):
        LocalRealtimeServer("0.0.0.0", engines=engines)


def test_stop_closes_clients_and_frees_the_port(engines):
    async def scenario() -> None:
        running = LocalRealtimeServer(engines=engines)
        url = running.start()
        client = await open_client(url)
        await asyncio.to_thread(running.stop)
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.wait_for(client.ws.recv(), TIMEOUT)
        with pytest.raises(OSError):
            await connect(url)

    asyncio.run(scenario())


def test_cli_starts_prints_its_url_and_serves():
    process = subprocess.Popen(
        [sys.executable, "-m", "rtvoice_widget.server", "--port", "0", "--vad", "energy", "--llm", "echo",
         "--exit-with-parent"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stages = []
        while (line := process.stdout.readline()).startswith(STAGE_PREFIX):  # loading progress comes first
            stages.append(line)
        assert line.startswith(READY_PREFIX), process.stderr.read() if process.poll() is not None else line
        assert stages, "no loading stage was reported before the server was ready"
        url = line[len(READY_PREFIX):].strip()

        async def talk() -> dict:
            client = await open_client(url)
            done = await client.text_turn("hello from the command line")
            await client.ws.close()
            return done

        assert asyncio.run(talk())["response"]["status"] == "completed"
        process.stdin.close()  # --exit-with-parent: closing stdin stops it
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_refuses_public_bind_without_token():
    result = subprocess.run(
        [sys.executable, "-m", "rtvoice_widget.server", "--host", "0.0.0.0", "--port", "0", "--vad", "energy",
         "--llm", "echo"], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "token" in result.stderr


def test_ensure_local_server_starts_one_subprocess_and_reuses_it():
    try:
        url = ensure_local_server(vad="energy", llm="echo")
        assert ensure_local_server() == url

        token = local_server_token(url)

        async def hello() -> dict:
            async with connect(url + "?model=x", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                return json.loads(await ws.recv())

        assert asyncio.run(hello())["type"] == "session.created"
    finally:
        stop_local_server()

    async def refused() -> None:
        async with connect(url):
            pass

    with pytest.raises(OSError):
        asyncio.run(refused())


def test_engines_load_once_per_process_and_progress_is_reported(engines):
    steps: list[tuple[str, float]] = []
    server = LocalRealtimeServer(engines={"vad": "energy", "llm": "echo"}, progress=lambda m, f: steps.append((m, f)))
    assert server.load() is engines  # the module fixture loaded these choices already: nothing reloads
    fresh = LocalRealtimeServer(engines={"vad": "energy", "llm": "echo", "tts": "espeak-cli"},
                                progress=lambda m, f: steps.append((m, f)))
    reloaded = fresh.load()
    assert reloaded is not engines
    # Only the engine that differs is new: every session of either server shares one ASR (the
    # Whisper model: hundreds of MB and seconds to load), one VAD and one LLM.
    assert reloaded.tts is not engines.tts
    assert reloaded.asr is engines.asr and reloaded.vad is engines.vad and reloaded.llm is engines.llm
    assert steps[-1] == ("engines ready", 1.0) and any("loading asr" in m for m, _ in steps)
