"""Fixtures for tests that run a ``RealtimeSession`` against a ``ScriptedServer``.

Import them by name into a test module: pytest treats an imported fixture as the module's own
(an ``autouse`` one included), so each module opts in to exactly the ones it wants.
"""

from __future__ import annotations

import threading

import pytest
from scripted_server import ScriptedServer

from rtvoice_widget.config import SessionConfig
from rtvoice_widget.session import RealtimeSession

MANUAL = SessionConfig(turn_detection=None)


@pytest.fixture(autouse=True)
def no_session_thread_survives():
    """Every session a test opens must be fully stopped (thread joined) by its end."""
    yield
    leaked = [t for t in threading.enumerate() if t.name == "rtvoice-session"]
    assert not leaked, f"{len(leaked)} session thread(s) still running"


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv
        srv.assert_client_events_valid()


def connect_session(server: ScriptedServer, sessions: list, **kwargs) -> RealtimeSession:
    """A connected session on ``server``, appended to ``sessions`` for the caller to close."""
    kwargs.setdefault("reconnect_delay", 0.02)
    s = RealtimeSession(server.url, **kwargs)
    sessions.append(s)
    s.connect(timeout=10)
    # The scripted server answers the initial session.update; wait so tests start quiet.
    s.wait_for("session.updated", timeout=10)
    return s


@pytest.fixture
def open_session(server):
    """``open_session(**kwargs)`` → a connected session on ``server``; closed at teardown."""
    sessions: list[RealtimeSession] = []
    yield lambda **kwargs: connect_session(server, sessions, **kwargs)
    for s in sessions:
        s.close()
