"""A scripted Realtime server for tests: a real ``websockets`` server that plays GA event sequences.

Usage (from sync or async tests; the server runs its own thread and event loop)::

    with ScriptedServer() as server:                 # listens on 127.0.0.1:<free port>
        session = RealtimeSession(server.url, ...)
        server.wait_for("session.update")
        server.play(voice_turn(audio_ms=600, transcript="Hello there."))
        server.client_events()                        # every client event received, parsed
        server.assert_client_events_valid()           # each one validates as RealtimeClientEvent

What it does on its own:

- greets each connection with ``session.created`` and answers ``session.update`` with
  ``session.updated`` (echoing the requested session), like the real API;
- records every frame a client sends (parsed JSON, or the raw text when it does not parse) with
  the index of the connection it arrived on;
- can stop reading for a while (:meth:`ScriptedServer.pause_reading`), so that a client's
  socket buffer fills up;
- runs *responders*: ``server.respond("input_audio_buffer.commit", fn)`` calls
  ``fn(event, server)`` on the server loop for each such client event and plays the steps it
  returns — this is how a test scripts a server that reacts (e.g. a reply after a commit).

A script is a list of *steps*: an event dict (sent as JSON), :class:`Raw` (text or bytes sent
verbatim, for malformed frames), :class:`Pause` (seconds), :class:`Close` (a clean close with a
code) or :class:`Abort` (the TCP connection dropped mid-stream, no close frame).

The builders at the bottom (:func:`voice_turn`, :func:`barge_in`, :func:`function_call_turn`,
:func:`error_event`, ...) return GA server events in the order the API sends them; each
validates against ``openai.types.realtime.RealtimeServerEvent`` (see ``tests/test_session_scripted_server.py``).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Union

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = [
    "Abort",
    "Close",
    "Pause",
    "Raw",
    "ScriptedServer",
    "Step",
    "assistant_audio_reply",
    "assistant_response_end",
    "assistant_response_start",
    "audio_deltas",
    "barge_in",
    "error_event",
    "function_call_turn",
    "pcm16_tone",
    "session_created",
    "session_updated",
    "speech_started",
    "speech_stopped_and_committed",
    "truncated",
    "usage",
    "user_transcript",
    "voice_turn",
]

SAMPLE_RATE = 24000
# Pinned at INFO: websockets logs handshake headers at DEBUG, and tests check that no key is logged
# by the client under test; this in-process server must not log them on its behalf either.
_server_logger = logging.getLogger("scripted_server.websocket")
_server_logger.setLevel(logging.INFO)


@dataclass(frozen=True)
class Raw:
    """A frame sent verbatim (``str`` as a text frame, ``bytes`` as a binary frame)."""

    data: str | bytes


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Close:
    """A clean close handshake from the server."""

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Abort:
    """Drop the TCP connection without a close frame (a crash, a network cut)."""


Step = Union[dict, Raw, Pause, Close, Abort]
Responder = Callable[[dict, "ScriptedServer"], Iterable[Step] | None]


class ScriptedServer:
    """A ``websockets`` server on its own thread; see the module docstring.

    ``greet=False`` skips the automatic ``session.created``; ``auto_session_updated=False``
    leaves ``session.update`` unanswered. ``max_size`` bounds frames the server accepts.
    ``reject_status`` (e.g. 401) refuses every handshake with that HTTP status, like a server
    refusing a bad key; ``request_headers`` keeps the handshake headers of each connection.
    By default each connection is a new server session (a new ``session.created`` id: the server
    forgot the conversation, like a hosted session after its cap); ``resume_sessions=True`` greets
    every connection with the same id (a server that kept the conversation).
    """

    def __init__(
        self,
        *,
        greet: bool = True,
        auto_session_updated: bool = True,
        max_size: int | None = 16 * 2**20,
        reject_status: int | None = None,
        resume_sessions: bool = False,
    ) -> None:
        self.greet = greet
        self.resume_sessions = resume_sessions
        self._session_id = _id("sess")
        self.reject_status = reject_status
        self.auto_session_updated = auto_session_updated
        self._max_size = max_size
        self._lock = threading.Condition()
        # (connection index, parsed dict or raw frame, time.monotonic() at arrival)
        self._received: list[tuple[int, Any, float]] = []
        self.request_headers: list[dict[str, str]] = []
        self._connections: list[ServerConnection] = []
        self._closed_connections = 0
        self._responders: dict[str, list[Responder]] = {}
        self._event_ids = itertools.count(1)
        # Cleared by pause_reading(): the server stops reading, so the client's socket fills up.
        self._reading = threading.Event()
        self._reading.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._stop_requested: asyncio.Event | None = None
        self.url = ""
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "ScriptedServer":
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop_requested = asyncio.Event()
            try:
                self._server = loop.run_until_complete(self._listen())
            except BaseException as exc:  # surfaced in start()
                failure.append(exc)
                started.set()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{self.port}/v1/realtime"
            started.set()
            loop.run_until_complete(self._serve_until_stopped())
            loop.close()

        self._thread = threading.Thread(target=run, name="scripted-realtime-server", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return self

    async def _listen(self) -> Any:
        return await serve(self._handle, "127.0.0.1", 0, max_size=self._max_size,
                           process_request=self._process_request, logger=_server_logger)

    def stop(self) -> None:
        """Close every connection and stop listening (new connections are refused)."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return
        assert self._stop_requested is not None
        self._loop.call_soon_threadsafe(self._stop_requested.set)
        self._thread.join(timeout=10)

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve_until_stopped(self) -> None:
        assert self._stop_requested is not None
        await self._stop_requested.wait()
        self._server.close()
        await self._server.wait_closed()

    # -- what the client sent --------------------------------------------------------------

    def client_events(self, type: str | None = None, *, connection: int | None = None) -> list[dict]:
        """Parsed client events, in arrival order, optionally of one type / on one connection."""
        with self._lock:
            return [
                event
                for index, event, _ in self._received
                if isinstance(event, dict)
                and (type is None or event.get("type") == type)
                and (connection is None or index == connection)
            ]

    def raw_frames(self) -> list[str | bytes]:
        """Frames that did not parse as a JSON object."""
        with self._lock:
            return [frame for _, frame, _ in self._received if not isinstance(frame, dict)]

    def wait_for(self, type: str, count: int = 1, *, connection: int | None = None, timeout: float = 10) -> list[dict]:
        """Block until ``count`` client events of ``type`` arrived; return them. ``TimeoutError`` else."""

        def ready() -> bool:
            return len(self.client_events(type, connection=connection)) >= count

        with self._lock:
            if not self._lock.wait_for(ready, timeout):
                seen = [e.get("type") for _, e, _ in self._received if isinstance(e, dict)]
                raise TimeoutError(f"waited {timeout}s for {count}x {type!r}; client sent {seen[-20:]}")
        return self.client_events(type, connection=connection)

    def wait_for_connections(self, count: int, timeout: float = 10) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._connections) >= count, timeout):
                raise TimeoutError(f"waited {timeout}s for {count} connections, got {len(self._connections)}")

    def arrival_times(self, type: str) -> list[float]:
        """``time.monotonic()`` at which each client event of ``type`` arrived."""
        with self._lock:
            return [t for _, event, t in self._received if isinstance(event, dict) and event.get("type") == type]

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def assert_client_events_valid(self) -> int:
        """Validate every received client event with the SDK's ``RealtimeClientEvent``; return the count."""
        from openai.types.realtime import RealtimeClientEvent
        from pydantic import TypeAdapter

        adapter = TypeAdapter(RealtimeClientEvent)
        events = self.client_events()
        for event in events:
            adapter.validate_python(event)
        return len(events)

    # -- scripting -------------------------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading client frames (websockets then stops reading the socket after a few
        queued messages, and TCP makes the client's writes block) until :meth:`resume_reading`."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def respond(self, type: str, responder: Responder) -> None:
        """On each client event of ``type``, play the steps ``responder(event, server)`` returns."""
        with self._lock:
            self._responders.setdefault(type, []).append(responder)

    def play(self, steps: Iterable[Step], *, connection: int = -1, wait: bool = True) -> None:
        """Play steps on a connection (default: the latest). Blocks until sent unless ``wait=False``."""
        assert self._loop is not None, "start() the server first"
        with self._lock:
            conn = self._connections[connection]
        future = asyncio.run_coroutine_threadsafe(self._play(conn, list(steps)), self._loop)
        if wait:
            future.result(timeout=30)

    def next_event_id(self) -> str:
        return f"event_srv_{next(self._event_ids)}"

    async def _play(self, conn: ServerConnection, steps: list[Step]) -> None:
        try:
            for step in steps:
                if isinstance(step, dict):
                    event = dict(step)
                    event.setdefault("event_id", self.next_event_id())
                    await conn.send(json.dumps(event))
                elif isinstance(step, Raw):
                    await conn.send(step.data)
                elif isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Close):
                    await conn.close(step.code, step.reason)
                    return
                elif isinstance(step, Abort):
                    conn.transport.abort()
                    return
                else:
                    raise TypeError(f"unknown script step {step!r}")
        except ConnectionClosed:
            # The client went away mid-script: that is the client's right, not a server error.
            return

    def _process_request(self, conn: ServerConnection, request: Any) -> Any:
        with self._lock:
            self.request_headers.append({k.lower(): v for k, v in request.headers.raw_items()})
        if self.reject_status is not None:
            return conn.respond(self.reject_status, "rejected by the scripted server\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        with self._lock:
            index = len(self._connections)
            self._connections.append(conn)
            self._lock.notify_all()
        greeting = session_created()
        if self.resume_sessions:
            greeting["session"]["id"] = self._session_id
        session_id = greeting["session"]["id"]
        if self.greet:
            await self._play(conn, [greeting])
        try:
            async for frame in conn:
                while not self._reading.is_set():
                    await asyncio.sleep(0.01)
                try:
                    event = json.loads(frame)
                except (ValueError, TypeError):
                    event = frame
                if not isinstance(event, dict):
                    event = frame
                with self._lock:
                    self._received.append((index, event, time.monotonic()))
                    responders = list(self._responders.get(event.get("type"), [])) if isinstance(event, dict) else []
                    self._lock.notify_all()
                if isinstance(event, dict) and event.get("type") == "session.update" and self.auto_session_updated:
                    updated = session_updated(event.get("session", {}))
                    updated["session"]["id"] = session_id  # the same server session, like the API
                    await self._play(conn, [updated])
                for responder in responders:
                    steps = responder(event, self)
                    if steps:
                        # Spawned so a long script (pauses) does not hold back reading the client.
                        asyncio.get_running_loop().create_task(self._play(conn, list(steps)))
        except ConnectionClosed:
            pass


# -- GA server event builders -------------------------------------------------------------------

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


def pcm16_tone(ms: float, *, frequency: float = 440.0, amplitude: float = 0.3) -> bytes:
    """A sine tone as 24 kHz mono PCM16 bytes (real-shaped audio for deltas)."""
    n = int(round(SAMPLE_RATE * ms / 1000))
    t = np.arange(n) / SAMPLE_RATE
    return (np.sin(2 * np.pi * frequency * t) * amplitude * 32767).astype("<i2").tobytes()


def session_created(model: str = "gpt-realtime") -> dict:
    return {
        "type": "session.created",
        "session": {
            "type": "realtime",
            "object": "realtime.session",
            "id": _id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 500,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {"format": {"type": "audio/pcm", "rate": SAMPLE_RATE}, "voice": "alloy", "speed": 1.0},
            },
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
        },
    }


