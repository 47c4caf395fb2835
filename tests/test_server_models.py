"""The local server with its real default engines (Silero VAD, Whisper-base, Qwen2.5-Coder-1.5B, Piper).
The user's questions are spoken by espeak-ng's "echo" voice, whatever the server's TTS.

Slow (model loading, CPU inference), hence ``@pytest.mark.models``. Every received event is
validated against the official ``RealtimeServerEvent``.
"""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from rtvoice_widget.server import LocalRealtimeServer
from rtvoice_widget.server.engines import load_engines
from rtvoice_widget.server.engines.evaluation import word_error_rate
from rtvoice_widget.server.engines.tts import EspeakTTS

pytestmark = pytest.mark.models

SERVER_EVENT = TypeAdapter(RealtimeServerEvent)
RATE = 24000
TIMEOUT = 120


@pytest.fixture(scope="module")
def engines():
    return load_engines()  # the defaults: silero, whisper-base, qwen2.5-1.5b (llm="auto"), piper (tts="auto")


@pytest.fixture(scope="module")
def server(engines):
    with LocalRealtimeServer(engines=engines) as running:
        yield running


def spoken(engines, text: str) -> bytes:
    audio = EspeakTTS().synthesize(text, voice="echo")
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    return bytes(2 * RATE * 300 // 1000) + pcm + bytes(2 * RATE * 1200 // 1000)


async def until_done(conn) -> list[dict]:
    """Every event ``conn`` receives up to ``response.done`` (the last), each validated."""
    received: list[dict] = []
    while True:
        event = json.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT))
        SERVER_EVENT.validate_python(event)
        received.append(event)
        if event["type"] == "response.done":
            return received


async def spoken_turn(url: str, pcm: bytes, session: dict | None = None) -> list[dict]:
    """Stream ``pcm`` in real time through the official SDK; return every event up to response.done."""
    sdk = AsyncOpenAI(api_key="local", websocket_base_url=url.removesuffix("/realtime"))
    async with sdk.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", **(session or {})})
        step = 2 * RATE // 50
        for offset in range(0, len(pcm), step):
            await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[offset : offset + step]).decode())
            await asyncio.sleep(0.02)  # real time: the server's VAD and speculation see the pauses happen
        return await until_done(conn)


def of(events: list[dict], type: str) -> list[dict]:
    return [e for e in events if e["type"] == type]


async def test_spoken_question_gets_a_spoken_answer(server, engines):
    question = "What is the weather like in Paris today?"
    events = await spoken_turn(server.url, spoken(engines, question))
    transcript = of(events, "conversation.item.input_audio_transcription.completed")[0]["transcript"]
    # espeak-ng renders the words a little differently every run (it adds random noise), so one
    # misheard word may happen: judge the whole sentence, not one fixed word.
    assert word_error_rate([question], [transcript]) <= 0.3, transcript
    done = of(events, "response.done")[-1]["response"]
    assert done["status"] == "completed"
    reply = done["output"][0]["content"][0]["transcript"]
    assert len(reply.split()) >= 2
    audio = b"".join(base64.b64decode(e["delta"]) for e in of(events, "response.output_audio.delta"))
    assert len(audio) >= 2 * RATE // 2  # at least half a second of reply
    # Silero found one utterance, not several fragments.
    assert len(of(events, "input_audio_buffer.speech_started")) == 1


async def test_the_words_heard_while_the_user_speaks_are_prefilled_into_the_llm(server, engines):
    question = "Could you please tell me which ocean lies between Europe and North America?"
    # Partials run while a transcription takes at most half the turn-ending silence: 1 s of it
    # keeps them running on a loaded machine.
    turn_detection = {"type": "server_vad", "silence_duration_ms": 1000}
    before = engines.llm.prefilled
    events = await spoken_turn(server.url, spoken(engines, question),
                               {"audio": {"input": {"turn_detection": turn_detection}}})
    assert engines.llm.prefilled > before  # a partial transcript's words reached the LLM's cache
    assert of(events, "conversation.item.input_audio_transcription.delta")  # from that partial
    done = of(events, "response.done")[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["transcript"].strip()


async def test_instructions_reach_the_llm(server):
    sdk = AsyncOpenAI(api_key="local", websocket_base_url=server.url.removesuffix("/realtime"))
    async with sdk.realtime.connect(model="gpt-realtime") as conn:
        # A word the model cannot guess without the instructions.
        await conn.session.update(session={"type": "realtime", "instructions": "Your name is Zorblax."})
        await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "What is your name?"}]})
        await conn.response.create()
        event = (await until_done(conn))[-1]
    assert "zorblax" in event["response"]["output"][0]["content"][0]["transcript"].lower()


async def test_history_is_kept_per_session(server):
    sdk = AsyncOpenAI(api_key="local", websocket_base_url=server.url.removesuffix("/realtime"))
    async with sdk.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"],
                                           "instructions": "Answer in a few words."})
        for text in ("My name is Zorblax.", "Please repeat my name back to me."):
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": text}]})
            await conn.response.create()
            event = (await until_done(conn))[-1]
    answer = event["response"]["output"][0]["content"][0]["text"]
    assert "zorblax" in answer.lower()


async def test_a_spoken_question_with_one_right_answer_gets_it(server, engines):
    # The reply may have been started speculatively, before speech_stopped: the client must not
    # be able to tell, except by the answer arriving sooner.
    events = await spoken_turn(server.url, spoken(engines, "What is the capital of France?"))
    types = [e["type"] for e in events]
    assert types.index("input_audio_buffer.speech_stopped") < types.index("input_audio_buffer.committed") \
        < types.index("response.created") < types.index("response.output_audio.delta")
    assert types.index("conversation.item.input_audio_transcription.completed") < types.index("response.output_audio.delta")
    assert len(of(events, "response.created")) == 1
    done = of(events, "response.done")[-1]["response"]
    assert done["status"] == "completed" and done["id"] == of(events, "response.created")[0]["response"]["id"]
    # A 135M model samples (temperature 0.2): it is usually right ("The capital of France is
    # Paris."), sometimes confidently wrong, but always on topic.
    reply_words = set(done["output"][0]["content"][0]["transcript"].lower().replace(".", " ").split())
    assert reply_words & {"paris", "france", "capital"}, reply_words


async def test_a_tool_result_is_answered_in_words(server):
    tool = {"type": "function", "name": "get_weather", "description": "Get the current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    sdk = AsyncOpenAI(api_key="local", websocket_base_url=server.url.removesuffix("/realtime"))
    async with sdk.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"], "tools": [tool]})
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What's the weather in Paris?"}]})
        await conn.response.create()
        calls = of(await until_done(conn), "response.function_call_arguments.done")
        assert [c["name"] for c in calls] == ["get_weather"]
        await conn.conversation.item.create(item={"type": "function_call_output", "call_id": calls[0]["call_id"],
                                                  "output": json.dumps({"temperature_c": 21, "condition": "sunny"})})
        await conn.response.create()
        event = (await until_done(conn))[-1]
    answer = event["response"]["output"][0]["content"][0]["text"]
    assert not any(mark in answer for mark in '{}"_'), answer  # words, not the JSON read out
    assert "21" in answer or "sunny" in answer.lower(), answer
