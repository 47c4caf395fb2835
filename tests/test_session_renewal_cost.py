"""Session renewal (a reconnect into a server session that forgot the conversation) and the cost
meter (tokens and USD from ``response.done`` usage, the ``max_cost_usd`` cap).

Against real scripted WebSocket servers (tests/scripted_server.py); every client event the server
received is validated with the SDK's ``RealtimeClientEvent`` at teardown.
"""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter
from openai.types.realtime import RealtimeClientEvent

from rtvoice_widget.protocol import (
    TOKEN_KINDS,
    ClientProtocol,
    CostCapReached,
    CostLimitError,
    Send,
    check_prices,
    usage_tokens,
)
from rtvoice_widget.session import RealtimeSession
from scripted_server import (
    Abort,
    ScriptedServer,
    assistant_response_start,
    pcm16_tone,
    usage,
    voice_turn,
)
from session_fixtures import MANUAL, connect_session, no_session_thread_survives  # noqa: F401

pytestmark = pytest.mark.timeout(60)

# OpenAI gpt-realtime list prices (USD per 1M tokens, Aug 2025); any numbers would do here.
PRICES = {"input_text": 4.0, "cached_text": 0.4, "output_text": 16.0,
          "input_audio": 32.0, "cached_audio": 0.4, "output_audio": 64.0}
CLIENT_EVENT = TypeAdapter(RealtimeClientEvent)


@pytest.fixture
def sessions():
    opened: list[RealtimeSession] = []
    yield opened
    for s in opened:
        s.close()


def play_turns(server: ScriptedServer, s: RealtimeSession, turns: list[tuple[str, str]], **kwargs) -> None:
    for user_text, transcript in turns:
        after = s.last_seq
        server.play(voice_turn(user_text=user_text, transcript=transcript, audio_ms=100, **kwargs))
        s.wait_for("response.done", after=after, timeout=10)


def item_texts(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["item"]["role"], e["item"]["content"][0]["text"]) for e in events
            if e["type"] == "conversation.item.create"]


# -- renewal -----------------------------------------------------------------------------------


def test_reconnect_into_a_new_server_session_replays_config_and_conversation(sessions):
    with ScriptedServer() as server:  # every connection is a new server session
        s = connect_session(server, sessions, config=MANUAL, reconnect_delay=0.3)
        s.update(instructions="Speak like a pirate.")
        play_turns(server, s, [("What's the weather?", "Sunny."), ("And tomorrow?", "Rain, sadly.")])
        first_id = s.wait_for("session.created")["payload"]["session"]["id"]
        server.play([Abort()])
        s.wait_for("connection.lost", timeout=10)
        # Queued during the outage: must go out after the replayed conversation, not before.
        s.send_audio(pcm16_tone(40))
        s.commit()
        server.wait_for("input_audio_buffer.commit", connection=1)
        renewed = s.wait_for("connection.renewed", timeout=10)
        events = server.client_events(connection=1)
        types = [e["type"] for e in events]
        assert types == ["session.update"] + ["conversation.item.create"] * 4 + [
            "input_audio_buffer.append", "input_audio_buffer.commit"]
        assert events[0]["session"]["instructions"] == "Speak like a pirate."
        assert item_texts(events) == [("user", "What's the weather?"), ("assistant", "Sunny."),
                                      ("user", "And tomorrow?"), ("assistant", "Rain, sadly.")]
        assert renewed["source"] == "local" and renewed["category"] == "connection"
        assert renewed["payload"]["previous_session_id"] == first_id
        assert renewed["payload"]["session_id"] == s.protocol.server_session["id"] != first_id
        assert renewed["payload"]["replayed_items"] == 4
        assert "4 conversation items replayed" in renewed["text"]
        # The replayed items are logged as client events like any other.
        assert (s.events.filter(source="client", type="conversation.item.create")["seq"] > renewed["seq"]).sum() == 4
        server.assert_client_events_valid()


def test_reconnect_into_the_same_server_session_replays_nothing(sessions):
    with ScriptedServer(resume_sessions=True) as server:
        s = connect_session(server, sessions, config=MANUAL)
        play_turns(server, s, [("Hello?", "Hi there.")])
        server.play([Abort()])
        s.wait_for("connection.restored", timeout=10)
        s.send_text("still there?", respond=False)
        server.wait_for("conversation.item.create", connection=1)
        assert [e["type"] for e in server.client_events(connection=1)] == ["session.update", "conversation.item.create"]
        assert item_texts(server.client_events(connection=1)) == [("user", "still there?")]
        assert s.events.filter(type="connection.renewed").empty
        server.assert_client_events_valid()