def session_updated(session: dict) -> dict:
    echoed = {"type": "realtime", "object": "realtime.session", "id": _id("sess")}
    echoed.update(session)
    return {"type": "session.updated", "session": echoed}


def speech_started(item_id: str, audio_start_ms: int = 0) -> dict:
    return {"type": "input_audio_buffer.speech_started", "audio_start_ms": audio_start_ms, "item_id": item_id}


def speech_stopped_and_committed(item_id: str, audio_end_ms: int, previous_item_id: str | None = None) -> list[dict]:
    """What server VAD sends when the user stops: stopped, committed, the user item added."""
    return [
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": audio_end_ms, "item_id": item_id},
        {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous_item_id},
        {
            "type": "conversation.item.added",
            "previous_item_id": previous_item_id,
            "item": {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        },
    ]


def user_transcript(item_id: str, text: str) -> list[dict]:
    return [
        {"type": "conversation.item.input_audio_transcription.delta", "item_id": item_id, "content_index": 0, "delta": text},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": text,
            "usage": {"type": "duration", "seconds": 1.0},
        },
    ]


def audio_deltas(response_id: str, item_id: str, pcm16: bytes, *, chunk_ms: float = 100.0) -> list[dict]:
    """``response.output_audio.delta`` events carrying ``pcm16`` in chunks of ``chunk_ms``."""
    chunk = int(SAMPLE_RATE * chunk_ms / 1000) * 2
    return [
        {
            "type": "response.output_audio.delta",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(pcm16[i : i + chunk]).decode("ascii"),
        }
        for i in range(0, len(pcm16), chunk)
    ]


