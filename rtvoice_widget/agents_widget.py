"""What ``VoiceChat`` shows of agents and tool approvals (issue 16), kept apart from widget.py.

:func:`bind` wires one session to the widget's two traits: ``agent`` (the active agent's name,
shown in the header; empty without agents) and ``approvals`` (the calls waiting for a decision,
``[{"call_id", "name", "arguments"}]``, shown with Approve / Deny buttons). The buttons send
``{"type": "approval", "call_id", "approved": bool}``, which :func:`on_approval_message` turns
into ``session.approvals.decide(..., by="widget")``. A handoff also mirrors the new agent's
instructions and voice into the settings traits.
"""

from __future__ import annotations

from typing import Any, Callable


def bind(chat: Any, session: Any) -> list[Callable[[], None]]:
    """Show ``session``'s agent and pending approvals in ``chat``; returns the unsubscribers."""
    runner = session.agents
    chat.agent = runner.current.name if runner is not None else ""
    chat.approvals = []
    offs = [session.approvals.subscribe(lambda pending: _show_pending(chat, session, pending))]
    if runner is not None:
        chat._mirror_config(session.config)  # the starting agent's instructions and voice

        def switched(agent: Any) -> None:
            if chat.session is session:
                chat.agent = agent.name
                chat._mirror_config(session.config)

        offs.append(runner.subscribe(switched))
    return offs


def _show_pending(chat: Any, session: Any, pending: list) -> None:
    if chat.session is session:
        chat.approvals = [request.to_dict() for request in pending]


def on_approval_message(session: Any, content: dict) -> None:
    """A click on Approve / Deny: decide that call (a late click on a decided call does nothing)."""
    reason = content.get("reason")
    session.approvals.decide(content.get("call_id"), content.get("approved") is True,
                             reason if isinstance(reason, str) and reason else None, by="widget")
