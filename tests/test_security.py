"""Issue #11: nothing outside the notebook can drive the local server or stall the session.

Real sockets throughout: the local server (cheap engines: energy VAD, echo LLM), the official
openai SDK, ``websockets`` clients and the real mic link.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import websockets
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter
from websockets.asyncio.client import connect

from rtvoice_widget.server import LocalRealtimeServer, ensure_local_server, local_server_token, stop_local_server
from rtvoice_widget.server.cli import READY_PREFIX
from rtvoice_widget.server.engines import load_engines

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
