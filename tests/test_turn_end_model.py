"""Smart Turn v3.2, the end-of-turn model behind ``semantic_vad``: the file, its features, its
answers on spoken audio, and the local server ending turns with it.

Needs ``pipecat-ai`` (installed with ``--no-deps``, it only supplies the model file); loads real
models, hence ``@pytest.mark.models``.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import importlib.util
import json
import shutil

import numpy as np
import pytest
import soxr
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter
from websockets.asyncio.client import connect

from rtvoice_widget.server import LocalRealtimeServer
from rtvoice_widget.server.engines import load_engines
from rtvoice_widget.server.engines.turn_end import (
    SMART_TURN_FILE,
    SmartTurn,
    _check_sha256,
    bundled_smart_turn_path,
    whisper_log_mel,
)
from rtvoice_widget.server.engines.vad import bundled_silero_path

pytestmark = pytest.mark.models
SERVER_EVENT = TypeAdapter(RealtimeServerEvent)
RATE = 24000
COMPLETE = ["What is the capital of France?", "Tell me a joke about cats.", "How far away is the moon?"]
# People who stop mid-sentence usually hesitate ("um", "uh"); the model hears that.
PAUSED = ["I would like to book a table for, um", "Set a timer for, uh", "Could you remind me to call my, uh"]


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    return SmartTurn()


@pytest.fixture(scope="module")
def tts():
    from rtvoice_widget.server.engines.tts import EspeakTTS

    return EspeakTTS()


def spoken_16k(tts, text: str, tail_ms: int = 200) -> np.ndarray:
    audio = soxr.resample(tts.synthesize(text), RATE, 16000).astype(np.float32)
    return np.concatenate([audio, np.zeros(16 * tail_ms, np.float32)])


def test_the_bundled_file_is_the_pinned_one_and_a_changed_file_is_refused(tmp_path):
    path = bundled_smart_turn_path()
    assert path.name == SMART_TURN_FILE and path.stat().st_size > 8_000_000
    changed = tmp_path / SMART_TURN_FILE
    shutil.copy(path, changed)
    with open(changed, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="SHA-256"):
        _check_sha256(changed)
    with pytest.raises(ValueError, match="not a Smart Turn v3 model"):
        SmartTurn(bundled_silero_path())
    with pytest.raises(FileNotFoundError):
        SmartTurn(tmp_path / "missing.onnx")


def test_features_match_pipecats_reference_implementation():
    # pipecat's own numpy feature code, loaded from the installed wheel without importing pipecat.
    files = importlib.metadata.files("pipecat-ai")
    source = next(f for f in files if f.name == "_whisper_features.py" and "smart_turn" in str(f))
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", source.locate())
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    rng = np.random.default_rng(7)
    for seconds in (0.5, 3.0, 9.5):  # shorter than, and longer than, the 8 s window
        audio = (rng.standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)
        window = audio[-128000:] if audio.size >= 128000 else np.pad(audio, (128000 - audio.size, 0))
        expected = reference.compute_whisper_log_mel_features(window, do_normalize=True)
        np.testing.assert_allclose(whisper_log_mel(audio), expected, atol=1e-5)
    with pytest.raises(ValueError, match="mono"):
        whisper_log_mel(np.zeros((10, 2), np.float32))


def test_complete_questions_score_complete_and_hesitations_incomplete(model, tts):
    complete = [model.complete_prob(spoken_16k(tts, t)) for t in COMPLETE]
    paused = [model.complete_prob(spoken_16k(tts, t)) for t in PAUSED]
    assert min(complete) > 0.5 > max(paused), (complete, paused)
    assert model.calls >= len(COMPLETE) + len(PAUSED) and model.cpu_ms > 0


def _speech(tts, text: str) -> bytes:
    return (np.clip(tts.synthesize(text), -1, 1) * 32767).astype("<i2").tobytes()


async def _speak_turn(url: str, pcm: bytes) -> list[dict]:
    """Send ``pcm`` paced like a microphone, in 20 ms appends, and collect events until the
    first response.done."""
    events: list[dict] = []
    async with connect(url + "?model=rtvoice-test", max_size=None) as ws:
        async def reader():
            while True:
                event = json.loads(await ws.recv())
                SERVER_EVENT.validate_python(event)
                events.append(event)
                if event["type"] == "response.done":
                    return

        task = asyncio.create_task(reader())
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "auto"}}}}}))
        step = 2 * RATE * 20 // 1000
        for i in range(0, len(pcm), step):
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(pcm[i:i + step]).decode()}))
            await asyncio.sleep(0.02)
            if task.done():
                break
        await asyncio.wait_for(task, 120)
    return events


async def test_local_server_ends_a_complete_turn_by_the_model_and_waits_through_a_hesitation(tts):
    engines = load_engines(vad="energy", llm="echo", turn_end="smart-turn")
    assert engines.turn_end is not None
    silence = lambda ms: bytes(2 * RATE * ms // 1000)  # noqa: E731
    with LocalRealtimeServer(engines=engines) as server:
        question = _speech(tts, COMPLETE[0])
        events = await _speak_turn(server.url, silence(300) + question + silence(2500))
        (stopped,) = [e for e in events if e["type"] == "input_audio_buffer.speech_stopped"]
        voice_end_ms = 300 + len(question) / 48
        # Ended by the model's "complete", not by auto's longest silence (2000 ms).
        assert stopped["audio_end_ms"] < voice_end_ms + 2000

        first, rest = _speech(tts, PAUSED[0]), _speech(tts, "four people tonight.")
        events = await _speak_turn(server.url, silence(300) + first + silence(700) + rest + silence(2500))
        started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
        (stopped,) = [e for e in events if e["type"] == "input_audio_buffer.speech_stopped"]
        assert len(started) == 1  # one turn: the 700 ms pause did not end it
        assert stopped["audio_end_ms"] > 300 + (len(first) + len(rest)) / 48 + 700
        transcript = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
        assert "people" in transcript[0]["transcript"].lower()  # both halves in one item
        # The server sums each ended connection's decisions and their CPU time, for users and benchmarks.
        for _ in range(100):
            stats = server.turn_end_stats
            if stats["asked"] >= 2:
                break
            await asyncio.sleep(0.05)  # the connection's end runs on the server's loop
        assert stats["asked"] >= 2 and stats["complete"] >= 1 and stats["incomplete"] >= 1
        assert stats["cpu_ms"] > 0
