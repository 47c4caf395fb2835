"""Stop a streamed reply at a sentence end once it has said enough.

Spoken replies should be short, and a tiny model rambles: ``SentenceBudget`` lets text through
piece by piece until the ``max_sentences``-th sentence has ended, then cuts exactly after that
sentence's final punctuation, so speech never stops mid-sentence.

A sentence end is ``.``, ``!`` or ``?`` (optionally followed by closing quotes/brackets) and then
whitespace, so "3.5" and "e.g.x" do not end sentences; abbreviations like "Mr. Smith" do — an
accepted simplification for a budget that is only a soft limit.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)")


class SentenceBudget:
    def __init__(self, max_sentences: int | None) -> None:
        if max_sentences is not None and max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1 or None, got {max_sentences}")
        self.max_sentences = max_sentences
        self.text = ""
        self.exhausted = False

    def feed(self, piece: str) -> str:
        """The part of ``piece`` to emit; sets ``exhausted`` once the budget is used up."""
        if self.exhausted:
            return ""
        if self.max_sentences is None:
            self.text += piece
            return piece
        start = len(self.text)
        candidate = self.text + piece
        ends = list(_SENTENCE_END.finditer(candidate))
        if len(ends) >= self.max_sentences:
            cut = ends[self.max_sentences - 1].end()
            self.exhausted = True
            emitted = candidate[start:cut] if cut > start else ""
            self.text = candidate[:max(cut, start)]
            return emitted
        self.text = candidate
        return piece
