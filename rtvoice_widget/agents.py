"""Voice agents: named configurations that hand the conversation over to each other.

An :class:`Agent` is a name, instructions, tools, an optional voice, output guardrails and the
agents it may hand off to. ``RealtimeSession(agent=triage)`` / ``VoiceChat(agent=triage)`` start
with it; :class:`AgentRunner` (``session.agents``) does the rest:

- Each handoff is a function tool the model calls, ``transfer_to_<name>`` (the target's name,
  lower case, other characters as ``_``; :func:`handoff` picks another name or description),
  with one optional argument ``reason``. The model decides; nothing here parses speech.
- On that call the session switches in place with ``session.update``: the target's
  instructions, its tools and handoffs instead of the previous agent's (tools registered on
  the session itself stay, for every agent), and its voice. The conversation, the audio
  formats and the turn detection are untouched (``session.update`` carries the whole config,
  only those fields changed). The call's output tells the model who speaks now
  (``{"assistant": name}``), and its follow-up response comes from the new agent.
- The voice: the GA Realtime API does not change the voice once the model has answered with
  audio in the session. Before the first assistant audio the target's voice goes out with the
  update; afterwards the voice stays as it is (sending it would get the whole update refused),
  and the ``agent.handoff`` row says so (``voice_kept``). The same rule holds on every backend,
  the embedded server included, so a conversation behaves alike everywhere.
- Every switch is logged as ``agent.handoff``: ``from``, ``to``, ``reason`` (the model's, or
  the caller's for :meth:`AgentRunner.switch`), ``call_id`` (None from code), ``voice`` (in
  force afterwards), ``voice_kept`` (the voice the target wanted but could not get, else None).

Handoffs may form cycles (triage -> billing -> triage): ``Agent.handoffs`` is a list that can
be appended to after the agents exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from rtvoice_widget.config import DEFAULT_INSTRUCTIONS
from rtvoice_widget.tools import CURRENT_CALL_ID, FunctionTool, _build

__all__ = ["Agent", "AgentRunner", "Handoff", "handoff", "handoff_tool_name"]


@dataclass(eq=False)
class Agent:
    """One voice agent's configuration (see the module doc).

    ``tools``: callables or :class:`~rtvoice_widget.tools.FunctionTool` s (or GA tool dicts),
    offered only while this agent is active. ``handoffs``: :class:`Agent` s or
    :class:`Handoff` s. ``handoff_description``: what the agent is for, shown to the model in
    the description of the tools that transfer to it. ``voice=None`` keeps the session's.
    """

    name: str
    instructions: str = DEFAULT_INSTRUCTIONS
    tools: list[Any] = field(default_factory=list)
    voice: str | None = None
    handoffs: list[Any] = field(default_factory=list)
    handoff_description: str | None = None
    output_guardrails: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Agent name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.instructions, str):
            raise ValueError(f"Agent {self.name!r}: instructions must be a string")
        if self.voice is not None and (not isinstance(self.voice, str) or not self.voice):
            raise ValueError(f"Agent {self.name!r}: voice must be a voice name or None, got {self.voice!r}")
        for what in ("tools", "handoffs", "output_guardrails"):
            value = getattr(self, what)
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise ValueError(f"Agent {self.name!r}: {what} must be a list, got {value!r}")
            setattr(self, what, list(value))
        for target in self.handoffs:
            if not isinstance(target, (Agent, Handoff)):
                raise ValueError(f"Agent {self.name!r}: handoffs must be Agents or Handoffs, got {target!r}")

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, tools={len(self.tools)}, handoffs={[h.name for h in self.handoffs]})"


def handoff_tool_name(agent: "Agent") -> str:
    """``transfer_to_<name>``: the agent's name in lower case, other characters as ``_``."""
    slug = re.sub(r"[^a-z0-9]+", "_", agent.name.lower()).strip("_") or "agent"
    return f"transfer_to_{slug}"[:64]


@dataclass(eq=False)
class Handoff:
    """A handoff to ``agent`` with its own tool name or description (see :func:`handoff`)."""

    agent: Agent
    tool_name: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.agent, Agent):
            raise ValueError(f"a handoff needs an Agent, got {self.agent!r}")

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def resolved_tool_name(self) -> str:
        return self.tool_name or handoff_tool_name(self.agent)

    @property
    def resolved_description(self) -> str:
        if self.description:
            return self.description
        text = f"Hand the conversation over to the {self.agent.name} agent, which handles the request from here."
        return text + (f" {self.agent.handoff_description}" if self.agent.handoff_description else "")


def handoff(agent: Agent, *, tool_name: str | None = None, description: str | None = None) -> Handoff:
    """A handoff to ``agent`` whose tool is named ``tool_name`` / described by ``description``."""
    return Handoff(agent, tool_name, description)


def _as_handoff(target: Agent | Handoff) -> Handoff:
    return target if isinstance(target, Handoff) else Handoff(target)


def _reachable(start: Agent) -> list[Agent]:
    seen: list[Agent] = []
    todo = [start]
    while todo:
        agent = todo.pop()
        if any(agent is s for s in seen):
            continue
        seen.append(agent)
        todo.extend(_as_handoff(h).agent for h in agent.handoffs)
    return seen


def _tool_name(tool: Any) -> str | None:
    if isinstance(tool, Mapping):
        return tool.get("name")
    return _build(tool, None, None).name


