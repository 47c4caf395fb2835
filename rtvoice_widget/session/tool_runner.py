"""Tool calls of the model, run off the session's loop and answered through the protocol.

Contract: :meth:`ToolRunner.start` logs ``tool.call`` and runs the call as a task (sync tools in
the loop's executor, async ones on the loop: :meth:`ToolRegistry.run_async`). Its output goes
back through :meth:`ClientProtocol.tool_output` (which adds the follow-up ``response.create``
once every call of the response is answered). An exception in the tool, or anything failing
while its output is handed over, is a ``tool.error`` event and never ends the session. The
model gets ``{"error": "Type: message"}`` for a failed call (a traceback only with
``tracebacks=True`` on the registry); the endpoint's credentials are ``***`` in tool outputs
and in the log.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable

from ..protocol import ClientProtocol, RunTool
from ..tools import ToolRegistry

__all__ = ["ToolRunner"]


class ToolRunner:
    """Runs :class:`RunTool` actions on the loop thread.

    ``protocol()`` gives the session's protocol; ``enqueue(event)`` queues a client event; ``report(type, text, **fields)`` logs a local event;
    ``report_failure(type, text, **fields)`` logs one that must not be lost to a failing log.
    """

    def __init__(self, registry: ToolRegistry, protocol: Callable[[], ClientProtocol], enqueue: Callable[[dict], None],
                 report: Callable[..., None], report_failure: Callable[..., None]) -> None:
        self.registry = registry
        self._protocol = protocol
        self.tasks: set[asyncio.Task] = set()
        self._secrets: tuple[str, ...] = ()
        self._enqueue = enqueue
        self._report = report
        self._report_failure = report_failure

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """The endpoint's credentials, to redact. Short values ("local", a placeholder key) are
        no secret, and replacing them would mangle ordinary words in tool outputs."""
        self._secrets = tuple(sorted((s for s in secrets if len(s) >= 8), key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def start(self, call: RunTool) -> None:
        self._report("tool.call", call_id=call.call_id, name=call.name, arguments=call.arguments)
        task = asyncio.get_running_loop().create_task(self._run(call))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    async def _run(self, call: RunTool) -> None:
        # The task's exception would only reach asyncio's "never retrieved" warning: whatever
        # fails here is logged, and the session goes on.
        try:
            result = await self.registry.run_async(call.name, call.arguments, call_id=call.call_id)
            output = self.redact(result.output)
            self._report("tool.result", text=output[:2000], call_id=call.call_id, name=call.name, ok=result.ok)
            if not result.ok:
                self._report("tool.error", text=self.redact(result.error or ""), call_id=call.call_id, name=call.name)
            events: list[dict[str, Any]] = self._protocol().tool_output(call.call_id, output)
        except Exception as exc:
            self._report_failure("tool.error", self.redact(
                f"could not answer tool call {call.call_id!r} ({call.name!r}): {type(exc).__name__}: {exc}"),
                call_id=call.call_id, name=call.name)
            return
        for event in events:
            self._enqueue(event)
