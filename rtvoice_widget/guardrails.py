"""Output guardrails: Python checks on the assistant's transcript while it streams.

A guardrail is a callable ``fn(text) -> result`` given the assistant's transcript of the current
response so far. A falsy result lets it go on; ``True``, a non-empty string (the reason) or an
object whose ``tripwire_triggered`` is true (openai-agents' ``GuardrailFunctionOutput``) trips
it. Wrap one in :class:`OutputGuardrail` (or :func:`output_guardrail`) to name it and give a
``replacement`` line the assistant says instead. Pass them as
``RealtimeSession(output_guardrails=[...])`` / ``VoiceChat(output_guardrails=[...])`` (every
response) or ``Agent(output_guardrails=[...])`` (while that agent is active).

When they run (:class:`GuardrailRunner`): each response's transcript is checked every
``every_chars`` new characters (debounced: a check waits for the one before it, and only the
newest text is checked) and once more with the final transcript
(``response.output_audio_transcript.done`` / ``response.output_text.done``). Checks run on one
thread of the runner's own, never on the session thread, so a slow check delays only the next
check. Bound: while a check runs, at most one check waits per response (its newest text replaces
the one waiting), for at most 64 responses (the oldest waiting one is dropped past that). The transcript runs ahead of the audio (the server sends both faster than real time),
which is what lets a check stop words before they are heard.

A tripped guardrail stops the response as a barge-in does: :meth:`RealtimeSession.interrupt`
(flush the playback, truncate the item at what was played, ``response.cancel``), then logs
``guardrail.tripped`` (``text`` = the transcript checked, ``guardrail``, ``reason``,
``response_id``, ``item_id``), then, with a ``replacement``, asks for a response that says it
(``response.create`` with instructions to say exactly that line and ``tool_choice`` ``none``,
once the stopped response is done) whose transcript is not checked again. Later checks of a
stopped response are skipped. A guardrail that raises is logged as ``guardrail.error``
(category ``error``) and counts as passing; the others still run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

__all__ = ["DEFAULT_EVERY_CHARS", "GuardrailRunner", "OutputGuardrail", "output_guardrail"]

#: New transcript characters between two checks of one response (about 3 s of speech).
DEFAULT_EVERY_CHARS = 60
# Responses with a check waiting (each holds only its newest text); older waiting ones are dropped
# past this, as a server that starts responses faster than checks run would otherwise grow it.
_MAX_WAITING = 64
# How long a replacement waits for the stopped response's response.done before asking anyway.
_DONE_WAIT_S = 5.0

_DELTAS = frozenset({"response.output_audio_transcript.delta", "response.output_text.delta",
                     "response.audio_transcript.delta", "response.text.delta"})
_DONES = frozenset({"response.output_audio_transcript.done", "response.output_text.done",
                    "response.audio_transcript.done", "response.text.done"})


@dataclass(frozen=True)
class OutputGuardrail:
    """A check of the assistant's transcript (see the module doc for what ``fn`` returns)."""

    fn: Callable[[str], Any]
    name: str | None = None
    replacement: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"a guardrail must be callable, got {self.fn!r}")
        if self.replacement is not None and (not isinstance(self.replacement, str) or not self.replacement.strip()):
            raise ValueError(f"replacement must be a non-empty string, got {self.replacement!r}")

    @property
    def label(self) -> str:
        return self.name or getattr(self.fn, "__name__", None) or repr(self.fn)


def output_guardrail(fn: Callable[[str], Any] | None = None, *, name: str | None = None,
                     replacement: str | None = None) -> Any:
    """``fn`` as an :class:`OutputGuardrail` (decorator, with or without arguments)."""
    if fn is None:
        return lambda f: OutputGuardrail(f, name, replacement)
    return OutputGuardrail(fn, name, replacement)


def _as_guardrail(item: Any) -> OutputGuardrail:
    return item if isinstance(item, OutputGuardrail) else OutputGuardrail(item)


def _tripped(result: Any) -> tuple[bool, str | None]:
    if hasattr(result, "tripwire_triggered"):
        info = getattr(result, "output_info", None)
        return bool(result.tripwire_triggered), None if info is None else str(info)
    if isinstance(result, str):
        return bool(result.strip()), result.strip() or None
    return bool(result), None


class _Response:
    __slots__ = ("text", "length", "item_id", "checked", "stopped", "exempt")

    def __init__(self, exempt: bool) -> None:
        self.text: list[str] = []
        self.length = 0  # characters in text, kept as deltas arrive (not re-summed per delta)
        self.item_id: str | None = None
        self.checked = 0  # characters of text the last check saw (or that are queued for one)
        self.stopped = False
        self.exempt = exempt


