"""The connection's lifetime: connect, serve, reconnect with backoff, renew, shut down.

Contract (all on the loop thread). :meth:`Supervisor.run` connects and serves until the session
closes. Each connection gets the config first (``session.update``), ahead of anything queued;
the writer then drains the outbox (:mod:`.outbox`) in order. Any close the session did not ask
for (server close, network drop, a frame over ``max_frame_bytes``) is ``connection.lost``; then
up to ``max_reconnect_attempts`` tries, ``reconnect_delay`` doubling up to
``max_reconnect_delay``, each logged ``connection.reconnecting``, a success
``connection.restored``. Out of attempts, or a handshake no retry will fix (HTTP 400/401/403/
404), or a local server of this process that died (its crash report, see
``Endpoint.crash_report``): ``connection.failed`` and the session closes. A first connection that
fails or closes before ``session.created`` is ``connect()``'s error instead (:attr:`ready`).

Renewal. Each connection's ``session.created`` carries the server session's id. When a
reconnect lands in a *new* server session (another id, or none: the server forgot the
conversation, e.g. a hosted session hit its time cap), :meth:`greeted` puts a compact summary of
the conversation (:meth:`ClientProtocol.conversation_summary`, the recent turns' text as
conversation items) at the head of the outbox and logs ``connection.renewed``. The writer waits
for ``session.created`` (up to ``connect_timeout``) so that the summary goes first, and only then
drops the mic audio that went stale during the outage.

The Supervisor works for one :class:`~.core.RealtimeSession` and reads its options, protocol,
outbox and log; the session reads :attr:`ws` and :attr:`direct` back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ..history import seeded_summary
from .runner import SessionClosedError
from .transport import (FATAL_STATUSES, RealtimeConnection, close_info, describe_connect_error, event_text,
                        open_connection)

if TYPE_CHECKING:
    from .core import RealtimeSession

__all__ = ["Supervisor"]


class Supervisor:
    """Connection lifetime of one session (see the module docstring)."""

    def __init__(self, session: "RealtimeSession") -> None:
        self.session = session
        #: connect()'s answer: done at the first session.created, or with the first failure.
        self.ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.ws: RealtimeConnection | None = None
        # The connection send_audio may write to from the caller's thread: set once the server
        # greeted it, cleared when it is lost.
        self.direct: RealtimeConnection | None = None
        self.task: asyncio.Task | None = None
        self._greeted: asyncio.Event | None = None
        self._server_session_id: str | None = None
        self._reconnected = False

    def start(self) -> None:
        """Start :meth:`run` as a task (loop thread)."""
        self._greeted = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        """Connect, serve, and reconnect until closed or out of attempts."""
        try:
            await self._connect_and_serve()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: say so instead of dying silently
            reason = f"internal error: {type(exc).__name__}: {exc}"
            self.give_up(reason)
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(reason))

    async def _connect_and_serve(self) -> None:
        s = self.session
        first, failures = True, 0
        while not s._closing:
            if not first:
                failures += 1
                if not await self._back_off(failures):
                    return
            ws = await self._open(first, failures)
            if ws is None:
                if first or s._closing:
                    return
                continue
            if not first:
                s._counters["reconnects"] += 1
                s._local("connection.restored", attempt=failures, endpoint=s.endpoint.label)
                failures = 0
            await self._serve(ws, first)
            first = False
            if not self.ready.done():
                # Closed before session.created: connect() reports it instead of reconnecting.
                s._closed_reason = f"connection closed before session.created ({close_info(ws)})"
                self.ready.set_exception(ConnectionError(s._closed_reason))
                return

    async def _back_off(self, failures: int) -> bool:
        """Wait before attempt ``failures``; False when the session must stop trying."""
        s = self.session
        if failures > s.max_reconnect_attempts:
            self.give_up(f"gave up after {s.max_reconnect_attempts} reconnect attempts")
            return False
        delay = min(s.max_reconnect_delay, s.reconnect_delay * 2 ** (failures - 1))
        s._local("connection.reconnecting", attempt=failures, delay_s=delay, max_attempts=s.max_reconnect_attempts)
        await asyncio.sleep(delay)
        return not s._closing

    async def _open(self, first: bool, failures: int) -> RealtimeConnection | None:
        """A new connection, or None after reporting why not (giving up where no retry helps)."""
        s = self.session
        assert s.endpoint is not None
        try:
            return await open_connection(s.endpoint, max_frame_bytes=s.max_frame_bytes, open_timeout=s.connect_timeout)
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
            reason = describe_connect_error(exc)
            if first:
                s._local("connection.failed", text=reason, endpoint=s.endpoint.label)
                s._closed_reason = reason
                self.ready.set_exception(ConnectionError(f"cannot connect to {s.endpoint.label}: {reason}"))
            elif isinstance(exc, InvalidStatus) and exc.response.status_code in FATAL_STATUSES:
                self.give_up(f"reconnect rejected: {reason}")
            else:
                s._local("connection.error", text=reason, attempt=failures)
            return None

    async def _serve(self, ws: RealtimeConnection, first: bool) -> None:
        s = self.session
        assert s.endpoint is not None and self._greeted is not None
        s._local("connection.opened", endpoint=s.endpoint.label, reconnect=not first)
        self.ws = ws
        self._reconnected = not first
        self._greeted.clear()
        writer: asyncio.Task | None = None
        try:
            # The config goes first on every connection, ahead of anything queued meanwhile.
            await self.write(ws, s.protocol.session_update(), None)
            writer = asyncio.get_running_loop().create_task(self._drain_outbox(ws, reconnected=not first))
            # Server events are handled where the transport delivers them (no reader task).
            ws.on_message = s._dispatch.on_message
            ws.deliver()
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            self.ws = self.direct = None
            if writer is not None:
                writer.cancel()
        if not s._closing:
            await self._lost(ws)

    async def _lost(self, ws: RealtimeConnection) -> None:
        s = self.session
        sent = ws.protocol.close_sent
        if sent is not None and sent.code == 1009:  # we closed it: "message too big"
            s._local("protocol.error", text=f"server frame larger than max_frame_bytes={s.max_frame_bytes}")
        s._local("connection.lost", text=close_info(ws), code=ws.close_code,
                 reason=ws.close_reason or None, queued=len(s._outbox))
        crash = await self._server_crash(wait_s=2.0)
        if crash is not None:
            self.give_up(crash)

    async def _server_crash(self, wait_s: float) -> str | None:
        """Why the server died, when it is one this process runs and it did (see
        ``Endpoint.crash_report``): reconnecting to it would only fail, so the caller gives up
        with this message, and the next ``connect()`` starts a fresh server."""
        endpoint = self.session.endpoint
        report = endpoint.crash_report if endpoint is not None else None
        if report is None:
            return None
        return await asyncio.get_running_loop().run_in_executor(None, report, wait_s)

    async def _drain_outbox(self, ws: RealtimeConnection, reconnected: bool) -> None:
        s = self.session
        outbox = s._outbox
        assert outbox.ready is not None and self._greeted is not None
        try:
            # A renewal puts the conversation summary ahead of the queue at session.created.
            await asyncio.wait_for(self._greeted.wait(), s.connect_timeout)
        except asyncio.TimeoutError:
            pass  # a server that never greets still gets what is queued
        if reconnected:
            # Nothing was written to this connection yet but the config: decide now, as late
            # as possible, what is too old to go out.
            outbox.drop_stale_audio()
            outbox.report_drops()
        while True:
            while not outbox:
                outbox.ready.clear()
                await outbox.ready.wait()
            entry = outbox.writing = outbox.entries[0]
            try:
                await self.write(ws, entry[0], entry[1], entry[2])
            except ConnectionClosed:
                return  # the event stays queued for the next connection; _serve reports the loss
            finally:
                outbox.writing = None
            outbox.remove(entry)  # the head, unless a renewal's summary was put in front meanwhile

    async def write(self, ws: RealtimeConnection, event: dict, pcm16: bytes | None,
                    captured_ms: float | None = None) -> None:
        text = event_text(event, pcm16)
        await ws.send(text)  # framed and written under wire_lock (RealtimeConnection.send_context)
        # Between the send and the log no direct write can come in: the event is still at the
        # head of the outbox, which sends send_audio's direct path to the queue.
        with ws.wire_lock:
            self.session._sent(event, pcm16, len(text), captured_ms)

    def greeted(self, event: dict) -> None:
        """``session.created`` arrived on the current connection: renew if the server forgot the
        conversation, open the direct audio path and the writer, answer ``connect()``."""
        s = self.session
        session = event.get("session")
        session_id = session.get("id") if isinstance(session, dict) else None
        previous, self._server_session_id = self._server_session_id, session_id
        if self._reconnected and (session_id is None or session_id != previous):
            summary = s.protocol.conversation_summary(s.replay_turns, s.replay_chars)
            # Ahead of what was queued during the outage: it continues this conversation.
            for replayed in reversed(summary):
                s._outbox.put((replayed, None, None, 0.0), first=True)
            s._local("connection.renewed",
                     text=f"the server started a new session ({session_id or 'no id'}, was "
                          f"{previous or 'no id'}): config re-sent, {len(summary)} conversation "
                          f"items replayed",
                     session_id=session_id, previous_session_id=previous, replayed_items=len(summary))
        # history.py: a new server session gets the saved conversation first (ahead of a summary).
        if s._history and (not self._reconnected or session_id is None or session_id != previous):
            for seeded in reversed(s._history):
                s._outbox.put((seeded, None, None, 0.0), first=True)
            s._local("history.seeded", **seeded_summary(s._history))
        self._reconnected = False
        # From now on send_audio may write to this connection itself (once the queue is empty).
        self.direct = self.ws
        if self._greeted is not None:
            self._greeted.set()
        if s._outbox and s._outbox.ready is not None:
            s._outbox.ready.set()
        if not self.ready.done():
            self.ready.set_result(None)

    async def shutdown(self, timeout: float) -> None:
        """Send what is queued (up to ``timeout``), close the socket, stop reconnecting."""
        s = self.session
        deadline = time.monotonic() + timeout
        ws = self.ws
        if ws is not None and not s._closing:
            # Let queued events (a last commit, a tool output) reach the server.
            while s._outbox and self.ws is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        s._closing = True
        self.direct = None
        s._tools.cancel_all()
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(1000, "client closed"), max(0.1, deadline - time.monotonic()))
            except (asyncio.TimeoutError, WebSocketException, OSError):
                pass
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        s._outbox.report_drops()
        unsent = len(s._outbox)
        if unsent:
            s._local("connection.closed", text=f"closed with {unsent} unsent events", unsent=unsent)
        else:
            s._local("connection.closed")
        if not self.ready.done():
            self.ready.set_exception(SessionClosedError("closed before session.created"))

    def give_up(self, reason: str) -> None:
        s = self.session
        s._closed_reason = reason
        s._closing = True  # first: the session ends even if logging it fails
        s._last_resort("connection.failed", reason, unsent=len(s._outbox))