class AgentRunner:
    """The active agent of one session and the switches between agents (see the module doc).

    Made by :class:`~rtvoice_widget.session.RealtimeSession` for ``agent=``; it works through
    the session's public API (``tools``, ``update``, ``on``, ``events``). :attr:`current` is
    the active :class:`Agent`; :attr:`agents` every agent reachable by handoffs, by name.
    """

    def __init__(self, session: Any, agent: Agent) -> None:
        if not isinstance(agent, Agent):
            raise TypeError(f"agent must be an Agent, got {agent!r}")
        self._session = session
        self.starting = agent
        self.agents: dict[str, Agent] = {}
        for a in _reachable(agent):
            if a.name in self.agents:
                raise ValueError(f"two different agents are named {a.name!r}")
            self.agents[a.name] = a
        self.current = agent
        self._owned: set[str] = set()  # registry tools the current agent brought
        self._audio_heard = False
        self._listeners: list[Callable[[Agent], Any]] = []
        self._stop_listening = session.on("response.output_audio.delta", self._on_audio)
        # Agent tools left in a config by an earlier session (a VoiceChat reconnects with the
        # config it had) must not reach this one: only the starting agent's are offered.
        owned_anywhere = {name for a in self.agents.values() for name in self._tool_names(a)}
        # A switch removes the previous agent's tools from the registry by name: one that is
        # also the session's own would go with it.
        clash = sorted(owned_anywhere & set(session.tools))
        if clash:
            raise ValueError(f"tool name(s) {clash} belong to the session and to an agent; rename one")
        kept = [t for t in session.config.tools if not (isinstance(t, Mapping) and t.get("name") in owned_anywhere)]
        self._install(agent, kept, voice=agent.voice)

    @property
    def has_guardrails(self) -> bool:
        """Whether any reachable agent has output guardrails (when they are checked is
        :mod:`rtvoice_widget.guardrails`' business)."""
        return any(a.output_guardrails for a in self.agents.values())

    def subscribe(self, fn: Callable[[Agent], Any]) -> Callable[[], None]:
        """Call ``fn(agent)`` after each switch (on the switching thread)."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def switch(self, target: Agent | str, reason: str | None = None) -> Agent:
        """Make ``target`` (an agent or a name reachable from the starting agent) the active
        agent, as a handoff would; logged as ``agent.handoff`` with ``call_id`` None."""
        return self._switch(self._resolve(target), reason, None)

    # -- inside -------------------------------------------------------------------------------

    def _resolve(self, target: Agent | str) -> Agent:
        name = target.name if isinstance(target, Agent) else target
        agent = self.agents.get(name) if isinstance(name, str) else None
        if agent is None or (isinstance(target, Agent) and agent is not target):
            raise ValueError(f"unknown agent {name!r}; reachable: {sorted(self.agents)}")
        return agent

    def _on_audio(self, row: dict) -> None:
        if row["source"] == "server":
            self._audio_heard = True
            self._stop_listening()

    def _tool_names(self, agent: Agent) -> set[str]:
        return {_tool_name(t) for t in agent.tools} | {_as_handoff(h).resolved_tool_name for h in agent.handoffs}

    def _handoff_tool(self, target: Handoff) -> FunctionTool:
        runner = self

        async def transfer(reason: str = "") -> str:
            """Hand the conversation over.

            Args:
                reason: Why, in a few words (it goes to the log).
            """
            # Runs on the session loop (an async tool), so the session.update it sends is
            # queued ahead of this call's output and the response.create that follows it.
            runner._switch(target.agent, reason or None, _current_call_id())
            return json.dumps({"assistant": target.agent.name})

        return FunctionTool(transfer, name=target.resolved_tool_name, description=target.resolved_description)

    def _install(self, agent: Agent, kept_tools: list[Any], voice: str | None) -> None:
        session = self._session
        registry = session.tools
        for name in self._owned:
            if name in registry:
                registry.remove(name)
        owned: set[str] = set()
        dict_tools: list[Any] = []
        for tool in agent.tools:
            if isinstance(tool, Mapping):
                dict_tools.append(dict(tool))
            else:
                registry.add(tool)
                owned.add(_tool_name(tool))
        for target in map(_as_handoff, agent.handoffs):
            registry.add(self._handoff_tool(target))
            owned.add(target.resolved_tool_name)
        # Dict tools of the previous agent go with it; the session's own stay.
        previous = self._owned | {t.get("name") for t in self._dict_tools_of(self.current)}
        kept = [t for t in kept_tools if not (isinstance(t, Mapping) and t.get("name") in previous)]
        changes: dict[str, Any] = dict(instructions=agent.instructions, tools=kept + dict_tools)
        if voice is not None:
            changes["voice"] = voice
        self._owned = owned
        session.update(**changes)

    @staticmethod
    def _dict_tools_of(agent: Agent) -> list[Mapping]:
        return [t for t in agent.tools if isinstance(t, Mapping)]

    def _switch(self, target: Agent, reason: str | None, call_id: str | None) -> Agent:
        session = self._session
        previous = self.current
        voice_now = session.config.voice
        voice_kept = None
        voice = None
        if target.voice is not None and target.voice != voice_now:
            if self._audio_heard:
                voice_kept = target.voice
            else:
                voice = target.voice
        self._install(target, list(session.config.tools), voice)
        self.current = target
        voice_after = session.config.voice
        text = f"{previous.name} -> {target.name}" + (f": {reason}" if reason else "")
        if voice_kept:
            text += (f" (voice stays {voice_after}: the Realtime API does not change the voice once "
                     f"the model has answered with audio; {target.name} wanted {voice_kept})")
        session.events.local("agent.handoff", session.now_ms(), text=text,
                             **{"from": previous.name, "to": target.name, "reason": reason,
                                "call_id": call_id, "voice": voice_after, "voice_kept": voice_kept})
        for fn in list(self._listeners):
            try:
                fn(target)
            except Exception as exc:
                session.events.local("callback.error", session.now_ms(),
                                     text=f"agent listener raised {type(exc).__name__}: {exc}")
        return target


def _current_call_id() -> str | None:
    return CURRENT_CALL_ID.get()
