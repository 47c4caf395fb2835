"""What the engine has produced and its driver has not taken yet: server events and jobs.

Contract: :meth:`Outbox.emit` stores a snapshot of the event with a fresh ``event_id`` (items,
responses and the session keep changing after an event names them, and the event must say what
they were when it was made); the driver takes events and jobs in the order they were produced.
"""

from __future__ import annotations

import copy

from ..codec import ProtocolError, error_event, new_id

__all__ = ["Outbox"]

_SNAPSHOT_KEYS = {"item", "response", "session", "part"}


class Outbox:
    """GA server events to send and jobs to run, in order."""

    def __init__(self) -> None:
        self._events: list[dict] = []
        self._jobs: list = []

    def emit(self, event: dict) -> None:
        """Queue ``event`` (``type`` and fields; the ``event_id`` is added here)."""
        body = {k: copy.deepcopy(v) if k in _SNAPSHOT_KEYS else v for k, v in event.items() if k != "type"}
        self._events.append({"type": event["type"], "event_id": new_id("event"), **body})

    def error(self, error: ProtocolError) -> None:
        """Queue the ``error`` event that reports ``error`` to the client."""
        self._events.append(error_event(error))

    def run(self, job) -> None:
        """Queue ``job`` for the driver."""
        self._jobs.append(job)

    def take_events(self) -> list[dict]:
        events, self._events = self._events, []
        return events

    def take_jobs(self) -> list:
        jobs, self._jobs = self._jobs, []
        return jobs
