"""The append-only event log of a Realtime session.

Every client, server and local event goes through :meth:`EventLog.append`. Audio is never kept
here: the base64 ``audio`` of ``input_audio_buffer.append`` and the ``delta`` of
``response.output_audio.delta`` are replaced by their duration (``audio_ms``), computed from the
base64 length without decoding. The raw samples live in :class:`rtvoice_widget.audio.Recorder`.

``EventLog.to_pandas()`` returns the public schema (:data:`COLUMNS`, docs/ARCHITECTURE.md), one
row per event in arrival order:

=============  ====================  ==========================================================
column         dtype                 meaning
=============  ====================  ==========================================================
seq            int64                 0, 1, 2, ... in append order (kept across pruning / save)
time           datetime64[ns, UTC]   wall-clock time of the append (or the ``time`` passed in)
t_ms           float64               milliseconds since session start (the session clock)
source         category              ``client`` | ``server`` | ``local``
type           category              the protocol type, or a local one (``mic.started``, ...)
category       category              one of :data:`CATEGORIES`, see :func:`category_of`
event_id       object (str | None)   the protocol ``event_id``
item_id        object (str | None)   conversation item the event is about
response_id    object (str | None)   response the event belongs to
text           object (str | None)   delta, transcript, text or error message
audio_ms       float64               audio carried by the event (0.0 when none)
payload        object (dict)         the event as received/sent, audio field removed
=============  ====================  ==========================================================

Rows are stored column by column (numbers and categorical codes in :mod:`array` columns, one
list per object column, sharing its strings with the payloads) so a long session stays small
and ``to_pandas()`` needs no per-row work. Payload dicts are stored by reference: an event must not be mutated after it
was appended, nor a row's ``payload`` by a subscriber (only events that carry audio are
copied, to drop the audio). Audio durations assume the Realtime PCM16 24 kHz format.
"""

from __future__ import annotations

import fnmatch
import json
import sys
import threading
import time as _time_module
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .pcm import BYTES_PER_MS, audio_ms_of_base64

__all__ = [
    "CATEGORIES",
    "COLUMNS",
    "MAX_TYPES",
    "OTHER_TYPE",
    "MAX_SERVER_TYPES",
    "REALTIME_TYPES",
    "SOURCES",
    "EventLog",
    "audio_ms_of_base64",
    "category_of",
]

SOURCES = ("client", "server", "local")
CATEGORIES = ("user_speech", "ai_response", "system", "error", "connection")
COLUMNS = (
    "seq", "time", "t_ms", "source", "type", "category", "event_id",
    "item_id", "response_id", "text", "audio_ms", "payload",
)

#: Event type -> name of the field holding base64 PCM16 audio (GA and beta names).
AUDIO_FIELDS: dict[str, str] = {
    "input_audio_buffer.append": "audio",
    "response.output_audio.delta": "delta",
    "response.audio.delta": "delta",
}

_now_ns = _time_module.time_ns

#: Bytes of PCM16 mono 24 kHz audio per millisecond (the Realtime wire format; from pcm.py).
PCM16_BYTES_PER_MS = BYTES_PER_MS

# Types whose category depends on the item they carry (user vs assistant vs tool).
_ITEM_TYPES = frozenset({
    "conversation.item.create",
    "conversation.item.added",
    "conversation.item.created",
    "conversation.item.done",
    "conversation.item.retrieved",
    "response.output_item.added",
    "response.output_item.done",
})
_TOOL_ITEM_TYPES = frozenset({"function_call", "function_call_output", "mcp_call", "mcp_list_tools"})


