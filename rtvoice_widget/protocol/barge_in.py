"""Barge-in: cut off what the user hears (flush, truncate at the played position, the
truncation held for a live player) and, when the server will not, cancel the response. Used
at ``speech_started`` (:mod:`.receive_input`), by :meth:`ClientProtocol.interrupt
<.core.ClientProtocol.interrupt>` and :meth:`~.core.ClientProtocol.clear_output_audio`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .actions import Action, FlushPlayback, Send

if TYPE_CHECKING:  # the handlers are the protocol's; it imports them
    from .core import ClientProtocol


def barge_in(p: ClientProtocol, now_ms: float, cancel: bool = False) -> list[Action]:
    """Flush and truncate what is audible; cancel the active response when ``cancel`` or
    the server will not (``interrupt_response=False``)."""
    actions = cut_off_audio(p, now_ms)
    active = p.active_response_id
    if active is not None:
        p._interrupted_responses.add(active)
        turn = p.turn_tracker.by_response.get(active)
        if turn is not None:
            turn.interrupted = True
        if cancel or not p.config.turn_detection.interrupt_response:
            # The server keeps generating unless told: cancel it ourselves.
            actions.append(Send(p.cancel_response()))
    return actions


def cut_off_audio(p: ClientProtocol, now_ms: float) -> list[Action]:
    """Flush and truncate what is audible (the truncation held with a live player); the
    responses they belong to play no more audio."""
    actions: list[Action] = []
    for item in p._audible_items(now_ms):
        estimate = float(int(p.played_ms(item.id, now_ms)))
        item.flushed = True
        item.played_ms = estimate
        item.truncated_at_ms = estimate
        actions.append(FlushPlayback(item.id))
        if p.live_player:
            p.playback.truncations_due[item.id] = estimate  # sent at playback_flushed / truncate_now
        else:
            actions.append(Send(p.truncate(item.id, item.content_index, estimate)))
        if item.response_id is not None:
            p._interrupted_responses.add(item.response_id)
            turn = p.turn_tracker.by_response.get(item.response_id)
            if turn is not None:
                turn.interrupted = True
                if turn.truncated_at_ms is None:
                    turn.truncated_at_ms = estimate
    if actions:
        p.playback.dropped(now_ms)
    return actions
