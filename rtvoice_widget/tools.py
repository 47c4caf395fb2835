"""Python callables as Realtime function tools.

:func:`tool_schema` turns a function into the GA tool object
``{"type": "function", "name", "description", "parameters"}``. The parameter schema comes from
the type hints through pydantic (``Optional``, ``Literal``, ``list``, ``dict``, enums, dataclasses,
defaults: whatever pydantic understands) and the descriptions from the docstring through
``docstring_parser`` (Google, NumPy, reST and Epydoc styles).

:class:`ToolRegistry` keeps tools by name and runs calls: it parses the model's JSON arguments,
validates and coerces them with the same pydantic model that made the schema, runs sync or async
callables, and always answers with a string for ``function_call_output``. Bad JSON, missing or
wrong arguments, unknown tools and raising tools become an error output (``{"error": ...}``) the
model can read and recover from; they never raise into the session. A raising tool's error is
``"Type: message"``: no traceback (file paths, source lines) goes to the model provider unless
the registry was made with ``tracebacks=True``. A tool marked ``needs_approval`` (see
:class:`FunctionTool`) first waits for the registry's ``approver`` (:mod:`rtvoice_widget.approval`);
a denied call does not run and answers with the approver's text. Where the call runs (which
thread, which loop) is the caller's choice: :meth:`ToolRegistry.run_sync` blocks,
:meth:`ToolRegistry.run_async` awaits.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import json
import re
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, get_type_hints

import docstring_parser
import pydantic

__all__ = ["FunctionTool", "ToolCallResult", "ToolRegistry", "function_tool", "tool_schema"]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class _Tool:
    name: str
    fn: Callable[..., Any]
    schema: dict[str, Any]
    arguments: type[pydantic.BaseModel]
    needs_approval: bool = False


# -- agents hook (issue 16): tool options that travel with the callable, and approval --------
@dataclass(frozen=True)
class FunctionTool:
    """A callable with its tool options, accepted wherever a tool callable is (``tools=[...]``,
    ``Agent(tools=...)``, :meth:`ToolRegistry.add`), so the options survive being passed along
    (``VoiceChat`` makes a new session on each Connect). ``needs_approval=True``: each call
    waits for a decision (:mod:`rtvoice_widget.approval`) before it runs."""

    fn: Callable[..., Any]
    name: str | None = None
    description: str | None = None
    needs_approval: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def function_tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
                  description: str | None = None, needs_approval: bool = False) -> Any:
    """``fn`` with tool options, as a :class:`FunctionTool` (decorator, with or without arguments)."""
    if fn is None:
        return lambda f: function_tool(f, name=name, description=description, needs_approval=needs_approval)
    if not isinstance(needs_approval, bool):
        raise ValueError(f"needs_approval must be True or False, got {needs_approval!r}")
    return FunctionTool(fn, name, description, needs_approval)


#: The call id of the call an async tool runs for (set by :meth:`ToolRegistry.run_async`, so
#: a tool awaited on the loop can tell which call it answers; None elsewhere).
CURRENT_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("rtvoice_call_id", default=None)

#: ``approver(name, arguments_json, call_id) -> None`` (run it) or the output to send instead.
Approver = Callable[[str, str, "str | None"], Awaitable["str | None"]]
# -- end agents hook ---------------------------------------------------------------------------


def _underlying(fn: Callable[..., Any]) -> Any:
    """The function whose annotations and docstring describe ``fn`` (a partial's function, a
    callable object's ``__call__``, a decorated function's original)."""
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
        target = type(target).__call__
    return inspect.unwrap(target)


def _docstring(fn: Callable[..., Any]) -> str:
    """``fn``'s own docstring (not one inherited from ``object`` or ``partial``); a callable
    object without a documented ``__call__`` falls back to its class's docstring."""
    doc = getattr(_underlying(fn), "__doc__", None)
    if not doc and not isinstance(fn, functools.partial) and not (
            inspect.isfunction(fn) or inspect.ismethod(fn)):
        doc = type(fn).__doc__
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _parameter_hints(fn: Callable[..., Any], name: str) -> dict[str, Any]:
    """Resolved parameter annotations; the return annotation is not needed, so a return type
    that cannot be resolved (a class local to the caller, say) does not matter."""
    target = _underlying(fn)
    annotations = dict(getattr(target, "__annotations__", {}))
    annotations.pop("return", None)
    namespace = dict(getattr(target, "__globals__", {}))
    try:
        namespace.update(inspect.getclosurevars(target).nonlocals)
    except TypeError:  # builtins and callable objects have no closure to look into
        pass
    probe = type("_Hints", (), {"__annotations__": annotations,
                                "__module__": getattr(target, "__module__", None)})
    try:
        return get_type_hints(probe, globalns=namespace, include_extras=True)
    except Exception as exc:  # an unresolvable forward reference, for instance
        raise TypeError(f"tool {name!r}: cannot resolve type hints: {exc}") from exc


