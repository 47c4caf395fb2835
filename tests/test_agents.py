"""Agents, handoffs, output guardrails and tool approval (issue 16) on real servers.

The scripted server (tests/scripted_server.py) pins the exact client events, each validated
against ``openai.types.realtime``; the embedded local server (its keyword tool routing makes
the model call the transfer tool) shows a handoff end to end.
"""

from __future__ import annotations

import json
import threading

import pytest

from rtvoice_widget import Agent, OutputGuardrail, RealtimeSession, function_tool
from rtvoice_widget.events import category_of
from scripted_server import (
    Pause,
    ScriptedServer,
    assistant_audio_reply,
    assistant_response_end,
    assistant_response_start,
    function_call_turn,
    pcm16_tone,
    voice_turn,
)
from session_fixtures import MANUAL, open_session  # noqa: F401

pytestmark = pytest.mark.timeout(60)


# Stricter than session_fixtures.server: every test here must have talked to the server.
@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv
        assert srv.assert_client_events_valid() > 0


def agents() -> tuple[Agent, Agent]:
    def get_balance(account: str) -> str:
        """The balance of a customer's account."""
        return "12 EUR"

    billing = Agent("Billing", "You handle invoices and payments.", tools=[get_balance], voice="cedar",
                    handoff_description="Invoices, payments and balances.")
    triage = Agent("Triage", "You find out what the caller needs.", handoffs=[billing])
    billing.handoffs.append(triage)
    return triage, billing


def wait_done(session: RealtimeSession, response_id: str, timeout: float = 15) -> dict:
    """The response.done of ``response_id`` (logged already or to come)."""
    after = -1
    while True:
        row = session.wait_for("response.done", after=after, timeout=timeout)
        if row["response_id"] == response_id:
            return row
        after = row["seq"]


def rows(session: RealtimeSession, type_: str) -> list[dict]:
    df = session.events.filter(type=type_)
    return [r for r in df.to_dict("records")]


# -- handoffs ------------------------------------------------------------------------------------


def test_handoff_switches_instructions_tools_and_voice_on_the_wire(server, open_session):
    triage, billing = agents()

    def what_time() -> str:
        """The time now."""
        return "noon"

    s = open_session(agent=triage, config=MANUAL, tools=[what_time])  # the session's own: every agent's
    first_update = server.client_events("session.update")[-1]["session"]
    assert first_update["instructions"] == triage.instructions
    assert [t["name"] for t in first_update["tools"]] == ["what_time", "transfer_to_billing"]
    responses = iter([voice_turn(with_speech=False, audio_ms=300, transcript="Billing here, how can I help?",
                                 response_id="resp_billing"),
                      voice_turn(with_speech=False, audio_ms=300, transcript="Back to the front desk.")])
    server.respond("response.create", lambda event, srv: next(responses, None))

    before = len(server.client_events())
    server.play(function_call_turn(name="transfer_to_billing", arguments='{"reason": "an invoice question"}',
                                   call_id="call_h1"))
    server.wait_for("response.create", count=1)
    wait_done(s, "resp_billing")
    sent = server.client_events()[before:]
    types = [e["type"] for e in sent]
    # The switch goes out before the call's output, so the follow-up response is the new agent's.
    assert types == ["session.update", "conversation.item.create", "response.create"], types
    update = sent[0]["session"]
    assert update["instructions"] == billing.instructions
    assert [t["name"] for t in update["tools"]] == ["what_time", "get_balance", "transfer_to_triage"]
    assert update["audio"]["output"]["voice"] == "cedar"  # no audio yet: the voice may change
    # The conversation's audio format and turn detection are the same as before.
    assert update["audio"]["input"]["format"] == first_update["audio"]["input"]["format"]
    assert update["audio"]["output"]["format"] == first_update["audio"]["output"]["format"]
    assert update["audio"]["input"]["turn_detection"] == first_update["audio"]["input"]["turn_detection"]
    output = sent[1]["item"]
    assert output["type"] == "function_call_output" and output["call_id"] == "call_h1"
    assert json.loads(output["output"]) == {"assistant": "Billing"}
    (handoff,) = rows(s, "agent.handoff")
    assert handoff["payload"]["from"] == "Triage" and handoff["payload"]["to"] == "Billing"
    assert handoff["payload"]["reason"] == "an invoice question" and handoff["payload"]["call_id"] == "call_h1"
    assert handoff["payload"]["voice"] == "cedar" and handoff["payload"]["voice_kept"] is None
    assert handoff["category"] == "system"
    assert s.agents.current is billing

    # Billing has spoken (audio above): a handoff back cannot change the voice any more.
    before = len(server.client_events())
    server.play(function_call_turn(name="transfer_to_triage", arguments='{"reason": "done"}', call_id="call_h2"))
    server.wait_for("response.create", count=2)
    sent = server.client_events()[before:]
    update = next(e for e in sent if e["type"] == "session.update")["session"]
    assert update["instructions"] == triage.instructions
    assert [t["name"] for t in update["tools"]] == ["what_time", "transfer_to_billing"]
    assert update["audio"]["output"]["voice"] == "cedar"
    back = rows(s, "agent.handoff")[-1]["payload"]
    assert back["to"] == "Triage" and back["voice"] == "cedar" and back["voice_kept"] is None  # triage has no voice
    assert s.agents.current is triage


