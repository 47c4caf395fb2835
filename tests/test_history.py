"""Resume: ``RealtimeSession(history=...)`` seeds each new server session with the saved
conversation (rtvoice_widget/history.py and its hook in session.py).

Against the scripted WebSocket server (exact events on the wire, each validated with the SDK's
``RealtimeClientEvent``) and the real embedded server (its conversation and the language
model's prompt hold the seeded text; its history budget).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rtvoice_widget.config import SessionConfig
from rtvoice_widget.events import category_of
from rtvoice_widget.history import history_events, history_messages, seeded_item_ids
from rtvoice_widget.saved import load_session, save_session
from rtvoice_widget.session import RealtimeSession
from scripted_server import Abort, ScriptedServer, pcm16_tone, voice_turn
from session_fixtures import no_session_thread_survives  # noqa: F401

pytestmark = pytest.mark.timeout(120)

SAMPLE = Path(__file__).resolve().parent.parent / "notebooks" / "data" / "sample_session"
MANUAL = SessionConfig(turn_detection=None)
HISTORY = [("user", "My name is Zorblax."), ("assistant", "Nice to meet you, Zorblax."),
           ("user", "I like green tea.")]


def item_texts(events: list[dict]) -> list[tuple[str, str, str]]:
    return [(e["item"]["role"], e["item"]["content"][0]["type"], e["item"]["content"][0]["text"])
            for e in events if e["type"] == "conversation.item.create"]


def test_history_is_sent_after_session_created_before_anything_else():
    with ScriptedServer() as server:
        with RealtimeSession(server.url, config=MANUAL, history=HISTORY) as s:
            # Right after connect(): the seeded items must still go out ahead of these.
            s.send_audio(pcm16_tone(100))
            s.send_text("probe", respond=False)
            server.wait_for("conversation.item.create", count=4)
            types = [e["type"] for e in server.client_events()]
            assert types == ["session.update"] + ["conversation.item.create"] * 3 + [
                "input_audio_buffer.append", "conversation.item.create"]
            sent = server.client_events("conversation.item.create")
            assert item_texts(sent) == [("user", "input_text", "My name is Zorblax."),
                                        ("assistant", "output_text", "Nice to meet you, Zorblax."),
                                        ("user", "input_text", "I like green tea."), ("user", "input_text", "probe")]
            ids = [e["item"]["id"] for e in sent[:3]]
            assert all(i.startswith("hist_") and len(i) <= 32 for i in ids) and len(set(ids)) == 3
            seeded = s.events.filter(type="history.seeded")
            assert len(seeded) == 1 and seeded["category"].iloc[0] == "system"
            assert seeded["payload"].iloc[0]["items"] == 3
            assert seeded_item_ids(s.events.to_pandas()) == set(ids)
        assert server.assert_client_events_valid() == 6


def test_a_saved_session_or_its_path_seeds_its_transcript():
    saved = load_session(SAMPLE)
    expected = [(r.role, r.text.strip()) for r in saved.turns.itertuples() if r.role in ("user", "assistant")]
    # The first reply was interrupted after 2066 of its 5750 ms: the 6 of its 16 words heard.
    assert expected[1][1].startswith("Hello! I'm a friendly voice assistant talking")
    expected[1] = ("assistant", "Hello! I'm a friendly voice assistant")
    assert history_messages(saved) == history_messages(SAMPLE) == history_messages(str(SAMPLE)) == expected
    with ScriptedServer() as server:
        with RealtimeSession(server.url, config=MANUAL, history=str(SAMPLE)):
            server.wait_for("conversation.item.create", count=len(expected))
        sent = item_texts(server.client_events())
        assert [(role, text) for role, _, text in sent] == expected
        # A spoken turn goes as its transcript.
        assert ("user", "input_text", "Sorry, what is the menu price of a coffee?") in sent
        server.assert_client_events_valid()


def test_a_renewal_seeds_the_new_server_session_again_ahead_of_the_summary():
    with ScriptedServer() as server:
        with RealtimeSession(server.url, config=MANUAL, history=HISTORY[:1], reconnect_delay=0.02) as s:
            server.wait_for("conversation.item.create")
            s.send_text("what is my name", respond=True)
            server.wait_for("response.create")
            server.play(voice_turn(user_text="what is my name", transcript="Zorblax.", audio_ms=100))
            s.wait_for("response.done")
            server.play([Abort()])
            s.wait_for("connection.renewed", timeout=10)
            s.send_text("probe", respond=False)
            # history (1), the renewal's summary of the conversation since (2), the probe
            server.wait_for("conversation.item.create", count=4, connection=1)
            texts = [text for _, _, text in item_texts(server.client_events(connection=1))]
            assert texts == ["My name is Zorblax.", "what is my name", "Zorblax.", "probe"]
            assert len(s.events.filter(type="history.seeded")) == 2
        server.assert_client_events_valid()


def test_a_reconnect_into_the_same_server_session_does_not_seed_twice():
    with ScriptedServer(resume_sessions=True) as server:
        with RealtimeSession(server.url, config=MANUAL, history=HISTORY, reconnect_delay=0.02) as s:
            server.wait_for("conversation.item.create", count=3)
            server.play([Abort()])
            s.wait_for("connection.restored", timeout=10)
            s.send_text("probe", respond=False)
            server.wait_for("conversation.item.create", connection=1)
            assert item_texts(server.client_events(connection=1)) == [("user", "input_text", "probe")]
            assert len(s.events.filter(type="history.seeded")) == 1


@pytest.mark.parametrize("bad, error", [(42, TypeError), ({"user": "hi"}, TypeError), ([("bot", "hi")], ValueError),
                                        ([("user", 3)], ValueError), ([("user",)], TypeError)])
def test_bad_history_raises_at_construction(bad, error):
    with pytest.raises(error):
        RealtimeSession("ws://127.0.0.1:9/v1/realtime", history=bad)


def test_heard_text_keeps_the_words_in_proportion_to_the_audio_played():
    from rtvoice_widget.history import heard_text

    assert heard_text("one two three four", 4000.0, 2000.0) == "one two"
    assert heard_text("one two three four", 4000.0, 0.0) == ""
    assert heard_text("one two three four", 4000.0, 9000.0) == "one two three four"
    assert heard_text("one two", 0.0, float("nan")) == "one two"


def test_history_events_validate_and_skip_empty_text():
    from openai.types.realtime import RealtimeClientEvent
    from pydantic import TypeAdapter

    events = history_events([("user", "  "), *HISTORY])
    assert len(events) == 3
    for event in events:
        TypeAdapter(RealtimeClientEvent).validate_python(event)
    assert history_events(None) == []


def test_new_local_event_types_are_categorised():
    for type_ in ("history.seeded", "replay.turn", "replay.sent", "replay.timeout", "export.sent"):
        assert category_of(type_, "local") == "system"


# -- the real embedded server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm_url():
    from rtvoice_widget.server import LocalRealtimeServer

    server = LocalRealtimeServer()
    url = server.start()
    yield url
    server.stop()


def ask(url: str, question: str, history=None) -> tuple[str, dict, RealtimeSession]:
    """Ask by text (text output: no TTS needed); the reply's transcript and response.done."""
    config = SessionConfig(turn_detection=None, output_modalities=["text"])
    with RealtimeSession(url, config=config, history=history) as s:
        mark = s.last_seq
        s.send_text(question)
        done = s.wait_for("response.done", after=mark, timeout=120)
        text = "".join(t or "" for t in s.events.filter(type="response.output_text.delta")["text"])
    return text, done["payload"]["response"], s


