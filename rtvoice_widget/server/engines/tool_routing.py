"""Tool handling shared by the local LLMs: normalising tool specs and keyword routing.

A 135M-parameter model cannot decide reliably *whether* to call a tool, so the local engines
decide by keywords instead (see ``route``) and only ask the model, if at all, to fill in the
arguments. What this can do: pick a tool whose name or description words appear in the user's
last message ("what's the *weather* in Paris" → ``get_weather``). What it cannot do: paraphrases
("is it raining?"), several tools in one turn, or deciding against a tool whose keyword is
mentioned in passing.
"""

from __future__ import annotations

import json
import re

# Verbs and fillers that appear in most tool names/descriptions and say nothing about the topic.
_GENERIC_WORDS = frozenset(
    "a an the of for to in on at by with and or is are be get set fetch find look up lookup return returns "
    "current given tool function call use using this that it its from as into your you me my".split()
)
_WORD = re.compile(r"[a-z0-9]+")


def function_spec(tool: dict) -> dict:
    """``{"name", "description", "parameters"}`` from a Realtime (flat) or Chat Completions (nested) tool."""
    if not isinstance(tool, dict):
        raise TypeError(f"a tool must be a dict, got {type(tool).__name__}")
    spec = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a tool needs a non-empty string 'name': {tool!r}")
    parameters = spec.get("parameters") or {"type": "object", "properties": {}}
    return {"name": name, "description": spec.get("description") or "", "parameters": parameters}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("_", " "))


def _stem(word: str) -> str:
    # Enough stemming for "weathers"/"times"/"timers" to meet their tool; no library needed.
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def keywords(spec: dict) -> set[str]:
    """Topic words of a tool: its name parts, plus description words, minus generic ones."""
    words = _words(spec["name"]) + _words(spec["description"])
    return {_stem(w) for w in words if w not in _GENERIC_WORDS and len(w) > 2}


def route(text: str, tools: list[dict]) -> dict | None:
    """The tool spec whose keywords best match ``text``, or ``None``.

    Name words count double: a tool's name is its clearest statement of topic. Ties go to the
    first tool listed, so the result is deterministic.
    """
    said = {_stem(w) for w in _words(text)}
    best, best_score = None, 0
    for spec in map(function_spec, tools):
        name_words = {_stem(w) for w in _words(spec["name"]) if w not in _GENERIC_WORDS}
        score = 2 * len(name_words & said) + len((keywords(spec) - name_words) & said)
        if score > best_score:
            best, best_score = spec, score
    return best


def guess_arguments(text: str, spec: dict) -> str:
    """JSON arguments for ``spec`` read off ``text`` by simple rules (deterministic).

    Strings get the last capitalised word (a place or name: "weather in Paris" → "Paris"), or the
    last word; numbers the first number said; booleans ``true``; enums their first value that is
    mentioned, else their first value. Only required properties (or all, when none is marked
    required) are filled.
    """
    schema = spec.get("parameters") or {}
    properties = schema.get("properties") or {}
    wanted = schema.get("required") or list(properties)
    tokens = re.findall(r"[A-Za-z][\w'-]*|-?\d+(?:\.\d+)?", text)
    capitalised = [t for t in tokens[1:] if t[0].isupper()]  # the first word is capitalised anyway
    numbers = [t for t in tokens if re.fullmatch(r"-?\d+(?:\.\d+)?", t)]
    said = set(_words(text))
    args: dict = {}
    for key in wanted:
        prop = properties.get(key) or {}
        kind = prop.get("type", "string")
        if "enum" in prop and prop["enum"]:
            args[key] = next((v for v in prop["enum"] if str(v).lower() in said), prop["enum"][0])
        elif kind in ("number", "integer"):
            if numbers:
                value = float(numbers[0])
                args[key] = int(value) if kind == "integer" else value
        elif kind == "boolean":
            args[key] = True
        elif kind == "string":
            words = [t for t in tokens if not re.fullmatch(r"-?\d+(?:\.\d+)?", t)]
            if capitalised or words:
                args[key] = (capitalised or words)[-1]
    return json.dumps(args)


def last_user_text(messages: list[dict]) -> str:
    """Text of the last user message ("" if none); content may be a string or a list of parts."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict):
            parts.append(part.get("text") or part.get("transcript") or "")
        else:
            parts.append(str(part))
    return " ".join(p for p in parts if p)


def answering_tool_result(messages: list[dict]) -> bool:
    """True when the conversation ends with a tool result the model should now talk about."""
    return bool(messages) and messages[-1].get("role") == "tool"


def tool_to_call(messages: list[dict], tools: list[dict] | None) -> tuple[str, dict] | None:
    """``(user text, tool spec)`` when this reply should be a call to one of ``tools``, else ``None``.

    Never while answering a tool result: the model talks about it instead of calling again.
    """
    if not tools or answering_tool_result(messages):
        return None
    text = last_user_text(messages)
    spec = route(text, tools)
    return None if spec is None else (text, spec)
