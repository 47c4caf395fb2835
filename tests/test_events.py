"""The event log: schema, audio stripping, categories, filters, stats, subscribers, threads,
pruning and save/load round trips. Events are real-shaped GA events (the scripted server's
builders), validated against the official SDK types."""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timezone
from typing import get_args

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import TypeAdapter
from scripted_server import (
    barge_in,
    error_event,
    function_call_turn,
    pcm16_tone,
    session_created,
    voice_turn,
)

from rtvoice_widget.events import (
    CATEGORIES,
    COLUMNS,
    EventLog,
    audio_ms_of_base64,
    category_of,
)

SERVER = TypeAdapter(RealtimeServerEvent)
CLIENT = TypeAdapter(RealtimeClientEvent)


def mic_append(ms: float) -> dict:
    return {"type": "input_audio_buffer.append", "event_id": "evt_c1",
            "audio": base64.b64encode(pcm16_tone(ms)).decode("ascii")}


def with_event_ids(steps) -> list[dict]:
    """The dict steps of a script, stamped with event ids the way the scripted server sends them."""
    events = [dict(s, event_id=s.get("event_id", f"event_{k}")) for k, s in enumerate(steps) if isinstance(s, dict)]
    for event in events:
        SERVER.validate_python(event)
    return events


def server_events() -> list[dict]:
    return with_event_ids([session_created(), *voice_turn(audio_ms=500.0), *function_call_turn(),
                           error_event("bad thing")])


def filled_log() -> EventLog:
    log = EventLog()
    t = 0.0
    for _ in range(10):
        event = mic_append(20)
        CLIENT.validate_python(event)
        log.append("client", event, t)
        t += 20.0
    for event in server_events():
        log.append("server", event, t)
        t += 5.0
    log.local("mic.started", t)
    log.local("connection.lost", t + 1, text="peer went away", code=1006)
    return log


# -- schema ----------------------------------------------------------------------------

def test_to_pandas_has_exact_schema():
    df = filled_log().to_pandas()
    assert tuple(df.columns) == COLUMNS
    assert df["seq"].dtype == np.int64
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert df["t_ms"].dtype == np.float64 and df["audio_ms"].dtype == np.float64
    for col in ("source", "type", "category"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col
    assert list(df["source"].cat.categories) == ["client", "server", "local"]
    assert list(df["category"].cat.categories) == list(CATEGORIES)
    assert df["seq"].tolist() == list(range(len(df)))
    assert df["time"].is_monotonic_increasing
    assert all(isinstance(p, dict) for p in df["payload"])


def test_empty_log_has_the_schema_too():
    df = EventLog().to_pandas()
    assert tuple(df.columns) == COLUMNS and len(df) == 0
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(df["category"].dtype, pd.CategoricalDtype)


def test_audio_is_replaced_by_its_duration_and_the_caller_event_is_untouched():
    log = EventLog()
    event = mic_append(20)
    original = dict(event)
    audio_deltas = [e for e in with_event_ids(voice_turn(audio_ms=300.0)) if e["type"] == "response.output_audio.delta"]
    log.append("client", event, 0.0)
    for d in audio_deltas:
        log.append("server", d, 1.0)
    df = log.to_pandas()
    assert event == original  # the session may still send it
    assert df["audio_ms"].tolist() == [20.0] + [100.0] * 3
    for payload in df["payload"]:
        assert "audio" not in payload and "delta" not in payload
    assert df["payload"][1]["item_id"] == audio_deltas[0]["item_id"]
    assert df["text"].isna().all()  # an audio delta is not text


@given(st.binary(max_size=5000).filter(lambda b: len(b) % 2 == 0))
def test_audio_ms_from_base64_length_matches_decoding(pcm):
    assert audio_ms_of_base64(base64.b64encode(pcm).decode()) == len(pcm) / 48.0


def test_ids_and_text_are_pulled_from_nested_objects():
    log = EventLog()
    for event in server_events():
        log.append("server", event, 0.0)
    df = log.to_pandas()

    def first(type_):
        return df[df["type"] == type_].iloc[0]

    created = first("response.created")
    assert created["response_id"] == created["payload"]["response"]["id"]
    added = first("conversation.item.added")
    assert added["item_id"] == added["payload"]["item"]["id"]
    assert first("conversation.item.input_audio_transcription.completed")["text"] == "What's the weather like?"
    assert first("response.output_audio_transcript.done")["text"] == "It is sunny and warm today."
    assert first("response.output_audio_transcript.delta")["text"] == "It "
    assert first("error")["text"] == "bad thing" and first("error")["category"] == "error"
    assert first("session.created")["event_id"] is not None and first("session.created")["item_id"] is None


def test_time_is_taken_from_argument_or_now():
    log = EventLog()
    when = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    log.append("local", {"type": "mic.started"}, 0.0, time=when)
    log.append("local", {"type": "mic.stopped"}, 1.0, time=pd.Timestamp("2026-01-02 03:04:06.000000001"))
    before = pd.Timestamp.now(tz="UTC")
    log.append("local", {"type": "mic.started"}, 2.0)
    times = log.to_pandas()["time"]
    assert times[0] == pd.Timestamp(when)
    assert times[1] == pd.Timestamp("2026-01-02 03:04:06.000000001", tz="UTC")
    assert times[2] >= before - pd.Timedelta(seconds=1)


# -- categories ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "type_, source, expected",
    [
        ("input_audio_buffer.append", "client", "user_speech"),
        ("input_audio_buffer.speech_started", "server", "user_speech"),
        ("conversation.item.input_audio_transcription.delta", "server", "user_speech"),
        ("conversation.item.input_audio_transcription.failed", "server", "error"),
        ("conversation.item.create", "client", "user_speech"),
        ("mic.started", "local", "user_speech"),
        ("response.output_audio.delta", "server", "ai_response"),
        ("response.create", "client", "ai_response"),
        ("playback.flushed", "local", "ai_response"),
        ("conversation.item.truncate", "client", "ai_response"),
        ("conversation.item.truncated", "server", "ai_response"),
        ("error", "server", "error"),
        ("response.failed", "server", "error"),
        ("tool.error", "local", "error"),
        ("custom.error", "server", "system"),  # only local *.error are error reports
        ("connection.lost", "local", "connection"),
        ("connection.reconnected", "local", "connection"),
        ("session.updated", "server", "system"),
        ("rate_limits.updated", "server", "system"),
        ("response.function_call_arguments.delta", "server", "system"),
        ("tool.started", "local", "system"),
        ("something.new", "server", "system"),
    ],
)
def test_category_rules(type_, source, expected):
    assert category_of(type_, source) == expected