def test_renewal_replay_is_bounded_by_turns_and_characters(sessions):
    with ScriptedServer() as server:
        s = connect_session(server, sessions, config=MANUAL, replay_turns=2, replay_chars=30)
        play_turns(server, s, [("one", "first answer"), ("two", "second answer"),
                               ("three", "a rather long third answer that exceeds the budget")])
        server.play([Abort()])
        s.wait_for("connection.renewed", timeout=10)
        # A probe sent after the renewal marks the end of what it replayed (see below).
        s.send_text("probe", respond=False)
        server.wait_for("conversation.item.create", count=2, connection=1)
        *replayed, probe = item_texts(server.client_events(connection=1))
        assert probe == ("user", "probe")
        # Newest first within the budget: the third answer's end fills it, older turns drop.
        assert replayed == [("assistant", "a rather long third answer that exceeds the budget"[-30:])]
        assert sum(len(text) for _, text in replayed) <= 30
        server.assert_client_events_valid()


def test_renewal_with_replay_turns_zero_only_resends_the_config(sessions):
    with ScriptedServer() as server:
        s = connect_session(server, sessions, config=MANUAL, replay_turns=0)
        play_turns(server, s, [("one", "first answer")])
        server.play([Abort()])
        renewed = s.wait_for("connection.renewed", timeout=10)
        assert renewed["payload"]["replayed_items"] == 0
        # The log entry can beat the server's read of the frame; a probe sent after it marks the end
        # of whatever renewal sent, so nothing replayed can hide behind a race.
        s.send_text("probe", respond=False)
        server.wait_for("conversation.item.create", connection=1)
        assert [e["type"] for e in server.client_events(connection=1)] == ["session.update", "conversation.item.create"]
        assert item_texts(server.client_events(connection=1)) == [("user", "probe")]


def test_conversation_summary_events_validate_and_keep_order():
    proto = ClientProtocol()
    proto.receive({"type": "response.created", "response": {"id": "r1"}}, 0)
    proto.turns[0].user_text, proto.turns[0].assistant_text = "  hi  ", "hello"
    proto.receive({"type": "response.created", "response": {"id": "r2"}}, 1)
    proto.turns[1].assistant_text = "only the assistant spoke"
    events = proto.conversation_summary()
    for event in events:
        CLIENT_EVENT.validate_python(event)
    assert item_texts(events) == [("user", "hi"), ("assistant", "hello"), ("assistant", "only the assistant spoke")]
    assert proto.conversation_summary(max_chars=0) == []
    with pytest.raises(ValueError, match="max_turns"):
        proto.conversation_summary(max_turns=-1)


# -- cost meter --------------------------------------------------------------------------------


def test_usage_tokens_split_cached_from_uncached_per_kind():
    tokens = usage_tokens(usage(input_text=100, cached_text=60, input_audio=500, cached_audio=200,
                                output_text=30, output_audio=300))
    assert tokens == {"input_text": 40, "input_audio": 300, "input_image": 0, "cached_text": 60,
                      "cached_audio": 200, "cached_image": 0, "output_text": 30, "output_audio": 300}
    # A server that only reports totals: the unattributed tokens count as text.
    assert usage_tokens({"input_tokens": 7, "output_tokens": 5}) == {
        **dict.fromkeys(TOKEN_KINDS, 0), "input_text": 7, "output_text": 5}
    assert usage_tokens(None) == dict.fromkeys(TOKEN_KINDS, 0)
    assert usage_tokens({"input_tokens": "many", "output_tokens": -3}) == dict.fromkeys(TOKEN_KINDS, 0)


def test_prices_are_validated_and_completed():
    full = check_prices({"input_text": 1, "input_audio": 2, "output_text": 3, "output_audio": 4})
    assert full["cached_text"] == 1 and full["cached_audio"] == 2 and full["input_image"] == 2
    with pytest.raises(ValueError, match="unknown token kind"):
        check_prices({**PRICES, "input_video": 1.0})
    with pytest.raises(ValueError, match="missing.*output_audio"):
        check_prices({"input_text": 1, "input_audio": 2, "output_text": 3})
    with pytest.raises(ValueError, match=r"prices\['output_text'\]"):
        check_prices({**PRICES, "output_text": float("nan")})
    with pytest.raises(ValueError, match="max_cost_usd needs prices"):
        ClientProtocol(max_cost_usd=1.0)
    with pytest.raises(ValueError, match="max_cost_usd"):
        RealtimeSession("ws://127.0.0.1:9", prices=PRICES, max_cost_usd=-1)


