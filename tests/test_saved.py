"""Saving and loading sessions: a real ``RealtimeSession`` talks to a scripted GA server (a voice
turn, a barge-in with truncation, a tool call answered aloud), then ``save_session`` /
``load_session`` must give back the same DataFrames and arrays, carry no secret, and refuse bad
input without losing anything."""

from __future__ import annotations

import json
import math
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.display import Audio
from pandas.testing import assert_frame_equal
from scripted_server import (
    ScriptedServer,
    assistant_audio_reply,
    assistant_response_end,
    assistant_response_start,
    function_call_turn,
    pcm16_tone,
    speech_started,
    speech_stopped_and_committed,
    user_transcript,
    voice_turn,
)

from rtvoice_widget import load_session
from rtvoice_widget.config import SessionConfig
from rtvoice_widget.saved import SavedSession, public_config, save_session, snapshot
from rtvoice_widget.session import RealtimeSession

SECRET = "sk-test-never-saved-7f3a9c1e5b2d4f60"
TOOL_RESULT = {"item": "coffee", "price": 3.5}


def price_of(item: str) -> dict:
    """The price of an item on the menu."""
    return dict(TOOL_RESULT, item=item)


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.02)


def record_conversation(server: ScriptedServer) -> RealtimeSession:
    session = RealtimeSession(server.url, api_key=SECRET, tools=[price_of],
                              config=SessionConfig(instructions="Be brief."))
    session.connect()
    server.wait_for("session.update")

    # 1: the user speaks (real audio appended), the server answers with a full voice turn.
    session.send_audio(pcm16_tone(800, frequency=180.0))
    after = session.last_seq
    server.play(voice_turn(user_text="Hello there.", transcript="Hi! How can I help?",
                           audio_ms=900.0, user_audio_ms=800, user_item_id="item_u1",
                           response_id="resp_1", item_id="item_a1"))
    session.wait_for("response.done", after=after)
    session.playback_progress("item_a1", 900)  # the player played the whole answer

    # 2: a long answer; the player reports 600 ms played; the user barges in.
    session.send_audio(pcm16_tone(600, frequency=180.0))
    server.play([speech_started("item_u2", 800), *speech_stopped_and_committed("item_u2", 1400),
                 *user_transcript("item_u2", "Tell me a story."),
                 *assistant_response_start("resp_2", "item_a2"),
                 *assistant_audio_reply("resp_2", "item_a2", "Once upon a time there was",
                                        pcm16_tone(3000))])
    wait_until(lambda: session.events.filter(item_id="item_a2", type="response.output_audio.delta")
               ["audio_ms"].sum() >= 3000, "the story's audio")
    session.playback_progress("item_a2", 600)
    session.send_audio(pcm16_tone(500, frequency=180.0))
    server.play([speech_started("item_u3", 2000),
                 *assistant_response_end("resp_2", "item_a2", "Once upon a time there was", status="cancelled")])
    server.wait_for("conversation.item.truncate")

    # 3: the user's question is answered through a tool call, then aloud.
    after = session.last_seq
    server.respond("response.create", lambda event, srv: voice_turn(
        with_speech=False, transcript="A coffee costs three fifty.", audio_ms=700.0,
        response_id="resp_4", item_id="item_a4"))
    server.play([*speech_stopped_and_committed("item_u3", 2500),
                 *user_transcript("item_u3", "What does a coffee cost?"),
                 *function_call_turn(name="price_of", arguments='{"item": "coffee"}', call_id="call_1",
                                     response_id="resp_3", item_id="item_fc")])
    wait_until(lambda: len(session.events.filter(type="response.done", response_id="resp_4")) == 1,
               "the spoken tool answer")
    session.close()
    return session


@pytest.fixture(scope="module")
def recorded() -> RealtimeSession:
    with ScriptedServer() as server:
        session = record_conversation(server)
        server.assert_client_events_valid()
    return session


@pytest.fixture(scope="module")
def saved_folder(recorded, tmp_path_factory) -> Path:
    return save_session(recorded, tmp_path_factory.mktemp("saved") / "conversation")


