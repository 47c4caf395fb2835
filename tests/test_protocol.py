"""ClientProtocol: GA client events it builds, GA server events it consumes, barge-in, turns.

Pure tests: no sockets. Server events are built by the small ``Server`` script below, and every
one of them is validated against the SDK's ``RealtimeServerEvent`` before the protocol sees it, so
the fixtures cannot drift from the real API shapes. Every client event the protocol builds or
emits is validated against ``RealtimeClientEvent`` with unknown keys rejected.
"""

from __future__ import annotations

import base64
import itertools
import math
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import BaseModel, TypeAdapter

from rtvoice_widget.config import SessionConfig, TurnDetection
from rtvoice_widget.protocol import (
    BETA_ALIASES,
    ClientProtocol,
    FlushPlayback,
    PlayAudio,
    ProtocolError,
    RunTool,
    Send,
    TurnDone,
    normalize_event,
    pcm16_ms,
)

CLIENT = TypeAdapter(RealtimeClientEvent)
SERVER = TypeAdapter(RealtimeServerEvent)


def _extras(model: Any, path: str = "") -> list[str]:
    """Keys the SDK model did not know (the SDK types accept and keep them silently)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{path}.{k}" for k in (model.model_extra or {})]
        for name in type(model).model_fields:
            found += _extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, (list, tuple)):
        for i, value in enumerate(model):
            found += _extras(value, f"{path}[{i}]")
    elif isinstance(model, dict):
        for key, value in model.items():
            found += _extras(value, f"{path}.{key}")
    return found


def valid_client_event(event: dict[str, Any]) -> dict[str, Any]:
    model = CLIENT.validate_python(event)
    assert _extras(model) == [], f"keys unknown to the SDK in {event['type']}: {_extras(model)}"
    return event


def sent(actions: list[Any]) -> list[dict[str, Any]]:
    return [valid_client_event(a.event) for a in actions if isinstance(a, Send)]


def pcm(ms: int) -> bytes:
    """``ms`` milliseconds of a non-silent PCM16 24 kHz ramp."""
    return b"\x01\x02" * 24 * ms


class Server:
    """Real-shaped GA server events with fresh ids; each validated by the SDK on creation."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._n)}"

    def ev(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type, "event_id": self._id("event"), **fields}
        SERVER.validate_python(event)
        return event

    def speech_started(self, item_id: str, audio_start_ms: int = 0) -> dict[str, Any]:
        return self.ev("input_audio_buffer.speech_started", item_id=item_id,
                       audio_start_ms=audio_start_ms)

    def speech_stopped(self, item_id: str, audio_end_ms: int = 1000) -> dict[str, Any]:
        return self.ev("input_audio_buffer.speech_stopped", item_id=item_id,
                       audio_end_ms=audio_end_ms)

    def committed(self, item_id: str, previous: str | None = None) -> dict[str, Any]:
        return self.ev("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)

    def user_item_added(self, item_id: str, previous: str | None = None,
                        text: str | None = None) -> dict[str, Any]:
        content = ([{"type": "input_text", "text": text}] if text is not None
                   else [{"type": "input_audio", "transcript": None}])
        return self.ev("conversation.item.added", previous_item_id=previous, item={
            "id": item_id, "object": "realtime.item", "type": "message", "role": "user",
            "status": "completed", "content": content})

    def transcription_delta(self, item_id: str, delta: str) -> dict[str, Any]:
        return self.ev("conversation.item.input_audio_transcription.delta", item_id=item_id,
                       content_index=0, delta=delta)

    def transcription_completed(self, item_id: str, transcript: str) -> dict[str, Any]:
        return self.ev("conversation.item.input_audio_transcription.completed", item_id=item_id,
                       content_index=0, transcript=transcript,
                       usage={"type": "duration", "seconds": 1.0})

    def response_created(self, response_id: str) -> dict[str, Any]:
        return self.ev("response.created", response={
            "id": response_id, "object": "realtime.response", "status": "in_progress",
            "output": []})

    def assistant_item_added(self, response_id: str, item_id: str) -> dict[str, Any]:
        return self.ev("response.output_item.added", response_id=response_id, output_index=0,
                       item={"id": item_id, "object": "realtime.item", "type": "message",
                             "role": "assistant", "status": "in_progress", "content": []})

    def content_part_added(self, response_id: str, item_id: str,
                           content_index: int = 0) -> dict[str, Any]:
        return self.ev("response.content_part.added", response_id=response_id, item_id=item_id,
                       output_index=0, content_index=content_index,
                       part={"type": "audio", "transcript": ""})

    def audio_delta(self, response_id: str, item_id: str, ms: int,
                    content_index: int = 0) -> dict[str, Any]:
        return self.ev("response.output_audio.delta", response_id=response_id, item_id=item_id,
                       output_index=0, content_index=content_index,
                       delta=base64.b64encode(pcm(ms)).decode())

    def transcript_delta(self, response_id: str, item_id: str, delta: str) -> dict[str, Any]:
        return self.ev("response.output_audio_transcript.delta", response_id=response_id,
                       item_id=item_id, output_index=0, content_index=0, delta=delta)

    def transcript_done(self, response_id: str, item_id: str, transcript: str) -> dict[str, Any]:
        return self.ev("response.output_audio_transcript.done", response_id=response_id,
                       item_id=item_id, output_index=0, content_index=0, transcript=transcript)

    def response_done(self, response_id: str, status: str = "completed",
                      output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return self.ev("response.done", response={
            "id": response_id, "object": "realtime.response", "status": status,
            "output": output or [],
            "usage": {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}})

    def function_call_added(self, response_id: str, item_id: str, call_id: str,
                            name: str) -> dict[str, Any]:
        return self.ev("response.output_item.added", response_id=response_id, output_index=0,
                       item={"id": item_id, "object": "realtime.item", "type": "function_call",
                             "status": "in_progress", "call_id": call_id, "name": name,
                             "arguments": ""})

    def arguments_delta(self, response_id: str, item_id: str, call_id: str,
                        delta: str) -> dict[str, Any]:
        return self.ev("response.function_call_arguments.delta", response_id=response_id,
                       item_id=item_id, call_id=call_id, output_index=0, delta=delta)

    def arguments_done(self, response_id: str, item_id: str, call_id: str, name: str,
                       arguments: str) -> dict[str, Any]:
        return self.ev("response.function_call_arguments.done", response_id=response_id,
                       item_id=item_id, call_id=call_id, name=name, output_index=0,
                       arguments=arguments)

    def function_call_item_done(self, response_id: str, item_id: str, call_id: str, name: str,
                                arguments: str) -> dict[str, Any]:
        return self.ev("response.output_item.done", response_id=response_id, output_index=0,
                       item={"id": item_id, "object": "realtime.item", "type": "function_call",
                             "status": "completed", "call_id": call_id, "name": name,
                             "arguments": arguments})

    def error(self, message: str, event_id: str | None = None,
              code: str = "invalid_value") -> dict[str, Any]:
        return self.ev("error", error={"type": "invalid_request_error", "code": code,
                                       "message": message, "param": None,
                                       "event_id": event_id})


@pytest.fixture
def server() -> Server:
    return Server()


def feed(proto: ClientProtocol, events: list[tuple[float, dict[str, Any]]]) -> list[Any]:
    actions: list[Any] = []
    for now, event in events:
        actions += proto.receive(event, now)
    return actions


def start_reply(proto: ClientProtocol, srv: Server, response_id: str, item_id: str,
                t: float) -> None:
    feed(proto, [(t, srv.response_created(response_id)),
                 (t, srv.assistant_item_added(response_id, item_id)),
                 (t, srv.content_part_added(response_id, item_id))])


def streamed_reply(proto: ClientProtocol, srv: Server, n: int, audio_ms: int, t: float,
                   done: bool = True) -> None:
    """Reply ``n`` (``resp_n``/``asst_n``) starts at ``t``, all its audio arriving at once;
    with ``done`` its ``response.done`` follows 10 ms later."""
    start_reply(proto, srv, f"resp_{n}", f"asst_{n}", t)
    proto.receive(srv.audio_delta(f"resp_{n}", f"asst_{n}", audio_ms), t)
    if done:
        proto.receive(srv.response_done(f"resp_{n}"), t + 10)


# --- builders -----------------------------------------------------------------------------------


def _weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Current weather.

    Args:
        city: City name.
        unit: Temperature unit.
    """
    return f"sunny in {city}"


CONFIGS = {
    "default": SessionConfig(),
    "semantic_vad": SessionConfig(turn_detection=TurnDetection(type="semantic_vad",
                                                               eagerness="high")),
    "manual": SessionConfig(turn_detection=None, input_transcription=None),
    "server_vad_full": SessionConfig(turn_detection=TurnDetection(
        threshold=0.7, prefix_padding_ms=200, silence_duration_ms=800, create_response=False,
        interrupt_response=False, idle_timeout_ms=6000)),
    "text_only": SessionConfig(output_modalities=["text"], max_output_tokens="inf"),
    "transcription_full": SessionConfig(input_transcription={
        "model": "whisper-1", "language": "en", "prompt": "Jupyter, pandas"}),
    "near_field": SessionConfig(noise_reduction="near_field", voice="cedar", speed=1.25),
    "far_field": SessionConfig(noise_reduction="far_field", max_output_tokens=300),
    "tools_callable": SessionConfig(tools=[_weather], tool_choice="required"),
    "tools_dict_named_choice": SessionConfig(
        tools=[{"type": "function", "name": "lookup", "description": "Look up a word.",
                "parameters": {"type": "object", "properties": {"word": {"type": "string"}},
                               "required": ["word"]}}],
        tool_choice="lookup"),
}


def _builders(proto: ClientProtocol) -> dict[str, dict[str, Any]]:
    return {
        "session_update": proto.session_update(),
        "append_audio": proto.append_audio(pcm(20)),
        "commit": proto.commit(),
        "clear": proto.clear(),
        "user_text": proto.user_text("What's the weather in Paris?"),
        "user_audio": proto.user_audio(pcm(100)),
        "create_response": proto.create_response(),
        "create_response_overrides": proto.create_response(
            instructions="Answer in French.", voice="ash", output_modalities="text",
            max_output_tokens=50, conversation="none", metadata={"topic": "test"},
            tool_choice="none", tools=[_weather]),
        "cancel_response": proto.cancel_response(),
        "truncate": proto.truncate("item_1", 0, 1234.9),
        "function_call_output": proto.function_call_output("call_1", '{"temp": 21}'),
        "delete_item": proto.delete_item("item_1"),
    }


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("builder", sorted(_builders(ClientProtocol())))
def test_every_builder_validates_for_every_config(config_name: str, builder: str) -> None:
    proto = ClientProtocol(CONFIGS[config_name])
    event = _builders(proto)[builder]
    valid_client_event(event)


def test_session_update_carries_the_config(server: Server) -> None:
    config = CONFIGS["server_vad_full"]
    event = valid_client_event(ClientProtocol(config).session_update())
    session = event["session"]
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "server_vad", "threshold": 0.7, "prefix_padding_ms": 200,
        "silence_duration_ms": 800, "create_response": False, "interrupt_response": False,
        "idle_timeout_ms": 6000}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_session_update_with_new_config_replaces_it() -> None:
    proto = ClientProtocol()
    event = proto.session_update(SessionConfig(voice="verse"))
    assert event["session"]["audio"]["output"]["voice"] == "verse"
    assert proto.config.voice == "verse"
    with pytest.raises(TypeError, match="SessionConfig"):
        proto.session_update({"voice": "x"})  # type: ignore[arg-type]


def test_append_audio_encodes_and_counts() -> None:
    proto = ClientProtocol()
    audio = pcm(40)
    event = proto.append_audio(audio)
    assert base64.b64decode(event["audio"]) == audio
    assert proto.audio_sent_ms == pytest.approx(40)
    proto.append_audio(bytearray(pcm(10)))
    assert proto.audio_sent_ms == pytest.approx(50)


@pytest.mark.parametrize("bad, error", [
    (b"", ValueError), (b"\x00\x01\x02", ValueError), ("abc", TypeError), ([1, 2], TypeError)])
def test_append_audio_rejects_bad_input(bad: Any, error: type[Exception]) -> None:
    proto = ClientProtocol()
    with pytest.raises(error):
        proto.append_audio(bad)
    assert proto.audio_sent_ms == 0


def test_create_response_voice_shortcut_and_unknown_field() -> None:
    proto = ClientProtocol()
    event = proto.create_response(voice="ash")
    assert event["response"]["audio"] == {"output": {"voice": "ash"}}
    with pytest.raises(ValueError, match="modalities"):
        proto.create_response(modalities=["text"])


def test_truncate_and_user_text_reject_bad_values() -> None:
    proto = ClientProtocol()
    for item_id, index, end in [("item", 0, -1), ("", 0, 10), ("item", -1, 0),
                                ("item", 0, float("nan")), ("item", 0, "5"), (None, 0, 1)]:
        with pytest.raises(ValueError):
            proto.truncate(item_id, index, end)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        proto.delete_item("")
    with pytest.raises(ValueError):
        proto.function_call_output("", "output")
    proto.user_audio(pcm(100))
    assert proto.audio_sent_ms == 0  # a whole audio message is not streamed input
    with pytest.raises(ValueError):
        proto.user_text("   ")
    with pytest.raises(TypeError):
        proto.function_call_output("call", {"x": 1})  # type: ignore[arg-type]


def test_builders_give_unique_event_ids() -> None:
    proto = ClientProtocol()
    ids = [e.get("event_id") for name, e in _builders(proto).items() if name != "append_audio"]
    assert len(set(ids)) == len(ids)


# --- a voice turn -------------------------------------------------------------------------------


def voice_turn(srv: Server, proto: ClientProtocol) -> list[Any]:
    """speech 0..1000 ms, stop at 1000, reply created at 1200, audio at 1300 and 1350."""
    return feed(proto, [
        (0, srv.speech_started("user_1")),
        (1000, srv.speech_stopped("user_1")),
        (1010, srv.committed("user_1")),
        (1020, srv.user_item_added("user_1")),
        (1050, srv.transcription_delta("user_1", "Hello ")),
        (1200, srv.response_created("resp_1")),
        (1210, srv.assistant_item_added("resp_1", "asst_1")),
        (1220, srv.content_part_added("resp_1", "asst_1")),
        (1300, srv.audio_delta("resp_1", "asst_1", 200)),
        (1320, srv.transcript_delta("resp_1", "asst_1", "Hi ")),
        (1350, srv.audio_delta("resp_1", "asst_1", 300)),
        (1360, srv.transcript_delta("resp_1", "asst_1", "there.")),
        (1400, srv.transcript_done("resp_1", "asst_1", "Hi there.")),
        (1500, srv.response_done("resp_1")),
    ])


def test_voice_turn_plays_audio_and_times_the_turn(server: Server) -> None:
    proto = ClientProtocol()
    actions = voice_turn(server, proto)

    plays = [a for a in actions if isinstance(a, PlayAudio)]
    assert [(p.item_id, p.response_id, p.content_index) for p in plays] == [
        ("asst_1", "resp_1", 0)] * 2
    assert b"".join(p.pcm16 for p in plays) == pcm(200) + pcm(300)
    done = [a for a in actions if isinstance(a, TurnDone)]
    assert len(done) == 1 and done[0].turn is proto.turns[0]

    turn = proto.turns[0]
    assert turn.user_item_id == "user_1" and turn.response_id == "resp_1"
    assert turn.assistant_item_ids == ["asst_1"]
    assert turn.speech_started_ms == 0 and turn.speech_stopped_ms == 1000
    assert turn.response_latency_ms == 200
    assert turn.first_audio_latency_ms == 300
    assert turn.first_transcript_latency_ms == 320
    assert turn.duration_ms == 300
    assert turn.status == "completed" and not turn.interrupted
    assert turn.assistant_text == "Hi there."
    assert turn.audio_ms == pytest.approx(500)
    assert turn.usage == {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}
    assert turn.user_text == "Hello "

    assert list(proto.items) == ["user_1", "asst_1"]
    assert proto.items["asst_1"].audio_received_ms == pytest.approx(500)
    assert proto.items["asst_1"].transcript == "Hi there."
    assert proto.items["user_1"].transcript is None
    assert proto.items["user_1"].transcript_partial == "Hello "
    assert proto.active_response_id is None


def test_user_transcript_after_response_done_updates_the_turn(server: Server) -> None:
    proto = ClientProtocol()
    voice_turn(server, proto)
    proto.receive(server.transcription_completed("user_1", "Hello there!"), 1600)
    assert proto.items["user_1"].transcript == "Hello there!"
    assert proto.turns[0].user_text == "Hello there!"
    assert proto.turns[0].to_dict()["first_audio_latency_ms"] == 300


def test_late_user_events_stay_with_their_turn(server: Server) -> None:
    proto = ClientProtocol()
    voice_turn(server, proto)
    # A server that sends conversation.item.done / a repeated added for the user item late.
    proto.receive(server.user_item_added("user_1"), 1700)
    proto.receive(server.committed("user_1"), 1710)
    assert proto.pending_turn is None
    start_reply(proto, server, "resp_2", "asst_2", 2000)  # e.g. an idle-timeout response
    assert proto.turns[1].user_item_id is None and proto.turns[0].user_item_id == "user_1"


def test_unanswered_user_input_is_replaced(server: Server) -> None:
    proto = ClientProtocol(SessionConfig(turn_detection={"create_response": False}))
    feed(proto, [(0, server.speech_started("u1")), (500, server.speech_stopped("u1")),
                 (1000, server.speech_started("u2")), (1500, server.speech_stopped("u2"))])
    start_reply(proto, server, "resp_1", "asst_1", 1600)
    turn = proto.turns[0]
    assert turn.user_item_id == "u2" and turn.speech_started_ms == 1000
    assert turn.response_latency_ms == 100


def test_cleared_buffer_drops_the_pending_turn(server: Server) -> None:
    proto = ClientProtocol()
    proto.receive(server.speech_started("u1"), 0)
    proto.receive(server.ev("input_audio_buffer.cleared"), 10)
    assert proto.pending_turn is None
    start_reply(proto, server, "resp_1", "asst_1", 100)
    assert proto.turns[0].user_item_id is None and proto.turns[0].user_done_ms is None
    assert proto.turns[0].response_latency_ms is None


def test_active_response_is_tracked(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    assert proto.active_response_id == "resp_1"
    proto.receive(server.response_done("resp_1"), 10)
    assert proto.active_response_id is None


def test_beta_names_are_aliases(server: Server) -> None:
    ga, beta = ClientProtocol(), ClientProtocol()
    events = [
        server.response_created("resp_1"),
        server.assistant_item_added("resp_1", "asst_1"),
        server.audio_delta("resp_1", "asst_1", 100),
        server.transcript_delta("resp_1", "asst_1", "Hi"),
        server.transcript_done("resp_1", "asst_1", "Hi"),
        server.response_done("resp_1"),
    ]
    renamed = {ga_name: beta_name for beta_name, ga_name in BETA_ALIASES.items()}
    ga_actions = [a for t, e in enumerate(events) for a in ga.receive(e, t)]
    beta_actions = [a for t, e in enumerate(events)
                    for a in beta.receive({**e, "type": renamed.get(e["type"], e["type"])}, t)]
    assert [type(a) for a in ga_actions] == [type(a) for a in beta_actions]
    assert beta.items["asst_1"].transcript == "Hi"
    assert beta.items["asst_1"].audio_received_ms == pytest.approx(100)
    assert beta.turns[0].assistant_text == ga.turns[0].assistant_text == "Hi"
    assert normalize_event({"type": "response.text.delta"})["type"] == "response.output_text.delta"
    assert normalize_event({"type": "conversation.item.created"})["type"] == (
        "conversation.item.added")


def test_text_modality_turn(server: Server) -> None:
    proto = ClientProtocol(SessionConfig(output_modalities=["text"]))
    proto.receive(server.user_item_added("user_1", text="hi"), 0)
    start_reply(proto, server, "resp_1", "asst_1", 100)
    proto.receive(server.ev("response.output_text.delta", response_id="resp_1", item_id="asst_1",
                            output_index=0, content_index=0, delta="Hello"), 150)
    proto.receive(server.ev("response.output_text.done", response_id="resp_1", item_id="asst_1",
                            output_index=0, content_index=0, text="Hello!"), 160)
    actions = proto.receive(server.response_done("resp_1"), 200)
    turn = actions[0].turn
    assert turn.user_text == "hi" and turn.user_item_ms == 0
    assert turn.first_transcript_latency_ms == 150 and turn.first_audio_ms is None
    assert turn.assistant_text == "Hello!"


def test_manual_commit_turn_counts_from_the_commit(server: Server) -> None:
    proto = ClientProtocol(SessionConfig(turn_detection=None))
    valid_client_event(proto.commit())
    feed(proto, [(500, server.committed("user_1")), (510, server.user_item_added("user_1"))])
    start_reply(proto, server, "resp_1", "asst_1", 700)
    proto.receive(server.audio_delta("resp_1", "asst_1", 20), 900)
    turn = proto.turns[0]
    assert turn.user_done_ms == 500 and turn.first_audio_latency_ms == 400


def test_items_follow_previous_item_id(server: Server) -> None:
    proto = ClientProtocol()
    proto.receive(server.user_item_added("a"), 0)
    proto.receive(server.user_item_added("c", previous="a"), 1)
    proto.receive(server.user_item_added("b", previous="a"), 2)
    assert list(proto.items) == ["a", "b", "c"]
    proto.receive(server.ev("conversation.item.deleted", item_id="b"), 3)
    assert list(proto.items) == ["a", "c"]


def test_unknown_types_are_tolerated_and_counted(server: Server) -> None:
    proto = ClientProtocol()
    assert proto.receive({"type": "response.brand_new_thing", "x": 1}, 0) == []
    assert proto.receive({"type": "response.brand_new_thing"}, 1) == []
    assert proto.ignored_types == {"response.brand_new_thing": 2}
    voice_turn(server, proto)  # still works
    assert proto.turns[0].status == "completed"


@pytest.mark.parametrize("bad", [None, [], "text", {"no": "type"}, {"type": 3}])
def test_malformed_events_raise_protocol_error(bad: Any) -> None:
    proto = ClientProtocol()
    with pytest.raises(ProtocolError):
        proto.receive(bad, 0)


def test_odd_length_audio_raises_and_changes_nothing(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    bad = {**server.audio_delta("resp_1", "asst_1", 10), "delta": base64.b64encode(b"\x00\x01\x02").decode()}
    with pytest.raises(ProtocolError, match="odd byte count"):
        proto.receive(bad, 10)
    assert proto.items["asst_1"].audio_received_ms == 0


def test_bad_base64_audio_raises_and_changes_nothing(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    bad = {**server.audio_delta("resp_1", "asst_1", 10), "delta": "not base64!!"}
    with pytest.raises(ProtocolError, match="base64"):
        proto.receive(bad, 10)
    assert proto.items["asst_1"].audio_received_ms == 0
    assert proto.turns[0].first_audio_ms is None


def test_errors_are_recorded(server: Server) -> None:
    proto = ClientProtocol(max_errors=2)
    for i in range(3):
        proto.receive(server.error(f"boom {i}"), i)
    assert [e["message"] for e in proto.errors] == ["boom 1", "boom 2"]
    assert proto.errors[-1]["t_ms"] == 2


# --- barge-in -----------------------------------------------------------------------------------


def test_barge_in_truncates_at_reported_position(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    for t in range(5):  # 1000 ms of audio arrives in 40 ms
        proto.receive(server.audio_delta("resp_1", "asst_1", 200), t * 10)
    proto.playback_progress("asst_1", 300, now_ms=1000)

    actions = proto.receive(server.speech_started("user_2"), 1100)

    assert actions[0] == FlushPlayback("asst_1")
    (truncate,) = sent(actions)  # interrupt_response=True: the server cancels by itself
    assert truncate["type"] == "conversation.item.truncate"
    assert (truncate["item_id"], truncate["content_index"], truncate["audio_end_ms"]) == (
        "asst_1", 0, 400)
    assert proto.items["asst_1"].truncated_at_ms == 400 and proto.items["asst_1"].flushed
    # What the server still had in flight is not played.
    assert proto.receive(server.audio_delta("resp_1", "asst_1", 200), 1110) == []
    done = proto.receive(server.response_done("resp_1", status="cancelled"), 1150)
    assert done[0].turn.interrupted and done[0].turn.truncated_at_ms == 400
    proto.receive(server.ev("conversation.item.truncated", item_id="asst_1", content_index=0,
                            audio_end_ms=380), 1160)  # the server's position wins
    assert proto.items["asst_1"].truncated_at_ms == 380
    assert proto.turns[0].truncated_at_ms == 380
    assert proto.pending_turn is not None and proto.pending_turn.user_item_id == "user_2"


def test_clear_output_audio_flushes_and_truncates_without_cancelling(server: Server) -> None:
    proto = ClientProtocol()
    assert proto.clear_output_audio(0) == []  # nothing plays: nothing to do
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 1000), 0)
    proto.playback_progress("asst_1", 300, now_ms=300)

    actions = proto.clear_output_audio(400)

    assert actions[0] == FlushPlayback("asst_1")
    (truncate,) = sent(actions)  # no response.cancel, no WebRTC-only output_audio_buffer.clear
    assert (truncate["type"], truncate["item_id"], truncate["audio_end_ms"]) == ("conversation.item.truncate", "asst_1", 400)
    valid_client_event(truncate)
    assert proto.active_response_id == "resp_1"
    assert proto.receive(server.audio_delta("resp_1", "asst_1", 200), 410) == []  # not played
    assert proto.clear_output_audio(420) == []  # once


def test_clear_output_audio_holds_the_truncation_for_a_live_player(server: Server) -> None:
    proto = ClientProtocol(live_player=True)
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 1000), 0)
    proto.playback_progress("asst_1", 300, now_ms=300)
    assert proto.clear_output_audio(300) == [FlushPlayback("asst_1")]
    assert proto.truncations_due == ["asst_1"]
    (truncate,) = sent(proto.playback_flushed("asst_1", 320, now_ms=330))
    assert truncate["audio_end_ms"] == 320


def test_barge_in_never_truncates_past_received(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 500), 0)
    proto.playback_progress("asst_1", 450, now_ms=450)
    (truncate,) = sent(proto.receive(server.speech_started("user_2"), 5000))
    assert truncate["audio_end_ms"] == 500
    # A player reporting more than was received is clamped as well.
    proto2 = ClientProtocol()
    start_reply(proto2, server, "resp_9", "asst_9", 0)
    proto2.receive(server.audio_delta("resp_9", "asst_9", 100), 0)
    proto2.playback_progress("asst_9", 10_000, now_ms=10)
    assert proto2.items["asst_9"].played_ms == 100


def test_barge_in_uses_the_audio_content_index(server: Server) -> None:
    proto = ClientProtocol()
    feed(proto, [(0, server.response_created("r")), (0, server.assistant_item_added("r", "a")),
                 (0, server.content_part_added("r", "a", content_index=1)),
                 (0, server.audio_delta("r", "a", 300, content_index=1))])
    proto.playback_progress("a", 100, now_ms=100)
    (truncate,) = sent(proto.receive(server.speech_started("u"), 100))
    assert truncate["content_index"] == 1 and truncate["audio_end_ms"] == 100


def test_virtual_player_estimates_playback_in_real_time(server: Server) -> None:
    proto = ClientProtocol()  # virtual_player=True by default: no reports needed
    start_reply(proto, server, "resp_1", "asst_1", 0)
    for t in (100, 110, 120):  # 3 s of audio arrives within 20 ms
        proto.receive(server.audio_delta("resp_1", "asst_1", 1000), t)
    assert proto.played_ms("asst_1", 100) == 0
    assert proto.played_ms("asst_1", 1600) == 1500
    (truncate,) = sent(proto.receive(server.speech_started("user_2"), 1600))
    assert truncate["audio_end_ms"] == 1500


def test_virtual_player_waits_through_gaps(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 100), 0)      # plays 0..100
    proto.receive(server.audio_delta("resp_1", "asst_1", 100), 500)    # underrun: plays 500..600
    assert proto.played_ms("asst_1", 300) == 100
    assert proto.played_ms("asst_1", 550) == 150
    assert proto.played_ms("asst_1", 10_000) == 200


def test_reports_override_the_virtual_player(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 2000), 0)
    proto.playback_progress("asst_1", 100, now_ms=900)  # the browser started late
    assert proto.played_ms("asst_1", 1000) == 200


def test_without_virtual_player_unreported_audio_counts_as_unplayed(server: Server) -> None:
    proto = ClientProtocol(virtual_player=False)
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 2000), 0)
    actions = proto.receive(server.speech_started("user_2"), 1000)
    assert actions[0] == FlushPlayback("asst_1")
    assert sent(actions)[0]["audio_end_ms"] == 0


def test_barge_in_flushes_every_queued_item_in_play_order(server: Server) -> None:
    proto = ClientProtocol()
    # Reply 1 (2 s of audio) is done streaming; a tool follow-up reply 2 queues behind it.
    streamed_reply(proto, server, 1, 2000, 0)
    streamed_reply(proto, server, 2, 1000, 100)
    actions = proto.receive(server.speech_started("user_2"), 1500)
    assert [a for a in actions if isinstance(a, FlushPlayback)] == [
        FlushPlayback("asst_1"), FlushPlayback("asst_2")]
    assert [(e["item_id"], e["audio_end_ms"]) for e in sent(actions)] == [
        ("asst_1", 1500), ("asst_2", 0)]
    assert [t.interrupted for t in proto.turns] == [True, True]


def test_reported_items_that_finished_are_not_truncated(server: Server) -> None:
    proto = ClientProtocol(virtual_player=False)
    streamed_reply(proto, server, 1, 500, 0)
    proto.playback_progress("asst_1", 500, now_ms=600)
    assert proto.receive(server.speech_started("user_2"), 700) == []
    # An older unreported item is taken as played once newer audio arrived after it.
    streamed_reply(proto, server, 2, 500, 800)
    streamed_reply(proto, server, 3, 500, 900)
    actions = proto.receive(server.speech_started("user_3"), 950)
    assert [a.item_id for a in actions if isinstance(a, FlushPlayback)] == ["asst_3"]


def queued_replies(server: Server) -> ClientProtocol:
    """Reply 1 (800 ms of audio, done) with reply 2 (1 s, still streaming) queued behind it."""
    proto = ClientProtocol()
    streamed_reply(proto, server, 1, 800, 0)
    streamed_reply(proto, server, 2, 1000, 100, done=False)
    return proto


def test_progress_on_a_later_reply_means_the_earlier_one_finished(server: Server) -> None:
    # The earlier reply's own progress was never reported; the virtual player alone would think
    # it still plays (at 505 of 800 ms) and truncate it too.
    proto = queued_replies(server)
    proto.playback_progress("asst_2", 200, now_ms=400)

    actions = proto.receive(server.speech_started("user_3"), 505)

    assert [a.item_id for a in actions if isinstance(a, FlushPlayback)] == ["asst_2"]
    assert [(e["item_id"], e["audio_end_ms"]) for e in sent(actions)] == [("asst_2", 305)]
    assert proto.items["asst_1"].played_ms == 800 and proto.items["asst_1"].truncated_at_ms is None
    assert proto.played_ms("asst_1", 505) == 800
    assert [t.interrupted for t in proto.turns] == [False, True]


def test_progress_on_an_earlier_reply_says_nothing_about_a_later_one(server: Server) -> None:
    proto = queued_replies(server)
    proto.playback_progress("asst_1", 300, now_ms=300)
    actions = proto.receive(server.speech_started("user_3"), 400)
    assert [(e["item_id"], e["audio_end_ms"]) for e in sent(actions)] == [
        ("asst_1", 400), ("asst_2", 0)]


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(20, 3000), min_size=2, max_size=4),
       reported=st.data(), barge_at=st.integers(0, 8000))
def test_items_before_a_reported_one_are_never_truncated(lengths: list[int], reported: Any,
                                                         barge_at: int) -> None:
    srv, proto = Server(), ClientProtocol()
    for i, length in enumerate(lengths):
        start_reply(proto, srv, f"resp_{i}", f"asst_{i}", i * 10)
        proto.receive(srv.audio_delta(f"resp_{i}", f"asst_{i}", length), i * 10)
        proto.receive(srv.response_done(f"resp_{i}"), i * 10 + 5)
    k = reported.draw(st.integers(1, len(lengths) - 1))
    proto.playback_progress(f"asst_{k}", reported.draw(st.integers(1, lengths[k])), now_ms=100)
    actions = proto.receive(srv.speech_started("user_x"), 100 + barge_at)
    flushed = [int(a.item_id.split("_")[1]) for a in actions if isinstance(a, FlushPlayback)]
    assert all(index >= k for index in flushed)
    for event in sent(actions):
        assert event["audio_end_ms"] <= lengths[int(event["item_id"].split("_")[1])]


def live_barge_in(server: Server, **options: Any) -> tuple[ClientProtocol, list[Any]]:
    """A live-player protocol interrupted at 600 ms into 1 s of reply audio (report: 500 at 500)."""
    proto = ClientProtocol(live_player=True, **options)
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 1000), 0)
    proto.playback_progress("asst_1", 500, now_ms=500)
    return proto, proto.receive(server.speech_started("user_2"), 600)


def test_live_player_holds_the_truncation_for_the_final_position(server: Server) -> None:
    proto, actions = live_barge_in(server)
    assert actions == [FlushPlayback("asst_1")]  # the server cancels by itself
    assert proto.truncations_due == ["asst_1"]
    # The player kept playing until the flush reached it: 680 ms, not the 600 estimated.
    assert proto.playback_flushed("asst_2_unknown", 1, 700) == []
    (truncate,) = sent(proto.playback_flushed("asst_1", 680.7, now_ms=700))
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("asst_1", 680)
    assert proto.items["asst_1"].truncated_at_ms == 680 and proto.turns[0].truncated_at_ms == 680
    assert proto.truncations_due == []
    assert proto.playback_flushed("asst_1", 690, now_ms=710) == []  # sent once
    assert proto.truncate_now() == []


def test_live_player_final_position_is_clamped_to_received(server: Server) -> None:
    proto, _ = live_barge_in(server)
    (truncate,) = sent(proto.playback_flushed("asst_1", 5000, now_ms=700))
    assert truncate["audio_end_ms"] == 1000


def test_live_player_that_never_answers_gets_the_estimate(server: Server) -> None:
    proto, _ = live_barge_in(server)
    (truncate,) = sent(proto.truncate_now("asst_1"))
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("asst_1", 600)
    assert proto.truncate_now() == [] and proto.playback_flushed("asst_1", 650, 900) == []


def test_live_player_never_holds_the_cancel(server: Server) -> None:
    config = SessionConfig(turn_detection=TurnDetection(interrupt_response=False))
    proto, actions = live_barge_in(server, config=config)
    assert actions[0] == FlushPlayback("asst_1")
    assert [e["type"] for e in sent(actions)] == ["response.cancel"]


def test_interrupt_flushes_truncates_and_cancels(server: Server) -> None:
    proto = ClientProtocol()  # interrupt_response=True: still cancelled, no speech told the server
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 1000), 0)
    actions = proto.interrupt(now_ms=250)
    assert actions[0] == FlushPlayback("asst_1")
    assert [(e["type"], e.get("audio_end_ms")) for e in sent(actions)] == [
        ("conversation.item.truncate", 250), ("response.cancel", None)]
    assert proto.turns[0].interrupted
    assert proto.receive(server.audio_delta("resp_1", "asst_1", 200), 260) == []  # not played
    proto.receive(server.response_done("resp_1", status="cancelled"), 270)
    assert proto.interrupt(now_ms=300) == []  # nothing playing, nothing active


def test_interrupt_while_thinking_only_cancels(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    assert [e["type"] for e in sent(proto.interrupt(now_ms=50))] == ["response.cancel"]


def test_interrupt_on_the_playing_tail_does_not_cancel(server: Server) -> None:
    proto = ClientProtocol()
    streamed_reply(proto, server, 1, 1000, 0)
    actions = proto.interrupt(now_ms=400)
    assert [(e["type"], e.get("audio_end_ms")) for e in sent(actions)] == [
        ("conversation.item.truncate", 400)]


def test_turn_latencies_use_the_turns_table_names(server: Server) -> None:
    from rtvoice_widget.turn_table import EVENT_LATENCY_COLUMNS, LATENCY_COLUMNS

    # Only the end-of-voice gaps are missing here: they need the recorded audio (and the
    # player's report), see tests/test_turns.py.
    assert set(LATENCY_COLUMNS) - set(EVENT_LATENCY_COLUMNS) == {"voice_to_first_audio_ms", "voice_to_first_sound_ms"}
    proto = ClientProtocol()
    voice_turn(server, proto)
    turn, row = proto.turns[0], proto.turns[0].to_dict()
    for name in EVENT_LATENCY_COLUMNS:
        assert getattr(turn, name) is not None and row[name] == getattr(turn, name)
    metrics = proto.metrics()
    for name in EVENT_LATENCY_COLUMNS:
        assert metrics[f"median_{name}"] == getattr(turn, name)


def test_barge_in_skips_items_without_audio(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)  # thinking: no audio yet
    actions = proto.receive(server.speech_started("user_2"), 100)
    assert actions == []  # interrupt_response=True: nothing to truncate, the server cancels
    assert proto.turns[0].interrupted


def test_client_cancels_when_server_does_not(server: Server) -> None:
    config = SessionConfig(turn_detection=TurnDetection(interrupt_response=False))
    proto = ClientProtocol(config)
    start_reply(proto, server, "resp_1", "asst_1", 0)
    # No audio yet: just cancel.
    assert [e["type"] for e in sent(proto.receive(server.speech_started("u2"), 10))] == [
        "response.cancel"]
    proto.receive(server.response_done("resp_1", "cancelled"), 20)
    # With audio: flush, truncate, cancel, in that order.
    start_reply(proto, server, "resp_2", "asst_2", 100)
    proto.receive(server.audio_delta("resp_2", "asst_2", 1000), 100)
    actions = proto.receive(server.speech_started("u3"), 400)
    assert actions[0] == FlushPlayback("asst_2")
    assert [(e["type"], e.get("audio_end_ms")) for e in sent(actions)] == [
        ("conversation.item.truncate", 300), ("response.cancel", None)]


def test_no_barge_in_when_playback_is_over(server: Server) -> None:
    proto = ClientProtocol()
    streamed_reply(proto, server, 1, 500, 0)
    assert proto.is_playing(400)
    assert not proto.is_playing(600)
    assert proto.receive(server.speech_started("user_2"), 600) == []
    assert not proto.turns[0].interrupted


def test_barge_in_on_the_playing_tail_after_response_done(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 3000), 0)
    (done,) = proto.receive(server.response_done("resp_1"), 50)
    actions = proto.receive(server.speech_started("user_2"), 1200)
    assert sent(actions)[0]["audio_end_ms"] == 1200
    assert done.turn.interrupted and done.turn.truncated_at_ms == 1200
    assert proto.metrics()["interrupted_turns"] == 1


def test_barge_in_can_be_turned_off(server: Server) -> None:
    proto = ClientProtocol(barge_in=False)
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 3000), 0)
    assert proto.receive(server.speech_started("user_2"), 100) == []
    assert proto.receive(server.audio_delta("resp_1", "asst_1", 100), 110) != []


def test_repeated_barge_in_in_one_session(server: Server) -> None:
    proto = ClientProtocol()
    t = 0.0
    for round_ in range(5):
        r, a, u = f"resp_{round_}", f"asst_{round_}", f"user_{round_}"
        feed(proto, [(t, server.speech_started(u)), (t + 500, server.speech_stopped(u)),
                     (t + 510, server.committed(u)), (t + 520, server.user_item_added(u))])
        start_reply(proto, server, r, a, t + 600)
        plays = feed(proto, [(t + 700, server.audio_delta(r, a, 1000)),
                             (t + 710, server.audio_delta(r, a, 1000))])
        assert [p.item_id for p in plays] == [a, a], f"round {round_}: new reply must play"
        proto.playback_progress(a, 100 + round_ * 10, now_ms=t + 800)
        actions = proto.receive(server.speech_started(f"next_{round_}"), t + 900)
        assert actions[0] == FlushPlayback(a)
        assert [(e["item_id"], e["audio_end_ms"]) for e in sent(actions)] == [
            (a, 200 + round_ * 10)]
        assert proto.receive(server.audio_delta(r, a, 100), t + 910) == []
        proto.receive(server.response_done(r, "cancelled"), t + 950)
        proto.receive(server.ev("input_audio_buffer.cleared"), t + 960)
        t += 2000
    assert [turn.interrupted for turn in proto.turns] == [True] * 5
    assert [turn.truncated_at_ms for turn in proto.turns] == [200, 210, 220, 230, 240]


def test_truncate_error_is_recoverable(server: Server) -> None:
    proto = ClientProtocol()
    start_reply(proto, server, "resp_1", "asst_1", 0)
    proto.receive(server.audio_delta("resp_1", "asst_1", 500), 0)
    (truncate,) = sent(proto.receive(server.speech_started("user_2"), 100))
    actions = proto.receive(server.error("audio_end_ms is out of range",
                                         event_id=truncate["event_id"]), 120)
    assert actions == []
    assert proto.errors[-1]["cause"] == "conversation.item.truncate"
    assert proto.errors[-1]["recovered"] is True
    assert proto.items["asst_1"].error == "audio_end_ms is out of range"
    # The conversation goes on.
    proto.receive(server.response_done("resp_1", "cancelled"), 130)
    start_reply(proto, server, "resp_2", "asst_2", 200)
    assert len(proto.receive(server.audio_delta("resp_2", "asst_2", 100), 210)) == 1


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.tuples(st.integers(1, 400), st.floats(0, 300)), min_size=1, max_size=20),
    reports=st.lists(st.tuples(st.floats(-100, 20_000), st.floats(0, 5_000)), max_size=5),
    speech_at=st.floats(0, 20_000),
    virtual=st.booleans(),
    response_done=st.booleans(),
)
def test_truncation_never_exceeds_received(
    chunks: list[tuple[int, float]], reports: list[tuple[float, float]], speech_at: float,
    virtual: bool, response_done: bool,
) -> None:
    srv = Server()
    proto = ClientProtocol(virtual_player=virtual)
    start_reply(proto, srv, "resp_1", "asst_1", 0)
    t = 0.0
    timeline: list[tuple[float, str, Any]] = []
    for ms, gap in chunks:
        t += gap
        timeline.append((t, "audio", ms))
    timeline += [(at, "report", played) for played, at in reports]
    for at, kind, value in sorted(timeline, key=lambda x: x[0]):
        if kind == "audio":
            proto.receive(srv.audio_delta("resp_1", "asst_1", value), at)
        else:
            proto.playback_progress("asst_1", max(value, 0.0), at)
    if response_done:
        proto.receive(srv.response_done("resp_1"), t)
    received = sum(ms for ms, _ in chunks)
    actions = proto.receive(srv.speech_started("user_2"), max(speech_at, t))
    for event in sent(actions):
        if event["type"] == "conversation.item.truncate":
            assert 0 <= event["audio_end_ms"] <= received
    assert proto.items["asst_1"].played_ms <= received
    assert not math.isnan(proto.items["asst_1"].played_ms)


# --- function calls -----------------------------------------------------------------------------


def function_call(srv: Server, proto: ClientProtocol, response_done: bool = True) -> list[Any]:
    events = [
        srv.response_created("resp_1"),
        srv.function_call_added("resp_1", "fc_1", "call_1", "get_weather"),
        srv.arguments_delta("resp_1", "fc_1", "call_1", '{"city": '),
        srv.arguments_delta("resp_1", "fc_1", "call_1", '"Paris"}'),
        srv.arguments_done("resp_1", "fc_1", "call_1", "get_weather", '{"city": "Paris"}'),
        srv.function_call_item_done("resp_1", "fc_1", "call_1", "get_weather",
                                    '{"city": "Paris"}'),
    ]
    if response_done:
        events.append(srv.response_done("resp_1"))
    return feed(proto, [(i * 10, e) for i, e in enumerate(events)])


def test_function_call_runs_once(server: Server) -> None:
    proto = ClientProtocol()
    actions = function_call(server, proto)
    runs = [a for a in actions if isinstance(a, RunTool)]
    assert runs == [RunTool("call_1", "get_weather", '{"city": "Paris"}')]
    assert [c.call_id for c in proto.calls_in_flight] == ["call_1"]
    assert proto.turns[0].tool_calls == ["get_weather"]
    assert proto.items["fc_1"].arguments == '{"city": "Paris"}'
    # The session's own follow-up path: output then response.create.
    valid_client_event(proto.function_call_output("call_1", "sunny"))
    assert proto.calls_in_flight == []


def test_tool_output_after_response_done_asks_for_a_response(server: Server) -> None:
    proto = ClientProtocol()
    function_call(server, proto)
    events = [valid_client_event(e) for e in proto.tool_output("call_1", "sunny, 21 C")]
    assert [e["type"] for e in events] == ["conversation.item.create", "response.create"]
    assert events[0]["item"] == {"type": "function_call_output", "call_id": "call_1",
                                 "output": "sunny, 21 C"}


def test_tool_output_before_response_done_defers_the_response(server: Server) -> None:
    proto = ClientProtocol()
    function_call(server, proto, response_done=False)
    events = proto.tool_output("call_1", "sunny")
    assert [e["type"] for e in events] == ["conversation.item.create"]
    actions = proto.receive(server.response_done("resp_1"), 100)
    assert isinstance(actions[0], TurnDone)
    assert [e["type"] for e in sent(actions)] == ["response.create"]


def test_plain_function_call_output_does_not_trigger_a_second_response(server: Server) -> None:
    proto = ClientProtocol()
    function_call(server, proto, response_done=False)
    proto.function_call_output("call_1", "sunny")  # the caller will create the response itself
    assert sent(proto.receive(server.response_done("resp_1"), 100)) == []


def test_parallel_calls_get_one_follow_up_after_the_last_output(server: Server) -> None:
    proto = ClientProtocol()
    feed(proto, [(0, server.response_created("r")),
                 (1, server.function_call_added("r", "fc_a", "a", "ping")),
                 (2, server.arguments_done("r", "fc_a", "a", "ping", "{}")),
                 (3, server.function_call_added("r", "fc_b", "b", "pong")),
                 (4, server.arguments_done("r", "fc_b", "b", "pong", "{}")),
                 (5, server.response_done("r"))])
    assert [e["type"] for e in proto.tool_output("a", "1")] == ["conversation.item.create"]
    assert [e["type"] for e in proto.tool_output("b", "2")] == [
        "conversation.item.create", "response.create"]


def test_follow_up_waits_for_another_active_response(server: Server) -> None:
    proto = ClientProtocol()
    function_call(server, proto)
    start_reply(proto, server, "resp_2", "asst_2", 500)  # the user spoke meanwhile
    proto.function_call_output("call_0", "x")  # unknown call id: just the output
    assert [e["type"] for e in proto.tool_output("call_1", "sunny")] == [
        "conversation.item.create"]
    actions = proto.receive(server.response_done("resp_2"), 600)
    assert [e["type"] for e in sent(actions)] == ["response.create"]


def test_a_new_response_covers_pending_outputs(server: Server) -> None:
    proto = ClientProtocol()
    function_call(server, proto, response_done=False)
    proto.tool_output("call_1", "sunny")
    proto.receive(server.response_done("resp_1"), 100)  # emits the follow-up ...
    start_reply(proto, server, "resp_2", "asst_2", 200)
    assert sent(proto.receive(server.response_done("resp_2"), 300)) == []  # ... only once


def test_cancelled_calling_response_gets_no_follow_up(server: Server) -> None:
    proto = ClientProtocol()
    function_call(server, proto, response_done=False)
    proto.receive(server.response_done("resp_1", "cancelled"), 100)
    assert [e["type"] for e in proto.tool_output("call_1", "sunny")] == [
        "conversation.item.create"]
    start_reply(proto, server, "resp_2", "asst_2", 200)
    assert sent(proto.receive(server.response_done("resp_2"), 300)) == []


def test_call_without_arguments_done_runs_from_item_done(server: Server) -> None:
    proto = ClientProtocol()
    feed(proto, [(0, server.response_created("r")),
                 (1, server.function_call_added("r", "fc", "c", "ping"))])
    actions = proto.receive(server.function_call_item_done("r", "fc", "c", "ping", "{}"), 2)
    assert actions == [RunTool("c", "ping", "{}")]


def test_metrics_summarise_turns(server: Server) -> None:
    proto = ClientProtocol()
    voice_turn(server, proto)
    proto.append_audio(pcm(100))
    metrics = proto.metrics()
    assert metrics["turns"] == 1 and metrics["interrupted_turns"] == 0
    assert metrics["median_speech_to_first_audio_ms"] == 300
    assert metrics["audio_received_ms"] == pytest.approx(500)
    assert metrics["audio_sent_ms"] == pytest.approx(100)
    assert metrics["total_tokens"] == 30


def test_pcm16_ms() -> None:
    assert pcm16_ms(48_000) == 1000
    assert len(pcm(20)) == 960


# --- robustness ---------------------------------------------------------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "type", "role", "content", "status", "call_id", "name",
                         "arguments", "transcript", "text", "output", "usage"]), inner,
        max_size=4),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(ClientProtocol._HANDLERS) + sorted(BETA_ALIASES)),
    fields=st.dictionaries(
        st.sampled_from(["item_id", "response_id", "item", "response", "delta", "transcript",
                         "text", "call_id", "name", "arguments", "content_index", "part",
                         "error", "session", "audio_end_ms", "previous_item_id",
                         "rate_limits"]),
        _values, max_size=5),
)
def test_malformed_fields_never_crash_the_protocol(kind: str, fields: dict[str, Any]) -> None:
    srv = Server()
    proto = ClientProtocol()
    voice_turn(srv, proto)
    start_reply(proto, srv, "resp_2", "asst_2", 2000)
    proto.receive(srv.audio_delta("resp_2", "asst_2", 500), 2000)
    try:
        actions = proto.receive({"type": kind, **fields}, 2100)
    except ProtocolError:
        actions = []
    for action in actions:
        if isinstance(action, Send):
            valid_client_event(action.event)
    # Still usable afterwards.
    proto.receive(srv.speech_started("user_9"), 2200)
    start_reply(proto, srv, "resp_3", "asst_3", 2300)
    assert len(proto.receive(srv.audio_delta("resp_3", "asst_3", 20), 2310)) == 1


_ops = st.lists(st.one_of(
    st.tuples(st.just("audio"), st.integers(1, 500)),
    st.tuples(st.just("report"), st.floats(0, 3000)),
    st.tuples(st.just("speech"), st.just(0)),
    st.tuples(st.just("done"), st.sampled_from([0, 1])),
    st.tuples(st.just("new_response"), st.just(0)),
    st.tuples(st.just("wait"), st.floats(0, 2000)),
), max_size=40)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, virtual=st.booleans(), interrupt=st.booleans())
def test_barge_in_invariants_over_random_sessions(
    ops: list[tuple[str, Any]], virtual: bool, interrupt: bool,
) -> None:
    srv = Server()
    config = SessionConfig(turn_detection=TurnDetection(interrupt_response=interrupt))
    proto = ClientProtocol(config, virtual_player=virtual)
    now, n = 0.0, 0
    start_reply(proto, srv, "r0", "a0", now)
    truncated: set[str] = set()
    for kind, value in ops:
        response, item = f"r{n}", f"a{n}"
        if kind == "audio":
            actions = proto.receive(srv.audio_delta(response, item, value), now)
            if proto.items[item].flushed:
                assert actions == [], "audio of a flushed item must not play"
        elif kind == "report":
            proto.playback_progress(item, value, now)
        elif kind == "wait":
            now += value
        elif kind == "done":
            proto.receive(srv.response_done(response, ["completed", "cancelled"][value]), now)
        elif kind == "new_response":
            n += 1
            start_reply(proto, srv, f"r{n}", f"a{n}", now)
        else:
            received = {i: it.audio_received_ms for i, it in proto.items.items()}
            actions = proto.receive(srv.speech_started(f"u{now}"), now)
            events = sent(actions)
            flushed = [a.item_id for a in actions if isinstance(a, FlushPlayback)]
            cuts = [e for e in events if e["type"] == "conversation.item.truncate"]
            assert [e["item_id"] for e in cuts] == flushed
            for event in cuts:
                assert received[event["item_id"]] > 0, "never truncate an item without audio"
                assert 0 <= event["audio_end_ms"] <= received[event["item_id"]]
                assert event["item_id"] not in truncated, "an item is cut once"
                truncated.add(event["item_id"])
            cancels = [e for e in events if e["type"] == "response.cancel"]
            assert len(cancels) <= (0 if interrupt else 1)
