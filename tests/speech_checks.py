"""Measurements on synthesised speech that several test modules check."""

from __future__ import annotations

import numpy as np


def median_pitch_hz(audio: np.ndarray, sample_rate: int = 24000) -> float:
    """Median F0 over loud 40 ms frames, from the autocorrelation peak between 60 and 400 Hz."""
    n = int(0.04 * sample_rate)
    pitches = []
    for i in range(0, len(audio) - n, n):
        frame = audio[i : i + n] - audio[i : i + n].mean()
        if np.sqrt(np.mean(frame**2)) < 0.05:
            continue
        autocorrelation = np.correlate(frame, frame, "full")[n - 1 :]
        low, high = sample_rate // 400, sample_rate // 60
        pitches.append(sample_rate / (low + int(np.argmax(autocorrelation[low:high]))))
    return float(np.median(pitches))
