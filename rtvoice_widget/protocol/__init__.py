"""The client side of the Realtime protocol as a pure state machine (sans-I/O).

:class:`ClientProtocol` does no I/O and has no clock: the caller sends the event dicts the
builders return, feeds every parsed server event to :meth:`ClientProtocol.receive` together with
the current time in milliseconds, and carries out the :class:`Action` objects it gets back::

    proto = ClientProtocol(SessionConfig())
    ws.send(json.dumps(proto.session_update()))
    for action in proto.receive(json.loads(message), now_ms=clock()):
        match action:
            case Send(event): ws.send(json.dumps(event))
            case PlayAudio(): player.enqueue(action.item_id, action.pcm16)
            case FlushPlayback(item_id): player.flush(item_id)
            case RunTool(): ...   # run it, then send proto.tool_output(call_id, output)
            case TurnDone(turn): ...

State kept: ``items`` (conversation items in server order), ``active_response_id``, per-item
audio received and played, user and assistant transcripts (partial and final), ``calls``
(function calls, ``calls_in_flight`` for the unanswered ones), ``turns`` (one :class:`Turn` per
response, with its latency marks) and ``errors``.

Beta event names (``response.audio.delta``, ``response.audio_transcript.*``, ``response.text.*``,
``conversation.item.created``) are accepted and normalised to GA names; unknown types are
tolerated (they return no action).

The parts, one concept each (``ClientProtocol`` in :mod:`.core` composes them):

- :mod:`.client_events`: client event builders and their argument checks;
- :mod:`.server_events`: beta aliases, normalisation and field checks of server events;
- :mod:`.actions`: what ``receive`` asks the caller to do;
- :mod:`.conversation`: items in server order (placement by ``previous_item_id``), function calls;
- :mod:`.playback`: what the user heard, the basis of barge-in truncation;
- :mod:`.cost`: prices, usage by token kind, the cost meter and its cap;
- :mod:`.turns`: one :class:`Turn` per response and its latencies.
"""

from __future__ import annotations

from ..errors import ProtocolError
from ..pcm import SAMPLE_RATE, pcm16_ms
from .actions import Action, CostCapReached, FlushPlayback, PlayAudio, RunTool, Send, TurnDone
from .conversation import FunctionCall, Item
from .core import IGNORED_OTHER, MAX_IGNORED_TYPES, ClientProtocol
from .cost import TOKEN_KINDS, CostLimitError, check_prices, usage_tokens
from .server_events import BETA_ALIASES, normalize_event
from .turns import Turn

__all__ = [
    "Action",
    "BETA_ALIASES",
    "ClientProtocol",
    "CostCapReached",
    "CostLimitError",
    "FlushPlayback",
    "FunctionCall",
    "Item",
    "PlayAudio",
    "ProtocolError",
    "RunTool",
    "Send",
    "Turn",
    "TOKEN_KINDS",
    "TurnDone",
    "check_prices",
    "normalize_event",
    "pcm16_ms",
    "usage_tokens",
]
# Also importable from here, as before the split: IGNORED_OTHER, MAX_IGNORED_TYPES, SAMPLE_RATE.