def test_a_voice_the_api_would_refuse_is_kept_and_said(server, open_session):
    triage, billing = agents()
    s = open_session(agent=triage, config=MANUAL)
    server.play(voice_turn(with_speech=False, audio_ms=200, transcript="Hello, front desk."))
    s.wait_for("response.done", timeout=10)
    before = len(server.client_events())
    server.play(function_call_turn(name="transfer_to_billing", arguments="{}", call_id="call_v"))
    server.wait_for("conversation.item.create", count=1)
    update = next(e for e in server.client_events()[before:] if e["type"] == "session.update")["session"]
    assert update["audio"]["output"]["voice"] == "marin" and update["instructions"] == billing.instructions
    handoff = s.wait_for("agent.handoff", timeout=10)
    assert handoff["payload"]["voice_kept"] == "cedar" and handoff["payload"]["voice"] == "marin"
    assert "voice stays marin" in handoff["text"] and handoff["payload"]["reason"] is None


def test_switch_from_code_and_unknown_agents():
    triage, billing = agents()
    s = RealtimeSession("ws://127.0.0.1:9/v1/realtime", agent=triage)
    with pytest.raises(ValueError, match="unknown agent"):
        s.agents.switch("Sales")
    s.agents.switch("Billing", reason="test")
    assert s.config.instructions == billing.instructions and s.config.voice == "cedar"
    assert rows(s, "agent.handoff")[0]["payload"]["call_id"] is None
    def get_balance() -> str:
        """A session-wide tool with an agent tool's name."""
        return ""

    with pytest.raises(ValueError, match="get_balance"):
        RealtimeSession("ws://127.0.0.1:9/v1/realtime", agent=agents()[0], tools=[get_balance])
    with pytest.raises(ValueError):
        Agent("")
    with pytest.raises(ValueError):
        Agent("x", handoffs=["not an agent"])


# -- output guardrails ---------------------------------------------------------------------------


def _streamed_reply(response_id: str, item_id: str, transcript: str) -> list:
    return [*assistant_response_start(response_id, item_id),
            *assistant_audio_reply(response_id, item_id, transcript, pcm16_tone(3000), chunk_ms=200),
            Pause(2.0)]