def files_of(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir()}
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# -- round trips -----------------------------------------------------------------------------

def assert_same_session(loaded: SavedSession, session: RealtimeSession) -> None:
    original = session.events.to_pandas()
    assert_frame_equal(loaded.events, original, check_exact=True, check_categorical=True)
    for column in ("source", "type", "category"):
        assert isinstance(loaded.events[column].dtype, pd.CategoricalDtype)
        assert list(loaded.events[column].cat.categories) == list(original[column].cat.categories)
    assert str(loaded.events["time"].dt.tz) == "UTC"
    assert_frame_equal(loaded.turns, session.transcript(), check_exact=True)
    assert_frame_equal(loaded.transcript(), session.transcript(), check_exact=True)
    assert loaded.recording.user.dtype == np.float32
    assert np.array_equal(loaded.recording.user, session.recording.user)
    assert np.array_equal(loaded.recording.assistant, session.recording.assistant)
    assert loaded.recording.sample_rate == session.recording.sample_rate
    assert loaded.config == public_config(session)


def test_folder_round_trip_gives_back_the_same_frames_and_arrays(recorded, saved_folder):
    assert sorted(p.name for p in saved_folder.iterdir()) == [
        "assistant.wav", "config.json", "conversation.wav", "events.parquet", "session.json",
        "transcript.txt", "turns.parquet", "user.wav"]
    assert_same_session(load_session(saved_folder), recorded)


def test_zip_round_trip(recorded, tmp_path):
    path = save_session(recorded, tmp_path / "conversation.zip")
    assert zipfile.is_zipfile(path)
    assert "events.parquet" in files_of(path)
    assert_same_session(load_session(path), recorded)


def test_jsonl_round_trip(recorded, tmp_path):
    path = save_session(recorded, tmp_path / "as-jsonl", tables="json")
    names = set(files_of(path))
    assert {"events.jsonl", "turns.jsonl"} <= names and "events.parquet" not in names
    rows = [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]
    assert len(rows) == len(recorded.events) and "session.created" in {r["type"] for r in rows}
    assert_same_session(load_session(path), recorded)


def test_saving_a_loaded_session_again_changes_nothing(recorded, saved_folder, tmp_path):
    again = save_session(load_session(saved_folder), tmp_path / "again.zip")
    assert_same_session(load_session(again), recorded)


def test_a_session_saved_with_an_older_turns_table_loads_with_todays_columns(recorded, tmp_path):
    import shutil

    from rtvoice_widget.turn_table import TURN_COLUMNS

    path = save_session(recorded, tmp_path / "older", tables="json")
    # As an earlier version wrote it: no voice_* columns (the sample session in notebooks/ is one).
    older = [json.loads(line) for line in (path / "turns.jsonl").read_text().splitlines()]
    (path / "turns.jsonl").write_text("".join(
        json.dumps({k: v for k, v in row.items() if not k.startswith("voice_")}) + "\n" for row in older))
    manifest = json.loads((path / "session.json").read_text())
    manifest["turns_dtypes"] = {k: v for k, v in manifest["turns_dtypes"].items() if not k.startswith("voice_")}
    (path / "session.json").write_text(json.dumps(manifest))
    loaded = load_session(path)
    assert list(loaded.turns.columns) == list(TURN_COLUMNS)
    assert_frame_equal(loaded.turns, recorded.transcript(), check_exact=True)
    assert "voice_to_first_audio_ms" in loaded.metrics()["latency"]
    shutil.rmtree(path)


def test_stereo_conversation_wav_holds_both_sides(recorded, saved_folder):
    import soundfile

    stereo, rate = soundfile.read(saved_folder / "conversation.wav", dtype="float32")
    assert rate == 24000 and stereo.shape[1] == 2
    n = max(len(recorded.recording.user), len(recorded.recording.assistant))
    assert stereo.shape[0] == n
    # PCM16 for listening: equal to the float tracks within one quantisation step.
    assert np.abs(stereo[: len(recorded.recording.user), 0] - recorded.recording.user).max() <= 1 / 32768
    assert np.abs(stereo[: len(recorded.recording.assistant), 1] - recorded.recording.assistant).max() <= 1 / 32768