def _parameters_model(fn: Callable[..., Any], name: str) -> type[pydantic.BaseModel]:
    """A pydantic model of ``fn``'s parameters: it yields the JSON schema and validates calls."""
    hints = _parameter_hints(fn, name)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            # The model sends one JSON object of named arguments; *args/**kwargs have no schema.
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"tool {name!r}: positional-only parameter {param.name!r} "
                            "cannot be passed by name")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    try:
        return pydantic.create_model(f"{name}_arguments", **fields)  # type: ignore[call-overload]
    except (pydantic.PydanticSchemaGenerationError, TypeError) as exc:
        raise TypeError(f"tool {name!r}: unsupported parameter type: {exc}") from exc


def _strip_titles(node: Any) -> Any:
    """Drop pydantic's generated ``title`` keys: noise in a prompt that costs tokens."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict):
                # Inside ``properties`` the keys are argument names, one of which may be "title".
                out[key] = {k: _strip_titles(v) for k, v in value.items()}
            else:
                out[key] = _strip_titles(value)
        return out
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def _build(fn: Callable[..., Any], name: str | None, description: str | None,
           needs_approval: bool = False) -> _Tool:
    if isinstance(fn, FunctionTool):  # agents hook: its own options, unless given here
        name, description = name or fn.name, description if description is not None else fn.description
        needs_approval = needs_approval or fn.needs_approval
        fn = fn.fn
    if not callable(fn):
        raise TypeError(f"a tool must be callable, got {fn!r}")
    name = name or getattr(fn, "__name__", None)
    if not name or not _NAME.match(name):
        raise ValueError(f"tool name {name!r} must match {_NAME.pattern} (give name=...)")
    docstring = _docstring(fn)
    try:
        doc = docstring_parser.parse(docstring)
        summary = [doc.short_description, doc.long_description]
        param_docs = {p.arg_name: p.description for p in doc.params if p.description}
    except docstring_parser.ParseError:
        summary, param_docs = [docstring], {}
    if description is None:
        description = "\n\n".join(part for part in summary if part)
    model = _parameters_model(fn, name)
    try:
        parameters = _strip_titles(model.model_json_schema())
    except Exception as exc:  # e.g. a default value with no JSON form
        raise TypeError(f"tool {name!r}: cannot describe its parameters: {exc}") from exc
    for arg, spec in parameters.get("properties", {}).items():
        if arg in param_docs and "description" not in spec:
            spec["description"] = param_docs[arg]
    parameters.setdefault("properties", {})
    parameters.setdefault("required", [])
    # Tell the model plainly that only the listed arguments exist.
    parameters["additionalProperties"] = False
    schema = {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": parameters,
    }
    return _Tool(name=name, fn=fn, schema=schema, arguments=model, needs_approval=needs_approval)


def tool_schema(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> dict[str, Any]:
    """The GA function tool object for ``fn``.

    ``name`` defaults to ``fn.__name__``, ``description`` to the docstring's summary and body;
    per-argument descriptions come from its Args/Parameters section. Raises ``TypeError`` for
    parameters that cannot be described (positional-only, unknown types) and ``ValueError`` for
    a name the API would reject.
    """
    return _build(fn, name, description).schema


@dataclass(frozen=True)
class ToolCallResult:
    """The outcome of one call: ``output`` is what goes back as ``function_call_output``."""

    name: str
    output: str
    ok: bool
    error: str | None = None


def _error(name: str, message: str) -> ToolCallResult:
    return ToolCallResult(name=name, output=json.dumps({"error": message}), ok=False, error=message)


def _to_output(value: Any) -> str:
    """Tool results as text for the model: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


