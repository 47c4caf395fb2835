"""The server's sans-I/O turn engine, driven directly: no sockets, no threads, no clock.

The test plays the driver's role: it feeds client frames, runs VAD jobs with the real energy
VAD, answers transcription and reply jobs with chosen results, and checks the events. Every event
the engine emits is validated against the official SDK's ``RealtimeServerEvent``.
"""

from __future__ import annotations

import base64
import itertools
import json

import numpy as np
import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from rtvoice_widget.server.engines import EnergyVAD
from rtvoice_widget.server.pipeline import SpeechDetector, vad_frame_samples_24k
from rtvoice_widget.server.dialogue import (
    CancelReply,
    DetectSpeech,
    PredictTurnEnd,
    ReplyJob,
    Transcribe,
    TurnEngine,
    Prefill,
    WarmUp,
)

SERVER_EVENT = TypeAdapter(RealtimeServerEvent)
RATE = 24000


def tone(ms: float, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(RATE * ms / 1000)) / RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes()


def silence(ms: float) -> bytes:
    return bytes(2 * int(RATE * ms / 1000))


class Driver:
    """Feeds a TurnEngine like connection.py does, but synchronously and under test control."""

    def __init__(self, **options) -> None:
        vad = EnergyVAD()
        self.engine = TurnEngine(model="test-model", vad_frame_samples_24k=vad_frame_samples_24k(vad), **options)
        self.detector = SpeechDetector(vad)
        self.events: list[dict] = []
        self.jobs: list = []
        self._drain()

    def _drain(self) -> None:
        for event in self.engine.events_to_send():
            SERVER_EVENT.validate_python(event)
            json.dumps(event)  # must be serialisable as is
            self.events.append(event)
        for job in self.engine.jobs_to_run():
            if isinstance(job, DetectSpeech):
                self.engine.speech_probs(self.detector.probs(job.frames))
                self._drain()
            else:
                self.jobs.append(job)

    def send(self, event: dict) -> None:
        self.engine.receive(json.dumps(event))
        self._drain()

    def send_raw(self, frame: str) -> None:
        self.engine.receive(frame)
        self._drain()

    def append(self, pcm: bytes, chunk_ms: int = 20) -> None:
        step = 2 * RATE * chunk_ms // 1000
        for i in range(0, len(pcm), step):
            self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + step]).decode()})

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, type: str) -> list[dict]:
        return [e for e in self.events if e["type"] == type]

    def take_jobs(self, cls, kind: str | None = None) -> list:
        taken = [j for j in self.jobs if isinstance(j, cls) and (kind is None or j.kind == kind)]
        self.jobs = [j for j in self.jobs if j not in taken]
        return taken

    def transcribe(self, job: Transcribe, text: str) -> None:
        self.engine.transcribed(job, text)
        self._drain()

    def segment(self, response_id: str, text: str, ms: float) -> None:
        self.engine.reply_segment(response_id, text, tone(ms))
        self._drain()

    def finish(self, response_id: str, error: str | None = None) -> None:
        self.engine.reply_finished(response_id, error)
        self._drain()

    def configure(self, **session) -> None:
        self.send({"type": "session.update", "session": {"type": "realtime", **session}})


def vad(**fields) -> dict:
    return {"input": {"turn_detection": {"type": "server_vad", **fields}}}


def spoken_turn(d: Driver, speech_ms: float = 1000, lead_ms: float = 500, tail_ms: float = 800) -> None:
    d.append(silence(lead_ms) + tone(speech_ms) + silence(tail_ms))


# -- session ---------------------------------------------------------------------------------------