DEFAULT_USAGE = {
    "total_tokens": 120,
    "input_tokens": 80,
    "output_tokens": 40,
    "input_token_details": {"text_tokens": 20, "audio_tokens": 60, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 10, "audio_tokens": 30},
}


def usage(*, input_text: int = 0, input_audio: int = 0, cached_text: int = 0, cached_audio: int = 0,
          output_text: int = 0, output_audio: int = 0) -> dict:
    """A GA ``response.done`` usage object; ``input_*`` count all input tokens of the kind, the
    cached ones included (as the API reports them)."""
    inputs = input_text + input_audio
    outputs = output_text + output_audio
    return {
        "total_tokens": inputs + outputs,
        "input_tokens": inputs,
        "output_tokens": outputs,
        "input_token_details": {
            "text_tokens": input_text, "audio_tokens": input_audio, "image_tokens": 0,
            "cached_tokens": cached_text + cached_audio,
            "cached_tokens_details": {"text_tokens": cached_text, "audio_tokens": cached_audio, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def _response(response_id: str, status: str, output: list[dict], status_details: dict | None = None,
              usage: dict | None = None) -> dict:
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": status_details,
        "output": output,
        "output_modalities": ["audio"],
        "usage": DEFAULT_USAGE if usage is None else usage,
    }


def _assistant_item(item_id: str, status: str, transcript: str | None) -> dict:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_audio", "transcript": transcript}],
    }


def assistant_response_start(response_id: str, item_id: str) -> list[dict]:
    return [
        {"type": "response.created", "response": _response(response_id, "in_progress", [])},
        {
            "type": "response.output_item.added",
            "response_id": response_id,
            "output_index": 0,
            "item": _assistant_item(item_id, "in_progress", None),
        },
        {
            "type": "response.content_part.added",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "audio", "transcript": ""},
        },
    ]