def test_item_events_are_categorised_by_their_item():
    user = {"type": "conversation.item.added", "item": {"type": "message", "role": "user"}}
    assistant = {"type": "conversation.item.added", "item": {"type": "message", "role": "assistant"}}
    call = {"type": "response.output_item.added", "item": {"type": "function_call"}}
    output = {"type": "conversation.item.create", "item": {"type": "function_call_output"}}
    system = {"type": "conversation.item.create", "item": {"type": "message", "role": "system"}}
    assert category_of(system["type"], "client", system) == "system"
    assert category_of(user["type"], "server", user) == "user_speech"
    assert category_of(assistant["type"], "server", assistant) == "ai_response"
    assert category_of(call["type"], "server", call) == "system"
    assert category_of(output["type"], "client", output) == "system"
    log = EventLog()
    for e in (user, assistant, call, user):  # the per-type cache must not freeze item types
        log.append("server", e, 0.0)
    assert log.to_pandas()["category"].tolist() == ["user_speech", "ai_response", "system", "user_speech"]


def _literal_types(adapter_union) -> set[str]:
    types = set()
    for member in get_args(get_args(adapter_union)[0]):
        types.update(get_args(member.model_fields["type"].annotation))
    return types


def test_every_sdk_event_type_gets_a_category_and_errors_are_errors():
    server_types = _literal_types(RealtimeServerEvent)
    client_types = _literal_types(RealtimeClientEvent)
    assert len(server_types) > 30 and len(client_types) > 8
    for t in server_types:
        c = category_of(t, "server")
        assert c in CATEGORIES
        assert (c == "error") == (t == "error" or t.endswith(".failed")), t
        if t.startswith("input_audio_buffer."):
            assert c == "user_speech", t
        if t.startswith("response.") and c != "error":
            tool = t.startswith(("response.function_call_arguments.", "response.mcp_call"))
            assert c == ("system" if tool else "ai_response"), t
    for t in client_types:
        assert category_of(t, "client") in CATEGORIES


# -- local, filter, stats --------------------------------------------------------------

def test_local_events_fill_columns_and_payload():
    log = EventLog()
    seq = log.local("playback.flushed", 12.5, text="barge-in", item_id="item_1", played_ms=840)
    row = log.to_pandas().iloc[0]
    assert seq == 0
    assert (row["source"], row["type"], row["category"]) == ("local", "playback.flushed", "ai_response")
    assert row["item_id"] == "item_1" and row["text"] == "barge-in" and row["t_ms"] == 12.5
    assert row["payload"] == {"type": "playback.flushed", "item_id": "item_1", "played_ms": 840, "text": "barge-in"}


