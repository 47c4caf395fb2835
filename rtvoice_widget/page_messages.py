"""Browser -> kernel messages (listed in :mod:`rtvoice_widget.widget`), through one dispatch
table: :class:`PageMessages`. It takes no widget reference: the session (through a getter: a
reconnect makes a new one), the mic ingest, a log function, and the widget's own control
actions (connect, hello, download...) as callables.

The reports (echo checks, player overflows, first sound) are checked and worded for the log by
pure functions of a message's content; a malformed one raises ``ValueError``, logged as
``widget.error``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from rtvoice_widget.session import SessionClosedError

__all__ = ["FirstSound", "MessageListeners", "PageMessages", "barge_in", "echo_check", "echo_fields", "echo_measured",
           "playback_overflow"]

Handler = Callable[[dict[str, Any], list[Any]], None]


class PageMessages:
    """What each browser message does; :meth:`handle` runs one (kernel main thread, or the
    audio link's thread for link frames).

    ``session()`` is the current session, ``mic`` the :class:`~rtvoice_widget.mic_ingest.
    MicIngest`, ``log(type, text=None, **fields)`` a local log entry, ``set_notice(text)`` the
    widget's notice line. ``extra`` adds message types (e.g. ``front_end``, ``approval``) and
    ``controls`` the ``control`` actions only the widget can do (``connect``, ``hello``...);
    each gets the message's content. ``ptt_start`` / ``ptt_end`` are handled here.
    """

    def __init__(self, session: Callable[[], Any], mic: Any, log: Callable[..., None],
                 set_notice: Callable[[str], None], extra: dict[str, Callable[[dict[str, Any]], None]],
                 controls: dict[str, Callable[[dict[str, Any]], None]]) -> None:
        self._session = session
        self._mic = mic
        self._log = log
        self._set_notice = set_notice
        self._first_sound = FirstSound(mic.page_to_session_ms)
        self._controls = {**controls, "ptt_start": self._ptt_start,
                          "ptt_end": lambda content: mic.after(content, self._end_push_to_talk)}
        self._handlers: dict[str, Handler] = {
            "audio": mic.push,
            "played": lambda content, _: self._played(content),
            "mic": lambda content, _: self._mic_state(content),
            "barge_in": lambda content, _: self._report(*barge_in(content, mic.page_to_session_ms)),
            "playback": lambda content, _: self._report("playback.overflow", *playback_overflow(content)),
            "duplex": lambda content, _: self._echo_check(content),
            "echo": lambda content, _: self._report(*echo_measured(content)),
            "text": lambda content, _: session().send_text(content.get("text")),
            "control": lambda content, _: self._control(content.get("action"), content),
            **{kind: (lambda fn: lambda content, _: fn(content))(fn) for kind, fn in extra.items()},
        }

    def handle(self, content: Any, buffers: list[Any]) -> None:
        """Run one message; what cannot be delivered or makes no sense is logged, never raised."""
        if not isinstance(content, dict):
            return self._log("widget.error", text=f"ignored a browser message that is not an object: {content!r:.80}")
        kind = content.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return self._log("widget.error", text=f"ignored an unknown browser message type {kind!r:.40}")
        try:
            handler(content, buffers)
        except SessionClosedError:
            pass  # late frames/reports after a disconnect: nothing to deliver them to
        except (TypeError, ValueError) as exc:
            self._log("widget.error", text=f"bad {kind} message from the browser: {exc}")

    def _mic_state(self, content: dict[str, Any]) -> None:
        # ``reads`` (with "live"): where the page reads the mic, "track" (a worker reading the
        # MediaStreamTrack, Chromium) or "graph" (the Web Audio graph's input, ~100 ms later).
        reads = content.get("reads")
        fields = {"reads": reads} if reads in ("track", "graph") else {}
        self._log(f"mic.{content.get('state', 'unknown')}", text=content.get("detail") or None, **fields)

    def _control(self, action: Any, content: dict[str, Any]) -> None:
        control = self._controls.get(action) if isinstance(action, str) else None
        if control is None:
            raise ValueError(f"unknown control action {action!r:.40}")
        control(content)

    def _ptt_start(self, content: dict[str, Any]) -> None:
        self._mic.flush()
        self._session().clear_audio()

    def _end_push_to_talk(self) -> None:
        self._session().commit()
        self._session().create_response()

    def _played(self, content: dict[str, Any]) -> None:
        self._session().playback_progress(content.get("item_id"), content.get("ms"),
                                          flushed=content.get("flushed") is True)
        fields = self._first_sound.fields(content)
        if fields is not None:
            self._log("playback.started", **fields)

    def _report(self, type_: str, text: str | None, fields: dict[str, Any]) -> None:
        self._log(type_, text=text, **fields)

    def _echo_check(self, content: dict[str, Any]) -> None:
        type_, text, fields, notice = echo_check(content)
        self._log(type_, text=text, **fields)
        if notice is not None:
            self._set_notice(notice)


def barge_in(content: dict[str, Any], page_to_session_ms: Callable[[float], float | None]
             ) -> tuple[str, str, dict[str, float]]:
    """A ``barge_in`` report (the page's double-talk detector heard the person over the
    assistant and sent the unprocessed mic from then on, js/worklets/capture.js): ``(type,
    text, fields)`` to log; ``detected_ms`` is when it decided, on the session clock (mapped as
    the mic frames' capture times are; absent before any frame gave a mapping)."""
    t = finite_number(content, "t")
    fields = {"onset_ms": round(finite_number(content, "onset_ms"), 1)}
    detected = page_to_session_ms(t)
    if detected is not None:
        fields["detected_ms"] = round(detected, 1)
    return ("mic.double_talk", f"heard you over the assistant: sending the unprocessed mic "
            f"(from {fields['onset_ms']:.0f} ms before) until it stops", fields)


def finite_number(content: dict[str, Any], name: str) -> float:
    """``content[name]`` as a float; ``ValueError`` unless it is a finite int or float (not a bool)."""
    value = content.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r:.40}")
    return float(value)


def echo_fields(content: dict[str, Any]) -> dict[str, float]:
    """The figures of an echo measurement from the page (js/lib/echo-check.js), checked."""
    return {name: round(finite_number(content, name), 1)
            for name in ("return_loss_db", "playback_dbfs", "mic_dbfs", "measured_ms")}


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


class MessageListeners:
    """The widget's ``on_msg`` callbacks, kept so that the audio link's frames reach them too,
    as ``callback(owner, content, [pcm])``, like frames that came through Jupyter. Like
    ipywidgets' dispatcher, one failing callback does not stop the others: its error goes to
    ``on_error(text)``.
    """

    def __init__(self, owner: Any, on_error: Callable[[str], None]) -> None:
        self._owner = owner
        self._on_error = on_error
        self._callbacks: list[Callable[..., Any]] = []

    def register(self, callback: Callable[..., Any], remove: bool = False) -> None:
        if remove:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        elif callback not in self._callbacks:
            self._callbacks.append(callback)

    def deliver(self, content: dict[str, Any], pcm: bytes) -> None:
        """A link frame (AudioLink's thread), to every callback."""
        for callback in list(self._callbacks):
            try:
                callback(self._owner, content, [pcm])
            except Exception as exc:
                self._on_error(f"a message callback failed on a link frame: {type(exc).__name__}: {exc}")