def assistant_response_end(response_id: str, item_id: str, transcript: str, status: str = "completed",
                           usage: dict | None = None) -> list[dict]:
    item_status = "completed" if status == "completed" else "incomplete"
    details = None if status == "completed" else {"type": status, "reason": "turn_detected"}
    return [
        {"type": "response.output_audio.done", "response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0},
        {
            "type": "response.output_audio_transcript.done",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "transcript": transcript,
        },
        {
            "type": "response.content_part.done",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "audio", "transcript": transcript},
        },
        {
            "type": "response.output_item.done",
            "response_id": response_id,
            "output_index": 0,
            "item": _assistant_item(item_id, item_status, transcript),
        },
        {
            "type": "response.done",
            "response": _response(response_id, status, [_assistant_item(item_id, item_status, transcript)], details,
                                  usage),
        },
    ]


def assistant_audio_reply(
    response_id: str, item_id: str, transcript: str, pcm16: bytes, *, chunk_ms: float = 100.0
) -> list[dict]:
    """Audio deltas interleaved with transcript deltas (one word after each audio chunk, the
    words left over at the end); no response start or end."""
    deltas = audio_deltas(response_id, item_id, pcm16, chunk_ms=chunk_ms)
    words = transcript.split(" ")
    texts = [
        {
            "type": "response.output_audio_transcript.delta",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": word + (" " if i < len(words) - 1 else ""),
        }
        for i, word in enumerate(words)
    ]
    steps: list[dict] = []
    for i, delta in enumerate(deltas):
        steps.append(delta)
        steps.extend(texts[i : i + 1])
    steps.extend(texts[len(deltas) :])
    return steps