def test_filter_by_each_criterion():
    log = filled_log()
    df = log.to_pandas()
    assert (log.filter(category="user_speech")["category"] == "user_speech").all()
    assert len(log.filter(category="user_speech")) == (df["category"] == "user_speech").sum()
    assert set(log.filter(type="response.output_audio*")["type"]) == {
        "response.output_audio.delta", "response.output_audio.done",
        "response.output_audio_transcript.delta", "response.output_audio_transcript.done"}
    assert set(log.filter(source=["local"])["type"]) == {"mic.started", "connection.lost"}
    fc = df[df["type"] == "response.function_call_arguments.done"].iloc[0]
    by_item = log.filter(item_id=fc["item_id"])
    assert len(by_item) >= 4 and (by_item["item_id"] == fc["item_id"]).all()
    by_resp = log.filter(response_id=fc["response_id"], type="response.done")
    assert len(by_resp) == 1
    late = log.filter(since_ms=df["t_ms"].iloc[-3])
    assert late["seq"].tolist() == df["seq"].iloc[-3:].tolist()
    both = log.filter(category=["error", "connection"], source="local")
    assert both["type"].tolist() == ["connection.lost"]
    assert len(log.filter(type="nothing.like.this")) == 0
    assert tuple(log.filter(type="nothing.like.this").columns) == COLUMNS


def test_filter_rejects_unknown_category_or_source():
    log = filled_log()
    with pytest.raises(ValueError, match="category"):
        log.filter(category="speech")
    with pytest.raises(ValueError, match="source"):
        log.filter(source="browser")


def test_stats_counts_rate_and_audio_each_way():
    log = filled_log()
    s = log.stats()
    df = log.to_pandas()
    assert s["events"] == len(df)
    assert s["by_category"] == df["category"].value_counts()[lambda c: c > 0].to_dict()
    assert s["by_type"]["input_audio_buffer.append"] == 10
    assert s["audio_ms_sent"] == pytest.approx(200.0)
    assert s["audio_ms_received"] == pytest.approx(500.0)
    span = df["t_ms"].iloc[-1] - df["t_ms"].iloc[0]
    assert s["rate_per_s"] == pytest.approx((len(df) - 1) / span * 1000)


# -- subscribers -----------------------------------------------------------------------

def test_subscribers_get_each_row_and_can_unsubscribe():
    log = EventLog()
    rows = []
    unsubscribe = log.subscribe(rows.append)
    log.append("client", mic_append(40), 1.0)
    log.local("mic.started", 2.0)
    unsubscribe()
    log.local("mic.stopped", 3.0)
    assert [r["type"] for r in rows] == ["input_audio_buffer.append", "mic.started"]
    assert rows[0]["audio_ms"] == 40.0 and "audio" not in rows[0]["payload"]
    assert set(rows[0]) == set(COLUMNS)
    assert rows[1]["time"].tzinfo is not None and rows[1]["category"] == "user_speech"


def test_failing_subscriber_loses_nothing_and_is_reported():
    log = EventLog()
    seen = []

    def broken(row):
        raise RuntimeError("ui is gone")

    log.subscribe(broken)
    log.subscribe(seen.append)
    log.local("mic.started", 1.0)
    df = log.to_pandas()
    assert df["type"].tolist() == ["mic.started", "subscriber.error"]
    assert "ui is gone" in df["text"][1] and df["category"][1] == "error"
    assert [r["type"] for r in seen] == ["mic.started"]


def test_two_failing_subscribers_cannot_loop():
    log = EventLog()

    def broken(row):
        raise ValueError(row["type"])

    log.subscribe(broken)
    log.subscribe(lambda row: 1 / 0)
    log.local("mic.started", 1.0)
    log.local("mic.stopped", 2.0)
    types = log.to_pandas()["type"].tolist()
    assert types == ["mic.started", "subscriber.error", "subscriber.error",
                     "mic.stopped", "subscriber.error", "subscriber.error"]
    assert log.to_pandas()["payload"][2]["failed_seq"] == 0