def test_session_created_first_and_update_echoes_effective_config():
    d = Driver()
    assert d.types() == ["session.created"]
    assert d.events[0]["session"]["model"] == "test-model"
    d.configure(instructions="Speak like a pirate.", audio=vad(silence_duration_ms=300))
    updated = d.of("session.updated")[-1]["session"]
    assert updated["instructions"] == "Speak like a pirate."
    turn = updated["audio"]["input"]["turn_detection"]
    assert turn["silence_duration_ms"] == 300
    assert turn["threshold"] == 0.5  # untouched fields keep their values
    assert updated["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_session_update_with_unsupported_format_is_an_error_and_changes_nothing():
    d = Driver()
    before = json.dumps(d.engine.settings.session, sort_keys=True)
    d.configure(audio={"input": {"format": {"type": "audio/pcmu"}}})
    assert d.of("error")[-1]["error"]["param"] == "session.audio.input.format"
    assert json.dumps(d.engine.settings.session, sort_keys=True) == before


def test_semantic_vad_eagerness_maps_onto_silence_duration():
    d = Driver()
    d.configure(audio={"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}})
    assert d.of("session.updated")[-1]["session"]["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    d.append(silence(300) + tone(600) + silence(400))
    stopped = d.of("input_audio_buffer.speech_stopped")
    assert len(stopped) == 1
    # high eagerness = 250 ms of silence; the stop lands on a 32 ms VAD frame boundary.
    assert 900 + 250 <= stopped[0]["audio_end_ms"] <= 900 + 250 + 64


# -- semantic VAD with an end-of-turn model --------------------------------------------------------


def semantic(eagerness: str = "auto") -> dict:
    return {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": eagerness}}}


def test_semantic_vad_asks_the_model_after_a_short_pause_and_a_complete_turn_ends_at_once():
    d = Driver(turn_end_model=True)
    d.configure(audio=semantic())
    d.append(silence(300) + tone(1000) + silence(260))
    asked = d.take_jobs(PredictTurnEnd, "end")
    assert len(asked) == 1  # once per pause
    assert not d.of("input_audio_buffer.speech_stopped")
    # It hears the turn up to the pause: the speech and ~200 ms of silence, not the audio after.
    heard_ms = len(asked[0].pcm16) / 48
    assert 1000 + 200 <= heard_ms <= 300 + 1000 + 260
    assert asked[0].pcm16[-2 * 48 * 100:] == bytes(2 * 48 * 100)  # ends in silence
    position_ms = 300 + 1000 + 260
    d.engine.turn_end_predicted(asked[0], 0.9, cpu_ms=42.0)
    d._drain()
    stopped = d.of("input_audio_buffer.speech_stopped")
    assert len(stopped) == 1
    # The turn ends where the answer came, far sooner than server_vad's default 500 ms.
    assert position_ms - 64 <= stopped[0]["audio_end_ms"] <= position_ms
    assert d.of("input_audio_buffer.committed") and d.of("response.created")
    assert d.engine.turn_end_stats == {"asked": 1, "complete": 1, "incomplete": 0, "dropped": 0,
                                       "early": 0, "early_speculated": 0, "heard_question": 0, "cpu_ms": 42.0}


def test_an_incomplete_turn_waits_for_more_speech_and_one_turn_comes_of_it():
    d = Driver(turn_end_model=True)
    d.configure(audio=semantic())
    d.append(silence(300) + tone(800) + silence(400))
    (first,) = d.take_jobs(PredictTurnEnd, "end")
    d.engine.turn_end_predicted(first, 0.1)  # "I'd like to book a table for ..."
    d._drain()
    d.append(silence(300) + tone(700) + silence(260))  # "... four people tonight."
    assert not d.of("input_audio_buffer.speech_stopped")
    (second,) = d.take_jobs(PredictTurnEnd, "end")
    d.engine.turn_end_predicted(second, 0.8)
    d._drain()
    assert len(d.of("input_audio_buffer.speech_started")) == 1
    assert len(d.of("input_audio_buffer.committed")) == 1
    assert d.engine.turn_end_stats["incomplete"] == 1 and d.engine.turn_end_stats["complete"] == 1


def test_an_answer_that_comes_after_speech_resumed_is_dropped():
    d = Driver(turn_end_model=True)
    d.configure(audio=semantic())
    d.append(silence(300) + tone(800) + silence(250))
    (late,) = d.take_jobs(PredictTurnEnd, "end")
    d.append(tone(400))  # the speaker went on before the model answered
    d.engine.turn_end_predicted(late, 0.99, cpu_ms=50.0)
    d._drain()
    assert not d.of("input_audio_buffer.speech_stopped")
    assert d.engine.turn_end_stats["dropped"] == 1
    assert d.engine.turn_end_stats["cpu_ms"] == 50.0  # the CPU was spent all the same


@pytest.mark.parametrize("eagerness, longest_ms", [("high", 1000), ("auto", 2000), ("low", 3000)])
def test_without_a_complete_answer_the_eagerness_longest_silence_ends_the_turn(eagerness, longest_ms):
    d = Driver(turn_end_model=True)
    d.configure(audio=semantic(eagerness))
    d.append(silence(300) + tone(600) + silence(longest_ms - 100))
    (job,) = d.take_jobs(PredictTurnEnd, "end")
    d.engine.turn_end_predicted(job, 0.0)
    d._drain()
    assert not d.of("input_audio_buffer.speech_stopped")
    d.append(silence(200))
    (stopped,) = d.of("input_audio_buffer.speech_stopped")
    assert 900 + longest_ms <= stopped["audio_end_ms"] <= 900 + longest_ms + 64


def test_eagerness_sets_the_model_threshold():
    results = {}
    for eagerness in ("high", "low"):
        d = Driver(turn_end_model=True)
        d.configure(audio=semantic(eagerness))
        d.append(silence(300) + tone(800) + silence(300))
        (job,) = d.take_jobs(PredictTurnEnd, "end")
        d.engine.turn_end_predicted(job, 0.5)
        d._drain()
        results[eagerness] = bool(d.of("input_audio_buffer.speech_stopped"))
    assert results == {"high": True, "low": False}


def test_a_second_ask_later_in_the_pause_ends_a_turn_the_first_called_incomplete():
    d = Driver(turn_end_model=True)
    d.configure(audio=semantic())  # auto: asked at 200 ms of silence, again at 900 ms
    d.append(silence(300) + tone(800) + silence(300))
    (first,) = d.take_jobs(PredictTurnEnd, "end")
    d.engine.turn_end_predicted(first, 0.2)  # wrongly "incomplete": below auto's 0.5
    d._drain()
    d.append(silence(500))
    assert not d.take_jobs(PredictTurnEnd)  # not before the second mark
    d.append(silence(200))
    (second,) = d.take_jobs(PredictTurnEnd, "recheck")
    assert len(second.pcm16) > len(first.pcm16)  # it hears the longer pause
    d.engine.turn_end_predicted(second, 0.2)  # the same answer now ends it: the recheck's bar is 0.15
    d._drain()
    (stopped,) = d.of("input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] < 1100 + 2000  # long before auto's longest silence
    assert d.engine.turn_end_stats["asked"] == 2


def test_at_the_recheck_a_heard_question_ends_the_turn_the_model_calls_incomplete():
    from rtvoice_widget.server.dialogue import segmenter

    def pause_after(transcript: str, switch: bool | None = None) -> Driver:
        d = Driver(turn_end_model=True, partial_interval_ms=None)
        d.configure(audio=semantic())  # auto: asked at 200 ms of silence, again at 900 ms
        d.append(silence(300) + tone(800) + silence(300))
        (spec,) = d.take_jobs(Transcribe, "speculative")
        d.transcribe(spec, transcript)
        (first,) = d.take_jobs(PredictTurnEnd, "end")
        d.engine.turn_end_predicted(first, 0.05)  # "incomplete", and well below the recheck's 0.15
        d._drain()
        d.append(silence(700))
        (second,) = d.take_jobs(PredictTurnEnd, "recheck")
        saved = segmenter.HEARD_QUESTION_ENDS_TURN
        segmenter.HEARD_QUESTION_ENDS_TURN = saved if switch is None else switch
        try:
            d.engine.turn_end_predicted(second, 0.05)
        finally:
            segmenter.HEARD_QUESTION_ENDS_TURN = saved
        d._drain()
        return d

    d = pause_after("What is the weather usually like in Spain?")
    (stopped,) = d.of("input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] < 1100 + 1000  # at the recheck, not auto's 2 s longest silence
    assert d.engine.turn_end_stats["heard_question"] == 1 and d.engine.turn_end_stats["complete"] == 1
    # The speculative reply started on that transcript is the one adopted.
    assert d.engine.speculation_stats["adopted"] == 1

    for transcript, switch in (("I'd like to book a table for, um...", None), ("Book a table for four.", None),
                               ("Can you tell me how to um?", None), ("Could you remind me to call my?", None),
                               ("What is the weather usually like in Spain?", False)):
        d = pause_after(transcript, switch)
        assert not d.of("input_audio_buffer.speech_stopped"), transcript
        assert d.engine.turn_end_stats["heard_question"] == 0
        d.append(silence(1100))  # the longest silence still ends it
        assert d.of("input_audio_buffer.speech_stopped"), transcript


def test_an_early_ask_starts_the_speculation_sooner_but_never_ends_the_turn():
    # The early ask only matters before the fixed delay: here 160 ms (the default is 96 ms).
    d = Driver(turn_end_model=True, early_ask_ms=64, speculation_delay_ms=160)
    d.configure(audio=semantic())
    d.append(silence(300) + tone(1000) + silence(110))
    (early,) = d.take_jobs(PredictTurnEnd, "early")
    assert not d.take_jobs(Transcribe, "speculative")  # the fixed delay (160 ms) is not reached
    d.engine.turn_end_predicted(early, 0.99)
    d._drain()
    (spec,) = d.take_jobs(Transcribe, "speculative")  # started by the early answer
    assert not d.of("input_audio_buffer.speech_stopped")
    d.append(silence(100))
    assert not d.take_jobs(Transcribe, "speculative")  # one speculation, not a second at 160 ms
    assert d.engine.turn_end_stats["early_speculated"] == 1

    # Below the bar (a pause inside a phrase) the fixed delay starts it, as without the ask.
    d = Driver(turn_end_model=True, early_ask_ms=64, speculation_delay_ms=160)
    d.configure(audio=semantic())
    d.append(silence(300) + tone(1000) + silence(110))
    (early,) = d.take_jobs(PredictTurnEnd, "early")
    d.engine.turn_end_predicted(early, 0.05)
    d._drain()
    assert not d.take_jobs(Transcribe, "speculative")
    d.append(silence(100))
    assert d.take_jobs(Transcribe, "speculative")

    # Off (the default), or under server_vad: no early ask.
    for options, audio in (({}, semantic()), ({"early_ask_ms": 64}, vad(silence_duration_ms=500))):
        d = Driver(turn_end_model=True, speculation_delay_ms=160, **options)
        d.configure(audio=audio)
        d.append(silence(300) + tone(1000) + silence(110))
        assert not d.take_jobs(PredictTurnEnd, "early")


def test_partials_budget_follows_the_pause_that_usually_ends_a_turn():
    from rtvoice_widget.server.connection import partial_budget_ms
    from rtvoice_widget.server.settings import SessionSettings

    with_model = SessionSettings("m", turn_end_model=True)
    with_model.update({"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}})
    # Half the model's 200 ms pause, not half of auto's 2 s longest silence.
    assert partial_budget_ms(with_model.vad, 1000.0) == 100.0
    server = SessionSettings("m")
    server.update({"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}}})
    assert partial_budget_ms(server.vad, 1000.0) == 400.0
    assert partial_budget_ms(server.vad, None) == 0.0 and partial_budget_ms(None, 1000.0) == 0.0


def test_server_vad_never_asks_the_model():
    d = Driver(turn_end_model=True)
    d.configure(audio=vad(silence_duration_ms=500))
    spoken_turn(d)
    assert not d.take_jobs(PredictTurnEnd, "end")
    assert len(d.of("input_audio_buffer.speech_stopped")) == 1


def test_semantic_vad_speculates_before_the_model_decides_and_adopts_the_reply():
    d = Driver(turn_end_model=True)
    d.configure(audio=semantic())
    d.append(silence(300) + tone(1000) + silence(260))
    (spec,) = d.take_jobs(Transcribe, "speculative")
    d.transcribe(spec, "What is the capital of France?")
    (early,) = d.take_jobs(ReplyJob)  # the speculative reply starts inside the pause
    (job,) = d.take_jobs(PredictTurnEnd, "end")
    d.engine.turn_end_predicted(job, 0.95)
    d._drain()
    created = d.of("response.created")
    assert created and created[-1]["response"]["id"] == early.response_id
    assert not d.take_jobs(ReplyJob)  # adopted, nothing started again


# -- server VAD ------------------------------------------------------------------------------------


def test_server_vad_turn_events_and_timestamps():
    d = Driver()
    d.configure(audio=vad(prefix_padding_ms=300, silence_duration_ms=500, create_response=False))
    spoken_turn(d, speech_ms=1000, lead_ms=500, tail_ms=800)
    started, = d.of("input_audio_buffer.speech_started")
    stopped, = d.of("input_audio_buffer.speech_stopped")
    committed, = d.of("input_audio_buffer.committed")
    assert abs(started["audio_start_ms"] - (500 - 300)) <= 32
    assert 1500 + 500 <= stopped["audio_end_ms"] <= 1500 + 500 + 64
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    types = d.types()
    assert types.index("input_audio_buffer.speech_stopped") < types.index("input_audio_buffer.committed") \
        < types.index("conversation.item.added")
    user_item = d.of("conversation.item.added")[-1]["item"]
    assert user_item["role"] == "user" and user_item["content"][0]["type"] == "input_audio"
    assert not d.of("response.created")  # create_response=False


def test_threshold_is_respected():
    d = Driver()
    d.configure(audio=vad(threshold=0.99))
    d.append(silence(200) + tone(800, amplitude=0.01) + silence(800))  # about -43 dBFS: quiet
    assert not d.of("input_audio_buffer.speech_started")
    d.configure(audio=vad(threshold=0.2))
    d.append(tone(800, amplitude=0.01) + silence(800))
    assert len(d.of("input_audio_buffer.speech_started")) == 1


def test_speculative_transcription_is_reused_and_reply_gets_instructions():
    d = Driver()
    d.configure(instructions="Answer briefly.", audio=vad(silence_duration_ms=500))
    d.append(silence(300) + tone(900) + silence(250))
    speculative, = d.take_jobs(Transcribe, "speculative")
    d.transcribe(speculative, "what time is it")  # ready before the silence has lasted long enough
    d.append(silence(450))
    assert d.take_jobs(Transcribe, "final") == []  # reused, not transcribed again
    completed, = d.of("conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "what time is it"
    done, = d.of("conversation.item.done")  # the user item is final once its transcript is
    assert done["item"]["id"] == completed["item_id"]
    assert done["item"]["content"][0]["transcript"] == "what time is it"
    assert d.of("conversation.item.added")[0]["item"]["content"][0]["transcript"] is None
    assert d.types().index("response.created") > d.types().index("input_audio_buffer.committed")
    reply, = d.take_jobs(ReplyJob)
    assert reply.messages == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "what time is it"},
    ]


def test_speculation_in_flight_at_stop_is_awaited_not_repeated():
    d = Driver()
    spoken_turn(d)
    assert d.take_jobs(Transcribe, "final") == []
    assert d.of("response.created") and not d.take_jobs(ReplyJob)  # waits for the transcript
    speculative, = d.take_jobs(Transcribe, "speculative")
    d.transcribe(speculative, "hello")
    reply, = d.take_jobs(ReplyJob)
    assert reply.messages[-1] == {"role": "user", "content": "hello"}


def test_speculation_discarded_when_speech_resumes():
    d = Driver()
    d.configure(audio=vad(silence_duration_ms=500))
    d.append(silence(300) + tone(600) + silence(250))  # a pause shorter than the silence duration
    stale, = d.take_jobs(Transcribe, "speculative")
    d.append(tone(600))
    d.transcribe(stale, "half a sentence")  # arrives after the speaker went on: must be ignored
    d.append(silence(800))
    fresh, = d.take_jobs(Transcribe, "speculative")
    assert len(fresh.pcm16) > len(stale.pcm16)
    d.transcribe(fresh, "half a sentence and the rest")
    assert [e["transcript"] for e in d.of("conversation.item.input_audio_transcription.completed")] == [
        "half a sentence and the rest"]
    assert len(d.of("input_audio_buffer.speech_started")) == 1


@pytest.mark.parametrize("speculative", [True, False])
def test_the_asr_hears_the_whole_turn_from_the_prefix_padding_on(speculative):
    """What a turn's transcription gets is one contiguous stretch of the client's audio: from
    ``prefix_padding_ms`` before the onset to the speculation point (at least
    ``speculation_delay_ms`` past the last voiced frame) or to speech_stopped, nothing cut or
    added. (Measured with Whisper: the server's and the engine-alone transcripts differ only where
    the speech sits in the window, which greedy Whisper is sensitive to; see docs/ENGINES.md.)"""
    d = Driver(speculative=speculative, partial_interval_ms=None)
    d.configure(audio=vad(prefix_padding_ms=300, silence_duration_ms=500, create_response=False))
    # A swelling sine, not a steady tone: a window shifted by any number of samples cannot match.
    speech = (np.sin(np.linspace(0, 900, RATE)) * np.linspace(0.1, 0.3, RATE) * 32767).astype("<i2").tobytes()
    stream = silence(640) + speech + silence(900)
    d.append(stream)
    job, = d.take_jobs(Transcribe, "speculative" if speculative else "final")
    started, = d.of("input_audio_buffer.speech_started")
    stopped, = d.of("input_audio_buffer.speech_stopped")
    start = started["audio_start_ms"] * 48
    assert abs(started["audio_start_ms"] - (640 - 300)) <= 32  # the prefix padding before the onset
    assert job.pcm16 == stream[start : start + len(job.pcm16)]
    end_ms = started["audio_start_ms"] + len(job.pcm16) / 48
    if speculative:
        assert end_ms >= 640 + 1000 + d.engine.speculation_delay_ms
    else:
        assert end_ms == stopped["audio_end_ms"]


def test_without_speculation_the_final_transcription_starts_at_stop():
    d = Driver(speculative=False)
    spoken_turn(d)
    assert d.take_jobs(Transcribe, "speculative") == []
    final, = d.take_jobs(Transcribe, "final")
    assert len(final.pcm16) // 48 >= 1000 + 500  # the speech plus the silence that ended it


def test_partial_transcripts_stream_stable_words_then_completion_adds_up():
    d = Driver(partial_interval_ms=1000)
    d.append(silence(200) + tone(1100))
    first, = d.take_jobs(Transcribe, "partial")
    d.transcribe(first, "hello")
    d.append(tone(1000))
    second, = d.take_jobs(Transcribe, "partial")
    d.transcribe(second, "hello world")
    d.append(tone(1000))
    third, = d.take_jobs(Transcribe, "partial")
    d.transcribe(third, "hello world again")
    deltas_while_speaking = [e["delta"] for e in d.of("conversation.item.input_audio_transcription.delta")]
    assert deltas_while_speaking == ["hello", " world"]
    assert not d.of("input_audio_buffer.speech_stopped")  # all of it while the user speaks
    d.append(silence(800))
    speculative, = d.take_jobs(Transcribe, "speculative")
    d.transcribe(speculative, "hello world again friend")
    deltas = [e["delta"] for e in d.of("conversation.item.input_audio_transcription.delta")]
    assert "".join(deltas) == d.of("conversation.item.input_audio_transcription.completed")[0]["transcript"]


def test_stable_partial_words_prefill_the_prompt_the_reply_would_get():
    d = Driver(partial_interval_ms=1000)
    d.append(silence(200) + tone(1100))
    first, = d.take_jobs(Transcribe, "partial")
    d.transcribe(first, "what")
    assert d.take_jobs(Prefill) == []  # its only word may be cut off
    d.append(tone(1000))
    second, = d.take_jobs(Transcribe, "partial")
    d.transcribe(second, "what time is")
    prefill, = d.take_jobs(Prefill)
    assert prefill.messages[-1] == {"role": "user", "content": "what time"}
    assert prefill.messages[:-1] == [{"role": "system", "content": d.engine.settings.instructions}]
    d.append(silence(800))
    speculative, = d.take_jobs(Transcribe, "speculative")
    d.transcribe(speculative, "what time is it")
    reply, = d.take_jobs(ReplyJob)
    # The reply's prompt starts with the prefilled one, up to the words heard while speaking.
    assert reply.messages[:-1] == prefill.messages[:-1]
    assert reply.messages[-1]["content"].startswith(prefill.messages[-1]["content"])


def test_partials_can_be_turned_off():
    d = Driver(partial_interval_ms=None)
    d.append(silence(200) + tone(3000))
    assert d.take_jobs(Transcribe, "partial") == []


# -- manual commit ---------------------------------------------------------------------------------


def test_manual_commit_with_turn_detection_none():
    d = Driver()
    d.configure(audio={"input": {"turn_detection": None}})
    d.append(tone(400))
    assert not d.of("input_audio_buffer.speech_started")
    d.send({"type": "input_audio_buffer.commit"})
    committed, = d.of("input_audio_buffer.committed")
    final, = d.take_jobs(Transcribe, "final")
    assert final.item_id == committed["item_id"] and len(final.pcm16) == len(tone(400))
    assert not d.of("response.created")
    d.transcribe(final, "push to talk")
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    assert reply.messages[-1]["content"] == "push to talk"


def test_commit_of_an_empty_or_cleared_buffer_is_an_error():
    d = Driver()
    d.configure(audio={"input": {"turn_detection": None}})
    d.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    error = d.of("error")[-1]["error"]
    assert error["code"] == "input_audio_buffer_commit_empty" and error["event_id"] == "c1"
    d.append(tone(300))
    d.send({"type": "input_audio_buffer.clear"})
    assert d.types()[-1] == "input_audio_buffer.cleared"
    d.send({"type": "input_audio_buffer.commit"})
    assert d.types()[-1] == "error" and not d.of("input_audio_buffer.committed")


def test_audio_positions_continue_across_turns():
    d = Driver()
    d.configure(audio=vad(prefix_padding_ms=0, create_response=False))
    spoken_turn(d, speech_ms=600, lead_ms=320, tail_ms=800)  # 1720 ms in total
    spoken_turn(d, speech_ms=600, lead_ms=320, tail_ms=800)
    starts = [e["audio_start_ms"] for e in d.of("input_audio_buffer.speech_started")]
    assert abs(starts[0] - 320) <= 32 and abs(starts[1] - (1720 + 320)) <= 32


# -- responses -------------------------------------------------------------------------------------


def text_turn(d: Driver, text: str = "hello") -> None:
    d.send({"type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})


def test_response_events_in_ga_order_and_transcript_deltas_add_up():
    d = Driver()
    text_turn(d)
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    start = len(d.events)
    d.segment(reply.response_id, "Hello there,", 500)
    d.segment(reply.response_id, "how are you?", 700)
    d.finish(reply.response_id)
    types = [t for t in d.types()[start:]]
    collapsed = [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]
    assert collapsed == [
        "response.output_item.added", "conversation.item.added", "response.content_part.added",
        "response.output_audio_transcript.delta", "response.output_audio.delta",
        "response.output_audio_transcript.delta", "response.output_audio.delta",
        "response.output_audio.done", "response.output_audio_transcript.done", "response.content_part.done",
        "response.output_item.done", "conversation.item.done", "response.done",
    ]
    transcript = d.of("response.output_audio_transcript.done")[0]["transcript"]
    assert "".join(e["delta"] for e in d.of("response.output_audio_transcript.delta")) == transcript == \
        "Hello there, how are you?"
    audio = b"".join(base64.b64decode(e["delta"]) for e in d.of("response.output_audio.delta"))
    assert len(audio) == len(tone(500)) + len(tone(700))
    done = d.of("response.done")[0]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["transcript"] == transcript


def test_text_only_response():
    d = Driver()
    d.configure(output_modalities=["text"])
    text_turn(d)
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    assert reply.modalities == ["text"]
    d.engine.reply_segment(reply.response_id, "Hi", None)
    d.engine.reply_segment(reply.response_id, " you", None)
    d.finish(reply.response_id)
    assert [e["delta"] for e in d.of("response.output_text.delta")] == ["Hi", " you"]
    assert d.of("response.output_text.done")[0]["text"] == "Hi you"
    assert not d.of("response.output_audio.delta")


def test_response_create_overrides_instructions_for_one_response():
    d = Driver()
    d.configure(instructions="Session rules.")
    text_turn(d)
    d.send({"type": "response.create", "response": {"instructions": "Just this once."}})
    reply, = d.take_jobs(ReplyJob)
    assert reply.messages[0] == {"role": "system", "content": "Just this once."}


def test_second_response_create_while_active_is_an_error():
    d = Driver()
    text_turn(d)
    d.send({"type": "response.create"})
    d.send({"type": "response.create"})
    assert d.of("error")[-1]["error"]["code"] == "conversation_already_has_active_response"
    assert len(d.take_jobs(ReplyJob)) == 1


def test_response_cancel_closes_everything_and_ignores_late_results():
    d = Driver()
    text_turn(d)
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    d.segment(reply.response_id, "First clause,", 400)
    d.send({"type": "response.cancel"})
    cancel, = d.take_jobs(CancelReply)
    assert cancel.response_id == reply.response_id
    done = d.of("response.done")[-1]["response"]
    assert done["status"] == "cancelled" and done["status_details"]["reason"] == "client_cancelled"
    assert d.of("response.output_item.done")[-1]["item"]["status"] == "incomplete"
    count = len(d.events)
    d.segment(reply.response_id, "too late", 400)
    d.finish(reply.response_id)
    assert len(d.events) == count
    d.send({"type": "response.cancel"})
    assert d.of("error")[-1]["error"]["code"] == "response_cancel_not_active"


def test_engine_failure_fails_the_response_not_the_session():
    d = Driver()
    text_turn(d)
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    d.finish(reply.response_id, error="LLM failed: boom")
    done = d.of("response.done")[-1]["response"]
    assert done["status"] == "failed" and "boom" in done["status_details"]["error"]["message"]
    d.send({"type": "response.create"})
    assert len(d.take_jobs(ReplyJob)) == 1


def test_barge_in_cancels_the_running_response_every_time():
    d = Driver()
    d.configure(audio=vad(silence_duration_ms=300))
    for turn in range(3):
        spoken_turn(d, speech_ms=500, lead_ms=100, tail_ms=400)
        for job in d.take_jobs(Transcribe):
            d.transcribe(job, f"turn {turn}")
        reply, = d.take_jobs(ReplyJob)
        d.segment(reply.response_id, "A long answer,", 2000)
        d.append(tone(300))  # the user talks over it
        done = d.of("response.done")[-1]["response"]
        assert done["id"] == reply.response_id
        assert done["status"] == "cancelled" and done["status_details"]["reason"] == "turn_detected"
        assert d.take_jobs(CancelReply)[0].response_id == reply.response_id
        d.append(silence(400))
        for job in d.take_jobs(Transcribe):
            d.transcribe(job, "interruption")
        reply, = d.take_jobs(ReplyJob)
        d.finish(reply.response_id)
    assert [e["response"]["status"] for e in d.of("response.done")] == ["cancelled", "completed"] * 3


def test_without_interrupt_response_the_next_response_waits_for_the_active_one():
    d = Driver()
    d.configure(audio=vad(silence_duration_ms=300, interrupt_response=False))
    text_turn(d)
    d.send({"type": "response.create"})
    first, = d.take_jobs(ReplyJob)
    spoken_turn(d, speech_ms=500, lead_ms=100, tail_ms=400)
    for job in d.take_jobs(Transcribe):
        d.transcribe(job, "next question")
    assert not d.of("response.done") and d.take_jobs(ReplyJob) == []
    d.finish(first.response_id)
    second, = d.take_jobs(ReplyJob)
    assert second.messages[-1]["content"] == "next question"


def test_truncate_cuts_the_transcript_to_what_was_heard():
    d = Driver()
    text_turn(d, "count")
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    d.segment(reply.response_id, "one two three four.", 1000)
    d.segment(reply.response_id, "five six.", 1000)
    d.finish(reply.response_id)
    item_id = d.of("response.output_item.done")[0]["item"]["id"]
    d.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 1500})
    truncated, = d.of("conversation.item.truncated")
    assert truncated["audio_end_ms"] == 1500
    text_turn(d, "go on")
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    assert {"role": "assistant", "content": "one two three four. five"} in reply.messages


def test_truncate_errors_leave_the_item_alone():
    d = Driver()
    text_turn(d)
    user_id = d.of("conversation.item.added")[-1]["item"]["id"]
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    d.segment(reply.response_id, "short.", 500)
    d.finish(reply.response_id)
    item_id = d.of("response.output_item.done")[0]["item"]["id"]
    d.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 5000})
    assert d.of("error")[-1]["error"]["param"] == "audio_end_ms"
    d.send({"type": "conversation.item.truncate", "item_id": user_id, "content_index": 0, "audio_end_ms": 0})
    assert d.of("error")[-1]["error"]["param"] == "item_id"
    d.send({"type": "conversation.item.truncate", "item_id": "nope", "content_index": 0, "audio_end_ms": 0})
    assert d.of("error")[-1]["error"]["code"] == "item_not_found"
    assert not d.of("conversation.item.truncated")
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    assert {"role": "assistant", "content": "short."} in reply.messages


def test_function_call_round_trip():
    d = Driver()
    tool = {"type": "function", "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    d.configure(tools=[tool])
    text_turn(d, "weather in Paris?")
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    assert reply.tools == [tool]
    d.engine.reply_tool_call(reply.response_id, "get_weather", '{"city": "Paris"}')
    d.finish(reply.response_id)
    args_done, = d.of("response.function_call_arguments.done")
    assert args_done["name"] == "get_weather" and json.loads(args_done["arguments"]) == {"city": "Paris"}
    output = d.of("response.done")[-1]["response"]["output"]
    assert output[0]["type"] == "function_call" and output[0]["call_id"] == args_done["call_id"]
    d.send({"type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": args_done["call_id"], "output": "sunny, 21 C"}})
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    assert reply.messages[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert reply.messages[-1] == {"role": "tool", "tool_call_id": args_done["call_id"], "content": "sunny, 21 C"}


def test_audio_item_from_client_is_transcribed_before_the_reply():
    d = Driver()
    d.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
        {"type": "input_audio", "audio": base64.b64encode(tone(500)).decode()}]}})
    assert "audio" not in d.of("conversation.item.added")[-1]["item"]["content"][0]
    d.send({"type": "response.create"})
    assert d.take_jobs(ReplyJob) == []
    final, = d.take_jobs(Transcribe, "final")
    assert not d.of("conversation.item.done")
    d.transcribe(final, "from a file")
    assert d.of("conversation.item.done")[0]["item"]["content"][0]["transcript"] == "from a file"
    assert d.of("conversation.item.input_audio_transcription.completed")[0]["usage"]["seconds"] == 0.5
    reply, = d.take_jobs(ReplyJob)
    assert reply.messages[-1]["content"] == "from a file"


def test_item_insert_retrieve_delete():
    d = Driver()
    text_turn(d, "second")
    second = d.of("conversation.item.added")[-1]["item"]["id"]
    d.send({"type": "conversation.item.create", "previous_item_id": "root",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]}})
    d.send({"type": "conversation.item.retrieve", "item_id": second})
    assert d.of("conversation.item.retrieved")[0]["item"]["content"][0]["text"] == "second"
    d.send({"type": "conversation.item.delete", "item_id": second})
    assert d.of("conversation.item.deleted")[0]["item_id"] == second
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    assert [m["content"] for m in reply.messages if m["role"] == "user"] == ["first"]


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code", "param"),
    [
        ("{not json", "invalid_json", None),
        ("[1, 2]", "invalid_json", None),
        ('{"type": "session.explode"}', "invalid_event_type", "type"),
        ('{"no_type": 1}', "missing_required_parameter", "type"),
        ('{"type": "input_audio_buffer.append", "audio": "***not base64***"}', "invalid_value", "audio"),
        ('{"type": "input_audio_buffer.append", "audio": 12}', "invalid_type", "audio"),
        ('{"type": "input_audio_buffer.append"}', "missing_required_parameter", "audio"),
        ('{"type": "conversation.item.truncate", "item_id": "x", "content_index": 0, "audio_end_ms": "5"}',
         "invalid_type", "audio_end_ms"),
        ('{"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection":'
         ' {"type": "server_vad", "threshold": "high"}}}}}', "invalid_type",
         "session.audio.input.turn_detection.threshold"),
    ],
)
def test_bad_frames_get_api_shaped_errors_and_nothing_is_lost(frame, code, param):
    d = Driver()
    d.configure(audio={"input": {"turn_detection": None}})
    d.append(tone(200))
    d.send_raw(frame)
    error = d.events[-1]
    assert error["type"] == "error" and error["error"]["code"] == code and error["error"]["param"] == param
    assert error["error"]["type"] == "invalid_request_error" and error["error"]["message"]
    d.send({"type": "input_audio_buffer.commit"})  # the audio sent before the bad frame is still there
    assert len(d.take_jobs(Transcribe, "final")[0].pcm16) == len(tone(200))


def test_error_names_the_client_event_id():
    d = Driver()
    d.send({"type": "conversation.item.delete", "item_id": "missing", "event_id": "evt_42"})
    assert d.events[-1]["error"]["event_id"] == "evt_42"


def test_speculation_overtaken_by_speech_serves_as_a_partial():
    d = Driver(partial_interval_ms=None)
    d.configure(audio=vad(silence_duration_ms=500))
    d.append(silence(200) + tone(600) + silence(250))
    first, = d.take_jobs(Transcribe, "speculative")
    d.append(tone(600))
    d.transcribe(first, "one two")
    d.append(silence(250))
    second, = d.take_jobs(Transcribe, "speculative")
    d.append(tone(600))
    d.transcribe(second, "one two three")
    assert [e["delta"] for e in d.of("conversation.item.input_audio_transcription.delta")] == ["one two"]
    assert not d.of("input_audio_buffer.speech_stopped")
    assert d.take_jobs(Transcribe, "partial") == []  # no ASR work beyond the speculations


def test_long_conversations_hand_the_llm_only_the_newest_history():
    d = Driver(history_chars=300)
    d.configure(instructions="Be brief.")
    for n in range(20):
        text_turn(d, f"message number {n} " + "padding " * 5)
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    assert reply.messages[0] == {"role": "system", "content": "Be brief."}
    contents = [m["content"] for m in reply.messages[1:]]
    assert contents[-1].startswith("message number 19 ")
    assert not any(c.startswith("message number 0 ") for c in contents)
    assert sum(len(c) for c in contents) <= 300


def test_history_window_start_moves_in_steps_so_the_llm_cache_stays_valid():
    d = Driver(history_chars=300)
    starts = []
    for n in range(30):
        text_turn(d, f"message {n:02d} " + "x" * 19)  # 30 characters each
        d.send({"type": "response.create"})
        reply, = d.take_jobs(ReplyJob)
        d.finish(reply.response_id)
        contents = [m["content"] for m in reply.messages[1:]]
        assert contents[-1].startswith(f"message {n:02d}")
        assert 150 <= sum(len(c) for c in contents) <= 300 or n < 5
        starts.append(contents[0])
    changes = sum(1 for a, b in itertools.pairwise(starts) if a != b)
    # 30 turns of 30 characters past a 300-character budget: the start moves every 150
    # characters (5 turns), not every turn.
    assert 3 <= changes <= 6, starts


def test_short_gaps_inside_speech_do_not_start_a_speculation():
    d = Driver(partial_interval_ms=None)
    d.configure(audio=vad(silence_duration_ms=500))
    d.append(silence(200) + (tone(300) + silence(96)) * 4 + tone(300))  # stop-consonant-like gaps
    assert d.take_jobs(Transcribe) == []
    d.append(silence(200))
    assert len(d.take_jobs(Transcribe, "speculative")) == 1


async def test_transcription_queue_runs_the_most_urgent_wanted_job_first():
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from rtvoice_widget.server.connection import TranscriptionQueue

    executor = ThreadPoolExecutor(1)
    queue = TranscriptionQueue(executor)
    release = threading.Event()
    ran: list[str] = []

    def work(name: str):
        def run() -> str:
            if name == "first":
                release.wait()
            ran.append(name)
            return name.upper()
        return run

    first = asyncio.ensure_future(queue.run("speculative", lambda: True, work("first")))
    await asyncio.sleep(0)
    assert queue.busy
    partial = asyncio.ensure_future(queue.run("partial", lambda: True, work("partial")))
    stale = asyncio.ensure_future(queue.run("speculative", lambda: False, work("stale")))
    final = asyncio.ensure_future(queue.run("final", lambda: True, work("final")))
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(first, partial, stale, final) == ["FIRST", "PARTIAL", None, "FINAL"]
    assert ran == ["first", "final", "partial"]
    assert not queue.busy
    executor.shutdown()


def test_clause_chunker_cuts_a_short_second_piece_too_when_asked():
    from rtvoice_widget.server.chunking import ClauseChunker

    def pieces_of(text: str, **options) -> list[str]:
        chunker = ClauseChunker(first_max_words=2, **options)
        out: list[str] = []
        for token in text.split(" "):
            out += chunker.push(token + " ")
        return out + chunker.flush()

    text = "The tallest mountain in the world is Mount Everest in Nepal. It is very high."
    # Without a cap the second piece waits for the sentence end; with one it is cut after 5 words
    # (before a conjunction or preposition among words 4..5 if there is one); the third piece
    # waits for a sentence end again.
    assert pieces_of(text) == ["The tallest", "mountain in the world is Mount Everest in Nepal.", "It is very high."]
    assert pieces_of(text, second_max_words=5) == [
        "The tallest", "mountain in the world is", "Mount Everest in Nepal.", "It is very high."]
    assert pieces_of("Paris is the capital of France and its largest city.", second_max_words=5) == [
        "Paris is", "the capital of France", "and its largest city."]


def test_clause_chunker_releases_the_first_clause_early_and_keeps_decimals_whole():
    from rtvoice_widget.server.chunking import ClauseChunker

    chunker = ClauseChunker(first_min_words=2, clause_min_chars=40)
    pieces: list[str] = []
    for token in "Sure, the answer is 3.5 metres; that is about eleven feet, give or take. Bye".split(" "):
        pieces += chunker.push(token + " ")
    pieces += chunker.flush()
    # "Sure," alone is too short to voice; later clauses under 40 characters wait for the sentence end.
    assert pieces == ["Sure, the answer is 3.5 metres;", "that is about eleven feet, give or take.", "Bye"]


# -- speculative reply -----------------------------------------------------------------------------


def pause_before_stop(d: Driver, text: str = "what time is it") -> Transcribe:
    """A spoken turn whose speculative transcript arrives while the silence is still too short."""
    d.configure(instructions="Answer briefly.", audio=vad(silence_duration_ms=500))
    d.append(silence(300) + tone(900) + silence(250))
    speculative, = d.take_jobs(Transcribe, "speculative")
    d.transcribe(speculative, text)
    return speculative


RESPONSE_EVENTS = ("response.", "conversation.item.added", "conversation.item.done")


_IDS = {"id", "event_id", "item_id", "response_id", "previous_item_id", "call_id"}


def without_ids(value):
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k not in _IDS}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def visible_trace(d: Driver) -> list[dict]:
    """The events as a client sees them, ids left out (they are random)."""
    return [without_ids(event) for event in d.events]


def test_speculative_reply_is_adopted_with_no_llm_work_after_speech_stopped():
    d = Driver()
    pause_before_stop(d)
    reply, = d.take_jobs(ReplyJob)  # started before speech_stopped
    assert not d.of("input_audio_buffer.speech_stopped")
    assert reply.messages == [{"role": "system", "content": "Answer briefly."},
                              {"role": "user", "content": "what time is it"}]
    before = len(d.events)
    d.segment(reply.response_id, "It is noon.", 600)
    d.finish(reply.response_id)
    assert len(d.events) == before  # nothing of it is visible yet
    d.append(silence(450))
    assert d.take_jobs(ReplyJob) == [] and d.take_jobs(CancelReply) == []  # no new LLM work after the stop
    types = d.types()
    stopped = types.index("input_audio_buffer.speech_stopped")
    assert types.index("conversation.item.done") < types.index("response.created")
    assert stopped < types.index("response.created") < types.index("response.output_audio.delta")
    created, = d.of("response.created")
    assert created["response"]["id"] == reply.response_id
    done, = d.of("response.done")
    assert done["response"]["status"] == "completed"
    assert done["response"]["output"][0]["content"][0]["transcript"] == "It is noon."
    assert d.engine.speculation_stats == {"started": 1, "adopted": 1, "discarded": 0}


def test_adopted_speculation_looks_exactly_like_a_reply_started_at_the_stop():
    def run(speculative_reply: bool) -> Driver:
        d = Driver(speculative_reply=speculative_reply)
        pause_before_stop(d)
        if speculative_reply:
            reply, = d.take_jobs(ReplyJob)
            d.segment(reply.response_id, "It is noon,", 400)
            d.append(silence(450))
        else:
            assert d.take_jobs(ReplyJob) == []
            d.append(silence(450))
            reply, = d.take_jobs(ReplyJob)
            d.segment(reply.response_id, "It is noon,", 400)
        d.segment(reply.response_id, "more or less.", 500)  # live, after the adoption
        d.finish(reply.response_id)
        return d

    with_speculation, without = run(True), run(False)
    assert visible_trace(with_speculation) == visible_trace(without)
    assert with_speculation.engine.items[0].data["content"] == without.engine.items[0].data["content"]
    assert len(with_speculation.engine.items) == len(without.engine.items) == 2


def test_speculative_reply_discarded_when_speech_resumes():
    d = Driver(partial_interval_ms=None)
    pause_before_stop(d, "what time")
    stale, = d.take_jobs(ReplyJob)
    d.segment(stale.response_id, "Time is", 300)
    d.append(tone(600))  # the speaker goes on
    cancel, = d.take_jobs(CancelReply)
    assert cancel.response_id == stale.response_id
    d.segment(stale.response_id, "a late clause.", 300)
    d.finish(stale.response_id)
    d.append(silence(250))
    fresh_asr, = d.take_jobs(Transcribe, "speculative")
    d.transcribe(fresh_asr, "what time is it in Paris")
    fresh, = d.take_jobs(ReplyJob)
    assert fresh.response_id != stale.response_id
    assert fresh.messages[-1] == {"role": "user", "content": "what time is it in Paris"}
    d.append(silence(450))
    d.finish(fresh.response_id)
    assert [e["response"]["id"] for e in d.of("response.created")] == [fresh.response_id]
    assert stale.response_id not in json.dumps(d.events)
    assert "Time is" not in json.dumps(d.events) and "late clause" not in json.dumps(d.events)
    assert [m["content"] for m in d.engine._messages()] == ["what time is it in Paris"]
    assert d.engine.speculation_stats == {"started": 2, "adopted": 1, "discarded": 1}


def test_speculative_reply_discarded_when_the_buffer_is_cleared():
    d = Driver()
    pause_before_stop(d)
    reply, = d.take_jobs(ReplyJob)
    d.send({"type": "input_audio_buffer.clear"})
    assert d.take_jobs(CancelReply)[0].response_id == reply.response_id
    d.segment(reply.response_id, "It is noon.", 300)
    d.finish(reply.response_id)
    d.append(silence(600))
    assert not d.of("response.created") and not d.of("input_audio_buffer.speech_stopped")
    assert d.engine.items == []


@pytest.mark.parametrize("change", [
    {"instructions": "Answer like a pirate."},
    {"audio": {"output": {"voice": "echo"}}},
    {"output_modalities": ["text"]},
])
def test_speculative_reply_discarded_when_the_reply_would_differ(change):
    d = Driver()
    pause_before_stop(d)
    stale, = d.take_jobs(ReplyJob)
    d.configure(**change)
    assert d.take_jobs(CancelReply)[0].response_id == stale.response_id
    d.segment(stale.response_id, "Stale words.", 300)
    d.append(silence(450))
    fresh, = d.take_jobs(ReplyJob)  # started at the stop, with the new settings
    assert fresh.response_id != stale.response_id
    assert d.of("response.created")[0]["response"]["id"] == fresh.response_id
    assert "Stale words" not in json.dumps(d.events)


def test_speculative_reply_kept_when_a_session_update_does_not_change_it():
    d = Driver()
    pause_before_stop(d)
    reply, = d.take_jobs(ReplyJob)
    d.configure(audio=vad(silence_duration_ms=500, threshold=0.6), instructions="Answer briefly.")
    assert d.take_jobs(CancelReply) == []
    d.append(silence(450))
    assert d.take_jobs(ReplyJob) == []
    assert d.of("response.created")[0]["response"]["id"] == reply.response_id


def test_speculative_reply_discarded_when_history_changes():
    d = Driver()
    pause_before_stop(d)
    stale, = d.take_jobs(ReplyJob)
    text_turn(d, "Remember: I live in Oslo.")
    assert d.take_jobs(CancelReply)[0].response_id == stale.response_id
    d.append(silence(450))
    fresh, = d.take_jobs(ReplyJob)
    assert [m["content"] for m in fresh.messages[1:]] == ["Remember: I live in Oslo.", "what time is it"]


def test_no_speculative_reply_without_auto_response_or_while_a_response_is_active():
    d = Driver()
    d.configure(audio=vad(silence_duration_ms=500, create_response=False))
    d.append(silence(300) + tone(900) + silence(250))
    speculative, = d.take_jobs(Transcribe, "speculative")
    d.transcribe(speculative, "hello")
    d.append(silence(450))
    assert d.take_jobs(ReplyJob) == [] and not d.of("response.created")

    d = Driver()
    d.configure(audio=vad(silence_duration_ms=500, interrupt_response=False))
    text_turn(d)
    d.send({"type": "response.create"})
    assert len(d.take_jobs(ReplyJob)) == 1  # the active response's
    d.append(silence(300) + tone(900) + silence(250))
    speculative, = d.take_jobs(Transcribe, "speculative")
    d.transcribe(speculative, "and another thing")
    assert d.take_jobs(ReplyJob) == []  # the next reply waits for the active one, so no speculation


def test_manual_turns_never_speculate():
    d = Driver()
    d.configure(audio={"input": {"turn_detection": None}})
    d.append(silence(300) + tone(900) + silence(600))
    assert d.take_jobs(Transcribe) == [] and d.take_jobs(ReplyJob) == []


def test_speculative_tool_call_is_replayed_on_adoption():
    d = Driver()
    tool = {"type": "function", "name": "get_time", "description": "The current time",
            "parameters": {"type": "object", "properties": {}}}
    d.configure(tools=[tool])
    pause_before_stop(d)
    reply, = d.take_jobs(ReplyJob)
    assert reply.tools == [tool]
    d.engine.reply_tool_call(reply.response_id, "get_time", "{}")
    d.finish(reply.response_id)
    assert not d.of("response.function_call_arguments.done")
    d.append(silence(450))
    args_done, = d.of("response.function_call_arguments.done")
    assert args_done["name"] == "get_time" and args_done["response_id"] == reply.response_id
    assert d.of("response.done")[0]["response"]["output"][0]["type"] == "function_call"


def test_barge_in_cancels_an_adopted_speculative_reply():
    d = Driver()
    pause_before_stop(d)
    reply, = d.take_jobs(ReplyJob)
    d.append(silence(450))
    d.segment(reply.response_id, "A long answer,", 2000)
    d.append(tone(300))
    done, = d.of("response.done")
    assert done["response"]["id"] == reply.response_id and done["response"]["status"] == "cancelled"
    assert d.take_jobs(CancelReply)[0].response_id == reply.response_id


def test_llm_warm_up_once_per_distinct_prompt_prefix():
    d = Driver()
    default, = d.take_jobs(WarmUp)  # at session creation
    assert default.messages[0]["role"] == "system"
    d.configure(audio=vad(silence_duration_ms=300))
    d.configure(instructions=default.messages[0]["content"])
    assert d.take_jobs(WarmUp) == []
    d.configure(instructions="Speak like a pirate.")
    d.configure(instructions="Speak like a pirate.", output_modalities=["text"])
    warm, = d.take_jobs(WarmUp)
    assert warm.messages == [{"role": "system", "content": "Speak like a pirate."}]
    tool = {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}
    d.configure(tools=[tool])
    assert d.take_jobs(WarmUp)[0].tools == [tool]


def test_clause_chunker_cuts_a_long_first_clause_before_a_natural_break():
    from rtvoice_widget.server.chunking import ClauseChunker

    def pieces_of(text: str, **options) -> list[str]:
        chunker = ClauseChunker(**options)
        pieces: list[str] = []
        for token in text.split(" "):
            pieces += chunker.push(token + " ")
        return pieces + chunker.flush()

    # No punctuation for long: the first piece stops before "from", the last break word in reach.
    assert pieces_of("Light takes about eight minutes from the sun to reach us here. Fast.") == [
        "Light takes about eight minutes", "from the sun to reach us here.", "Fast."]
    # No break word in reach: cut after first_max_words words.
    assert pieces_of("The sun is approximately 93.5 million kilometers away, roughly.") == [
        "The sun is approximately 93.5 million", "kilometers away, roughly."]
    # Only the first piece is cut early; a short first sentence is untouched.
    assert pieces_of("The capital of France is Paris. It is a big city with many old buildings and parks.") == [
        "The capital of France is Paris.", "It is a big city with many old buildings and parks."]
    assert pieces_of("The sun is approximately 93.5 million kilometers away.", first_max_words=None) == [
        "The sun is approximately 93.5 million kilometers away."]


def test_the_chunker_does_not_wait_on_a_run_without_spaces():
    from rtvoice_widget.server.chunking import ClauseChunker

    # SmolLM2 once answered "There are 120,396,875,480,000,..." token by token: no boundary and no
    # word to count, so nothing was voiced until the run ended (first audio after 1.7 s).
    chunker = ClauseChunker(max_run_chars=24)
    pieces: list[str] = []
    for token in ["There", " are", " 120", ","] + ["396", ","] * 12:
        pieces += chunker.push(token)
    assert pieces and pieces[0] == "There are 120," + "396," * 5  # cut after the run's 24th character
    assert all(len(p.split()[-1]) <= 24 for p in pieces)
    # Ordinary words never come near the limit.
    assert ClauseChunker().push("Internationalization and ") == []


# -- idle timeout ----------------------------------------------------------------------------------


def test_idle_timeout_after_the_reply_has_played_triggers_a_response():
    d = Driver()
    d.configure(audio=vad(silence_duration_ms=300, idle_timeout_ms=5000))
    text_turn(d)
    d.append(silence(1000))
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    d.segment(reply.response_id, "Hello there.", 2000)  # 2 s of audio, "played" from response.created
    d.finish(reply.response_id)
    d.append(silence(6900))  # 2 s of playback + 4.9 s idle: not yet
    assert not d.of("input_audio_buffer.timeout_triggered")
    d.append(silence(200))
    triggered, = d.of("input_audio_buffer.timeout_triggered")
    # response.created at 1000 ms (as far as the VAD had framed it: 31 frames of 32 ms) + 2000 ms of audio
    assert triggered["audio_start_ms"] == 992 + 2000
    assert 5000 <= triggered["audio_end_ms"] - triggered["audio_start_ms"] < 5000 + 32 + 1  # within one VAD frame
    types = d.types()
    at = types.index("input_audio_buffer.timeout_triggered")
    assert types[at + 1] == "input_audio_buffer.committed"
    assert d.of("input_audio_buffer.committed")[-1]["item_id"] == triggered["item_id"]
    final, = d.take_jobs(Transcribe, "final")
    d.transcribe(final, "")
    assert d.take_jobs(ReplyJob)  # the response the timeout asked for
    assert len(d.of("response.created")) == 2
    d.append(silence(8000))
    assert len(d.of("input_audio_buffer.timeout_triggered")) == 1  # once per reply


def test_idle_timeout_is_reset_by_speech_and_validated():
    d = Driver()
    d.configure(audio=vad(silence_duration_ms=300, idle_timeout_ms=5000))
    text_turn(d)
    d.send({"type": "response.create"})
    reply, = d.take_jobs(ReplyJob)
    d.finish(reply.response_id)
    d.append(silence(4000) + tone(500) + silence(400))  # the user speaks before the timeout
    for job in d.take_jobs(Transcribe):
        d.transcribe(job, "hello")
    second, = d.take_jobs(ReplyJob)
    d.finish(second.response_id)
    d.append(silence(4000))
    assert not d.of("input_audio_buffer.timeout_triggered")
    d.configure(audio=vad(idle_timeout_ms=100))
    assert d.of("error")[-1]["error"]["param"] == "session.audio.input.turn_detection.idle_timeout_ms"