def category_of(type: str, source: str = "server", event: Mapping[str, Any] | None = None) -> str:
    """The category of an event, one of :data:`CATEGORIES`.

    Rules, first match wins:

    1. ``error``: type ``error``, any ``*.failed`` type, and local ``*.error`` types
       (a client or server type ending in ``.error`` is not an error report by itself).
    2. ``connection``: ``connection.*``.
    3. Items: ``conversation.item.{create,added,created,done,retrieved}`` and
       ``response.output_item.{added,done}`` are classified by the item in ``event`` when it is
       given: function/MCP calls and outputs are ``system`` (tools), role ``user`` is
       ``user_speech``, role ``assistant`` ``ai_response``, other roles (``system``) ``system``.
       Without ``event`` a client ``conversation.item.create`` is ``user_speech``, the server
       ones fall to the rules below.
    4. ``system``: tool traffic: ``response.function_call_arguments.*``, ``response.mcp_call*``
       and local ``tool.*``.
    5. ``user_speech``: ``input_audio_buffer.*``, ``conversation.item.input_audio_transcription.*``
       and ``mic.*``.
    6. ``ai_response``: ``response.*``, ``output_audio_buffer.*``, ``playback.*``,
       ``conversation.item.truncate`` / ``.truncated``, and local ``guardrail.*`` (a check
       stopped the assistant: ``guardrail.tripped``; ``guardrail.error`` is an error by rule 1).
    7. ``system``: everything else (``session.*``, ``rate_limits.updated``, local ``agent.*``
       such as ``agent.handoff``, unknown types). Tool approval (``tool.approval_requested``,
       ``tool.approval``) is ``system`` by rule 4. Also ``system``: the local ``history.seeded``
       (a resumed conversation sent, history.py), ``replay.turn`` / ``replay.sent`` /
       ``replay.timeout`` (a saved user turn said again, its words sent, no reply in time:
       replay.py) and ``export.sent`` (a transcript or recording handed to the browser, export.py).
    """
    if type == "error" or type.endswith(".failed") or (source == "local" and type.endswith(".error")):
        return "error"
    if type.startswith("connection."):
        return "connection"
    if type in _ITEM_TYPES:
        item = event.get("item") if event is not None else None
        if isinstance(item, Mapping):
            role = item.get("role")
            if item.get("type") in _TOOL_ITEM_TYPES or role not in ("user", "assistant"):
                return "system"
            return "user_speech" if role == "user" else "ai_response"
        if type == "conversation.item.create":
            return "user_speech"
    if type.startswith(("response.function_call_arguments.", "response.mcp_call", "tool.")):
        return "system"
    if type.startswith(("input_audio_buffer.", "conversation.item.input_audio_transcription.", "mic.")):
        return "user_speech"
    if type.startswith(("response.", "output_audio_buffer.", "playback.", "conversation.item.truncate")):
        return "ai_response"
    if source == "local" and type.startswith("guardrail."):
        return "ai_response"
    return "system"


def _text_of(event: dict[str, Any]) -> str | None:
    """Text of an event without a string ``delta``: transcript, text, or error message."""
    for key in ("transcript", "text"):
        value = event.get(key)
        if value.__class__ is str:
            return value
    error = event.get("error")
    if isinstance(error, Mapping):
        message = error.get("message")
        return message if isinstance(message, str) else None
    return error if isinstance(error, str) else None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"event payload value of type {type(value).__name__} is not JSON serialisable: {value!r}")


@dataclass
class _Snapshot:
    """A consistent copy of the kept rows, column by column (see ``EventLog._snapshot``)."""

    first_seq: int
    time_ns: np.ndarray
    t_ms: np.ndarray
    audio_ms: np.ndarray
    source: np.ndarray
    type: np.ndarray
    category: np.ndarray
    event_id: list
    item_id: list
    response_id: list
    text: list
    payload: list
    type_names: list[str]

    def __len__(self) -> int:
        return len(self.payload)


#: Distinct ``type`` names the log keeps a code of; later new names share :data:`OTHER_TYPE`'s.
#: Bounds the type tables (and keeps the packed codes far from overflowing int32) whatever a
#: hostile or broken server sends; the real type of such a row stays in its ``payload``. The
#: Realtime API's own names (:data:`REALTIME_TYPES`) always keep theirs, and server names have
#: a budget of their own (:data:`MAX_SERVER_TYPES`), so a server inventing types can neither
#: hide a later ``response.done`` nor the session's local events under ``(other)``.
MAX_TYPES = 4096
#: The ``type`` column of events whose name came after the others filled the table.
OTHER_TYPE = "(other)"
#: GA server and client event types (and the beta names the protocol still accepts).
REALTIME_TYPES = frozenset({
    "conversation.created", "conversation.item.added", "conversation.item.created",
    "conversation.item.deleted", "conversation.item.done",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.failed",
    "conversation.item.input_audio_transcription.segment", "conversation.item.retrieved",
    "conversation.item.truncated", "error", "input_audio_buffer.cleared",
    "input_audio_buffer.committed", "input_audio_buffer.dtmf_event_received",
    "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
    "input_audio_buffer.timeout_triggered", "mcp_list_tools.completed", "mcp_list_tools.failed",
    "mcp_list_tools.in_progress", "output_audio_buffer.cleared", "output_audio_buffer.started",
    "output_audio_buffer.stopped", "rate_limits.updated", "response.content_part.added",
    "response.content_part.done", "response.created", "response.done",
    "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.mcp_call.completed", "response.mcp_call.failed", "response.mcp_call.in_progress",
    "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
    "response.output_audio.delta", "response.output_audio.done",
    "response.output_audio_transcript.delta", "response.output_audio_transcript.done",
    "response.output_item.added", "response.output_item.done", "response.output_text.delta",
    "response.output_text.done", "session.created", "session.updated",
    # client
    "conversation.item.create", "conversation.item.delete", "conversation.item.retrieve",
    "conversation.item.truncate", "input_audio_buffer.append", "input_audio_buffer.clear",
    "input_audio_buffer.commit", "output_audio_buffer.clear", "response.cancel", "response.create",
    "session.update",
    # beta
    "response.audio.delta", "response.audio.done", "response.audio_transcript.delta",
    "response.audio_transcript.done", "response.text.delta", "response.text.done",
})
#: Other names first seen from the server that get a code of their own; the client's and local
#: ones share what is left of :data:`MAX_TYPES`.
MAX_SERVER_TYPES = MAX_TYPES // 2
_MAX_OWN_TYPES = MAX_TYPES - MAX_SERVER_TYPES - len(REALTIME_TYPES) - 1  # - 1: OTHER_TYPE