class ToolRegistry:
    """Tools by name; parse, validate and run calls; always return a string output.

    ``registry.add(fn)`` or ``@registry.add`` / ``@registry.add(name=..., description=...)``
    registers a callable; ``registry.schemas`` is the list for ``session.update``.
    ``tracebacks=True`` appends the traceback to a raising tool's ``"Type: message"`` error.
    """

    def __init__(self, tools: list[Callable[..., Any]] | None = None, *, tracebacks: bool = False) -> None:
        self._tools: dict[str, _Tool] = {}
        self.tracebacks = tracebacks
        # agents hook: who decides calls of needs_approval tools (rtvoice_widget/approval.py);
        # with none, such calls are denied.
        self.approver: Approver | None = None
        for fn in tools or ():
            self.add(fn)

    def add(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        needs_approval: bool = False,
    ) -> Any:
        """Register ``fn`` (returned unchanged, so this works as a decorator, with or without
        arguments). A second tool with the same name replaces the first. ``fn`` may be a
        :class:`FunctionTool`; ``needs_approval=True``: calls wait for :attr:`approver`."""
        if fn is None:
            return lambda f: self.add(f, name=name, description=description, needs_approval=needs_approval)
        tool = _build(fn, name, description, needs_approval)
        self._tools[tool.name] = tool
        return fn

    def remove(self, name: str) -> None:
        """Forget the tool ``name`` (``KeyError`` if there is none)."""
        del self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __getitem__(self, name: str) -> Callable[..., Any]:
        return self._tools[name].fn

    def needs_approval(self, name: str) -> bool:
        """Whether calls of ``name`` wait for an approval (False for unknown names)."""
        tool = self._tools.get(name)
        return tool is not None and tool.needs_approval

    async def _denial(self, tool: _Tool, arguments_json: str, call_id: str | None) -> str | None:
        # agents hook: None lets the call run; a string is the output the model gets instead.
        if not tool.needs_approval:
            return None
        if self.approver is None:
            return json.dumps({"error": f"the call to {tool.name} needs the user's approval and nobody "
                                        "can give it here; it did not run"})
        return await self.approver(tool.name, arguments_json, call_id)

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """GA function tool objects, in registration order."""
        return [json.loads(json.dumps(t.schema)) for t in self._tools.values()]

    def _prepare(self, name: str, arguments_json: str) -> tuple[_Tool, dict[str, Any]] | ToolCallResult:
        tool = self._tools.get(name)
        if tool is None:
            return _error(name, f"unknown tool {name!r}; available: {sorted(self._tools)}")
        try:
            raw = json.loads(arguments_json) if arguments_json and arguments_json.strip() else {}
        except (TypeError, json.JSONDecodeError) as exc:
            return _error(name, f"arguments are not valid JSON: {exc}")
        if not isinstance(raw, dict):
            return _error(name, f"arguments must be a JSON object, got {type(raw).__name__}")
        try:
            parsed = tool.arguments.model_validate(raw)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}"
                for e in exc.errors()
            )
            return _error(name, f"invalid arguments: {problems}")
        unexpected = sorted(set(raw) - set(tool.arguments.model_fields))
        if unexpected:
            return _error(name, f"unexpected argument(s) {unexpected}")
        # Keep the validated values themselves (not model_dump) so nested models and dataclasses
        # reach the function as the types it declared.
        return tool, {k: getattr(parsed, k) for k in tool.arguments.model_fields}

    def run_sync(self, name: str, arguments_json: str, *, call_id: str | None = None) -> ToolCallResult:
        """Run a call on this thread. Async tools get their own event loop, so do not call this
        from a running loop with an async tool (use :meth:`run_async`); nor with a
        ``needs_approval`` tool (the approval is awaited the same way)."""
        prepared = self._prepare(name, arguments_json)
        if isinstance(prepared, ToolCallResult):
            return prepared
        tool, kwargs = prepared
        denial = _run_awaitable(self._denial(tool, arguments_json, call_id)) if tool.needs_approval else None
        if denial is not None:
            return ToolCallResult(name=name, output=denial, ok=True)
        try:
            value = tool.fn(**kwargs)
            if inspect.isawaitable(value):
                value = _run_awaitable(value)
        except Exception as exc:
            return _error(name, self._describe(exc))
        return ToolCallResult(name=name, output=_to_output(value), ok=True)

    async def run_async(self, name: str, arguments_json: str, *, call_id: str | None = None) -> ToolCallResult:
        """Run a call from a coroutine: async tools are awaited, sync tools run in the default
        executor so a slow tool never blocks the loop. A ``needs_approval`` tool first awaits
        :attr:`approver` (``call_id`` identifies the call to it); a denial is an ``ok`` result
        whose output says so (the call was answered, it just did not run)."""
        prepared = self._prepare(name, arguments_json)
        if isinstance(prepared, ToolCallResult):
            return prepared
        tool, kwargs = prepared
        denial = await self._denial(tool, arguments_json, call_id)
        if denial is not None:
            return ToolCallResult(name=name, output=denial, ok=True)
        token = CURRENT_CALL_ID.set(call_id)  # agents hook
        try:
            if inspect.iscoroutinefunction(tool.fn):
                value = await tool.fn(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(None, lambda: tool.fn(**kwargs))
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            return _error(name, self._describe(exc))
        finally:
            CURRENT_CALL_ID.reset(token)
        return ToolCallResult(name=name, output=_to_output(value), ok=True)

    def _describe(self, exc: Exception) -> str:
        text = f"{type(exc).__name__}: {exc}"
        if self.tracebacks:
            text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        return text

    def run(self, name: str, arguments_json: str) -> str:
        """``run_sync(...).output``: the string to send back as ``function_call_output``."""
        return self.run_sync(name, arguments_json).output


def _run_awaitable(value: Awaitable[Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(value))
    if inspect.iscoroutine(value):
        value.close()  # never awaited: close it rather than leak a warning
    raise RuntimeError("an async tool cannot run with run_sync inside a running event loop; "
                       "use run_async")


async def _await(value: Awaitable[Any]) -> Any:
    return await value
