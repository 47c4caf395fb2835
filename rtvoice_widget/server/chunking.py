"""Cut a stream of LLM tokens into pieces worth speaking.

TTS can only start once it has words, and the first audio is what the user waits for, so the
first piece is released at the first clause boundary (",", ";", ":", or a sentence end) once it
holds a couple of words; if ``first_max_words`` words come without one, the first piece is cut
there anyway, before a conjunction or preposition when one is near ("The sun is approximately
93.5 million | kilometers away..."; "The original sentence is | about..."), so a long first
clause does not hold up the first audio. Later pieces wait for a sentence end, or a clause
boundary once they are long enough to sound natural. A piece never waits on one unbroken run of
``max_run_chars`` characters: a tiny LLM sometimes strings digits together ("There are
120,396,875,480,000,..."), which has neither a boundary nor words to count, and held the first
audio back for 1.7 s. Whatever is left when the stream ends is the last piece.
"""

from __future__ import annotations

import re

__all__ = ["ClauseChunker"]

# A boundary is punctuation followed by whitespace: "3.5" or "e.g." inside a word does not cut.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s|[.!?…]+[\"')\]]*\s")
_COMPLETE_WORD = re.compile(r"\S+(?=\s)")
# Words a phrase naturally starts with: cutting just before one sounds least abrupt.
_BREAK_BEFORE = frozenset(
    "and but or so because which that who when where while if with to in on at for from of by about as than".split()
)


class ClauseChunker:
    """Feed text with :meth:`push`, get speakable pieces back; :meth:`flush` at the end.

    ``first_min_words``: words the first piece needs before a clause boundary may cut it.
    ``first_max_words``: words after which the first piece is cut without a boundary (its cut
    then goes before the last conjunction/preposition among words 4 to ``first_max_words``, if
    any); ``None`` waits for a boundary however long it takes.
    ``second_max_words``: the same cut for the second piece (``None``: it waits for a boundary
    like the later ones). A short first piece plays for well under a second; the second must be
    voiced by then or the speech stalls after it.
    ``clause_min_chars``: later pieces cut at a clause boundary only past this length (else they
    wait for a sentence end).
    ``max_run_chars``: a run of this many characters without whitespace is cut after its last one.
    """

    def __init__(self, *, first_min_words: int = 2, first_max_words: int | None = 6, clause_min_chars: int = 40,
                 max_run_chars: int = 24, second_max_words: int | None = None) -> None:
        if max_run_chars < 1:
            raise ValueError(f"max_run_chars must be at least 1, got {max_run_chars}")
        self.first_min_words = first_min_words
        self.first_max_words = first_max_words
        self.second_max_words = second_max_words
        self.clause_min_chars = clause_min_chars
        self._long_run = re.compile(r"\S{%d}" % max_run_chars)
        self._pending = ""
        self._emitted = 0

    def push(self, text: str) -> list[str]:
        self._pending += text
        pieces = []
        while (piece := self._next_piece()) is not None:
            pieces.append(piece)
        return pieces

    def flush(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        return [rest] if rest else []

    def _next_piece(self) -> str | None:
        for match in _CLAUSE_END.finditer(self._pending):
            candidate = self._pending[: match.end()]
            is_sentence = _SENTENCE_END.fullmatch(candidate, pos=max(0, match.start())) is not None
            if self._emitted == 0:
                ready = len(candidate.split()) >= self.first_min_words
            else:
                ready = is_sentence or len(candidate.strip()) >= self.clause_min_chars
            if ready:
                return self._cut(match.end())
        max_words = {0: self.first_max_words, 1: self.second_max_words}.get(self._emitted)
        if max_words is not None:
            words = list(_COMPLETE_WORD.finditer(self._pending))
            if len(words) >= max_words:
                count = max_words
                for index in range(max_words - 1, 2, -1):
                    if words[index].group().lower() in _BREAK_BEFORE:
                        count = index
                        break
                return self._cut(words[count - 1].end())
        run = self._long_run.search(self._pending)
        if run is not None:
            return self._cut(run.end())
        return None

    def _cut(self, end: int) -> str:
        piece, self._pending = self._pending[:end], self._pending[end:]
        self._emitted += 1
        return piece.strip()