_ROW_WIDTH = 9  # values per row in EventLog._pending, in EventLog._columns order
_FLUSH_ROWS = 4096  # rows kept pending at most: bounds the boxed numbers held before the columns

_OBJECT_COLUMNS = ("event_id", "item_id", "response_id", "text", "payload")
_SOURCE_CODES = {name: code for code, name in enumerate(SOURCES)}
_CATEGORY_CODES = {name: code for code, name in enumerate(CATEGORIES)}


class EventLog:
    """Append-only, thread-safe log of every event of a session.

    ``max_events`` keeps only the most recent events; :attr:`pruned` counts the ones dropped
    (also in ``to_pandas().attrs["pruned"]``), and ``seq`` keeps counting, so a gap at the
    start of ``seq`` shows where pruning happened. Pruning runs in batches, so up to twice
    ``max_events`` rows may be held in memory at a time (never shown).

    Storage is columnar: numbers and categorical codes in :mod:`array` columns, one list per
    object column; ``source``/``type``/``category`` are coded at append time so the DataFrame
    needs no string hashing. An append adds its row to a flat pending list (one ``extend``
    instead of nine appends: about 15 % of the append's time); every few thousand rows, and
    before any read, the pending rows move into the columns with one slice per column.
    """

    def __init__(self, max_events: int | None = None) -> None:
        if max_events is not None and (isinstance(max_events, bool) or not isinstance(max_events, int)
                                       or max_events < 1):
            raise ValueError(f"max_events must be a positive int or None, got {max_events!r}")
        self.max_events = max_events
        self._lock = threading.Lock()
        # Bound methods: bare acquire/release is ~100 ns cheaper than ``with`` on append's hot path.
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._first_seq = 0  # seq of the oldest row held
        self._next_seq = 0
        self._type_names: list[str] = []  # type code -> name, in order of first appearance
        self._type_index: dict[str, int] = {}
        self._budget = {"server": MAX_SERVER_TYPES, "own": _MAX_OWN_TYPES}  # names left to code
        # source -> {type: (packed type and source codes (see _pack), category code or -1 when
        # it depends on the item, audio field or None)}: one lookup per append
        self._plans: dict[str, dict[str, tuple[int, int, str | None]]] = {source: {} for source in SOURCES}
        self._ids: dict[str, str] = {}
        self._subscribers: list[Callable[[dict[str, Any]], Any]] = []
        self._reporting = threading.local()  # set while logging a subscriber's failure
        self._set_columns(array("q"), array("d"), array("d"), array("i"), [], [], [], [], [])
        self._set_prune_seq()

    def _set_columns(self, time_ns, t_ms, audio_ms, codes, event_id, item_id, response_id, text,
                     payload) -> None:
        self._columns = (time_ns, t_ms, audio_ms, codes, event_id, item_id, response_id, text, payload)
        self._time_ns, self._t_ms, self._audio_ms, self._code = time_ns, t_ms, audio_ms, codes
        self._event_id, self._item_id, self._response_id = event_id, item_id, response_id
        self._text, self._payload = text, payload
        # Rows land here first, flat (_ROW_WIDTH values per row), and move to the columns in
        # batches (see _flush_locked): one list extend per append instead of nine appends.
        self._pending: list[Any] = []
        self._pend = self._pending.extend

    # -- writing -------------------------------------------------------------------------

    def append(self, source: str, event: Mapping[str, Any], t_ms: float, time: Any = None) -> int:
        """Log one event and return its ``seq``.

        ``source`` is ``"client"``, ``"server"`` or ``"local"``; ``event`` a dict with a string
        ``type``; ``t_ms`` milliseconds on the session clock; ``time`` the wall-clock time
        (``datetime``/``pd.Timestamp``, naive means UTC, or ns since the epoch), now when omitted.
        Raises ``TypeError``/``ValueError`` on bad input, before anything is logged.
        """
        # The hot path of the session: written for speed (exact-type checks, no helper calls
        # for the common shapes, no copy unless audio must be dropped).
        if event.__class__ is not dict:
            if not isinstance(event, Mapping):
                raise TypeError(f"event must be a dict with a 'type', got {event!r:.200}")
            event = dict(event)
        try:  # one lookup for source and type, when both were seen before
            type_ = event["type"]
            packed, category_code, audio_field = self._plans[source][type_]
        except (KeyError, TypeError):  # new, or bad input (raised there)
            type_, (packed, category_code, audio_field) = self._plan_of(source, event)
        if t_ms.__class__ is not float:
            t_ms = float(t_ms)
        time_ns = _now_ns() if time is None else _to_ns(time)
        get = event.get
        if audio_field is None:
            audio_ms = 0.0
            payload = event
            item_id = get("item_id")
            if item_id is None:
                item = get("item")
                if item.__class__ is dict:
                    item_id = item.get("id")
            response_id = get("response_id")
            if response_id is None:
                response = get("response")
                if response.__class__ is dict:
                    response_id = response.get("id")
            text = get("delta")
            if text.__class__ is not str:
                text = _text_of(event)
        else:
            audio = get(audio_field)
            payload = event.copy()
            if audio.__class__ is str:
                n = len(audio)
                audio_ms = ((n >> 2) * 3 - (n > 0 and audio[-1] == "=") - (n > 1 and audio[-2] == "=")) \
                    / PCM16_BYTES_PER_MS
                del payload[audio_field]
            elif isinstance(audio, (bytes, bytearray, memoryview)):
                audio_ms = memoryview(audio).nbytes / PCM16_BYTES_PER_MS
                del payload[audio_field]
            else:
                audio_ms = 0.0
                payload.pop(audio_field, None)
            item_id = get("item_id")
            response_id = get("response_id")
            text = None
        # No interning here: the column shares the string object with the payload, which
        # keeps it anyway (load() interns, its columns and payloads being parsed apart).
        if item_id.__class__ is not str and item_id is not None:
            item_id = str(item_id)
        if response_id.__class__ is not str and response_id is not None:
            response_id = str(response_id)
        event_id = get("event_id")
        if event_id is not None and event_id.__class__ is not str:
            event_id = str(event_id)

        if category_code < 0:
            category_code = _CATEGORY_CODES[category_of(type_, source, event)]

        # Nothing below can raise (every value was checked above), so the columns stay aligned.
        self._acquire()
        try:
            seq = self._next_seq
            self._next_seq = seq + 1
            self._pend((time_ns, t_ms, audio_ms, packed | category_code, event_id, item_id, response_id, text,
                        payload))
            if seq >= self._flush_seq:
                self._flush_locked()
        finally:
            self._release()
        if self._subscribers and not getattr(self._reporting, "active", False):
            self._notify({
                "seq": seq, "time": datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc),
                "t_ms": t_ms, "source": source, "type": type_, "category": CATEGORIES[category_code],
                "event_id": event_id, "item_id": item_id, "response_id": response_id, "text": text,
                "audio_ms": audio_ms, "payload": payload,
            })
        return seq

    def _plan_of(self, source: Any, event: dict[str, Any]) -> tuple[str, tuple[int, int, str | None]]:
        """The type and plan of an event not seen before; raises on bad input."""
        type_ = event.get("type")
        if type_.__class__ is not str:
            if type_ is None:
                raise TypeError(f"event must be a dict with a 'type', got {event!r:.200}")
            if not isinstance(type_, str):
                raise TypeError(f"event 'type' must be a str, got {type_!r:.100}")
            type_ = str(type_)
        plans = self._plans.get(source) if source.__class__ is str else None
        if plans is None:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        plan = plans.get(type_)
        return type_, plan if plan is not None else self._new_plan(type_, source)

    def _new_plan(self, type_: str, source: str) -> tuple[int, int, str | None]:
        with self._lock:
            category = -1 if type_ in _ITEM_TYPES else _CATEGORY_CODES[category_of(type_, source)]
            code = self._type_code_locked(type_, source)
            plan = (_pack(code, _SOURCE_CODES[source], 0), category, AUDIO_FIELDS.get(type_))
            if self._type_names[code] == type_:  # a name past MAX_TYPES gets no plan: none is kept
                self._plans[source][type_] = plan
            return plan

    def _type_code_locked(self, type_: str, source: str) -> int:
        """The code of ``type_``; once the budget of its source's names is spent (see
        :data:`MAX_TYPES`), the code of :data:`OTHER_TYPE`."""
        code = self._type_index.get(type_)
        if code is None:
            if type_ not in REALTIME_TYPES and type_ != OTHER_TYPE:
                budget = "server" if source == "server" else "own"
                if self._budget[budget] <= 0:
                    return self._type_code_locked(OTHER_TYPE, source)
                self._budget[budget] -= 1
            code = self._type_index[type_] = len(self._type_names)
            self._type_names.append(type_)
        return code

    def local(self, type: str, t_ms: float, text: str | None = None, **fields: Any) -> int:
        """Log a local event (``mic.started``, ``connection.lost``, ``playback.flushed``, ...).

        ``text`` goes to the ``text`` column (it is also kept in the payload); ``fields`` go to
        the payload, ``item_id``/``response_id``/``event_id`` to their columns too.
        """
        event: dict[str, Any] = {"type": type, **fields}
        if text is not None:
            event["text"] = text
        return self.append("local", event, t_ms)

    def _flush_locked(self) -> None:
        """Move the pending rows into the columns, then prune if due."""
        pending = self._pending
        if pending:
            for k, column in enumerate(self._columns):
                column.extend(pending[k::_ROW_WIDTH])
            pending.clear()
        if self._next_seq > self._prune_seq:
            self._prune_locked()
        self._flush_seq = min(self._prune_seq, self._next_seq + _FLUSH_ROWS - 1)

    def _prune_locked(self) -> None:
        # Pruning in batches (whenever twice the limit is reached) keeps append O(1) amortised.
        if self.max_events is not None:
            drop = len(self._payload) - self.max_events
            if drop > 0:
                for column in self._columns:
                    del column[:drop]
                self._first_seq += drop
        self._set_prune_seq()

    def _set_prune_seq(self) -> None:
        # append() prunes once it appended this seq, i.e. when twice max_events rows are held:
        # one comparison per append instead of a len() and two attribute lookups.
        self._prune_seq = sys.maxsize if self.max_events is None else self._first_seq + 2 * self.max_events - 1
        self._flush_seq = min(self._prune_seq, self._next_seq + _FLUSH_ROWS - 1)

    def _snapshot(self) -> _Snapshot:
        """A consistent copy of the kept rows (respecting ``max_events`` exactly)."""
        with self._lock:
            self._flush_locked()
            n = len(self._payload)
            i = 0 if self.max_events is None else max(0, n - self.max_events)
            first_seq, type_names = self._first_seq + i, list(self._type_names)
            numbers = [np.array(col[i:] if i else col)
                       for col in (self._time_ns, self._t_ms, self._audio_ms, self._code)]
            objects = [col[i:] if i else col.copy()
                       for col in (self._event_id, self._item_id, self._response_id, self._text, self._payload)]
        time_ns, t_ms, audio_ms, code = numbers
        if not len(code):  # np.array(array("q")) of nothing is float64
            time_ns, t_ms, audio_ms, code = (np.empty(0, t) for t in (np.int64, np.float64, np.float64, np.int32))
        return _Snapshot(first_seq, time_ns.astype(np.int64, copy=False), t_ms, audio_ms,
                         ((code >> 4) & 15).astype(np.int8), code >> 8, (code & 15).astype(np.int8),
                         *objects, type_names)

    # -- subscribers ----------------------------------------------------------------------

    def subscribe(self, fn: Callable[[dict[str, Any]], Any]) -> Callable[[], None]:
        """Call ``fn(row)`` for every new event, on the appending thread; returns an unsubscribe.

        ``row`` is a dict with the :data:`COLUMNS` (``time`` a tz-aware ``datetime``). An
        exception in ``fn`` never loses the event: it is logged as a local
        ``subscriber.error`` event (not itself sent to subscribers, so a failing subscriber
        cannot loop).
        """
        if not callable(fn):
            raise TypeError(f"subscriber must be callable, got {fn!r}")
        with self._lock:
            self._subscribers = [*self._subscribers, fn]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [f for f in self._subscribers if f is not fn]

        return unsubscribe

    def _notify(self, record: dict[str, Any]) -> None:
        for fn in self._subscribers:
            try:
                fn(record)
            except Exception as exc:  # noqa: BLE001 - a UI callback must not break logging
                self._reporting.active = True
                try:
                    self.append("local", {
                        "type": "subscriber.error", "text": f"{type(exc).__name__}: {exc}",
                        "subscriber": getattr(fn, "__qualname__", repr(fn)), "failed_seq": record["seq"],
                    }, record["t_ms"])
                finally:
                    self._reporting.active = False

    # -- reading --------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<EventLog {len(self)} events, {self.pruned} pruned>"

    def __len__(self) -> int:
        with self._lock:
            n = self._next_seq - self._first_seq
        return n if self.max_events is None else min(n, self.max_events)

    @property
    def pruned(self) -> int:
        """How many events ``max_events`` dropped so far (= the ``seq`` of the oldest kept one,
        since ``seq`` starts at 0; a loaded log keeps the count of the log it was saved from)."""
        with self._lock:
            n = self._next_seq - self._first_seq
            extra = 0 if self.max_events is None else max(0, n - self.max_events)
            return self._first_seq + extra

    def to_pandas(self) -> pd.DataFrame:
        """All kept events as a DataFrame with the schema in the module docstring."""
        snap = self._snapshot()
        df = _frame(snap)
        df.attrs["pruned"] = snap.first_seq
        return df

    def filter(
        self,
        category: str | Iterable[str] | None = None,
        type: str | Iterable[str] | None = None,
        source: str | Iterable[str] | None = None,
        item_id: str | Iterable[str] | None = None,
        response_id: str | Iterable[str] | None = None,
        since_ms: float | None = None,
    ) -> pd.DataFrame:
        """The events matching every given criterion, as a DataFrame (same schema).

        Each criterion takes one value or several; ``type`` values may be shell-style patterns
        (``"response.*"``). ``since_ms`` keeps events with ``t_ms >= since_ms``.
        """
        snap = self._snapshot()
        mask = np.ones(len(snap), dtype=bool)
        if source is not None:
            mask &= np.isin(snap.source, [_SOURCE_CODES[v] for v in _values(source, "source", SOURCES)])
        if category is not None:
            mask &= np.isin(snap.category, [_CATEGORY_CODES[v] for v in _values(category, "category", CATEGORIES)])
        if type is not None:
            patterns = _values(type, "type")
            codes = [code for code, name in enumerate(snap.type_names)
                     if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
            mask &= np.isin(snap.type, codes)
        if item_id is not None:
            wanted = _values(item_id, "item_id")
            mask &= np.fromiter((x in wanted for x in snap.item_id), dtype=bool, count=len(snap))
        if response_id is not None:
            wanted = _values(response_id, "response_id")
            mask &= np.fromiter((x in wanted for x in snap.response_id), dtype=bool, count=len(snap))
        if since_ms is not None:
            mask &= snap.t_ms >= float(since_ms)
        return _frame(snap, np.flatnonzero(mask))

    def stats(self) -> dict[str, Any]:
        """Counts per category, type and source, event rate and audio milliseconds each way.

        ``audio_ms_sent`` is audio sent by the client (``input_audio_buffer.append``),
        ``audio_ms_received`` audio received from the server (output audio deltas).
        ``rate_per_s`` is events per second of session clock between the first and last kept
        event (0.0 with fewer than two events).
        """
        snap = self._snapshot()
        n = len(snap)

        def counts(codes: np.ndarray, names: Iterable[str]) -> dict[str, int]:
            names = list(names)
            found = np.bincount(codes, minlength=len(names)) if n else np.zeros(len(names), int)
            return {name: int(k) for name, k in zip(names, found) if k}

        span_ms = float(snap.t_ms[-1] - snap.t_ms[0]) if n > 1 else 0.0
        client = snap.source == _SOURCE_CODES["client"]
        return {
            "events": n,
            "pruned": snap.first_seq,
            "by_category": counts(snap.category, CATEGORIES),
            "by_type": counts(snap.type, snap.type_names),
            "by_source": counts(snap.source, SOURCES),
            "duration_ms": span_ms,
            "rate_per_s": (n - 1) / span_ms * 1000.0 if span_ms > 0 else 0.0,
            "audio_ms_sent": float(snap.audio_ms[client].sum()),
            "audio_ms_received": float(snap.audio_ms[~client].sum()),
        }

    def transcript(self, user_audio: np.ndarray | None = None, sample_rate: int = 24000) -> pd.DataFrame:
        """One row per turn (user and assistant), see :func:`rtvoice_widget.turn_table.turns_table`.

        The log alone has no end of voice: pass the recorded user track (``user_audio``, on the
        session clock) for the ``voice_*`` columns, as ``RealtimeSession.transcript()`` does."""
        from rtvoice_widget.turn_table import turns_table

        return turns_table(self.to_pandas(), user_audio, sample_rate)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the kept events to ``path``: ``.jsonl`` (one JSON object per row, the columns
        in schema order) or ``.parquet`` (payload stored as JSON text). :meth:`load` restores
        an identical ``to_pandas()``. Raises ``TypeError`` naming the value when a local
        event's payload is not JSON serialisable; the file is then left untouched."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".parquet"):
            raise ValueError(f"save() writes .jsonl or .parquet files, got {path.name!r}")
        snap = self._snapshot()
        payload_text = [json.dumps(p, default=_json_default, ensure_ascii=False) for p in snap.payload]
        tmp = path.with_name(path.name + ".tmp")
        if suffix == ".jsonl":
            encode = json.JSONEncoder(ensure_ascii=False).encode
            times = np.datetime_as_string(snap.time_ns.view("datetime64[ns]"), unit="ns")
            names = snap.type_names
            lines = [
                encode({
                    "seq": snap.first_seq + i, "time": when + "Z", "t_ms": t, "source": SOURCES[s],
                    "type": names[ty], "category": CATEGORIES[c], "event_id": e, "item_id": it,
                    "response_id": r, "text": x, "audio_ms": ms,
                })[:-1] + ', "payload": ' + p + "}\n"
                for i, (when, t, s, ty, c, e, it, r, x, ms, p) in enumerate(zip(
                    times, snap.t_ms.tolist(), snap.source.tolist(), snap.type.tolist(),
                    snap.category.tolist(), snap.event_id, snap.item_id, snap.response_id,
                    snap.text, snap.audio_ms.tolist(), payload_text))
            ]
            tmp.write_text("".join(lines), encoding="utf-8")
        else:
            pa, pq = _pyarrow()

            def coded(codes: np.ndarray, names: Iterable[str]) -> pa.Array:
                return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                                      pa.array(list(names), pa.string()))

            table = pa.table({
                "seq": pa.array(np.arange(snap.first_seq, snap.first_seq + len(snap), dtype=np.int64)),
                "time": pa.array(snap.time_ns, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                "t_ms": pa.array(snap.t_ms),
                "source": coded(snap.source, SOURCES),
                "type": coded(snap.type, snap.type_names),
                "category": coded(snap.category, CATEGORIES),
                **{col: pa.array(getattr(snap, col), pa.string()) for col in _OBJECT_COLUMNS[:-1]},
                "audio_ms": pa.array(snap.audio_ms),
                "payload": pa.array(payload_text, pa.string()),
            })
            pq.write_table(table, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, max_events: int | None = None) -> EventLog:
        """Read a log written by :meth:`save` (``.jsonl`` or ``.parquet``); ``ValueError`` for
        anything else."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            records = []
            with path.open(encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            records.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise ValueError(f"{path}:{lineno}: not a JSON event row ({exc})") from None
            missing = sorted({c for r in records for c in COLUMNS if c not in r})
            if missing:
                raise ValueError(f"{path}: rows lack the columns {missing}")
            columns = {c: [r[c] for r in records] for c in COLUMNS}
            time_ns = np.array([t.rstrip("Z") for t in columns["time"]], dtype="datetime64[ns]").view(np.int64)
        elif suffix == ".parquet":
            _, pq = _pyarrow()
            table = pq.read_table(path)
            missing = [c for c in COLUMNS if c not in table.column_names]
            if missing:
                raise ValueError(f"{path}: file lacks the columns {missing}")
            columns = {c: table.column(c).to_pylist() for c in COLUMNS if c != "time"}
            columns["payload"] = [json.loads(p) for p in columns["payload"]]
            time_ns = table.column("time").cast("int64").to_numpy()
        else:
            raise ValueError(f"load() reads .jsonl or .parquet files, got {path.name!r}")

        seqs = columns["seq"]
        first = int(seqs[0]) if seqs else 0
        if list(seqs) != list(range(first, first + len(seqs))):
            raise ValueError(f"{path}: seq is not consecutive; not a file written by EventLog.save()")
        unknown = ({s for s in columns["source"]} - set(SOURCES)) | ({c for c in columns["category"]} - set(CATEGORIES))
        if unknown:
            raise ValueError(f"{path}: unknown source/category values {sorted(map(str, unknown))}")
        log = cls(max_events=max_events)
        first_source: dict[str, str] = {}
        for name, source in zip(columns["type"], columns["source"]):
            first_source.setdefault(name, source)
        type_codes = {name: log._type_code_locked(name, source) for name, source in first_source.items()}
        ids = log._ids
        log._set_columns(
            array("q", np.asarray(time_ns, dtype=np.int64).tobytes()),
            array("d", np.asarray(columns["t_ms"], dtype=np.float64).tobytes()),
            array("d", np.asarray(columns["audio_ms"], dtype=np.float64).tobytes()),
            array("i", [_pack(type_codes[t], _SOURCE_CODES[s], _CATEGORY_CODES[c])
                        for t, s, c in zip(columns["type"], columns["source"], columns["category"])]),
            columns["event_id"],
            [ids.setdefault(i, i) if i is not None else None for i in columns["item_id"]],
            [ids.setdefault(r, r) if r is not None else None for r in columns["response_id"]],
            columns["text"],
            columns["payload"],
        )
        log._first_seq = first
        log._next_seq = first + len(seqs)
        with log._lock:
            log._prune_locked()
        return log


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError("Parquet needs pyarrow: pip install pyarrow (or use a .jsonl path)") from None
    return pyarrow, pyarrow.parquet


def _pack(type_code: int, source_code: int, category_code: int) -> int:
    """The three categorical codes of a row in one int32: one array append per row, not three."""
    return (type_code << 8) | (source_code << 4) | category_code


def _to_ns(time: Any) -> int:
    if isinstance(time, (int, np.integer)) and not isinstance(time, bool):
        ns = int(time)
        if not -(2**63) <= ns < 2**63:
            raise ValueError(f"time in ns since the epoch must fit in int64, got {time!r}")
        return ns
    if isinstance(time, datetime):  # includes pd.Timestamp; out-of-range dates raise here
        ts = pd.Timestamp(time)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return int(ts.value)
    raise TypeError(f"time must be a datetime, pd.Timestamp or int ns since the epoch, got {time!r}")


def _values(wanted: str | Iterable[str], name: str, allowed: tuple[str, ...] | None = None) -> set[str]:
    values = {wanted} if isinstance(wanted, str) else set(wanted)
    if allowed is not None and not values <= set(allowed):
        raise ValueError(f"unknown {name} {sorted(values - set(allowed))}; expected some of {allowed}")
    return values


def _objects(values: list, take: np.ndarray | None) -> pd.Series:
    # np.fromiter skips the nested-sequence probing of np.array(list) (5x faster on dicts),
    # and an explicit object Series keeps None for absent values on pandas 2 and 3 alike
    # (pandas 3 would infer its NaN-based ``str`` dtype, at a cost).
    if take is not None:
        values = [values[i] for i in take.tolist()]
    return pd.Series(np.fromiter(values, dtype=object, count=len(values)), dtype=object, copy=False)


def _frame(snap: _Snapshot, take: np.ndarray | None = None) -> pd.DataFrame:
    """The DataFrame of a snapshot, or of its rows ``take`` (indices)."""

    def col(values: np.ndarray) -> np.ndarray:
        return values if take is None else values[take]

    n = len(snap) if take is None else len(take)
    seq = snap.first_seq + (np.arange(len(snap), dtype=np.int64) if take is None else take.astype(np.int64))
    type_codes = col(snap.type)
    # Categories: the types present, sorted, as pd.Categorical(values) would give (and as a
    # loaded log reproduces).
    present = np.flatnonzero(np.bincount(type_codes, minlength=len(snap.type_names))) if n else []
    order = sorted(present, key=snap.type_names.__getitem__)
    remap = np.full(len(snap.type_names), -1, dtype=np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    return pd.DataFrame({
        "seq": seq,
        "time": pd.DatetimeIndex(col(snap.time_ns).view("datetime64[ns]"), tz="UTC"),
        "t_ms": col(snap.t_ms),
        "source": pd.Categorical.from_codes(col(snap.source), categories=SOURCES),
        "type": pd.Categorical.from_codes(remap[type_codes], categories=[snap.type_names[i] for i in order]),
        "category": pd.Categorical.from_codes(col(snap.category), categories=CATEGORIES),
        **{name: _objects(getattr(snap, name), take) for name in _OBJECT_COLUMNS[:-1]},
        "audio_ms": col(snap.audio_ms),
        "payload": _objects(snap.payload, take),
    })
