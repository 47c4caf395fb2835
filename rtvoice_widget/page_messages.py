"""The page's reports, checked and worded for the log: echo checks, player overflows, first
sound. Pure functions of a message's content; the widget's dispatch table (``VoiceChat``) logs
what they return. A malformed report raises ``ValueError`` (logged as ``widget.error``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

__all__ = ["FirstSound", "echo_check", "echo_fields", "echo_measured", "playback_overflow"]


def echo_fields(content: dict[str, Any]) -> dict[str, float]:
    """The figures of an echo measurement from the page (js/lib/echo-check.js), checked."""
    fields = {}
    for name in ("return_loss_db", "playback_dbfs", "mic_dbfs", "measured_ms"):
        value = content.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r:.40}")
        fields[name] = round(float(value), 1)
    return fields


def echo_measured(content: dict[str, Any]) -> tuple[str, str, dict[str, float]]:
    """An ``echo`` report (one reply's echo in full duplex): ``(type, text, fields)`` to log."""
    fields = echo_fields(content)
    return "echo.measured", f"echo {fields['return_loss_db']:.0f} dB below playback", fields


def echo_check(content: dict[str, Any]) -> tuple[str, str, dict[str, float], str | None]:
    """A ``duplex`` report (the page's echo check decided): ``(type, text, fields, notice)``;
    ``notice`` is what to tell the person on a fallback to half-duplex, else None."""
    state = content.get("state")
    if state not in ("full", "half"):
        raise ValueError(f"unknown duplex state {state!r:.40}")
    fields = echo_fields(content)
    loss = fields["return_loss_db"]
    if state == "full":
        return "echo.full_duplex", f"echo {loss:.0f} dB below playback: full duplex", fields, None
    notice = (f"Your speakers' sound comes back through the mic ({loss:.0f} dB quieter, too loud to "
              "cancel): the mic pauses while the AI speaks. Use headphones (tick Headphones) "
              "to interrupt by voice.")
    return "echo.half_duplex", f"echo only {loss:.0f} dB below playback: half-duplex", fields, notice


def playback_overflow(content: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A ``playback`` report (a browser buffer dropped audio): ``(text, fields)`` for
    ``playback.overflow``."""
    state = content.get("state")
    if state != "overflow":
        raise ValueError(f"unknown playback state {state!r:.40}")
    fields: dict[str, Any] = {"buffer": str(content.get("buffer"))[:20]}
    for name in ("dropped", "dropped_ms"):
        value = content.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r:.40}")
        fields[name] = value
    return str(content.get("detail") or "")[:200] or None, fields


class FirstSound:
    """``playback.started`` once per item: when the page's player rendered its first sample
    (``started_t``, page clock), on the session clock (``started_ms``), for the turns table's
    ``voice_to_first_sound_ms``.

    The page clock is mapped as the mic frames' capture times are (``page_to_session_ms``,
    :meth:`MicIngest.page_to_session_ms <rtvoice_widget.mic_ingest.MicIngest.page_to_session_ms>`):
    the fastest mic transit counts as zero. The end of voice comes from the recording, where
    those capture times placed the user's audio, so the gap is between two times of one clock
    and that transit cancels out. Without mic frames there is no mapping (and no recorded voice
    to measure from): nothing is logged.
    """

    def __init__(self, page_to_session_ms: Callable[[float], float | None]) -> None:
        self._page_to_session_ms = page_to_session_ms
        self._logged: set[str] = set()

    def fields(self, content: dict[str, Any]) -> dict[str, Any] | None:
        """The fields of the ``playback.started`` to log for a ``played`` report, or None."""
        item_id, started_t = content.get("item_id"), content.get("started_t")
        if (not isinstance(item_id, str) or item_id in self._logged or isinstance(started_t, bool)
                or not isinstance(started_t, (int, float)) or not math.isfinite(started_t)):
            return None
        started_ms = self._page_to_session_ms(float(started_t))
        if started_ms is None:
            return None
        self._logged.add(item_id)
        if len(self._logged) > 256:
            self._logged = {item_id}  # old items never report again
        latency = content.get("output_latency_ms")
        return dict(item_id=item_id, started_ms=started_ms,
                    output_latency_ms=latency if isinstance(latency, (int, float)) and not isinstance(latency, bool) else None)
