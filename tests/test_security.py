"""Issue #11: nothing outside the notebook can drive the local server or stall the session.

Real sockets throughout: the local server (cheap engines: energy VAD, echo LLM), the official
openai SDK, ``websockets`` clients and the real audio link.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
import websockets
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter
from websockets.asyncio.client import connect
from websockets.sync.client import connect as ws_connect

from rtvoice_widget.audio_link import AudioLink

from rtvoice_widget.server import LocalRealtimeServer, ensure_local_server, local_server_token, stop_local_server
from rtvoice_widget.server.cli import READY_PREFIX
from rtvoice_widget.server.engines import load_engines
from widget_harness.bridge import wait_until

SERVER_EVENT = TypeAdapter(RealtimeServerEvent)


@pytest.fixture(scope="module")
def engines():
    return load_engines(vad="energy", llm="echo")


async def _first_event(url: str, **options) -> dict:
    async with connect(url, **options) as ws:
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        SERVER_EVENT.validate_python(event)
        return event


def _status(url: str, **options) -> int | None:
    """The HTTP status a refused handshake got (None: it was accepted)."""
    try:
        asyncio.run(_first_event(url, **options))
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    return None


async def _sdk_first_event(base_url: str, api_key: str) -> dict:
    sdk = AsyncOpenAI(api_key=api_key, websocket_base_url=base_url)
    async with sdk.realtime.connect(model="gpt-realtime") as conn:
        event = json.loads(await asyncio.wait_for(conn.recv_bytes(), 30))
        SERVER_EVENT.validate_python(event)
        return event


def _sdk_status(base_url: str, api_key: str) -> int | None:
    try:
        asyncio.run(_sdk_first_event(base_url, api_key))
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    return None


# -- ways in: the local server -------------------------------------------------------------------


def test_a_web_page_cannot_drive_the_server(engines):
    with LocalRealtimeServer(engines=engines, progress=None) as server:
        assert _status(server.url, origin="https://evil.example") == 403
        assert _status(server.url, origin="null") == 403  # sandboxed iframes, file:// pages
        assert _status(server.url) is None  # the SDK and our client send no Origin


def test_an_explicitly_allowed_origin_may_connect(engines):
    with LocalRealtimeServer(engines=engines, progress=None, allowed_origins=["https://App.example/"]) as server:
        assert _status(server.url, origin="https://app.example") is None
        assert _status(server.url, origin="https://app.example:8443") == 403
        assert _status(server.url, origin="https://evil.example") == 403


def test_ensure_local_server_requires_a_secret_passed_by_environment():
    try:
        url = ensure_local_server(vad="energy", llm="echo")
        token = local_server_token(url)
        assert token and len(token) >= 32
        base = url.removesuffix("/realtime")
        # The official SDK sends api_key as Authorization: Bearer.
        assert _sdk_status(base, token) is None
        assert _sdk_status(base, "local") == 401
        assert _status(url) == 401
        assert _status(url, additional_headers={"api-key": token}) is None
        # Not on the command line (process lists show it), and not inherited by what it starts.
        from rtvoice_widget.server import local as local_module

        pid = local_module._server.process.pid
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert token.encode() not in f.read()
        # The client finds the secret by itself: backend="local", and url= this server's URL.
        from rtvoice_widget.backends import resolve_endpoint
        from rtvoice_widget.session import RealtimeSession

        for endpoint in (resolve_endpoint(backend="local"), resolve_endpoint(url)):
            assert dict(endpoint.headers) == {"Authorization": f"Bearer {token}"}
            assert token not in repr(endpoint) and token not in endpoint.label
        with RealtimeSession(url) as session:
            assert session.connected
    finally:
        stop_local_server()


def test_cli_takes_its_token_and_origins_from_env_and_flags():
    env = dict(os.environ, RTVOICE_SERVER_TOKEN="s3cret-from-env",
               PYTHONPATH=os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p))
    process = subprocess.Popen(
        [sys.executable, "-m", "rtvoice_widget.server", "--port", "0", "--vad", "energy", "--llm", "echo",
         "--allow-origin", "https://app.example", "--exit-with-parent"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        for line in process.stdout:
            if line.startswith(READY_PREFIX):
                break
        url = line[len(READY_PREFIX):].strip()
        assert _status(url) == 401
        assert _sdk_status(url.removesuffix("/realtime"), "s3cret-from-env") is None
        bearer = {"additional_headers": {"Authorization": "Bearer s3cret-from-env"}}
        assert _status(url, origin="https://app.example", **bearer) is None
        assert _status(url, origin="https://evil.example", **bearer) == 403
    finally:
        process.stdin.close()
        process.wait(timeout=30)


# -- ways in and ways to wedge it: the audio link ---------------------------------------------------


def _link_message(data: bytes) -> tuple[dict, bytes]:
    length = int.from_bytes(data[:2], "little")
    return json.loads(data[2 : 2 + length]), data[2 + length :]


@pytest.fixture
def link():
    frames: list[tuple[dict, bytes]] = []
    link = AudioLink(lambda content, pcm: frames.append((content, pcm)))
    link.frames = frames
    yield link
    link.close()


def test_idle_pre_auth_connections_are_bounded_cost_no_threads_and_time_out(link):
    threads = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", link.port)) for _ in range(link.MAX_PENDING + 20)]
    try:
        for sock in idle:
            sock.settimeout(30)
        # Over the bound: closed at once. The others: closed when their handshake time is up.
        for sock in idle:
            assert sock.recv(1) == b""
        assert link.refused >= 20
        assert threading.active_count() == threads  # one loop serves them all: no thread each
    finally:
        for sock in idle:
            sock.close()
    # Afterwards a page connects as usual.
    with ws_connect(f"{link.url}?token={link.token}") as page:
        header, _ = _link_message(page.recv(timeout=10))
        assert header["type"] == "hello" and header["key"] == link.key


def test_the_token_never_reaches_a_log_even_at_debug_level(link, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("websockets").setLevel(logging.DEBUG)
    # This test's client (the page's side) logs what it sends too: its log is not the kernel's.
    page_log = logging.getLogger("test.page")
    page_log.setLevel(logging.INFO)
    try:
        with ws_connect(f"{link.url}?token={link.token}", logger=page_log) as page:
            page.recv(timeout=10)
            page.send(struct.pack("<ddII", 1.0, 2.0, 1, 0) + bytes(960))
            wait_until(lambda: link.frames, 30, "the frame")
        with pytest.raises(websockets.InvalidStatus):
            ws_connect(f"{link.url}?token=wrong", logger=page_log)
    finally:
        logging.getLogger("websockets").setLevel(logging.NOTSET)
    assert caplog.records  # logging was on
    assert link.token not in caplog.text and link.key not in caplog.text


def test_a_newer_page_replacing_the_player_peer_is_logged(link, caplog):
    caplog.set_level(logging.INFO, logger="rtvoice_widget.audio_link")
    with ws_connect(f"{link.url}?token={link.token}") as first:
        first_conn = _link_message(first.recv(timeout=10))[0]["conn"]
        wait_until(lambda: link.conn == first_conn, 30, "the first page")
        with ws_connect(f"{link.url}?token={link.token}") as second:
            second_conn = _link_message(second.recv(timeout=10))[0]["conn"]
            wait_until(lambda: link.conn == second_conn, 30, "the second page")
            assert any(f"page connection {second_conn} replaces connection {first_conn}" in r.getMessage()
                       for r in caplog.records)


def test_too_many_open_pages_are_refused(link):
    with contextlib.ExitStack() as stack:
        for _ in range(link.MAX_PAGES):
            stack.enter_context(ws_connect(f"{link.url}?token={link.token}")).recv(timeout=10)
        wait_until(lambda: link.connections == link.MAX_PAGES, 30, "the pages")
        with pytest.raises(websockets.InvalidStatus) as refused:
            ws_connect(f"{link.url}?token={link.token}")
        assert refused.value.response.status_code == 503


def test_a_page_that_stops_reading_never_blocks_send_and_is_dropped(link, caplog):
    """The session thread calls send; today it blocked forever once the socket filled."""
    caplog.set_level(logging.WARNING, logger="rtvoice_widget.audio_link")
    chunk = bytes(9600)  # 200 ms of 24 kHz PCM16
    with ws_connect(f"{link.url}?token={link.token}", max_queue=1) as stalled:  # stops reading when full
        conn = _link_message(stalled.recv(timeout=10))[0]["conn"]
        wait_until(lambda: link.conn == conn, 30, "the page")
        results: list[bool] = []

        def session_thread() -> None:
            # More than the queue and any socket buffers can hold; stop once the page is dropped.
            for _ in range(20 * link.MAX_QUEUED_BYTES // len(chunk)):
                results.append(link.send({"type": "audio", "item_id": "item_1"}, chunk, conn))
                if not results[-1]:
                    break

        sender = threading.Thread(target=session_thread, daemon=True)
        sender.start()
        sender.join(60)  # liveness: a blocking send never returns
        assert not sender.is_alive(), f"send blocked after {len(results)} messages"
        assert results[0] and not results[-1]
        assert link.overflows == 1 and not link.connected
        assert any("stopped reading" in r.getMessage() for r in caplog.records)
    # A page that reads gets the audio again.
    with ws_connect(f"{link.url}?token={link.token}") as page:
        conn = _link_message(page.recv(timeout=10))[0]["conn"]
        wait_until(lambda: link.conn == conn, 30, "the new page")
        assert link.send({"type": "audio", "item_id": "item_2"}, chunk, conn)
        header, payload = _link_message(page.recv(timeout=10))
        assert header == {"type": "audio", "item_id": "item_2"} and payload == chunk


# -- ways to wedge it: the event log, the protocol, the mic order ---------------------------------


def test_unknown_types_share_one_bounded_code_and_lose_no_row(tmp_path):
    from rtvoice_widget.events import MAX_TYPES, OTHER_TYPE, EventLog

    log = EventLog()
    n = MAX_TYPES + 3000
    for i in range(n):
        log.append("server", {"type": f"hostile.{i}", "n": i}, float(i))
    log.append("server", {"type": "error", "error": {"message": "still an error"}}, 1.0)
    log.append("server", {"type": "response.done", "response": {"id": "resp_1"}}, 2.0)
    log.local("connection.lost", 3.0, text="the session's own events keep their names")
    df = log.to_pandas()
    assert len(df) == n + 3  # nothing lost
    assert len(df["type"].cat.categories) <= MAX_TYPES
    assert df["type"].iloc[-4] == OTHER_TYPE and df["payload"].iloc[-4]["type"] == f"hostile.{n - 1}"
    assert df["type"].iloc[0] == "hostile.0"
    # The API's types and the session's own arriving after the flood keep name and category
    # (wait_for, the turns table and the widget look them up by name).
    assert list(df["type"].iloc[-3:]) == ["error", "response.done", "connection.lost"]
    assert list(df["category"].iloc[-3:]) == ["error", "ai_response", "connection"]
    assert sum(len(plans) for plans in log._plans.values()) <= MAX_TYPES
    # A saved flood loads back the same.
    assert list(EventLog.load(log.save(tmp_path / "flood.jsonl")).to_pandas()["type"]) == list(df["type"])


def test_protocol_and_local_types_keep_their_names_after_a_flood():
    import typing

    from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

    from rtvoice_widget.events import MAX_TYPES, OTHER_TYPE, REALTIME_TYPES, EventLog

    def names(union) -> set[str]:
        members = typing.get_args(typing.get_args(union)[0] if typing.get_origin(union) is typing.Annotated else union)
        return {name for m in members for name in typing.get_args(m.model_fields["type"].annotation)}

    assert names(RealtimeServerEvent) | names(RealtimeClientEvent) <= REALTIME_TYPES
    log = EventLog()
    for i in range(MAX_TYPES + 100):
        log.append("server", {"type": f"hostile.{i}"}, float(i))
    log.append("server", {"type": "response.done", "response": {"id": "r", "status": "completed"}}, 1.0)
    log.local("connection.failed", 2.0, text="gone")
    df = log.to_pandas()
    assert list(df["type"].iloc[-3:]) == [OTHER_TYPE, "response.done", "connection.failed"]
    assert list(df["category"].iloc[-2:]) == ["ai_response", "error"]
    assert len(df["type"].cat.categories) <= MAX_TYPES


def test_ignored_types_are_capped():
    from rtvoice_widget.protocol import IGNORED_OTHER, MAX_IGNORED_TYPES, ClientProtocol

    proto = ClientProtocol()
    for i in range(MAX_IGNORED_TYPES * 4):
        assert proto.receive({"type": f"hostile.{i}"}, float(i)) == []
    assert len(proto.ignored_types) == MAX_IGNORED_TYPES
    assert sum(proto.ignored_types.values()) == MAX_IGNORED_TYPES * 4
    assert proto.ignored_types[IGNORED_OTHER] == MAX_IGNORED_TYPES * 3 + 1


def test_a_far_future_seq_cannot_mute_the_mic():
    from rtvoice_widget.audio_link import MicFrameOrder

    order: MicFrameOrder[int] = MicFrameOrder(max_held=25)
    assert order.push(7, 0, 0) == ([0], [])
    assert order.push(7, 2 ** 32 - 1, -1) == ([], [])
    order.give_up()
    assert order.skip_through(7, 2 ** 32 - 2) == ([], [])
    released = [frame for seq in range(1, 96) for frame in order.push(7, seq, seq)[0]]
    assert released == list(range(1, 96)) and order.late == 0 and order.too_far == 2
    # A bad first frame of a new stream does not end the current one either.
    assert order.push(8, 2 ** 31, -1) == ([], []) and order.push(7, 96, 96) == ([96], [])


def test_a_session_flooded_with_invented_types_keeps_every_row_and_still_answers():
    from scripted_server import ScriptedServer, voice_turn

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.events import MAX_TYPES
    from rtvoice_widget.protocol import MAX_IGNORED_TYPES
    from rtvoice_widget.session import RealtimeSession

    flood = [{"type": f"hostile.{i}", "event_id": f"ev_{i}"} for i in range(MAX_TYPES + 1000)]
    with ScriptedServer() as server:
        with RealtimeSession(server.url, config=SessionConfig(turn_detection=None)) as session:
            session.wait_for("session.updated", timeout=10)
            mark = session.last_seq
            server.play(flood + voice_turn(with_speech=False, audio_ms=200, response_id="resp_after"))
            session.wait_for("response.done", after=mark, timeout=60)
            df = session.events.to_pandas()
            assert session.connected
            assert (df["source"] == "server").sum() == session.metrics()["frames_received"]
            assert len(df["type"].cat.categories) <= MAX_TYPES
            assert len(session.protocol.ignored_types) <= MAX_IGNORED_TYPES
            assert session.protocol.turns[-1].status == "completed"


# -- unbounded buffers: the local server ------------------------------------------------------------


def test_the_uncommitted_input_buffer_is_bounded_with_a_clear_error(engines):
    import base64

    from rtvoice_widget.server.dialogue import MAX_INPUT_BUFFER_MS

    minute = base64.b64encode(bytes(48 * 60_000)).decode()  # 60 s of PCM16 24 kHz
    minutes = MAX_INPUT_BUFFER_MS // 60_000

    async def run() -> tuple[list[dict], dict]:
        async with connect(server.url, max_size=None) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
            for i in range(minutes + 2):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "event_id": f"a{i}", "audio": minute}))
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            errors = []
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                SERVER_EVENT.validate_python(event)
                if event["type"] == "error":
                    errors.append(event)
                if event["type"] == "input_audio_buffer.cleared":
                    break
            # Cleared: appends are taken again.
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": minute}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "input_audio_buffer.committed":
                assert event["type"] != "error", event
            return errors, event

    with LocalRealtimeServer(engines=engines, progress=None) as server:
        errors, committed = asyncio.run(run())
    assert [e["error"]["event_id"] for e in errors] == [f"a{minutes}", f"a{minutes + 1}"]
    assert all(e["error"]["code"] == "input_audio_buffer_full" for e in errors)
    assert "commit or clear" in errors[0]["error"]["message"]


def test_a_client_that_stops_reading_is_dropped_not_buffered_without_bound(engines, caplog):
    from rtvoice_widget.server.connection import MAX_OUTBOX_CHARS

    caplog.set_level(logging.WARNING, logger="rtvoice_widget.server")
    instructions = "x" * 100_000  # each session.updated echoes them back
    updates = 2 * MAX_OUTBOX_CHARS // len(instructions)

    async def run() -> str:
        async with connect(server.url, max_queue=1) as ws:  # reads nothing after the first event
            await ws.recv()
            try:
                for _ in range(updates):
                    await ws.send(json.dumps({"type": "session.update", "session": {
                        "type": "realtime", "instructions": instructions}}))
                await asyncio.wait_for(ws.wait_closed(), 60)
            except websockets.ConnectionClosed:
                pass
            return "closed"

    with LocalRealtimeServer(engines=engines, progress=None) as server:
        assert asyncio.run(run()) == "closed"
        assert any("stopped reading" in r.getMessage() for r in caplog.records)
        assert _status(server.url) is None  # the server serves the next client


# -- unbounded buffers: the client outbox during a reconnect ---------------------------------------


def _tagged(k: int, ms: int = 20) -> bytes:
    """``ms`` of PCM16 whose every sample is ``k``: the server can tell which frame it got."""
    return struct.pack("<h", k) * (24 * ms)


def _tags(server, connection: int) -> list[int]:
    import base64

    return [struct.unpack_from("<h", base64.b64decode(e["audio"]))[0]
            for e in server.client_events("input_audio_buffer.append", connection=connection)]


def test_mic_audio_queued_during_a_reconnect_turns_stale_and_is_dropped_not_replayed():
    from scripted_server import Abort, ScriptedServer

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import RealtimeSession

    with ScriptedServer() as server:
        # The first attempt comes 1 s after the loss: the outage outlasts the 500 ms stale rule.
        with RealtimeSession(server.url, config=SessionConfig(turn_detection=None), reconnect_delay=1.0) as s:
            s.wait_for("session.updated", timeout=10)
            server.play([Abort()])
            s.wait_for("connection.lost", timeout=10)
            # A live mic: a 20 ms frame every 20 ms, through the outage and on after it.
            captured: dict[int, float] = {}
            k, after = 0, None
            started = time.monotonic()
            while after is None or k < after + 25:
                k += 1
                captured[k] = s.now_ms() - 20  # its first sample
                s.send_audio(_tagged(k), captured_ms=captured[k])
                if after is None and s.metrics()["reconnects"]:
                    after = k
                time.sleep(max(0.0, started + k * 0.02 - time.monotonic()))
                assert time.monotonic() - started < 20, "no reconnect"
            dropped = s.wait_for("connection.outbox_dropped", timeout=10)
            received = wait_until(lambda: (t := _tags(server, 1)) and t[-1] == k and t, 30, "the last frame")
            # Nothing older than the rule reached the new session: the dropped frames are the
            # oldest, the rest went out in order, each still fresh when the connection came back.
            assert dropped["payload"]["reason"] == "stale" and dropped["category"] == "connection"
            n = dropped["payload"]["appends"]
            assert n >= 10 and received == list(range(n + 1, k + 1))
            assert dropped["payload"]["audio_ms"] == pytest.approx(20 * n)
            assert f"{20 * n} ms of mic audio ({n} appends)" in dropped["text"]
            assert all(captured[i] + 20 < dropped["t_ms"] - 500 for i in range(1, n + 1))
            assert all(captured[i] + 20 >= dropped["t_ms"] - 550 for i in received)
            assert server.client_events(connection=1)[0]["type"] == "session.update"
            assert _tags(server, 0) == []
            # The log lost nothing: one row per append that went out, none for the dropped ones.
            assert len(s.events.filter(type="input_audio_buffer.append")) == len(received)
            assert s.metrics()["outbox_dropped"] == n


def test_the_outbox_is_capped_while_the_connection_is_down_and_says_what_it_dropped():
    from scripted_server import Abort, ScriptedServer

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import MAX_OUTBOX_AUDIO_MS, RealtimeSession

    seconds = MAX_OUTBOX_AUDIO_MS // 1000 + 5
    with ScriptedServer() as server:
        with RealtimeSession(server.url, config=SessionConfig(turn_detection=None), reconnect_delay=1.5,
                             stale_audio_ms=None) as s:
            s.wait_for("session.updated", timeout=10)
            server.play([Abort()])
            s.wait_for("connection.lost", timeout=10)
            for k in range(1, seconds + 1):
                s.send_audio(_tagged(k, 1000))
            s.send_text("are you there?")
            server.wait_for("conversation.item.create", connection=1)
            dropped = s.wait_for("connection.outbox_dropped", timeout=10)
            assert dropped["payload"]["reason"] == "overflow"
            assert dropped["payload"]["appends"] == 5 and dropped["payload"]["audio_ms"] == 5000
            # The newest 5 min went out, then the text: the cap dropped the oldest audio only.
            assert _tags(server, 1) == list(range(6, seconds + 1))
            types = [e["type"] for e in server.client_events(connection=1)]
            assert types[-2:] == ["conversation.item.create", "response.create"]
            assert s.metrics()["outbox_dropped_audio_ms"] == 5000


# -- tools: an exception while answering a call, and what goes back to the model --------------------


def test_a_tool_call_the_protocol_cannot_answer_is_logged_and_the_session_goes_on():
    from scripted_server import ScriptedServer, function_call_turn

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import RealtimeSession

    def lookup(term: str) -> str:
        """Look a term up."""
        return f"{term}: yes"

    # A broken server names the call "": the tool runs, then tool_output refuses the id.
    broken = function_call_turn(name="lookup", arguments='{"term": "a"}', call_id="call_x")
    broken = [json.loads(json.dumps(e).replace('"call_x"', '""')) for e in broken]
    with ScriptedServer() as server:
        with RealtimeSession(server.url, config=SessionConfig(turn_detection=None), tools=[lookup]) as s:
            s.wait_for("session.updated", timeout=10)
            mark = s.last_seq
            server.play(broken)
            error = s.wait_for("tool.error", after=mark, timeout=10)
            assert error["category"] == "error"
            assert "could not answer tool call '' ('lookup'): ValueError: call_id must be a non-empty string" \
                in error["text"]
            # The session goes on: the next call is answered, text still goes out.
            server.play(function_call_turn(name="lookup", arguments='{"term": "b"}', call_id="call_ok"))
            answered = server.wait_for("conversation.item.create")[0]
            assert answered["item"] == {"type": "function_call_output", "call_id": "call_ok", "output": "b: yes"}
            s.send_text("still there?")
            server.wait_for("conversation.item.create", count=2)
            assert s.connected


SECRET_KEY = "sk-test-never-to-the-model-0123456789"


def _leaky() -> str:
    """Fails the way an HTTP client does that echoes the request's credentials."""
    raise PermissionError(f"401 Unauthorized (Authorization: Bearer {SECRET_KEY})")