def test_cost_meter_counts_tokens_per_turn_and_session(sessions):
    turn_usage = usage(input_text=1000, cached_text=400, input_audio=2000, output_text=500, output_audio=3000)
    expected_turn_usd = (600 * 4.0 + 400 * 0.4 + 2000 * 32.0 + 500 * 16.0 + 3000 * 64.0) / 1e6
    with ScriptedServer() as server:
        s = connect_session(server, sessions, config=MANUAL, prices=PRICES)
        play_turns(server, s, [("a", "one"), ("b", "two")], usage=turn_usage)
        turns = s.protocol.turns
        assert [t.tokens["cached_text"] for t in turns] == [400, 400]
        assert turns[0].tokens["input_text"] == 600 and turns[0].tokens["total_tokens"] == 6500
        assert turns[0].cost_usd == pytest.approx(expected_turn_usd)
        metrics = s.metrics()
        assert metrics["input_tokens"] == 6000 and metrics["output_tokens"] == 7000
        assert metrics["total_tokens"] == 13000
        assert metrics["tokens_cached_text"] == 800 and metrics["tokens_output_audio"] == 6000
        assert metrics["cost_usd"] == pytest.approx(2 * expected_turn_usd)
        assert metrics["cost_capped"] is False and metrics["max_cost_usd"] is None
        assert turns[1].to_dict()["cost_usd"] == pytest.approx(expected_turn_usd)


def test_without_prices_tokens_are_counted_and_cost_is_none(sessions):
    with ScriptedServer() as server:
        s = connect_session(server, sessions, config=MANUAL)
        play_turns(server, s, [("a", "one")])  # the scripted default usage: 80 in, 40 out
        metrics = s.metrics()
        assert (metrics["input_tokens"], metrics["output_tokens"], metrics["total_tokens"]) == (80, 40, 120)
        assert metrics["tokens_input_audio"] == 60 and metrics["cost_usd"] is None
        assert s.protocol.turns[0].cost_usd is None


def test_cost_cap_stops_creating_responses(sessions):
    expensive = usage(input_audio=10_000, output_audio=10_000)  # 0.96 USD at PRICES
    with ScriptedServer() as server:
        s = connect_session(server, sessions, prices=PRICES, max_cost_usd=0.5)  # server VAD answers by itself
        play_turns(server, s, [("hello", "an expensive answer")], usage=expensive)
        capped = s.wait_for("cost.error", timeout=10)
        assert capped["category"] == "error" and capped["source"] == "local"
        assert capped["payload"]["cost_usd"] == pytest.approx(0.96) and capped["payload"]["max_cost_usd"] == 0.5
        assert "no more responses" in capped["text"]
        # Automatic responses are switched off on the server.
        updates = server.wait_for("session.update", count=2)
        assert updates[-1]["session"]["audio"]["input"]["turn_detection"]["create_response"] is False
        # Asking for one raises, and nothing is sent (the text is not lost silently: it raises).
        sent_before = len(server.client_events())
        with pytest.raises(CostLimitError, match="max_cost_usd"):
            s.create_response()
        with pytest.raises(CostLimitError):
            s.send_text("one more?")
        # A response the server creates anyway (before the update landed) is cancelled.
        server.play(assistant_response_start("resp_late", "item_late"))
        server.wait_for("response.cancel")
        assert [e["type"] for e in server.client_events()[sent_before:]] == ["response.cancel"]
        assert s.metrics()["cost_capped"] is True
        # Reconnect config replays keep automatic responses off.
        s.update(instructions="Be brief.")
        last = server.wait_for("session.update", count=3)[-1]
        assert last["session"]["audio"]["input"]["turn_detection"]["create_response"] is False
        assert s.events.filter(type="cost.error").shape[0] == 1  # said once
        server.assert_client_events_valid()


def test_protocol_cost_cap_blocks_tool_follow_ups():
    proto = ClientProtocol(prices=PRICES, max_cost_usd=0.01, config=MANUAL)
    proto.receive({"type": "response.created", "response": {"id": "r1"}}, 0)
    proto.receive({"type": "response.output_item.added", "response_id": "r1", "item": {
        "id": "fc1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": ""}}, 1)
    proto.receive({"type": "response.function_call_arguments.done", "response_id": "r1", "item_id": "fc1",
                   "call_id": "c1", "name": "f", "arguments": "{}"}, 2)
    actions = proto.receive({"type": "response.done", "response": {
        "id": "r1", "status": "completed", "usage": usage(output_audio=1000)}}, 3)
    assert CostCapReached(pytest.approx(0.064), 0.01) in actions
    # Manual turn detection: nothing to switch off on the server.
    assert not [a for a in actions if isinstance(a, Send)]
    events = proto.tool_output("c1", '"ok"')
    assert [e["type"] for e in events] == ["conversation.item.create"]  # no response.create
