"""The one protocol error both sides raise: an event the receiver cannot use.

The client (:mod:`rtvoice_widget.protocol`) raises it for a server event that is not an object,
has no ``type`` or carries bad audio, before any state changes, so the caller can log the event
and go on. The embedded server (:mod:`rtvoice_widget.server`) raises it for a client mistake and
reports it as a GA ``error`` event (``code``, ``param``, ``event_id`` and ``type`` are the fields
of that event); the connection stays up. One class, so the shared codecs (:mod:`rtvoice_widget.pcm`)
can raise it for either side.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProtocolError"]


# eq=False: an exception compares and hashes by identity, as every other one does.
@dataclass(eq=False)
class ProtocolError(ValueError):
    """An event the receiver cannot use; ``str()`` is ``message``.

    The other fields matter where the error is sent back as an ``error`` event (the server);
    the client reads only the message.
    """

    message: str
    code: str = "invalid_value"
    param: str | None = None
    event_id: str | None = None
    type: str = "invalid_request_error"

    def __str__(self) -> str:
        return self.message