def test_transcript_text_has_every_turn(saved_folder):
    lines = (saved_folder / "transcript.txt").read_text().splitlines()
    said = "\n".join(lines)
    for text in ("user: Hello there.", "assistant: Hi! How can I help?", "user: Tell me a story.",
                 "[interrupted]", 'function_call: price_of({"item": "coffee"})',
                 "assistant: A coffee costs three fifty."):
        assert text in said


# -- secrets ---------------------------------------------------------------------------------

def test_no_secret_in_any_saved_file(recorded, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-also-secret-1234567890")
    recorded_with_leaky_config = RealtimeSession(
        "ws://127.0.0.1:9/v1/realtime?api-key=" + SECRET, api_key=SECRET,
        config=SessionConfig(instructions=f"Never say {SECRET} or sk-env-also-secret-1234567890."))
    config = public_config(recorded_with_leaky_config)
    assert SECRET not in json.dumps(config) and "sk-env-also-secret" not in json.dumps(config)
    assert "[redacted]" in config["session"]["instructions"]

    for path in (save_session(recorded, tmp_path / "folder"), save_session(recorded, tmp_path / "a.zip")):
        for name, data in files_of(path).items():
            assert SECRET.encode() not in data, f"the API key leaked into {name}"
    config = json.loads((tmp_path / "folder" / "config.json").read_text())
    assert config["backend"] == "url"
    assert config["session"]["instructions"] == "Be brief."
    assert [t["name"] for t in config["session"]["tools"]] == ["price_of"]


# -- what a loaded session offers ----------------------------------------------------------------

def test_turn_audio_plays_the_turn(saved_folder):
    loaded = load_session(saved_folder)
    roles = loaded.turns["role"].tolist()
    user = loaded.turn(roles.index("user"))
    assert user.role == "user" and user.text == "Hello there."
    audio = user.audio
    assert isinstance(audio, Audio) and audio.data[:4] == b"RIFF"
    assert user.samples.size / 24000 == pytest.approx(0.8, abs=0.025)
    assert np.sqrt(np.mean(user.samples ** 2)) > 0.1  # the 0.3-amplitude tone, not silence

    story = loaded.turn(loaded.turns.index[loaded.turns["item_id"] == "item_a2"][0])
    assert bool(story.interrupted)
    heard_ms = story.truncated_at_ms
    assert 600 <= heard_ms <= 3000
    assert story.samples.size / 24 == pytest.approx(heard_ms, abs=1.0)

    call = loaded.turn(roles.index("function_call"))
    with pytest.raises(ValueError, match="no audio"):
        _ = call.audio
    assert "turn" in call._repr_html_()


def test_turn_audio_needs_no_matplotlib(saved_folder, monkeypatch):
    # matplotlib comes with the optional "analysis" extra; listening to a turn must not need it.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith(("matplotlib.", "rtvoice_widget.plots"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an absent package looks like to import
    with pytest.raises(ImportError):
        import rtvoice_widget.plots  # noqa: F401
    loaded = load_session(saved_folder)
    user = loaded.turn(loaded.turns["role"].tolist().index("user"))
    assert user.samples.size / 24000 == pytest.approx(0.8, abs=0.025)


def test_turn_numbers_are_checked(saved_folder):
    loaded = load_session(saved_folder)
    assert loaded.turn(-1).item_id == loaded.turns["item_id"].iloc[-1]
    with pytest.raises(IndexError, match="out of range"):
        loaded.turn(len(loaded.turns))
    with pytest.raises(TypeError):
        loaded.turn("1")


def test_metrics_summarise_the_conversation(recorded, saved_folder):
    metrics = load_session(saved_folder).metrics()
    assert metrics["user_turns"] == 3
    assert metrics["assistant_turns"] == 3
    assert metrics["tool_calls"] == 1
    assert metrics["interruptions"] == 1
    assert metrics["events"] == len(recorded.events)
    assert sum(metrics["events_by_category"].values()) == len(recorded.events)
    assert metrics["audio_sent_s"] == pytest.approx(1.9)
    assert metrics["audio_received_s"] == pytest.approx(0.9 + 3.0 + 0.7)
    first_audio = metrics["latency"]["speech_to_first_audio_ms"]
    assert first_audio["count"] >= 1 and first_audio["p50"] <= first_audio["p90"]
    assert math.isfinite(first_audio["p50"])


def test_plots_are_methods(saved_folder):
    from matplotlib.figure import Figure

    loaded = load_session(saved_folder)
    for fig in (loaded.plot_timeline(), loaded.plot_latency(), loaded.plot_event_counts()):
        assert isinstance(fig, Figure)
    assert "events" in repr(loaded) and "turns" in repr(loaded)


# -- bad input loses nothing -------------------------------------------------------------------

def test_existing_path_is_not_overwritten(recorded, saved_folder, tmp_path):
    before = files_of(saved_folder)
    with pytest.raises(FileExistsError):
        save_session(recorded, saved_folder)
    assert files_of(saved_folder) == before
    target = tmp_path / "twice"
    save_session(recorded, target)
    (target / "notes.txt").write_text("mine")
    save_session(recorded, target, overwrite=True)
    assert "notes.txt" not in files_of(target)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    with pytest.raises(FileExistsError, match="not a saved session"):
        save_session(recorded, mine, overwrite=True)
    assert (mine / "thesis.txt").read_text() == "years of work"


def test_save_rejects_what_is_not_a_session(recorded, tmp_path):
    with pytest.raises(TypeError, match="EventLog"):
        save_session(object(), tmp_path / "nothing")
    with pytest.raises(ValueError, match="tables"):
        save_session(recorded, tmp_path / "bad", tables="csv")
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_what_is_not_a_saved_session(saved_folder, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_session(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a saved rtvoice-widget session"):
        load_session(tmp_path / "empty")
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="neither"):
        load_session(tmp_path / "text.zip")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("../session.json", "{}")
    with pytest.raises(ValueError, match="unexpected member"):
        load_session(tmp_path / "evil.zip")
    newer = tmp_path / "newer"
    newer.mkdir()
    manifest = json.loads((saved_folder / "session.json").read_text())
    (newer / "session.json").write_text(json.dumps(dict(manifest, version=99)))
    with pytest.raises(ValueError, match="newer"):
        load_session(newer)


def test_a_voice_chat_saves_like_its_session(tmp_path):
    from rtvoice_widget import VoiceChat

    with ScriptedServer() as server:
        chat = VoiceChat(url=server.url, api_key=SECRET, instructions="Answer in French.")
        chat.connect()
        server.wait_for("session.update")
        after = chat.session.last_seq
        server.play(voice_turn(user_text="Bonjour.", transcript="Bonjour ! Ça va ?"))
        chat.session.wait_for("response.done", after=after)
        chat.close()
    path = chat.save(tmp_path / "chat.zip")
    assert path == tmp_path / "chat.zip"
    assert all(SECRET.encode() not in data for data in files_of(path).values())
    assert chat.turn(-1).row["text"] == "Bonjour ! Ça va ?"
    assert chat.analysis().metrics()["assistant_turns"] == 1
    loaded = load_session(path)
    assert_frame_equal(loaded.events, chat.events.to_pandas(), check_exact=True)
    assert loaded.turns["text"].tolist() == ["Bonjour.", "Bonjour ! Ça va ?"]
    assert loaded.config["session"]["instructions"] == "Answer in French."
    assert loaded.config["backend"] == "url"


def test_a_snapshot_of_the_live_session_equals_the_loaded_one(recorded, saved_folder):
    live, loaded = snapshot(recorded), load_session(saved_folder)
    assert live.path is None and "in memory" in repr(live)
    assert_frame_equal(live.events, loaded.events, check_exact=True)
    assert_frame_equal(live.turns, loaded.turns, check_exact=True)
    assert live.metrics()["latency"].keys() == loaded.metrics()["latency"].keys()
    for n in range(len(live.turns)):
        assert np.array_equal(live.turn(n).samples, loaded.turn(n).samples)
