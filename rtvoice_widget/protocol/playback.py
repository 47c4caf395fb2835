"""What the user has heard: the playback model behind barge-in and truncation.

Barge-in must truncate each assistant item where the user stopped hearing it, not where the
server stopped sending it. The player reports its position (:meth:`PlaybackModel.progress`);
between reports the position is extrapolated in real time. Items the player has not reported on
are estimated by a *virtual player* (on by default) that plays each chunk in real time from when
it arrived or when the previous chunk ends, like a gap-free player with no start-up buffer;
``virtual_player=False`` counts such items as unplayed.

Contract: every estimate is clamped to the audio received, because the server rejects a
truncation past it. The model reads :class:`~rtvoice_widget.protocol.conversation.Item` fields
and writes only ``played_ms``; it builds no events (the protocol does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .conversation import Item

__all__ = ["PlaybackModel", "Track"]


@dataclass
class Track:
    """Where the player is in one item: the last report, and the virtual player's segments."""

    reported_ms: float | None = None
    reported_at_ms: float = 0.0
    # Spans [start, duration] in session ms during which the virtual player plays this item.
    segments: list[list[float]] = field(default_factory=list)


class PlaybackModel:
    """Per-item playback tracks, the order audio went to the player, and held truncations."""

    def __init__(self, virtual_player: bool = True) -> None:
        self.virtual_player = virtual_player
        self.tracks: dict[str, Track] = {}
        # Assistant items in the order their audio went to the player (an ordered set), and those
        # a report on a later item showed to be over.
        self.audio_order: dict[str, None] = {}
        self.finished: set[str] = set()
        # live_player: flushed items whose truncation waits for the player's final position
        # (item id -> the estimate to fall back on).
        self.truncations_due: dict[str, float] = {}
        self.virtual_end_ms = 0.0  # when the virtual player's queue runs dry
        self.last_audio_response: str | None = None  # response of the newest audio played

    def queued(self, item_id: str, response_id: str | None, length_ms: float, now_ms: float) -> None:
        """``length_ms`` more of ``item_id`` went to the player at ``now_ms``."""
        self.last_audio_response = response_id
        if item_id not in self.finished:
            self.audio_order.setdefault(item_id)
        track = self.tracks.setdefault(item_id, Track())
        start = max(now_ms, self.virtual_end_ms)
        if track.segments and track.segments[-1][0] + track.segments[-1][1] == start:
            track.segments[-1][1] += length_ms
        else:
            track.segments.append([start, length_ms])
        self.virtual_end_ms = start + length_ms

    def dropped(self, now_ms: float) -> None:
        """The player's queue was flushed at ``now_ms``."""
        self.virtual_end_ms = now_ms

    def progress(self, item: Item, played_ms: float, now_ms: float, items: Mapping[str, Item]) -> None:
        """The player reports ``played_ms`` of ``item`` at ``now_ms`` (clamped to what arrived)."""
        played = max(0.0, min(float(played_ms), item.audio_received_ms))
        track = self.tracks.setdefault(item.id, Track())
        track.reported_ms = played
        track.reported_at_ms = now_ms
        item.played_ms = played
        if played > 0:
            self._finish_items_before(item.id, now_ms, items)

    def _finish_items_before(self, item_id: str, now_ms: float, items: Mapping[str, Item]) -> None:
        """The player plays in arrival order: audio of ``item_id`` playing means every item
        queued before it has played to its end, reported or not."""
        if item_id not in self.audio_order:
            return
        order = self.audio_order
        # Settled items leave the order, so this walks only what was new since the last report.
        while (earlier_id := next(iter(order))) != item_id:
            del order[earlier_id]
            earlier = items.get(earlier_id)
            if earlier is None or earlier.flushed:
                continue
            self.finished.add(earlier_id)
            track = self.tracks.setdefault(earlier_id, Track())
            track.reported_ms = earlier.played_ms = earlier.audio_received_ms
            track.reported_at_ms = now_ms

    def played_ms(self, item: Item, now_ms: float) -> float:
        """Best estimate of how much of ``item`` the user has heard by ``now_ms``."""
        if item.flushed:
            return item.played_ms
        track = self.tracks.get(item.id)
        if track is None:
            return 0.0
        if track.reported_ms is not None:
            estimate = track.reported_ms + max(0.0, now_ms - track.reported_at_ms)
        elif self.virtual_player:
            estimate = sum(min(max(now_ms - start, 0.0), length)
                           for start, length in track.segments)
        else:
            estimate = 0.0
        return min(estimate, item.audio_received_ms)

    def audible(self, items: Iterable[Item], active_response_id: str | None, now_ms: float) -> list[Item]:
        """Assistant items with audio that is queued, playing or still streaming in."""
        audible = []
        for item in items:
            if item.flushed or item.audio_received_ms <= 0 or item.id in self.finished:
                continue
            track = self.tracks.get(item.id)
            known = track is not None and (track.reported_ms is not None or self.virtual_player)
            if item.response_id is not None and item.response_id == active_response_id:
                audible.append(item)  # more audio may still come
            elif known:
                if self.played_ms(item, now_ms) < item.audio_received_ms:
                    audible.append(item)
            elif item.response_id == self.last_audio_response:
                # No report and no virtual player: the newest audio may still be queued; older
                # audio went into the player before it, so it is taken as played.
                audible.append(item)
        return audible

    def forget(self, item_id: str) -> None:
        """Drop all state of a deleted item."""
        self.tracks.pop(item_id, None)
        self.audio_order.pop(item_id, None)
        self.finished.discard(item_id)
        self.truncations_due.pop(item_id, None)