@pytest.mark.parametrize("tracebacks", [False, True])
def test_a_failing_tool_sends_type_and_message_without_secrets_traceback_on_request(tracebacks):
    from scripted_server import ScriptedServer, function_call_turn

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import RealtimeSession

    with ScriptedServer() as server:
        with RealtimeSession(server.url, api_key=SECRET_KEY, config=SessionConfig(turn_detection=None),
                             tools=[_leaky], **({"tool_tracebacks": True} if tracebacks else {})) as s:
            s.wait_for("session.updated", timeout=10)
            server.play(function_call_turn(name="_leaky", arguments="{}", call_id="call_1"))
            output = server.wait_for("conversation.item.create")[0]["item"]["output"]
            error = json.loads(output)["error"]
            s.wait_for("tool.error", timeout=10)
            logged = s.events.to_pandas()
    assert SECRET_KEY not in output
    assert not logged["text"].fillna("").str.contains(SECRET_KEY).any()
    assert not logged["payload"].astype(str).str.contains(SECRET_KEY).any()
    if tracebacks:
        assert error.startswith("PermissionError: 401 Unauthorized (Authorization: Bearer ***)\nTraceback")
        assert "in _leaky" in error
    else:
        assert error == "PermissionError: 401 Unauthorized (Authorization: Bearer ***)"


