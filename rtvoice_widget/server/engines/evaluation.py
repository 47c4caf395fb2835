"""Helpers to measure engines: word error rate and synthetic spoken prompts.

Hand-written WER (a word-level Levenshtein distance): ``jiwer`` would do, but it is one more
dependency for twenty lines.
"""

from __future__ import annotations

import re

import numpy as np

_NON_WORD = re.compile(r"[^a-z0-9' ]+")


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation ("Don't stop-now!" → ["don't", "stop", "now"])."""
    return _NON_WORD.sub(" ", text.lower().replace("-", " ")).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, number of reference words)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1], len(ref)


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER: total word errors over total reference words."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    errors = words = 0
    for reference, hypothesis in zip(references, hypotheses):
        e, n = word_errors(reference, hypothesis)
        errors, words = errors + e, words + n
    if words == 0:
        raise ValueError("the references hold no words")
    return errors / words


def spoken(tts, text: str, sample_rate: int, *, voice: str | None = None, pad_s: float = 0.0) -> np.ndarray:
    """``text`` said by ``tts``, resampled to ``sample_rate``, with ``pad_s`` of silence each side."""
    import soxr

    audio = tts.synthesize(text, voice=voice)
    if sample_rate != tts.sample_rate:
        audio = soxr.resample(audio, tts.sample_rate, sample_rate).astype(np.float32)
    pad = np.zeros(int(round(pad_s * sample_rate)), dtype=np.float32)
    return np.concatenate([pad, audio, pad])