# -- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "source, event, error",
    [
        ("server", "not a dict", TypeError),
        ("server", {"no": "type"}, TypeError),
        ("server", {"type": 42}, TypeError),
        ("browser", {"type": "x"}, ValueError),
        ("server", {"type": "x"}, "bad t_ms"),
        ("server", {"type": "x"}, "bad time"),
        ("server", {"type": "x"}, "huge time"),
    ],
)
def test_bad_appends_raise_and_log_nothing(source, event, error):
    log = EventLog()
    log.local("mic.started", 0.0)
    t_ms, time, error = {
        "bad t_ms": ("soon", None, ValueError),
        "bad time": (1.0, "yesterday", TypeError),
        "huge time": (1.0, 2**64, ValueError),
    }.get(error, (1.0, None, error))
    with pytest.raises(error):
        log.append(source, event, t_ms, time=time)
    assert log.to_pandas()["seq"].tolist() == [0]  # columns still aligned
    assert len(log) == 1 and log.append("server", {"type": "x"}, 2.0) == 1


def test_bad_max_events():
    with pytest.raises(ValueError, match="max_events"):
        EventLog(max_events=0)


# -- threads ---------------------------------------------------------------------------

def test_concurrent_appends_keep_every_event_in_order():
    log = EventLog()
    n_threads, per_thread = 8, 4000
    barrier = threading.Barrier(n_threads)

    def worker(k):
        barrier.wait()
        for i in range(per_thread):
            log.append("client", {"type": "input_audio_buffer.append", "audio": "AAAA", "thread": k, "i": i}, float(i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    df = log.to_pandas()
    assert len(df) == n_threads * per_thread
    assert df["seq"].tolist() == list(range(len(df)))
    per = pd.DataFrame({"thread": [p["thread"] for p in df["payload"]], "i": [p["i"] for p in df["payload"]],
                        "t_ms": df["t_ms"]})
    for _, group in per.groupby("thread"):
        assert group["i"].tolist() == list(range(per_thread))  # each thread's order kept
        assert (group["t_ms"].to_numpy() == group["i"].to_numpy()).all()  # columns not mixed up
    assert (df["audio_ms"] == 3 / 48).all()


def test_snapshots_taken_during_appends_are_consistent():
    log = EventLog(max_events=3000)
    done = threading.Event()
    problems = []

    def writer():
        for i in range(20000):
            log.append("server", {"type": "response.output_audio.delta", "delta": "AAAA", "i": i}, float(i))
        done.set()

    def reader():
        while not done.is_set():
            df = log.to_pandas()
            if len(df):
                i = np.array([p["i"] for p in df["payload"]])
                if not (np.array_equal(i, df["t_ms"].to_numpy()) and np.array_equal(i, df["seq"].to_numpy())):
                    problems.append(len(df))
                if len(df) > 3000:
                    problems.append(("too long", len(df)))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert problems == []
    assert log.pruned == 17000 and len(log) == 3000


def test_bytes_audio_in_local_events_counts_too():
    log = EventLog()
    log.append("client", {"type": "input_audio_buffer.append", "audio": b"\0" * 960}, 0.0)
    row = log.to_pandas().iloc[0]
    assert row["audio_ms"] == 20.0 and row["payload"] == {"type": "input_audio_buffer.append"}


# -- pruning ---------------------------------------------------------------------------

def test_max_events_keeps_the_newest_and_counts_the_pruned():
    log = EventLog(max_events=100)
    for i in range(1000):
        log.local("tick", float(i), n=i)
    df = log.to_pandas()
    assert len(log) == len(df) == 100
    assert log.pruned == 900 and df.attrs["pruned"] == 900 and log.stats()["pruned"] == 900
    assert df["seq"].tolist() == list(range(900, 1000))
    assert [p["n"] for p in df["payload"]] == list(range(900, 1000))
    assert log.filter(type="tick")["seq"].iloc[0] == 900
    assert log.filter(since_ms=950.0)["seq"].tolist() == list(range(950, 1000))
    assert repr(log) == "<EventLog 100 events, 900 pruned>"


def test_loading_into_a_smaller_log_prunes(tmp_path):
    log = EventLog()
    for i in range(50):
        log.local("tick", float(i))
    small = EventLog.load(log.save(tmp_path / "e.jsonl"), max_events=20)
    assert len(small) == 20 and small.pruned == 30
    assert small.to_pandas()["seq"].tolist() == list(range(30, 50))


# -- save / load -----------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_save_load_round_trip_is_identical(tmp_path, suffix):
    log = filled_log()
    log.local("note", 999.0, text="ünïcödé ✓ \"quoted\"\nnewline", values=[1, 2.5, None], nested={"a": {"b": True}})
    path = log.save(tmp_path / f"events{suffix}")
    loaded = EventLog.load(path)
    pd.testing.assert_frame_equal(loaded.to_pandas(), log.to_pandas())
    # the loaded log keeps counting
    assert loaded.append("local", {"type": "after.load"}, 1000.0) == len(log)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip_of_a_pruned_log_keeps_seq_and_pruned(tmp_path, suffix):
    log = EventLog(max_events=10)
    for i in range(25):
        log.append("server", {"type": "response.output_audio.delta", "delta": "AAAA", "item_id": f"i{i}"}, i)
    loaded = EventLog.load(log.save(tmp_path / f"p{suffix}"))
    pd.testing.assert_frame_equal(loaded.to_pandas(), log.to_pandas())
    assert loaded.pruned == 15


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip_of_empty_log(tmp_path, suffix):
    log = EventLog()
    loaded = EventLog.load(log.save(tmp_path / f"e{suffix}"))
    pd.testing.assert_frame_equal(loaded.to_pandas(), log.to_pandas())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
random_events = st.tuples(
    st.sampled_from(["client", "server", "local"]),
    st.sampled_from(["response.output_audio_transcript.delta", "input_audio_buffer.append", "error",
                     "conversation.item.added", "session.updated", "x.y", "réponse.ünïcode"]),
    st.dictionaries(st.sampled_from(["delta", "item_id", "response_id", "event_id", "extra", "text"]),
                    st.text(max_size=30) | st.none(), max_size=4),
    st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "type"), json_values, max_size=3),
    st.floats(-1e9, 1e12, allow_nan=False),
)


