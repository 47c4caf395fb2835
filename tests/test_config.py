"""SessionConfig / TurnDetection: validation, normalisation, and the GA ``session`` object.

Each ``session`` produced is wrapped in a ``session.update`` and validated by the SDK's
``RealtimeClientEvent`` with unknown keys rejected.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.realtime import RealtimeClientEvent
from pydantic import BaseModel, TypeAdapter

from rtvoice_widget.config import (
    DEFAULT_INSTRUCTIONS,
    InputTranscription,
    SessionConfig,
    TurnDetection,
)

CLIENT = TypeAdapter(RealtimeClientEvent)


def _extras(model: Any) -> list[str]:
    if isinstance(model, BaseModel):
        found = list(model.model_extra or {})
        for name in type(model).model_fields:
            found += _extras(getattr(model, name))
        return found
    if isinstance(model, (list, tuple)):
        return [k for v in model for k in _extras(v)]
    if isinstance(model, dict):
        return [k for v in model.values() for k in _extras(v)]
    return []


def validate_session(session: dict[str, Any]) -> None:
    model = CLIENT.validate_python({"type": "session.update", "session": session})
    assert _extras(model) == []


def test_defaults_make_a_valid_voice_session() -> None:
    session = SessionConfig().to_session()
    validate_session(session)
    assert session["type"] == "realtime"
    assert session["output_modalities"] == ["audio"]
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["instructions"] == DEFAULT_INSTRUCTIONS
    assert "model" not in session
    assert "max_output_tokens" not in session


def test_include_model() -> None:
    session = SessionConfig(model="gpt-realtime-mini").to_session(include_model=True)
    validate_session(session)
    assert session["model"] == "gpt-realtime-mini"


def test_default_instructions_are_for_speech() -> None:
    text = DEFAULT_INSTRUCTIONS.lower()
    assert "markdown" in text and "short" in text and "spoken" in text
    assert len(DEFAULT_INSTRUCTIONS) < 1500  # it is sent with every session: keep it concise
    assert "*" not in DEFAULT_INSTRUCTIONS.replace("- ", "")


@pytest.mark.parametrize("value, expected", [
    (None, None),
    ("semantic_vad", {"type": "semantic_vad", "eagerness": "auto", "create_response": True,
                      "interrupt_response": True}),
    ({"type": "semantic_vad", "eagerness": "low", "interrupt_response": False},
     {"type": "semantic_vad", "eagerness": "low", "create_response": True,
      "interrupt_response": False}),
    (TurnDetection(silence_duration_ms=900, idle_timeout_ms=10_000),
     {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
      "silence_duration_ms": 900, "create_response": True, "interrupt_response": True,
      "idle_timeout_ms": 10_000}),
])
def test_turn_detection_forms(value: Any, expected: dict[str, Any] | None) -> None:
    config = SessionConfig(turn_detection=value)
    assert isinstance(config.turn_detection, TurnDetection)
    assert config.turn_detection.enabled == (expected is not None)
    session = config.to_session()
    validate_session(session)
    assert session["audio"]["input"]["turn_detection"] == expected


@pytest.mark.parametrize("value, expected", [
    (None, None),
    ("whisper-1", {"model": "whisper-1"}),
    ({"model": "gpt-4o-transcribe", "language": "de", "prompt": "Namen: Jürgen"},
     {"model": "gpt-4o-transcribe", "language": "de", "prompt": "Namen: Jürgen"}),
    (InputTranscription(language="en"), {"model": "gpt-4o-mini-transcribe", "language": "en"}),
])
def test_input_transcription_forms(value: Any, expected: dict[str, Any] | None) -> None:
    session = SessionConfig(input_transcription=value).to_session()
    validate_session(session)
    assert session["audio"]["input"]["transcription"] == expected


@pytest.mark.parametrize("value", [None, "near_field", "far_field"])
def test_noise_reduction(value: str | None) -> None:
    session = SessionConfig(noise_reduction=value).to_session()
    validate_session(session)
    expected = None if value is None else {"type": value}
    assert session["audio"]["input"]["noise_reduction"] == expected


def test_tools_and_tool_choice() -> None:
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    lookup = {"type": "function", "name": "lookup", "description": "Look up.",
              "parameters": {"type": "object", "properties": {}}}
    config = SessionConfig(tools=[add, lookup], tool_choice="add")
    assert config.tool_choice == {"type": "function", "name": "add"}
    session = config.to_session()
    validate_session(session)
    assert [t["name"] for t in session["tools"]] == ["add", "lookup"]
    assert session["tools"][0]["parameters"]["required"] == ["a"]
    assert session["tool_choice"] == {"type": "function", "name": "add"}
    for choice in ("auto", "none", "required"):
        validate_session(config.replace(tool_choice=choice).to_session())


@pytest.mark.parametrize("changes, field", [
    ({"model": ""}, "model"),
    ({"voice": 3}, "voice"),
    ({"instructions": None}, "instructions"),
    ({"speed": 2.0}, "speed"),
    ({"speed": float("nan")}, "speed"),
    ({"speed": True}, "speed"),
    ({"output_modalities": ["audio", "text"]}, "output_modalities"),
    ({"output_modalities": ["video"]}, "output_modalities"),
    ({"output_modalities": []}, "output_modalities"),
    ({"turn_detection": "push_to_talk"}, "turn_detection"),
    ({"turn_detection": {"type": "server_vad", "threshold": 1.5}}, "turn_detection.threshold"),
    ({"turn_detection": {"silence_duration_ms": -1}}, "turn_detection.silence_duration_ms"),
    ({"turn_detection": {"prefix_padding_ms": 10.5}}, "turn_detection.prefix_padding_ms"),
    ({"turn_detection": {"eagerness": "eager"}}, "turn_detection.eagerness"),
    ({"turn_detection": {"idle_timeout_ms": 0}}, "turn_detection.idle_timeout_ms"),
    ({"turn_detection": {"create_response": "yes"}}, "turn_detection.create_response"),
    ({"turn_detection": {"silence_ms": 100}}, "turn_detection"),
    ({"turn_detection": 42}, "turn_detection"),
    ({"input_transcription": {"model": ""}}, "input_transcription.model"),
    ({"input_transcription": {"language": "english"}}, "input_transcription.language"),
    ({"input_transcription": {"prompt": 5}}, "input_transcription.prompt"),
    ({"input_transcription": {"lang": "en"}}, "input_transcription"),
    ({"input_transcription": 1}, "input_transcription"),
    ({"noise_reduction": "studio"}, "noise_reduction"),
    ({"tools": "get_weather"}, "tools"),
    ({"tools": [42]}, "tools[0]"),
    ({"tools": [{"type": "function"}]}, "tools[0]"),
    ({"tools": [{"type": "function", "name": "a"}, {"type": "function", "name": "a"}]}, "tools"),
    ({"tool_choice": "get_weather"}, "tool_choice"),
    ({"tool_choice": {"type": "function"}}, "tool_choice"),
    ({"tool_choice": 3}, "tool_choice"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"max_output_tokens": 5000}, "max_output_tokens"),
    ({"max_output_tokens": "infinite"}, "max_output_tokens"),
    ({"max_output_tokens": 10.0}, "max_output_tokens"),
])
def test_invalid_values_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as info:
        SessionConfig(**changes)
    assert str(info.value).startswith(f"{field}:"), str(info.value)
    # replace() validates the same way, and leaves the original untouched.
    base = SessionConfig()
    with pytest.raises(ValueError):
        base.replace(**changes)
    validate_session(base.to_session())


def test_replace_returns_a_validated_copy() -> None:
    base = SessionConfig()
    changed = base.replace(voice="cedar", speed=1.2, turn_detection=None)
    assert (changed.voice, changed.speed, changed.turn_detection.type) == ("cedar", 1.2, None)
    assert (base.voice, base.speed, base.turn_detection.type) == ("marin", 1.0, "server_vad")
    with pytest.raises(ValueError, match="unknown key.*'voices'"):
        base.replace(voices="ash")
    assert TurnDetection().replace(threshold=0.9).threshold == 0.9
    with pytest.raises(ValueError, match="turn_detection.threshold"):
        TurnDetection().replace(threshold=9)


def test_output_modalities_accepts_a_string() -> None:
    assert SessionConfig(output_modalities="text").output_modalities == ("text",)


turn_detections = st.one_of(
    st.none(),
    st.builds(TurnDetection, type=st.just("server_vad"), threshold=st.floats(0, 1),
              prefix_padding_ms=st.integers(0, 5_000), silence_duration_ms=st.integers(0, 5_000),
              create_response=st.booleans(), interrupt_response=st.booleans(),
              idle_timeout_ms=st.none() | st.integers(5_000, 1_800_000)),
    st.builds(TurnDetection, type=st.just("semantic_vad"),
              eagerness=st.sampled_from(["low", "medium", "high", "auto"]),
              create_response=st.booleans(), interrupt_response=st.booleans()),
)
configs = st.builds(
    SessionConfig,
    instructions=st.text(max_size=50),
    voice=st.sampled_from(["alloy", "ash", "marin", "cedar", "en-us"]),
    speed=st.floats(0.25, 1.5),
    output_modalities=st.sampled_from([["audio"], ["text"]]),
    turn_detection=turn_detections,
    input_transcription=st.none() | st.builds(
        InputTranscription, model=st.sampled_from(["whisper-1", "gpt-4o-transcribe"]),
        language=st.none() | st.sampled_from(["en", "fr", "de"]),
        prompt=st.none() | st.text(max_size=20)),
    noise_reduction=st.sampled_from([None, "near_field", "far_field"]),
    tool_choice=st.sampled_from(["auto", "none", "required"]),
    max_output_tokens=st.none() | st.just("inf") | st.integers(1, 4096),
)


@settings(max_examples=150, deadline=None)
@given(configs)
def test_any_valid_config_makes_a_valid_session(config: SessionConfig) -> None:
    validate_session(config.to_session())
    validate_session(config.to_session(include_model=True))
