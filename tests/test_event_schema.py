"""The GA event checks shared by client and server (rtvoice_widget.event_schema).

The client's hand tables and the SDK's models must describe one protocol: every field the
tables require is required by the SDK, every alias names a GA type, and every event the embedded
server sends passes both the SDK's check and the client's.
"""

from __future__ import annotations

import json

import pytest

from rtvoice_widget.errors import ProtocolError
from rtvoice_widget.event_schema import (BETA_ALIASES, FIELD_TYPES, REQUIRED_FIELDS, check_client_event,
                                         checked_fields, normalize_event, sdk_adapters, sdk_check)

pytest.importorskip("openai")


def _required_by_sdk(event_type: str) -> set[str]:
    model = sdk_adapters("server")[event_type]._type
    return {name for name, info in model.model_fields.items() if info.is_required()}


@pytest.mark.parametrize("event_type", sorted(REQUIRED_FIELDS))
def test_the_client_requires_no_field_the_sdk_does_not(event_type):
    assert event_type in sdk_adapters("server")
    assert set(REQUIRED_FIELDS[event_type]) <= _required_by_sdk(event_type)


def test_aliases_name_ga_server_types():
    server_types = sdk_adapters("server")
    assert all(ga in server_types for ga in BETA_ALIASES.values())


def test_field_types_match_a_valid_sdk_event():
    # A delta the SDK accepts passes the client's table, and one the table refuses the SDK refuses too.
    good = {"type": "response.output_audio.delta", "event_id": "e1", "response_id": "r", "item_id": "i",
            "output_index": 0, "content_index": 0, "delta": "AAAA"}
    sdk_check(good, "server")
    assert checked_fields(normalize_event(good)) == good
    bad = {**good, "item_id": 5}
    with pytest.raises(ProtocolError):
        checked_fields(bad)
    with pytest.raises(ProtocolError) as caught:
        sdk_check(bad, "server")
    assert caught.value.param == "item_id"
    assert FIELD_TYPES["item_id"] is str


def test_client_events_are_checked_strictly_with_the_api_param_path():
    check_client_event({"type": "input_audio_buffer.append", "audio": "AAAA"})
    with pytest.raises(ProtocolError) as caught:
        check_client_event({"type": "conversation.item.truncate", "item_id": "i", "content_index": "0",
                            "audio_end_ms": 5, "event_id": "c1"})
    assert (caught.value.param, caught.value.code, caught.value.event_id) == ("content_index", "invalid_type", "c1")
    with pytest.raises(ProtocolError) as caught:
        check_client_event({"type": "no.such.event"})
    assert caught.value.code == "invalid_event_type"


def test_every_event_of_a_server_turn_passes_both_checks():
    from rtvoice_widget.server.dialogue import ReplyJob, TurnEngine

    engine = TurnEngine(model="m", vad_frame_samples_24k=768)
    engine.receive(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
    engine.receive(json.dumps({"type": "response.create"}))
    (job,) = [j for j in engine.jobs_to_run() if isinstance(j, ReplyJob)]
    engine.reply_segment(job.response_id, "Hello there.", bytes(9600))
    engine.reply_tool_call(job.response_id, "get_time", "{}")
    engine.reply_finished(job.response_id)
    engine.receive("not json")
    events = engine.events_to_send()
    assert {e["type"] for e in events} >= {"session.created", "response.output_audio.delta", "response.done", "error"}
    for event in events:
        sdk_check(event, "server")
        checked_fields(normalize_event(event))


def test_the_server_handles_every_ga_client_event_type():
    from rtvoice_widget.server.dialogue import TurnEngine

    engine = TurnEngine(model="m", vad_frame_samples_24k=768)
    assert set(engine._handlers) == set(sdk_adapters("client"))
