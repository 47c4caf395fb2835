"""The session's outbox on its own (rtvoice_widget/session/outbox.py): caps, drop order, stale audio.

No socket and no session: an Outbox, a counters dict, a list of reports and a clock the test sets.
"""

from __future__ import annotations

import asyncio

from rtvoice_widget.session.outbox import MAX_OUTBOX_EVENTS, Outbox


def make(stale_audio_ms: float | None = 500.0):
    counters = {"outbox_dropped": 0, "outbox_dropped_audio_ms": 0.0}
    reports: list[tuple[str, dict]] = []
    clock = {"now": 0.0}
    box = Outbox(counters, lambda type, **fields: reports.append((type, fields)), lambda: clock["now"], stale_audio_ms)
    return box, counters, reports, clock


def append(ms: int, captured_ms: float | None = None, queued_ms: float = 0.0):
    return ({"type": "input_audio_buffer.append", "audio": ""}, bytes(ms * 48), captured_ms, queued_ms)


def event(type: str = "response.create"):
    return ({"type": type}, None, None, 0.0)


def test_order_first_and_removal_by_identity() -> None:
    box, *_ = make()
    a, b, c = append(20), append(20), event()
    box.put(a)
    box.put(b)
    box.put(c, first=True)
    assert list(box.entries) == [c, a, b] and box.audio_bytes == 2 * 20 * 48
    box.remove(b)  # equal to a, but only b goes
    assert list(box.entries) == [c, a] and box.audio_bytes == 20 * 48
    box.remove(b)  # already gone: nothing
    assert len(box) == 2


def test_overflow_drops_the_oldest_audio_first_never_the_entry_being_written() -> None:
    async def run() -> None:
        box, counters, reports, _ = make()
        head = append(20)
        box.put(head)
        box.writing = head
        box.put(append(20))  # the oldest audio that may go
        for _ in range(MAX_OUTBOX_EVENTS - 2):
            box.put(event())
        assert len(box) == MAX_OUTBOX_EVENTS and counters["outbox_dropped"] == 0
        box.put(event("conversation.item.create"))
        assert len(box) == MAX_OUTBOX_EVENTS and box.entries[0] is head
        assert counters["outbox_dropped"] == 1 and counters["outbox_dropped_audio_ms"] == 20
        assert box.audio_bytes == 20 * 48
        box.report_drops()
        ((type, fields),) = reports
        assert type == "connection.outbox_dropped" and fields["reason"] == "overflow"
        assert (fields["appends"], fields["audio_ms"], fields["events"]) == (1, 20.0, {})

    asyncio.run(run())


def test_stale_audio_goes_by_its_capture_time_else_by_when_it_was_queued() -> None:
    box, counters, reports, clock = make(stale_audio_ms=500)
    old_captured = append(20, captured_ms=100.0, queued_ms=900.0)  # ends at 120: stale at 1000
    fresh_captured = append(20, captured_ms=600.0)  # ends at 620: fresh
    old_queued = append(20, queued_ms=400.0)  # no capture time: queued at 400, stale
    kept = event()
    for entry in (old_captured, fresh_captured, old_queued, kept):
        box.put(entry)
    clock["now"] = 1000.0
    box.drop_stale_audio()
    assert list(box.entries) == [fresh_captured, kept]
    assert counters["outbox_dropped"] == 2
    box.report_drops()
    ((_, fields),) = reports
    assert fields["reason"] == "stale" and fields["appends"] == 2 and "stale_audio_ms=500" in fields["text"]


def test_no_stale_limit_keeps_all_audio() -> None:
    box, counters, _, clock = make(stale_audio_ms=None)
    box.put(append(20, captured_ms=0.0))
    clock["now"] = 10_000.0
    box.drop_stale_audio()
    assert len(box) == 1 and counters["outbox_dropped"] == 0