def test_a_tripped_guardrail_stops_the_response_like_a_barge_in(server, open_session):
    def no_passwords(text: str):
        return "mentions a password" if "password" in text.lower() else None

    def broken(text: str):
        raise RuntimeError("checker down")

    replacement = "Sorry, I cannot share a password."
    s = open_session(config=MANUAL, output_guardrails=[broken, OutputGuardrail(no_passwords, replacement=replacement)])
    s.guardrails.every_chars = 10
    server.respond("response.cancel", lambda event, srv: assistant_response_end(
        "resp_g", "item_g", "The admin password is", status="cancelled"))
    server.respond("response.create", lambda event, srv: voice_turn(with_speech=False, audio_ms=200, transcript=replacement,
                                                                    response_id="resp_replacement"))
    before = len(server.client_events())
    server.play(_streamed_reply("resp_g", "item_g", "The admin password is hunter2 and the user name is root."),
                wait=False)
    server.wait_for("response.create", count=1, timeout=15)
    wait_done(s, "resp_replacement")
    sent = [e for e in server.client_events()[before:] if e["type"] != "input_audio_buffer.append"]
    types = [e["type"] for e in sent]
    # As a barge-in: truncate what was heard, cancel; then the replacement line.
    assert types == ["conversation.item.truncate", "response.cancel", "response.create"], types
    assert sent[0]["item_id"] == "item_g" and 0 <= sent[0]["audio_end_ms"] < 3000
    assert replacement in sent[2]["response"]["instructions"] and sent[2]["response"]["tool_choice"] == "none"
    (tripped,) = rows(s, "guardrail.tripped")  # the replacement says "password" too: not checked
    assert "password" in tripped["text"] and tripped["payload"]["guardrail"] == "no_passwords"
    assert tripped["payload"]["reason"] == "mentions a password" and tripped["response_id"] == "resp_g"
    assert tripped["category"] == "ai_response"
    errors = rows(s, "guardrail.error")
    assert errors and "checker down" in errors[0]["text"] and errors[0]["category"] == "error"
    assert rows(s, "playback.flushed")


def test_an_agents_guardrails_apply_only_while_it_is_active(server, open_session):
    triage, billing = agents()
    billing.output_guardrails.append(OutputGuardrail(lambda text: "refund" in text, name="no_refunds"))
    s = open_session(agent=triage, config=MANUAL)
    server.play(voice_turn(with_speech=False, audio_ms=200, transcript="A refund is possible.", response_id="resp_t"))
    wait_done(s, "resp_t")
    s.agents.switch("Billing", reason="test")
    server.play(voice_turn(with_speech=False, audio_ms=200, transcript="A refund is possible.", response_id="resp_b"))
    tripped = s.wait_for("guardrail.tripped", timeout=10)
    assert tripped["response_id"] == "resp_b" and tripped["payload"]["guardrail"] == "no_refunds"
    # A session without guardrails anywhere does not even follow its events for them.
    plain = RealtimeSession("ws://127.0.0.1:9/v1/realtime", agent=agents()[0])
    assert not plain.guardrails._following


def test_guardrails_see_growing_prefixes_and_the_final_transcript(server, open_session):
    seen: list[str] = []
    done = threading.Event()
    transcript = "It is sunny and warm today, with a light breeze from the west all afternoon."

    def record(text: str) -> bool:
        seen.append(text)
        if text == transcript:
            done.set()
        return False

    s = open_session(config=MANUAL, output_guardrails=[record])
    s.guardrails.every_chars = 20
    # Paced like a server streaming speech: sent in one burst, the checks of a busy machine's
    # late worker would rightly see only the newest (the final) text.
    steps = []
    for step in voice_turn(with_speech=False, audio_ms=1500, transcript=transcript):
        steps.append(step)
        if isinstance(step, dict) and step.get("type") == "response.output_audio_transcript.delta":
            steps.append(Pause(0.03))
    server.play(steps)
    assert done.wait(10)
    assert seen[-1] == transcript and len(seen) >= 2
    assert all(transcript.startswith(text) for text in seen)
    assert all(len(b) - len(a) >= 20 for a, b in zip(seen, seen[1:-1]))
    assert not rows(s, "guardrail.tripped") and not rows(s, "response.cancel")


def test_a_slow_guardrail_checks_only_the_newest_text_and_then_the_final_transcript(server, open_session):
    # While one check runs, later texts of the response wait as one (the newest): a slow check
    # neither queues a check per delta nor misses the final transcript.
    seen: list[str] = []
    release, final_seen = threading.Event(), threading.Event()
    transcript = " ".join(f"word{i}" for i in range(120)) + "."

    def slow(text: str) -> bool:
        seen.append(text)
        release.wait(10)
        if text == transcript:
            final_seen.set()
        return False

    s = open_session(config=MANUAL, output_guardrails=[slow])
    s.guardrails.every_chars = 5
    server.play(voice_turn(with_speech=False, audio_ms=1500, transcript=transcript, response_id="resp_slow"))
    wait_done(s, "resp_slow")
    deltas = len(rows(s, "response.output_audio_transcript.delta"))
    release.set()
    assert final_seen.wait(10)
    assert deltas >= 10 and len(seen) <= 3, (deltas, seen)  # first text, maybe one newer, the final
    assert seen[-1] == transcript


