"""Tool approval: calls of ``needs_approval`` tools wait for a decision before they run.

A tool registered with ``needs_approval=True`` (``@session.tool(needs_approval=True)``,
``@chat.tool(needs_approval=True)``, or :func:`rtvoice_widget.tools.function_tool`) does not run
when the model calls it. :class:`Approvals` (one per session, ``session.approvals``) logs
``tool.approval_requested`` (``call_id``, ``name``, ``arguments``) and waits for one decision:

- the Python callback given as ``approve=`` (``RealtimeSession(approve=fn)`` /
  ``VoiceChat(approve=fn)``): ``fn(request: ApprovalRequest)`` returns ``True`` (run it),
  ``False`` (deny) or a string (deny, with that reason); it may block (it runs on a thread of
  its own) or be ``async`` (awaited on the session loop). One that raises is reported
  (``tool.error``) and counts as a denial;
- otherwise the widget's Approve / Deny buttons (``VoiceChat`` shows :attr:`pending`), or code:
  :meth:`approve` / :meth:`deny` with the call id, from any thread;
- ``timeout`` seconds (default ``None``: wait as long as it takes), then it is denied.

The decision is logged as ``tool.approval`` (``decision`` ``approved`` | ``denied``, ``by``
``callback`` | ``widget`` | ``code`` | ``timeout``, ``reason``). A denied call does not run; the
model gets :func:`denial_output` as the call's output, which says so plainly.

Waiting never blocks the session thread: calls run as tasks on the session loop (see
``RealtimeSession._run_tool``), and the wait is an ``await`` on a future that any thread may
resolve; audio, other events and other tool calls go on meanwhile. A session that closes
while a call waits cancels the wait (the call is then neither run nor answered).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import itertools
import json
import math
import threading
from dataclasses import asdict, dataclass
from typing import Any, Callable

__all__ = ["ApprovalRequest", "Approvals", "denial_output"]

_anonymous = itertools.count(1)


@dataclass(frozen=True)
class ApprovalRequest:
    """One call waiting for a decision: ``arguments`` is the model's JSON text."""

    call_id: str
    name: str
    arguments: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def denial_output(name: str, reason: str | None = None) -> str:
    """What the model gets for a denied call: it did not run, and why when known."""
    message = f"The user did not approve this call to {name}, so it did not run."
    if reason:
        message += f" Reason: {reason}"
    return json.dumps({"status": "denied", "message": message + " Do not retry it unless the user asks."})


class Approvals:
    """The pending approvals of one session and how they get decided (see the module doc).

    Made by :class:`~rtvoice_widget.session.RealtimeSession`, which installs it as its tool
    registry's approver. ``callback`` and ``timeout`` may be changed at any time; they apply to
    calls asked for afterwards.
    """

    def __init__(self, session: Any, callback: Callable[[ApprovalRequest], Any] | None = None,
                 *, timeout: float | None = None) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"approve must be callable, got {callback!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not math.isfinite(timeout) or timeout <= 0):
            raise ValueError(f"approval timeout must be a positive number of seconds, got {timeout!r}")
        self._session = session
        self.callback = callback
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[ApprovalRequest, concurrent.futures.Future]] = {}
        self._listeners: list[Callable[[list[ApprovalRequest]], Any]] = []
        session.tools.approver = self._ask

    @property
    def pending(self) -> list[ApprovalRequest]:
        """The calls waiting for a decision, oldest first."""
        with self._lock:
            return [request for request, _ in self._pending.values()]

    def subscribe(self, fn: Callable[[list[ApprovalRequest]], Any]) -> Callable[[], None]:
        """Call ``fn(pending)`` whenever the pending list changes (on the changing thread);
        returns the unsubscribe function."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def approve(self, call_id: str, *, by: str = "code") -> bool:
        """Let the waiting call ``call_id`` run; False when no such call waits."""
        return self.decide(call_id, True, by=by)

    def deny(self, call_id: str, reason: str | None = None, *, by: str = "code") -> bool:
        """Refuse the waiting call ``call_id`` (``reason`` goes to the model and the log)."""
        return self.decide(call_id, False, reason, by=by)

    def decide(self, call_id: Any, approved: bool, reason: str | None = None, *, by: str = "code") -> bool:
        """Decide the waiting call ``call_id`` (any thread). Logs ``tool.approval``; returns
        False (and logs nothing) when no such call waits, e.g. it was decided already."""
        if not isinstance(call_id, str):
            raise ValueError(f"call_id must be a string, got {call_id!r:.80}")
        with self._lock:
            entry = self._pending.pop(call_id, None)
        if entry is None:
            return False
        request, future = entry
        decision = "approved" if approved else "denied"
        self._log("tool.approval", f"{request.name}: {decision} by {by}" + (f" ({reason})" if reason else ""),
                  call_id=request.call_id, name=request.name, decision=decision, by=by, reason=reason)
        if not future.done():
            future.set_result((bool(approved), reason))
        self._changed()
        return True

    # -- the registry's approver (session loop) -------------------------------------------------

    async def _ask(self, name: str, arguments: str, call_id: str | None) -> str | None:
        request = ApprovalRequest(call_id or f"call_local_{next(_anonymous)}", name, arguments)
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._pending[request.call_id] = (request, future)
        self._log("tool.approval_requested", f"{name}({arguments}) waits for approval",
                  call_id=request.call_id, name=name, arguments=arguments)
        self._changed()
        callback, timeout = self.callback, self.timeout
        if callback is not None:
            self._start_callback(callback, request)
        try:
            # Shielded: a timeout must not cancel the concurrent future, which a decision
            # racing the timeout may be setting from another thread.
            approved, reason = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except asyncio.TimeoutError:
            self.decide(request.call_id, False, f"no decision within {timeout:g} s", by="timeout")
            approved, reason = future.result()
        except asyncio.CancelledError:  # the session closes: nobody is waiting any more
            with self._lock:
                self._pending.pop(request.call_id, None)
            self._changed()
            raise
        return None if approved else denial_output(name, reason)

    def _start_callback(self, callback: Callable[[ApprovalRequest], Any], request: ApprovalRequest) -> None:
        def settle(value: Any) -> None:
            if isinstance(value, str):
                self.decide(request.call_id, False, value, by="callback")
            else:
                self.decide(request.call_id, bool(value), by="callback")

        def failed(exc: BaseException) -> None:
            self._log("tool.error", f"the approval callback raised {type(exc).__name__}: {exc}; "
                      f"the call to {request.name} is denied", call_id=request.call_id, name=request.name)
            self.decide(request.call_id, False, "the approval callback failed", by="callback")

        if inspect.iscoroutinefunction(callback):
            async def run_async() -> None:
                try:
                    settle(await callback(request))
                except Exception as exc:
                    failed(exc)

            asyncio.get_running_loop().create_task(run_async())
            return

        def run() -> None:
            # Its own thread: a callback may wait for a person (input(), a dialog) for minutes,
            # which must neither stall the loop nor hold a worker of the tools' executor.
            try:
                settle(callback(request))
            except Exception as exc:
                failed(exc)

        threading.Thread(target=run, name="rtvoice-approval", daemon=True).start()

    def _changed(self) -> None:
        pending = self.pending
        for fn in list(self._listeners):
            try:
                fn(pending)
            except Exception as exc:
                self._log("callback.error", f"approval listener raised {type(exc).__name__}: {exc}")

    def _log(self, type_: str, text: str, **fields: Any) -> None:
        session = self._session
        session.events.local(type_, session.now_ms(), text=text, **fields)
