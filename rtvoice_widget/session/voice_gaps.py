"""The headline latency of a live session: end of the user's recorded voice → first reply audio.

Contract: :meth:`VoiceGaps.gaps` gives, per reply in turn order, what the turns table calls
``voice_to_first_audio_ms`` (:func:`rtvoice_widget.turn_table.voice_end_ms` on the recorded user
track), None where there is none (no recorded voice, or no audio yet). Each turn's value is
computed once, from the 30 s of recording before its first audio, and cached by response id,
so it stays cheap to call every second (the widget's stats do). :meth:`~VoiceGaps.stats` gives
``median_voice_to_first_audio_ms`` / ``p90_voice_to_first_audio_ms`` for ``metrics()``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..audio import Recorder
from ..protocol import Turn

__all__ = ["VoiceGaps"]


class VoiceGaps:
    """The cache of one session's voice gaps (read on any thread; turns are only read)."""

    def __init__(self) -> None:
        self._cache: dict = {}  # response id (or turn index) -> gap in ms, or None

    def gaps(self, turns: Iterable[Turn], recording: Recorder) -> list[float | None]:
        from rtvoice_widget.turn_table import voice_end_ms  # pandas, only when asked

        cache = self._cache
        gaps: list[float | None] = []
        for turn in list(turns):
            key = turn.response_id or turn.index
            if key not in cache:
                if turn.first_audio_ms is None or turn.user_done_ms is None:
                    continue  # not final yet: asked again next time
                start = max(0.0, (turn.first_audio_ms - 30_000.0) // 20 * 20)  # frames stay on the session grid
                window = recording.user_pcm16(start, turn.first_audio_ms)
                end = voice_end_ms(window, recording.sample_rate, turn.first_audio_ms - start)
                cache[key] = turn.first_audio_ms - (start + end) if end == end else None
            gaps.append(cache[key])
        return gaps

    def stats(self, turns: Iterable[Turn], recording: Recorder) -> dict[str, float | None]:
        gaps = [g for g in self.gaps(turns, recording) if g is not None]
        if not gaps:
            return {"median_voice_to_first_audio_ms": None, "p90_voice_to_first_audio_ms": None}
        p50, p90 = np.percentile(gaps, [50, 90])
        return {"median_voice_to_first_audio_ms": float(p50), "p90_voice_to_first_audio_ms": float(p90)}