# -- tool approval -------------------------------------------------------------------------------


def test_approval_callback_approves_and_denies(server, open_session):
    ran: list[str] = []

    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return f"deleted {path}"

    def approve(request):
        return True if json.loads(request.arguments)["path"] == "/tmp/a" else "not that one"

    s = open_session(config=MANUAL, tools=[delete_file], approve=approve)
    server.play(function_call_turn(name="delete_file", arguments='{"path": "/tmp/a"}', call_id="call_a"))
    server.play(function_call_turn(name="delete_file", arguments='{"path": "/etc/passwd"}', call_id="call_b"))
    server.wait_for("conversation.item.create", count=2)
    outputs = {e["item"]["call_id"]: e["item"]["output"] for e in server.client_events("conversation.item.create")}
    assert outputs["call_a"] == "deleted /tmp/a" and ran == ["/tmp/a"]
    denied = json.loads(outputs["call_b"])
    assert denied["status"] == "denied" and "did not run" in denied["message"] and "not that one" in denied["message"]
    decisions = {r["payload"]["call_id"]: r["payload"] for r in rows(s, "tool.approval")}
    assert decisions["call_a"]["decision"] == "approved" and decisions["call_b"]["decision"] == "denied"
    assert decisions["call_b"]["by"] == "callback" and decisions["call_b"]["reason"] == "not that one"
    assert {r["payload"]["call_id"] for r in rows(s, "tool.approval_requested")} == {"call_a", "call_b"}
    assert category_of("tool.approval", "local") == "system"


def test_a_pending_approval_does_not_hold_the_session(server, open_session):
    s = open_session(config=MANUAL)

    @s.tool(needs_approval=True)
    def send_money(amount: int) -> str:
        """Send money."""
        return f"sent {amount}"

    server.play(function_call_turn(name="send_money", arguments='{"amount": 5}', call_id="call_p"))
    s.wait_for("tool.approval_requested", timeout=10)
    assert [r.call_id for r in s.approvals.pending] == ["call_p"]
    # While it waits, the conversation goes on: a whole turn arrives and is handled.
    server.play(voice_turn(with_speech=False, audio_ms=300, transcript="Still here.", response_id="resp_during"))
    wait_done(s, "resp_during")
    assert not server.client_events("conversation.item.create")
    assert s.approvals.approve("call_p") and not s.approvals.approve("call_p")
    server.wait_for("conversation.item.create", count=1)
    assert server.client_events("conversation.item.create")[0]["item"]["output"] == "sent 5"
    assert rows(s, "tool.approval")[0]["payload"]["by"] == "code" and not s.approvals.pending


def test_an_approval_times_out_as_a_denial_and_a_raising_callback_denies(server, open_session):
    def boom(request):
        raise RuntimeError("no UI")

    s = open_session(config=MANUAL, approve=boom)
    s.tool(function_tool(lambda: "done", name="reboot", needs_approval=True))
    server.play(function_call_turn(name="reboot", arguments="{}", call_id="call_r"))
    server.wait_for("conversation.item.create", count=1)
    assert json.loads(server.client_events("conversation.item.create")[0]["item"]["output"])["status"] == "denied"
    assert any("no UI" in r["text"] for r in rows(s, "tool.error"))
    s.approvals.callback = None
    s.approvals.timeout = 0.2
    server.play(function_call_turn(name="reboot", arguments="{}", call_id="call_t"))
    server.wait_for("conversation.item.create", count=2)
    assert rows(s, "tool.approval")[-1]["payload"]["by"] == "timeout"


@pytest.mark.parametrize("type_, category", [
    ("agent.handoff", "system"), ("guardrail.tripped", "ai_response"), ("guardrail.error", "error"),
    ("tool.approval_requested", "system"), ("tool.approval", "system"),
])
def test_new_event_types_are_categorised(type_, category):
    from rtvoice_widget.events import EventLog

    log = EventLog()
    log.local(type_, 1.0, text="x")
    assert category_of(type_, "local") == category
    assert log.to_pandas()["category"].iloc[0] == category