@settings(deadline=None, max_examples=25)
@given(st.lists(random_events, max_size=30), st.sampled_from([".jsonl", ".parquet"]), st.sampled_from([None, 7]))
def test_save_load_round_trip_of_arbitrary_events(tmp_path_factory, events, suffix, max_events):
    log = EventLog(max_events=max_events)
    for source, type_, fields, extra, t_ms in events:
        log.append(source, {**extra, **fields, "type": type_}, t_ms)
    path = log.save(tmp_path_factory.mktemp("rt") / f"log{suffix}")
    loaded = EventLog.load(path)
    pd.testing.assert_frame_equal(loaded.to_pandas(), log.to_pandas())
    assert loaded.pruned == log.pruned and loaded.stats() == log.stats()


@given(st.text(max_size=60), st.sampled_from(["client", "server", "local"]))
def test_category_of_is_total(type_, source):
    assert category_of(type_, source) in CATEGORIES


def test_jsonl_rows_are_plain_json_with_every_column(tmp_path):
    path = filled_log().save(tmp_path / "e.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(tuple(r) == COLUMNS for r in rows)
    assert rows[0]["time"].endswith("Z")


def test_save_refuses_unserialisable_payload_and_writes_nothing(tmp_path):
    log = EventLog()
    log.local("note", 0.0, thing=object())
    with pytest.raises(TypeError, match="not JSON serialisable"):
        log.save(tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
    assert len(log) == 1


def test_numpy_values_in_local_payloads_are_saved_as_json(tmp_path):
    log = EventLog()
    log.local("echo.estimate", 0.0, score=np.float32(0.5), counts=np.array([1, 2]))
    loaded = EventLog.load(log.save(tmp_path / "n.jsonl"))
    assert loaded.to_pandas()["payload"][0] == {"type": "echo.estimate", "score": 0.5, "counts": [1, 2]}


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seq": 0}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        EventLog.load(bad)
    bad.write_text('{"seq": 0}\n')
    with pytest.raises(ValueError, match="lack the columns"):
        EventLog.load(bad)
    with pytest.raises(ValueError, match=".jsonl or .parquet"):
        EventLog.load(tmp_path / "x.csv")
    with pytest.raises(ValueError, match=".jsonl or .parquet"):
        EventLog().save(tmp_path / "x.csv")


# -- transcript ------------------------------------------------------------------------

def test_transcript_has_one_row_per_turn():
    log = EventLog()
    t = 0.0
    for event in with_event_ids([*voice_turn(user_text="Hi there", transcript="Hello you"),
                                 *barge_in(sent_audio_ms=400.0)]):
        log.append("server", event, t)
        t += 10.0
    table = log.transcript()
    # the barge-in's speech_started opens a user turn that has no transcript yet
    assert table["role"].tolist() == ["user", "assistant", "assistant", "user"]
    assert table["text"].tolist()[:2] == ["Hi there", "Hello you"] and table["text"][3] is None
    assert table["interrupted"].tolist() == [False, False, True, False]