# -- the handlers of last resort without the event log ---------------------------------------------


def _full_log():
    from rtvoice_widget.events import EventLog

    class FullLog(EventLog):
        """A log that stops taking rows once ``full`` is set, as the old log did when its packed
        type codes overflowed: every append raised OverflowError."""

        full = False

        def append(self, source, event, t_ms, time=None):
            if self.full:
                raise OverflowError("signed integer is greater than maximum")
            return super().append(source, event, t_ms, time)

    return FullLog()


def test_a_session_whose_event_log_broke_still_works_and_reports_its_failure(caplog):
    from scripted_server import Close, Raw, ScriptedServer, voice_turn

    from rtvoice_widget.config import SessionConfig
    from rtvoice_widget.session import RealtimeSession, SessionClosedError

    caplog.set_level(logging.ERROR, logger="rtvoice_widget.session")
    with ScriptedServer() as server:
        s = RealtimeSession(server.url, config=SessionConfig(turn_detection=None), max_reconnect_attempts=0)
        s.events = log = _full_log()
        try:
            s.connect(timeout=10)
            s.wait_for("session.updated", timeout=10)
            log.full = True
            # Server events still reach the protocol; a bad frame is still reported.
            server.play([Raw("{not json"), *voice_turn(with_speech=False, audio_ms=200, response_id="resp_x")])
            wait_until(lambda: s.protocol.turns and s.protocol.turns[-1].status == "completed", 30, "the turn")
            assert any("protocol.error: malformed JSON" in r.getMessage() for r in caplog.records)
            # What the user sends still goes out, every time (the writer survives the log).
            s.send_text("hello?")
            s.send_text("hello again?")
            server.wait_for("conversation.item.create", count=2)
            assert s.metrics()["events_unlogged"] > 0
            # A failure that ends the session is reported, and later calls say why.
            server.play([Close(1001, "going away")])
            wait_until(lambda: any("connection.failed" in r.getMessage() for r in caplog.records), 30, "the report")
            with pytest.raises(SessionClosedError, match="gave up after 0 reconnect attempts"):
                s.send_text("anyone?")
        finally:
            s.close()  # must not raise
        assert not s._thread.is_alive()
        s.close()  # idempotent
