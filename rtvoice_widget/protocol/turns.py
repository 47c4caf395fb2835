"""One :class:`Turn` per response, with its timing marks and the latencies derived from them.

Contract: a Turn only records; :class:`~rtvoice_widget.protocol.ClientProtocol` decides when a
mark is set (see its handlers). Latency names match the public turns table
(:data:`rtvoice_widget.turn_table.LATENCY_COLUMNS`), so a dashboard reads the same names from the
live protocol and from a saved session.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Turn", "latency_medians"]


@dataclass
class Turn:
    """One response and the user input it answers, with timing marks on the caller's clock (ms).

    A turn is made at ``response.created``; user marks collected before it (speech started and
    stopped, commit, the user item) are attached to it. Latencies count from ``user_done_ms``:
    speech stopped when the server detected it, else the commit, else the user item. Late facts
    (a user transcript that arrives after ``response.done``, a barge-in while the tail of the audio
    still plays) update the same object after :class:`TurnDone`.
    """

    index: int
    response_id: str | None = None
    user_item_id: str | None = None
    assistant_item_ids: list[str] = field(default_factory=list)
    speech_started_ms: float | None = None
    speech_stopped_ms: float | None = None
    committed_ms: float | None = None
    user_item_ms: float | None = None
    response_created_ms: float | None = None
    first_audio_ms: float | None = None
    first_transcript_ms: float | None = None
    response_done_ms: float | None = None
    status: str | None = None
    interrupted: bool = False
    truncated_at_ms: float | None = None
    user_text: str = ""
    assistant_text: str = ""
    audio_ms: float = 0.0
    tool_calls: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    # Per kind of TOKEN_KINDS plus input_tokens / output_tokens / total_tokens, from usage.
    tokens: dict[str, int] | None = None
    cost_usd: float | None = None  # when the protocol has prices

    @property
    def user_done_ms(self) -> float | None:
        for mark in (self.speech_stopped_ms, self.committed_ms, self.user_item_ms):
            if mark is not None:
                return mark
        return None

    def _since_user(self, mark: float | None) -> float | None:
        start = self.user_done_ms
        return None if mark is None or start is None else mark - start

    # Latency names match the public turns table (rtvoice_widget.turn_table.LATENCY_COLUMNS).

    @property
    def speech_to_response_ms(self) -> float | None:
        """End of user input → ``response.created``."""
        return self._since_user(self.response_created_ms)

    @property
    def speech_to_first_audio_ms(self) -> float | None:
        """End of user input → first audio delta (the latency a user hears)."""
        return self._since_user(self.first_audio_ms)

    @property
    def speech_to_first_text_ms(self) -> float | None:
        """End of user input → first assistant transcript or text delta."""
        return self._since_user(self.first_transcript_ms)

    @property
    def response_duration_ms(self) -> float | None:
        """``response.created`` → ``response.done``."""
        if self.response_created_ms is None or self.response_done_ms is None:
            return None
        return self.response_done_ms - self.response_created_ms

    # The names these latencies had first (still used by callers); same values.
    response_latency_ms = speech_to_response_ms
    first_audio_latency_ms = speech_to_first_audio_ms
    first_transcript_latency_ms = speech_to_first_text_ms
    duration_ms = response_duration_ms

    def to_dict(self) -> dict[str, Any]:
        """Fields and latencies as one flat dict (a DataFrame row)."""
        out = asdict(self)
        for name in ("user_done_ms", "speech_to_response_ms", "speech_to_first_audio_ms",
                     "speech_to_first_text_ms", "response_duration_ms", "response_latency_ms",
                     "first_audio_latency_ms", "first_transcript_latency_ms", "duration_ms"):
            out[name] = getattr(self, name)
        return out


def latency_medians(turns: list[Turn]) -> dict[str, float | None]:
    """Median of each latency over ``turns`` (ms; ``None`` where no turn has it), keyed like
    :meth:`ClientProtocol.metrics` (``median_<latency>``)."""

    def median(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    return {f"median_{name}": median([getattr(t, name) for t in turns])
            for name in ("speech_to_response_ms", "speech_to_first_audio_ms",
                         "speech_to_first_text_ms", "response_duration_ms")}


class TurnTracker:
    """Which turn each mark belongs to: ``turns`` in response order, and ``pending`` (the turn
    collecting user input for the next response).

    A turn is made at ``response.created`` (or at a ``response.done`` that came without one);
    user marks collected before it are attached to it. Lookups by response and by user item
    let late events (a transcript after ``response.done``) update the right turn.
    """

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self.pending: Turn | None = None
        self.by_response: dict[str, Turn] = {}
        self._by_user_item: dict[str, Turn] = {}

    def pending_for(self, user_item_id: str | None = None) -> Turn:
        """The turn collecting user input for ``user_item_id``, made if needed.

        A user item that already belongs to a turn (an event arriving late) keeps that turn. A
        new user item replaces an unanswered earlier one (whose text stays in the conversation).
        """
        if user_item_id is not None and user_item_id in self._by_user_item:
            return self._by_user_item[user_item_id]
        turn = self.pending
        if turn is None or (user_item_id is not None and turn.user_item_id is not None):
            turn = self.pending = Turn(index=-1)
        if user_item_id is not None:
            turn.user_item_id = user_item_id
            self._by_user_item[user_item_id] = turn
        return turn

    def user_text(self, user_item_id: str, text: str) -> None:
        """The user item's best text changed: its turn (if any) shows it."""
        turn = self._by_user_item.get(user_item_id)
        if turn is not None:
            turn.user_text = text

    def drop_uncommitted(self) -> None:
        """The input buffer was cleared: a pending turn without a commit is gone."""
        if self.pending is not None and self.pending.committed_ms is None:
            self.pending = None

    def of(self, response_id: str | None) -> Turn | None:
        return self.by_response.get(response_id) if response_id else None

    def start(self, response_id: str | None) -> Turn:
        """The pending turn (or a new one) becomes the turn of ``response_id``, the next in order."""
        turn = self.pending or Turn(index=-1)
        self.pending = None
        turn.index, turn.response_id = len(self.turns), response_id
        self.turns.append(turn)
        if response_id is not None:
            self.by_response[response_id] = turn
        return turn
