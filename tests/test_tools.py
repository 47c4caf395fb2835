"""tool_schema and ToolRegistry: schemas from hints and docstrings, and calls that never raise.

Schemas are checked three ways: exact expectations, JSON Schema validity (``jsonschema``'s
metaschema check), and the SDK's ``RealtimeClientEvent`` inside a ``session.update``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import threading
from typing import Any, Literal, Optional

import jsonschema
import pytest
from openai.types.realtime import RealtimeClientEvent
from pydantic import TypeAdapter

from rtvoice_widget.config import SessionConfig
from rtvoice_widget.tools import ToolRegistry, tool_schema

CLIENT = TypeAdapter(RealtimeClientEvent)


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


def get_weather(city: str, unit: Literal["c", "f"] = "c", days: Optional[int] = None) -> dict:
    """Current weather and forecast for a city.

    Uses the local station when there is one.

    Args:
        city: City name, e.g. "Paris".
        unit: Temperature unit.
        days: Days of forecast; none for today only.
    """
    return {"city": city, "unit": unit, "days": days}


def plan(stops: list[str], budget: dict[str, float], fast: bool = False, unit: Unit = Unit.CELSIUS,
         note: str | None = None) -> str:
    """Plan a trip.

    Parameters
    ----------
    stops : list of str
        Places to visit in order.
    budget : dict
        Money per category.
    fast : bool
        Skip the scenic route.
    """
    return f"{len(stops)} stops, {sum(budget.values()):.0f} total, fast={fast}, {unit.value}"


def check(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema["parameters"])
    CLIENT.validate_python({"type": "session.update",
                            "session": {"type": "realtime", "tools": [schema]}})


def test_schema_from_hints_and_google_docstring() -> None:
    schema = tool_schema(get_weather)
    check(schema)
    assert schema["type"] == "function" and schema["name"] == "get_weather"
    assert schema["description"] == (
        "Current weather and forecast for a city.\n\nUses the local station when there is one.")
    params = schema["parameters"]
    assert params["type"] == "object" and params["required"] == ["city"]
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert props["city"] == {"type": "string", "description": 'City name, e.g. "Paris".'}
    assert props["unit"]["enum"] == ["c", "f"] and props["unit"]["default"] == "c"
    assert props["unit"]["description"] == "Temperature unit."
    assert {"type": "integer"} in props["days"]["anyOf"] and {"type": "null"} in props["days"][
        "anyOf"]
    assert props["days"]["default"] is None
    assert "title" not in json.dumps(schema)


def test_schema_from_numpy_docstring_and_containers() -> None:
    schema = tool_schema(plan)
    check(schema)
    props = schema["parameters"]["properties"]
    assert schema["description"] == "Plan a trip."
    assert props["stops"]["type"] == "array" and props["stops"]["items"] == {"type": "string"}
    assert props["stops"]["description"] == "Places to visit in order."
    assert props["budget"]["type"] == "object"
    assert props["budget"]["additionalProperties"] == {"type": "number"}
    assert props["fast"] == {"type": "boolean", "default": False,
                             "description": "Skip the scenic route."}
    assert "note" in props and "description" not in props["note"]
    assert schema["parameters"]["required"] == ["stops", "budget"]
    # The enum is described once under $defs and referenced.
    assert "$defs" in schema["parameters"] and "$ref" in json.dumps(props["unit"])


def test_schema_without_docstring_or_parameters() -> None:
    def ping():
        return "pong"

    schema = tool_schema(ping)
    check(schema)
    assert schema["description"] == ""
    assert schema["parameters"]["properties"] == {} and schema["parameters"]["required"] == []


def test_argument_named_title_survives() -> None:
    def note(title: str, body: str = "") -> str:
        """Save a note.

        Args:
            title: Its title.
        """
        return title

    props = tool_schema(note)["parameters"]["properties"]
    assert props["title"] == {"type": "string", "description": "Its title."}


def test_name_and_description_overrides() -> None:
    schema = tool_schema(get_weather, name="weather", description="Weather now.")
    assert (schema["name"], schema["description"]) == ("weather", "Weather now.")


def test_bad_tools_are_rejected() -> None:
    def positional(x: int, /) -> int:
        return x

    with pytest.raises(TypeError, match="positional-only"):
        tool_schema(positional)
    with pytest.raises(ValueError, match="tool name"):
        tool_schema(lambda: 1)
    with pytest.raises(TypeError, match="callable"):
        tool_schema(42)  # type: ignore[arg-type]

    def broken(x: "NoSuchType") -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(TypeError, match="type hints"):
        tool_schema(broken)


def test_registry_decorators_and_schemas() -> None:
    tools = ToolRegistry([get_weather])

    @tools.add
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    @tools.add(name="shout", description="Upper-case a text.")
    def upper(text: str) -> str:
        return text.upper()

    assert list(tools) == ["get_weather", "add", "shout"] and len(tools) == 3
    assert "shout" in tools and tools["shout"] is upper
    assert [s["name"] for s in tools.schemas] == ["get_weather", "add", "shout"]
    validate = SessionConfig(tools=tools.schemas).to_session()
    CLIENT.validate_python({"type": "session.update", "session": validate})
    tools.schemas[0]["name"] = "changed"  # a copy: the registry is not changed through it
    assert tools.schemas[0]["name"] == "get_weather"
    tools.remove("add")
    assert "add" not in tools


def test_run_validates_and_coerces() -> None:
    tools = ToolRegistry([get_weather, plan])
    assert json.loads(tools.run("get_weather", '{"city": "Paris", "days": "3"}')) == {
        "city": "Paris", "unit": "c", "days": 3}
    assert tools.run("plan", json.dumps({"stops": ["a", "b"], "budget": {"food": 10, "bed": 5},
                                         "unit": "fahrenheit"})) == (
        "2 stops, 15 total, fast=False, fahrenheit")


@pytest.mark.parametrize("arguments, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ("{}", "city: Field required"),
    ('{"city": "Paris", "unit": "kelvin"}', "unit:"),
    ('{"city": "Paris", "days": "many"}', "days:"),
    ('{"city": "Paris", "country": "FR"}', "unexpected argument(s) ['country']"),
])
def test_bad_arguments_become_error_outputs(arguments: str, message: str) -> None:
    tools = ToolRegistry([get_weather])
    result = tools.run_sync("get_weather", arguments)
    assert not result.ok and message in result.error
    assert json.loads(result.output) == {"error": result.error}
    assert tools.run("get_weather", arguments) == result.output


def test_unknown_and_raising_tools_become_error_outputs() -> None:
    def explode(reason: str) -> str:
        raise RuntimeError(f"kaboom: {reason}")

    tools = ToolRegistry([explode])
    result = tools.run_sync("explode", '{"reason": "test"}')
    assert not result.ok and result.error == "RuntimeError: kaboom: test"
    assert json.loads(tools.run("nope", "{}"))["error"].startswith("unknown tool 'nope'")
    assert tools.run_sync("explode", '{"reason": "again"}').error.endswith("again")


def test_empty_arguments_mean_no_arguments() -> None:
    def ping() -> str:
        return "pong"

    tools = ToolRegistry([ping])
    assert tools.run("ping", "") == "pong" and tools.run("ping", "{}") == "pong"


def test_outputs_are_strings() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    def where() -> Point:
        return Point(1, 2)

    def many() -> list:
        return [1, "two", None]

    tools = ToolRegistry([where, many])
    assert json.loads(tools.run("where", "{}")) == {"x": 1, "y": 2}
    assert json.loads(tools.run("many", "{}")) == [1, "two", None]


def test_run_sync_runs_async_tools() -> None:
    async def slow_add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    tools = ToolRegistry([slow_add])
    assert tools.run("slow_add", '{"a": 2, "b": 3}') == "5"


async def test_run_async_awaits_async_and_offloads_sync_tools() -> None:
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    async def async_tool(x: int) -> int:
        seen["async"] = threading.get_ident()
        return x * 2

    def sync_tool(x: int) -> int:
        seen["sync"] = threading.get_ident()
        return x * 3

    def raising() -> None:
        raise ValueError("nope")

    tools = ToolRegistry([async_tool, sync_tool, raising])
    assert (await tools.run_async("async_tool", '{"x": 4}')).output == "8"
    assert (await tools.run_async("sync_tool", '{"x": 4}')).output == "12"
    assert seen["async"] == loop_thread and seen["sync"] != loop_thread
    result = await tools.run_async("raising", "{}")
    assert not result.ok and result.error == "ValueError: nope"
    assert not (await tools.run_async("sync_tool", '{"x": "four"}')).ok


async def test_run_sync_refuses_async_tools_inside_a_loop() -> None:
    async def later() -> str:
        return "done"

    result = ToolRegistry([later]).run_sync("later", "{}")
    assert not result.ok and "use run_async" in result.error


def test_partials_callable_objects_and_methods() -> None:
    import functools

    def scale(x: float, factor: float) -> float:
        """Scale a number.

        Args:
            x: The number.
            factor: The factor.
        """
        return x * factor

    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def __call__(self, step: int = 1) -> int:
            self.n += step
            return self.n

        def reset(self, to: int) -> int:
            """Reset the counter."""
            self.n = to
            return to

    counter = Counter()
    tools = ToolRegistry()
    tools.add(functools.partial(scale, factor=2.0), name="double")
    tools.add(counter, name="count")
    tools.add(counter.reset)
    schemas = {s["name"]: s for s in tools.schemas}
    for schema in schemas.values():
        check(schema)
    assert schemas["double"]["parameters"]["properties"]["x"] == {"type": "number",
                                                                  "description": "The number."}
    assert schemas["double"]["description"] == "Scale a number."
    assert schemas["reset"]["description"] == "Reset the counter."
    assert schemas["count"]["description"] == ""  # nothing inherited from object or type

    class Doubler:
        """Double a number."""

        def __call__(self, x: int) -> int:
            return 2 * x

    assert tool_schema(Doubler(), name="double_it")["description"] == "Double a number."
    assert schemas["count"]["parameters"]["properties"]["step"] == {"type": "integer",
                                                                    "default": 1}
    assert list(schemas["reset"]["parameters"]["properties"]) == ["to"]
    assert tools.run("double", '{"x": 1.5}') == "3.0"
    assert tools.run("count", '{"step": 5}') == "5"
    assert tools.run("reset", '{"to": 0}') == "0" and counter.n == 0


@dataclasses.dataclass
class Stop:
    city: str
    nights: int = 1


def test_structured_arguments_arrive_as_declared_types() -> None:
    seen: list[Any] = []

    def book(stops: list[Stop]) -> int:
        seen.extend(stops)
        return sum(s.nights for s in stops)

    tools = ToolRegistry([book])
    check(tools.schemas[0])
    assert tools.run("book", '{"stops": [{"city": "Oslo", "nights": 2}, {"city": "Bergen"}]}') \
        == "3"
    assert seen == [Stop("Oslo", 2), Stop("Bergen", 1)]
    assert not tools.run_sync("book", '{"stops": [{"nights": 2}]}').ok