@pytest.mark.models
def test_the_local_server_remembers_a_resumed_conversation(smollm_url, tmp_path):
    # A real conversation, saved and loaded back.
    _, _, first = ask(smollm_url, "Hello! My name is Zorblax.")
    saved = load_session(save_session(first, tmp_path / "first"))
    history = history_messages(saved)
    assert history[0] == ("user", "Hello! My name is Zorblax.") and history[1][0] == "assistant"

    reply, response, s = ask(smollm_url, "What is my name?", saved)
    # The server's own conversation holds the seeded items (it echoed each with its id) ...
    added = s.events.filter(type="conversation.item.added", source="server")
    ids = seeded_item_ids(s.events.to_pandas())
    assert ids <= set(added["item_id"]) and len(ids) == len(history) == 2
    # ... and they went into the language model's prompt: the server counts the prompt's tokens
    # (4 characters each), which grew by the seeded text against the same question unseeded.
    _, fresh, _ = ask(smollm_url, "What is my name?")
    seeded_tokens = sum(len(text) // 4 for _, text in history)
    grown = response["usage"]["input_tokens"] - fresh["usage"]["input_tokens"]
    assert grown == seeded_tokens, (grown, seeded_tokens)
    # The model uses it (SmolLM2-135M, temperature 0.2, seed 0: the same answer every run here).
    assert "zorblax" in reply.lower(), reply


@pytest.mark.models
def test_the_local_servers_history_budget_keeps_the_newest_3000_to_6000_characters(smollm_url):
    # 24 messages of 400 characters (9600 in all): more than the 6000-character budget.
    history = [("user" if n % 2 == 0 else "assistant", f"Message {n:02d}. " + "lorem ipsum " * 32 + "x" * 4)
               for n in range(24)]
    assert {len(text) for _, text in history} == {400}
    config = SessionConfig(turn_detection=None, output_modalities=["text"], max_output_tokens=1)
    usage = {}
    for name, seed in (("seeded", history), ("fresh", None)):
        with RealtimeSession(smollm_url, config=config, history=seed) as s:
            mark = s.last_seq
            s.send_text("Hi.")
            usage[name] = s.wait_for("response.done", after=mark, timeout=120)["payload"]["response"]["usage"]
    kept_chars = (usage["seeded"]["input_tokens"] - usage["fresh"]["input_tokens"]) * 4
    # The window drops whole 3000-character steps of the oldest text: 9600 + the question ->
    # two steps dropped, 3600 characters (9 messages) kept.
    assert kept_chars == 9 * 400, kept_chars