class GuardrailRunner:
    """Runs output guardrails on one session's responses (see the module doc).

    ``guardrails``: checks for every response (:meth:`add` more later); ``active``: a callable
    returning more checks for the current moment (the active agent's), asked at each check;
    ``watch_active=False`` when it can never return any (no agent has guardrails), so a
    session without guardrails does not follow its events at all. ``every_chars`` may be
    changed at any time.
    """

    def __init__(self, session: Any, guardrails: Iterable[Any] = (), *,
                 active: Callable[[], Iterable[Any]] | None = None, watch_active: bool = True,
                 every_chars: int = DEFAULT_EVERY_CHARS) -> None:
        if isinstance(guardrails, (str, bytes)) or callable(guardrails):
            raise TypeError("output_guardrails must be a list of callables or OutputGuardrail objects")
        self.guardrails = [_as_guardrail(g) for g in guardrails]
        if isinstance(every_chars, bool) or not isinstance(every_chars, int) or every_chars < 1:
            raise ValueError(f"every_chars must be an int >= 1, got {every_chars!r}")
        self.every_chars = every_chars
        self._session = session
        self._active = active
        self._responses: dict[str, _Response] = {}
        self._done: dict[str, threading.Event] = {}
        self._replacements_due = 0  # responses to come that say a replacement line
        # response_id -> (state, newest text to check): one waiting check per response, at most
        # _MAX_WAITING of them, oldest first; a newer text replaces the one that waited.
        self._waiting: dict[str, tuple[_Response, str]] = {}
        self._wake = threading.Condition()
        self._closed = False
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._following = False
        if self.guardrails or (active is not None and watch_active):
            self._follow()

    def add(self, guardrail: Any) -> None:
        """Check every response with ``guardrail`` too, from the next check on."""
        self.guardrails.append(_as_guardrail(guardrail))
        self._follow()

    def _follow(self) -> None:
        # Every log row passes through _on_row once following: only sessions with guardrails pay.
        if not self._following:
            self._following = True
            self._session.on("*", self._on_row)

    def current(self) -> list[OutputGuardrail]:
        """The guardrails a check runs now: the session's, then the active agent's."""
        extra = list(self._active()) if self._active is not None else []
        return self.guardrails + [_as_guardrail(g) for g in extra]

    # -- session thread: follow the transcript ---------------------------------------------------

    def _on_row(self, row: dict) -> None:
        type_ = row["type"]
        if row["source"] != "server":
            if type_ == "connection.closed":
                with self._wake:
                    self._closed = True
                    self._wake.notify()
            return
        response_id = row.get("response_id")
        if type_ == "response.created" and response_id:
            with self._lock:
                exempt = self._replacements_due > 0
                self._replacements_due -= exempt
                self._responses[response_id] = _Response(exempt)
                if len(self._responses) > 64:  # old responses never stream again
                    del self._responses[next(iter(self._responses))]
            return
        if type_ == "response.done":
            with self._lock:
                self._responses.pop(response_id, None)
                event = self._done.pop(response_id, None)
            if event is not None:
                event.set()
            return
        state = self._responses.get(response_id) if response_id else None
        if state is None or state.stopped or state.exempt:
            return
        if type_ in _DELTAS and isinstance(row.get("text"), str):
            state.text.append(row["text"])
            state.length += len(row["text"])
            state.item_id = row.get("item_id") or state.item_id
            if state.length - state.checked >= self.every_chars:
                state.checked = state.length
                self._submit(response_id, state, "".join(state.text))
        elif type_ in _DONES:
            final = row.get("text") if isinstance(row.get("text"), str) else "".join(state.text)
            state.item_id = row.get("item_id") or state.item_id
            state.checked = len(final)
            self._submit(response_id, state, final)

    def _submit(self, response_id: str, state: _Response, text: str) -> None:
        if not self.current():
            return
        with self._wake:
            self._closed = False
            self._waiting[response_id] = (state, text)
            if len(self._waiting) > _MAX_WAITING:
                del self._waiting[next(iter(self._waiting))]
            self._wake.notify()
            if self._worker is None:  # none yet, or it ended with the last connection
                self._worker = threading.Thread(target=self._work, name="rtvoice-guardrails", daemon=True)
                self._worker.start()

    # -- the runner's thread -------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if not self._waiting:  # closed, nothing left to check
                    self._worker = None
                    return
                response_id = next(iter(self._waiting))
                state, text = self._waiting.pop(response_id)
            self._check(response_id, state, text)

    def _check(self, response_id: str, state: _Response, text: str) -> None:
        if state.stopped:
            return
        for guardrail in self.current():
            try:
                tripped, reason = _tripped(guardrail.fn(text))
            except Exception as exc:
                self._log("guardrail.error", f"guardrail {guardrail.label} raised {type(exc).__name__}: {exc}",
                          guardrail=guardrail.label, response_id=response_id)
                continue
            if tripped:
                state.stopped = True
                self._trip(guardrail, reason, response_id, state, text)
                return

    def _trip(self, guardrail: OutputGuardrail, reason: str | None, response_id: str, state: _Response,
              text: str) -> None:
        from rtvoice_widget.session import SessionClosedError

        session = self._session
        done = threading.Event()
        with self._lock:
            if response_id in self._responses:
                self._done[response_id] = done
            else:
                done.set()  # it ended already; interrupt() still stops what is playing
        try:
            session.interrupt()
        except SessionClosedError:
            return
        self._log("guardrail.tripped", text, guardrail=guardrail.label, reason=reason,
                  response_id=response_id, item_id=state.item_id, replacement=guardrail.replacement)
        if guardrail.replacement is None:
            return
        # A response.create while the stopped one is still active would be refused.
        done.wait(_DONE_WAIT_S)
        self._done.pop(response_id, None)
        with self._lock:
            self._replacements_due += 1
        try:
            # No tools: the line is all this response is for (a keyword-routing server would
            # otherwise route the user's last words to a tool again).
            session.create_response(
                instructions=f'Say exactly this sentence, and nothing else: "{guardrail.replacement}"',
                tool_choice="none")
        except SessionClosedError:
            with self._lock:
                self._replacements_due -= 1
        except Exception as exc:  # over the cost cap, say: the stop itself stands
            with self._lock:
                self._replacements_due -= 1
            self._log("guardrail.error", f"could not ask for the replacement line: {type(exc).__name__}: {exc}",
                      guardrail=guardrail.label, response_id=response_id)

    def _log(self, type_: str, text: str, **fields: Any) -> None:
        session = self._session
        session.events.local(type_, session.now_ms(), text=text, **fields)
