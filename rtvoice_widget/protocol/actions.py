"""What :meth:`ClientProtocol.receive` asks the caller to do: the protocol's only output.

Contract: actions are frozen values; the protocol has done its own bookkeeping before returning
them, so the caller only carries them out (send, play, flush, run a tool, log).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .turns import Turn

__all__ = ["Action", "CostCapReached", "FlushPlayback", "PlayAudio", "RunTool", "Send", "TurnDone"]


@dataclass(frozen=True)
class Send:
    """Send ``event`` (a GA client event dict) to the server."""

    event: dict[str, Any]


@dataclass(frozen=True)
class PlayAudio:
    """Queue ``pcm16`` (PCM16 24 kHz mono) for playback after what is queued already."""

    item_id: str
    response_id: str | None
    content_index: int
    pcm16: bytes


@dataclass(frozen=True)
class FlushPlayback:
    """Drop whatever of ``item_id`` is queued or playing, now."""

    item_id: str


@dataclass(frozen=True)
class RunTool:
    """Run tool ``name`` with JSON ``arguments``; answer with ``tool_output(call_id, ...)``."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class CostCapReached:
    """Spending reached ``max_cost_usd``: the protocol creates no more responses (log it)."""

    cost_usd: float
    max_cost_usd: float


@dataclass(frozen=True)
class TurnDone:
    """A response finished (completed, cancelled, failed or incomplete)."""

    turn: Turn


Action = Send | PlayAudio | FlushPlayback | RunTool | TurnDone | CostCapReached