def voice_turn(
    *,
    user_text: str = "What's the weather like?",
    transcript: str = "It is sunny and warm today.",
    audio_ms: float = 1000.0,
    user_audio_ms: int = 1200,
    user_item_id: str | None = None,
    response_id: str | None = None,
    item_id: str | None = None,
    with_speech: bool = True,
    usage: dict | None = None,
) -> list[dict]:
    """A complete server-VAD voice turn, in the order of the protocol notes.

    speech_started → speech_stopped → committed → user item added → user transcript →
    response.created … audio deltas interleaved with transcript deltas … response.done.
    ``with_speech=False`` leaves out the VAD part (a reply to ``response.create``).
    """
    user_item_id = user_item_id or _id("item_user")
    response_id = response_id or _id("resp")
    item_id = item_id or _id("item_asst")
    steps: list[dict] = []
    if with_speech:
        steps.append(speech_started(user_item_id, 0))
        steps += speech_stopped_and_committed(user_item_id, user_audio_ms)
        steps += user_transcript(user_item_id, user_text)
    steps += assistant_response_start(response_id, item_id)
    steps += assistant_audio_reply(response_id, item_id, transcript, pcm16_tone(audio_ms))
    steps += assistant_response_end(response_id, item_id, transcript, usage=usage)
    return steps


def barge_in(
    *,
    sent_audio_ms: float = 3000.0,
    transcript: str = "Let me tell you a very long story about",
    response_id: str | None = None,
    item_id: str | None = None,
    next_user_item_id: str | None = None,
    pause_before_interrupt: float = 0.3,
) -> list[Step]:
    """A reply whose audio (``sent_audio_ms``, faster than real time) is interrupted by the user.

    With ``interrupt_response`` the server cancels by itself: after the new ``speech_started``
    it ends the response with ``response.done`` status ``cancelled``. The client is expected to
    flush playback and send ``conversation.item.truncate`` for ``item_id``.
    """
    response_id = response_id or _id("resp")
    item_id = item_id or _id("item_asst")
    next_user_item_id = next_user_item_id or _id("item_user")
    steps: list[Step] = []
    steps += assistant_response_start(response_id, item_id)
    steps += assistant_audio_reply(response_id, item_id, transcript, pcm16_tone(sent_audio_ms))
    steps.append(Pause(pause_before_interrupt))
    steps.append(speech_started(next_user_item_id, 0))
    steps += assistant_response_end(response_id, item_id, transcript, status="cancelled")
    return steps


def truncated(item_id: str, audio_end_ms: int, content_index: int = 0) -> dict:
    return {"type": "conversation.item.truncated", "item_id": item_id, "content_index": content_index, "audio_end_ms": audio_end_ms}


def function_call_turn(
    *,
    name: str = "get_weather",
    arguments: str = '{"city": "Paris"}',
    call_id: str | None = None,
    response_id: str | None = None,
    item_id: str | None = None,
) -> list[dict]:
    """A response that calls a function: item added → argument deltas → arguments done → response.done."""
    call_id = call_id or _id("call")
    response_id = response_id or _id("resp")
    item_id = item_id or _id("item_fc")
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "in_progress",
        "call_id": call_id,
        "name": name,
        "arguments": "",
    }
    done_item = dict(item, status="completed", arguments=arguments)
    half = len(arguments) // 2
    return [
        {"type": "response.created", "response": _response(response_id, "in_progress", [])},
        {"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item},
        *[
            {
                "type": "response.function_call_arguments.delta",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "delta": piece,
            }
            for piece in (arguments[:half], arguments[half:])
            if piece
        ],
        {
            "type": "response.function_call_arguments.done",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        },
        {"type": "response.output_item.done", "response_id": response_id, "output_index": 0, "item": done_item},
        {"type": "response.done", "response": _response(response_id, "completed", [done_item])},
    ]


def error_event(message: str = "Something went wrong.", *, code: str | None = "invalid_value", type: str = "invalid_request_error", param: str | None = None, event_id: str | None = None) -> dict:
    return {
        "type": "error",
        "error": {"type": type, "code": code, "message": message, "param": param, "event_id": event_id},
    }
