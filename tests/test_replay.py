"""Replay and compare (rtvoice_widget/replay.py, rtvoice_widget/comparison.py).

The saved sample conversation (notebooks/data/sample_session: three spoken user turns, one
interrupted reply, one tool call) is replayed into the scripted WebSocket server (exact audio and
order on the wire, every client event validated with the SDK) and into the real embedded server
(its VAD, Whisper and SmolLM2 hear the saved voice again).
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from rtvoice_widget import compare, plot_comparison
from rtvoice_widget.replay import config_from_saved, replay_turns
from rtvoice_widget.saved import load_session, save_session
from scripted_server import ScriptedServer, voice_turn
from session_fixtures import no_session_thread_survives  # noqa: F401

pytestmark = pytest.mark.timeout(300)

SAMPLE = Path(__file__).resolve().parent.parent / "notebooks" / "data" / "sample_session"


@pytest.fixture(scope="module")
def sample():
    return load_session(SAMPLE)


def test_replay_turns_are_the_saved_user_turns_with_their_voice(sample):
    turns = replay_turns(sample)
    users = sample.turns[sample.turns["role"] == "user"]
    assert [t.source_item_id for t in turns] == list(users["item_id"])
    assert [t.text for t in turns] == list(users["text"])
    assert all(t.kind == "audio" for t in turns)
    for turn in turns:
        audio = np.frombuffer(turn.pcm16, "<i2") / 32768.0
        # The words are in it, and it is about as long as the VAD heard them (plus margins).
        assert np.sqrt(np.mean(audio ** 2)) > 0.01
        assert 1000 < turn.audio_ms < 8000


def test_config_from_saved_keeps_the_saved_settings(sample):
    config = config_from_saved(sample.config)
    saved = sample.config["session"]
    assert config.instructions == saved["instructions"]
    assert config.voice == saved["audio"]["output"]["voice"]
    assert config.turn_detection.silence_duration_ms == saved["audio"]["input"]["turn_detection"]["silence_duration_ms"]
    assert config.tools == ()


def test_replay_into_a_scripted_server_sends_each_turn_after_the_last_reply(sample):
    with ScriptedServer() as server:
        replies = iter(range(100))

        def answer(event, srv):
            return voice_turn(with_speech=False, transcript=f"reply {next(replies)}", audio_ms=300)

        server.respond("response.create", answer)
        lines: list[str] = []
        result = sample.replay(config={"turn_detection": None, "instructions": "Be brief."}, url=server.url,
                               backend="url", speed=math.inf, pause_ms=0, progress=lines.append)
        assert server.assert_client_events_valid() > 0
        update = server.client_events("session.update")[0]["session"]
        assert update["instructions"] == "Be brief." and update["audio"]["input"]["turn_detection"] is None
        # Each turn's audio on the wire is exactly the saved turn's, between two commits.
        expected = [t.pcm16 for t in replay_turns(sample)]
        sent, current = [], b""
        for event in server.client_events():
            if event["type"] == "input_audio_buffer.append":
                current += base64.b64decode(event["audio"])
            elif event["type"] == "input_audio_buffer.commit":
                sent.append(current)
                current = b""
        assert sent == expected
    assert len(lines) == 3 and all("answered" in line for line in lines)

    events = result.events
    marks = events[events["type"] == "replay.turn"]
    assert list(marks["payload"].map(lambda p: p["source_item_id"])) == list(
        sample.turns.loc[sample.turns["role"] == "user", "item_id"])
    assert set(marks["category"]) == {"system"}
    # Like a person: the next turn's first words go out only after the previous reply is done.
    dones = events[(events["type"] == "response.done")]["seq"].tolist()
    firsts = [events[(events["type"] == "input_audio_buffer.append") & (events["seq"] > m)]["seq"].min()
              for m in marks["seq"]]
    assert len(dones) == 3
    assert firsts[1] > dones[0] and firsts[2] > dones[1]
    assert result.config["replay_of"] == str(SAMPLE) and result.config["replay_speed"] == "inf"

    table = compare(sample, result, labels=("original", "replay"))
    assert list(table["turn"]) == [0, 1, 2]
    assert list(table["reply_replay"]) == ["reply 0", "reply 1", "reply 2"]
    assert list(table["user_original"]) == list(sample.turns.loc[sample.turns["role"] == "user", "text"])
    assert table["gap_ms_replay"].notna().all() and (table["gap_ms_replay"] > 0).all()
    assert list(table["interruptions_original"]) == [1, 0, 0] and list(table["interruptions_replay"]) == [0, 0, 0]
    assert table["tool_calls_original"].iloc[1] == 'menu_price({"item": "coffee"})'
    assert table["tool_calls_replay"].isna().all()
    assert np.allclose(table["gap_diff_ms"], table["gap_ms_replay"] - table["gap_ms_original"], equal_nan=True)
    assert table["duration_ms_replay"].tolist() == pytest.approx([300.0] * 3, abs=1)
    fig = plot_comparison(table)
    assert len(fig.axes) == 2 and [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["original", "replay"]


def test_compare_pairs_turns_by_index_and_leaves_missing_ones_empty(sample, tmp_path):
    # A conversation compared with itself matches cell by cell; saved and reloaded it still does.
    copy = load_session(save_session(sample, tmp_path / "copy"))
    table = compare(sample, copy)
    for field in ("user", "reply", "gap_ms", "duration_ms", "interruptions", "tool_calls"):
        pd.testing.assert_series_equal(table[f"{field}_a"], table[f"{field}_b"], check_names=False)
    assert (table["gap_diff_ms"] == 0).all()
    with pytest.raises(ValueError, match="labels"):
        compare(sample, copy, labels=("x", "x"))


@pytest.mark.parametrize("speed", [0, -1.0, float("nan"), True, "fast"])
def test_a_bad_speed_raises_before_connecting(sample, speed):
    with pytest.raises(ValueError, match="speed"):
        sample.replay(url="ws://127.0.0.1:9/v1/realtime", speed=speed)


def menu_price(item: Literal["coffee", "tea", "cake"]) -> dict:
    """Price of one item on the cafe menu, in euros."""
    return {"item": item, "price_eur": {"coffee": 3.5, "tea": 2.8, "cake": 4.2}[item]}


@pytest.mark.models
def test_replay_on_the_local_server_hears_the_saved_voice(sample):
    from rtvoice_widget.server import LocalRealtimeServer

    server = LocalRealtimeServer()
    url = server.start()
    try:
        result = sample.replay(config={"instructions": "Answer in one short sentence."}, tools=[menu_price],
                               url=url, backend="url", speed=4.0, turns=[0, 1])
    finally:
        server.stop()
    assert not (result.events["category"] == "error").any(), result.events[result.events["category"] == "error"]
    table = compare(sample, result)
    assert len(table) == 3 and pd.isna(table["user_b"].iloc[2])  # two turns replayed
    # Whisper heard the saved voice again.
    assert "coffee" in table["user_b"].iloc[1].lower()
    # Each replayed turn was answered with audio, and its gap measured on the new recording.
    assert table["gap_ms_b"].iloc[:2].notna().all() and (table["duration_ms_b"].iloc[:2] > 0).all()
