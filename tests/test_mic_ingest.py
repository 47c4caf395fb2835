"""MicIngest and PlayerRoute on their own: no widget, no comm, a stand-in session and link."""

from __future__ import annotations

import threading
import time

from rtvoice_widget.mic_ingest import MicIngest
from rtvoice_widget.player_route import PlayerRoute


class FakeSession:
    def __init__(self) -> None:
        self.connected = True
        self.audio: list[tuple[bytes, float | None]] = []

    def now_ms(self) -> float:
        return time.monotonic() * 1000

    def send_audio(self, pcm: bytes, captured_ms: float | None = None) -> None:
        self.audio.append((pcm, captured_ms))


def frame(i: int) -> bytes:
    return bytes([i % 256]) * 960


def ingest(stale_frame_ms: float = 500.0):
    session, logged = FakeSession(), []
    mic = MicIngest(lambda: session, lambda type_, text=None, **fields: logged.append((type_, fields)),
                    stale_frame_ms)
    return mic, session, logged


def test_frames_reach_the_session_in_capture_order_once_each():
    mic, session, _ = ingest()
    now = time.time() * 1000
    for seq in (1, 0, 0, 2):
        mic.push({"type": "audio", "stream": 5, "seq": seq, "t": now + 20 * seq}, [frame(seq)])
    assert [pcm for pcm, _ in session.audio] == [frame(0), frame(1), frame(2)]
    assert all(captured is not None for _, captured in session.audio)
    assert mic.metrics()["mic_frames_duplicate"] == 1 and mic.metrics()["mic_frames_in"] == 3
    mic.close()


def test_a_missing_frame_is_given_up_after_half_the_stale_limit():
    mic, session, logged = ingest(stale_frame_ms=200)
    mic.push({"type": "audio", "stream": 1, "seq": 1}, [frame(1)])  # 0 never comes
    assert session.audio == []
    deadline = time.monotonic() + 5
    while not session.audio and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [pcm for pcm, _ in session.audio] == [frame(1)]
    assert [t for t, _ in logged] == ["mic.gap"] and logged[0][1]["missing_frames"] == 1
    mic.close()


def test_an_action_waits_for_the_frames_numbered_before_it():
    mic, session, _ = ingest()
    ran = threading.Event()
    mic.push({"type": "audio", "stream": 1, "seq": 0}, [frame(0)])
    mic.after({"stream": 1, "through": 1}, ran.set)
    assert not ran.is_set()
    mic.push({"type": "audio", "stream": 1, "seq": 1}, [frame(1)])
    assert ran.is_set() and len(session.audio) == 2
    mic.close()


class FakeLink:
    def __init__(self) -> None:
        self.conn: int | None = None
        self.sent: list[tuple[dict, bytes, int]] = []

    def send(self, header: dict, payload: bytes = b"", conn: int | None = None) -> bool:
        self.sent.append((header, payload, conn))
        return True


def test_player_route_hands_over_to_the_link_behind_a_marker():
    jupyter: list[tuple[dict, list | None]] = []
    link = FakeLink()
    route = PlayerRoute(lambda header, buffers: jupyter.append((header, buffers)), link)
    route.audio("item1", "resp1", b"\x00\x01")
    assert jupyter == [({"type": "audio", "item_id": "item1", "response_id": "resp1"}, [b"\x00\x01"])]
    link.conn = 3
    route.link_opened(3)
    route.flush("item1")
    route.audio("item1", "resp1", b"\x02\x03")
    assert jupyter[1:] == [({"type": "player_link", "conn": 3}, None)]  # once, before the link's
    assert [(h["type"], c) for h, _, c in link.sent] == [("flush", 3), ("audio", 3)]


def test_player_route_without_a_link_uses_jupyter():
    jupyter: list[tuple[dict, list | None]] = []
    route = PlayerRoute(lambda header, buffers: jupyter.append((header, buffers)), None)
    route.flush(None)
    assert jupyter == [({"type": "flush", "item_id": None}, None)]
