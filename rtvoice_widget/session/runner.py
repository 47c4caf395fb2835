"""The session's own thread and asyncio loop, and the hops onto it.

Contract: :meth:`LoopThread.start` starts a daemon thread running a new event loop forever.
:meth:`~LoopThread.call_soon` hands a function to the loop from any thread, and
:meth:`~LoopThread.run` also waits for it (running it at once on the loop thread itself) and
raises what it raised: both raise :class:`SessionClosedError` once the loop is gone.
:meth:`~LoopThread.stop` runs a last coroutine on the loop, stops and joins the thread, closes
the loop. The loop thread owns the socket, the protocol state, the outbox and the recorder; a
Jupyter cell blocking the kernel's main thread does not stop it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import Any, Callable, Coroutine

__all__ = ["LoopThread", "SessionClosedError"]

_log = logging.getLogger("rtvoice_widget.session")


class SessionClosedError(ConnectionError):
    """The session is not connected (never connected, closed, or gave up reconnecting)."""


class LoopThread:
    """One thread running one asyncio loop (see the module docstring).

    ``closed_reason()`` gives the text a :class:`SessionClosedError` carries.
    """

    def __init__(self, closed_reason: Callable[[], str | None]) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._closed_reason = closed_reason

    @property
    def started(self) -> bool:
        return self.loop is not None and self.thread is not None

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def is_current(self) -> bool:
        """True on the loop thread (where a callback runs)."""
        return threading.current_thread() is self.thread

    def start(self) -> asyncio.AbstractEventLoop:
        loop = self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=loop.run_forever, name="rtvoice-session", daemon=True)
        self.thread.start()
        return loop

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self.loop is not None
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed between the caller's check and now
            raise SessionClosedError(f"the session is closed: {self._closed_reason() or 'closed'}") from None

    def run(self, fn: Callable[[], Any], timeout: float = 30.0) -> None:
        """Run ``fn`` on the loop thread and wait for it; its exception is raised here."""
        if self.is_current():
            fn()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

        self.call_soon(run)
        done.result(timeout=timeout)

    def stop(self, last: Callable[[], Coroutine[Any, Any, None]], timeout: float) -> None:
        """Run ``last()`` on the loop (up to ``timeout`` + 2 s), then stop and join the thread."""
        loop, thread = self.loop, self.thread
        assert loop is not None and thread is not None
        if not loop.is_closed() and thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(last(), loop)
            try:
                future.result(timeout + 2)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            except Exception as exc:  # a bug of ours: the thread must stop all the same
                _log.error("closing the session failed: %s: %s", type(exc).__name__, exc)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout + 2)
        if not thread.is_alive() and not loop.is_closed():
            loop.close()
