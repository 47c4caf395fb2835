"""The live connection (see :mod:`.core` until the split that follows this move)."""

from .core import MAX_OUTBOX_AUDIO_MS, MAX_OUTBOX_EVENTS, RealtimeSession, Reply, SessionClosedError

__all__ = ["MAX_OUTBOX_AUDIO_MS", "MAX_OUTBOX_EVENTS", "Reply", "RealtimeSession", "SessionClosedError"]
