"""RealtimeSession against the real embedded server (rtvoice_widget.server), end to end.

Loads the bundled VAD/ASR/TTS models (the deterministic ``echo`` LLM keeps answers checkable),
so it carries the ``models`` marker. Speech comes from espeak-ng, as a user would speak it.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from rtvoice_widget.audio import read_wav
from rtvoice_widget.config import SessionConfig, TurnDetection
from rtvoice_widget.server import LocalRealtimeServer
from rtvoice_widget.session import RealtimeSession

pytestmark = [pytest.mark.models, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def local_url():
    server = LocalRealtimeServer(engines={"llm": "echo"})
    url = server.start()
    yield url
    server.stop()


def spoken(tmp_path, text: str) -> tuple[np.ndarray, int]:
    path = tmp_path / "utterance.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    audio, rate = read_wav(path)
    # Half a second of silence first, as a microphone would give.
    return np.concatenate([np.zeros(rate // 2, audio.dtype), audio]), rate


@pytest.mark.parametrize("turn_detection", [TurnDetection(silence_duration_ms=400), None], ids=["server_vad", "manual"])
def test_talk_to_the_local_server(local_url, tmp_path, turn_detection):
    audio, rate = spoken(tmp_path, "What is the weather like today?")
    config = SessionConfig(turn_detection=turn_detection)
    with RealtimeSession(local_url, config=config) as session:
        reply = session.talk(audio, sample_rate=rate, realtime=turn_detection is not None, timeout=120)
        assert reply.status == "completed"
        assert reply.transcript.startswith("You said:") and "weather" in reply.transcript.lower()
        assert reply.duration_ms > 300 and np.abs(reply.audio).max() > 0.01
        assert reply.latency_ms is not None
        df = session.events.to_pandas()
        assert not (df["category"] == "error").any(), df[df["category"] == "error"][["type", "text"]]
        assert len(session.recording.assistant) > 0 and len(session.recording.user) > 0


def test_clear_output_audio_is_accepted_where_output_audio_buffer_clear_is_not(local_url):
    import threading

    with RealtimeSession(local_url, config=SessionConfig(turn_detection=None)) as session:
        # The WebRTC-only event the builder used to make: the local server, like OpenAI over a
        # WebSocket, answers it with an error.
        after = session.last_seq
        session._command(lambda p: [p._event("output_audio_buffer.clear")])
        assert "WebRTC" in session.wait_for("error", after=after, timeout=30)["text"]
        after = session.last_seq
        audio = threading.Event()
        session.on("output_audio", lambda *_: audio.set())
        session.send_text("Please read this long sentence back to me slowly, every single word of it.")
        assert audio.wait(120)
        session.clear_output_audio()
        truncated = session.wait_for("conversation.item.truncated", after=after, timeout=30)
        done = session.wait_for("response.done", after=after, timeout=120)
        df = session.events.to_pandas()
        df = df[df["seq"] > after]
        assert not (df["category"] == "error").any(), df[df["category"] == "error"][["type", "text"]]
        assert "response.cancel" not in set(df[df["source"] == "client"]["type"].astype(str))
        assert truncated["item_id"] in {row["item_id"] for _, row in df[df["type"] == "playback.flushed"].iterrows()}
        assert done["payload"]["response"]["status"] == "completed"


def test_auto_backend_without_a_key_uses_the_shared_local_server(monkeypatch, tmp_path):
    from rtvoice_widget.backends import resolve_endpoint
    from rtvoice_widget.server import ensure_local_server, stop_local_server

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # The first caller picks the engines; the session's resolver then reuses that server.
    url = ensure_local_server(llm="echo")
    try:
        endpoint = resolve_endpoint()
        assert endpoint.backend == "local" and endpoint.url.startswith(url) and endpoint.headers["Authorization"].startswith("Bearer ")
        audio, rate = spoken(tmp_path, "Hello there.")
        with RealtimeSession(config=SessionConfig(turn_detection=None)) as session:
            assert session.endpoint.backend == "local"
            reply = session.talk(audio, sample_rate=rate, realtime=False, timeout=120)
        assert reply.transcript.startswith("You said:") and len(reply.audio) > 0
    finally:
        stop_local_server()