def test_registry_without_an_approver_denies_and_function_tool_keeps_its_options():
    from rtvoice_widget.tools import ToolRegistry, tool_schema

    ran = []

    @function_tool(name="wipe", description="Wipe the disk.", needs_approval=True)
    def anything() -> str:
        ran.append(1)
        return "wiped"

    registry = ToolRegistry([anything])
    assert registry.needs_approval("wipe") and not registry.needs_approval("other")
    assert tool_schema(anything)["description"] == "Wipe the disk."
    result = registry.run_sync("wipe", "{}")
    assert result.ok and json.loads(result.output)["error"].startswith("the call to wipe needs") and not ran
    assert anything() == "wiped"  # still the function when called directly


# -- the embedded local server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_url():
    from rtvoice_widget.server import LocalRealtimeServer

    # The echo LLM routes tools by keyword like the bundled model, and answers predictably.
    server = LocalRealtimeServer(engines={"llm": "echo"})
    yield server.start()
    server.stop()


@pytest.mark.models
@pytest.mark.timeout(300)
def test_handoff_on_the_local_server(local_url):
    triage, billing = agents()
    with RealtimeSession(local_url, agent=triage, config=MANUAL) as s:
        s.wait_for("session.updated", timeout=60)
        s.send_text("I have a billing question about my invoice")
        handoff = s.wait_for("agent.handoff", timeout=60)
        assert handoff["payload"]["to"] == "Billing" and handoff["payload"]["reason"]
        # The server took the new agent's session and the follow-up response is answered.
        updated = s.wait_for("session.updated", after=handoff["seq"], timeout=60)
        assert updated["payload"]["session"]["instructions"] == billing.instructions
        assert {t["name"] for t in updated["payload"]["session"]["tools"]} == {"get_balance", "transfer_to_triage"}
        assert updated["payload"]["session"]["audio"]["output"]["voice"] == "cedar"  # nothing spoken yet
        done = s.wait_for("response.done", after=updated["seq"], timeout=60)
        assert done["payload"]["response"]["status"] == "completed"
        # Billing's own tool is now the one the model reaches for.
        s.send_text("What is the balance of my account")
        result = s.wait_for("tool.result", after=done["seq"], timeout=60)
        assert result["payload"]["name"] == "get_balance" and result["text"] == "12 EUR"
        df = s.events.to_pandas()
        assert not (df["category"] == "error").any(), df[df["category"] == "error"][["type", "text"]]


@pytest.mark.models
@pytest.mark.timeout(300)
def test_guardrail_and_its_replacement_on_the_local_server(local_url):
    guardrail = OutputGuardrail(lambda text: "password" in text.lower(), name="no_passwords",
                                replacement="I cannot help with that.")
    with RealtimeSession(local_url, config=MANUAL, output_guardrails=[guardrail]) as s:
        s.wait_for("session.updated", timeout=60)
        s.send_text("Tell me the admin password")
        tripped = s.wait_for("guardrail.tripped", timeout=60)
        assert "password" in tripped["text"].lower() and tripped["payload"]["guardrail"] == "no_passwords"
        # The replacement is asked for once the stopped response is over, and the server answers it.
        ask = s.wait_for("response.create", after=tripped["seq"], timeout=30)
        assert "I cannot help with that." in ask["payload"]["response"]["instructions"]
        created = s.wait_for("response.created", after=ask["seq"], timeout=30)
        wait_done(s, created["response_id"], timeout=60)
        assert len(s.events.filter(type="guardrail.tripped")) == 1
        df = s.events.to_pandas()
        # The echo reply is short: it can end between the guardrail's check and its cancel, and
        # the server then answers the cancel with `response_cancel_not_active`, as OpenAI's does.
        # That race is harmless; any other error is not.
        raced = df["payload"].map(lambda p: isinstance(p, dict) and (p.get("error") or {}).get("code")
                                  == "response_cancel_not_active")
        errors = df[(df["category"] == "error") & ~raced]
        assert errors.empty, errors[["type", "text"]]
