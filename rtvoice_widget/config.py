"""Typed session configuration, turned into the GA Realtime ``session`` object.

Pure data: no I/O. Every value is checked when a config is made (and again by
:meth:`SessionConfig.replace`), so a typo fails at the call site with a ``ValueError`` that names
the field instead of as an ``error`` event from the server seconds later.

``SessionConfig.to_session()`` returns the ``session`` object of a GA ``session.update`` event::

    {"type": "realtime", "instructions": ..., "output_modalities": ["audio"],
     "audio": {"input": {"format": ..., "turn_detection": ..., "transcription": ...,
                         "noise_reduction": ...},
               "output": {"format": ..., "voice": ..., "speed": ...}},
     "tools": [...], "tool_choice": ..., "max_output_tokens": ...}

Audio is PCM16 24 kHz mono in both directions: that is what the widget captures and plays.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .pcm import SAMPLE_RATE

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_MODEL",
    "DEFAULT_VOICE",
    "AUDIO_FORMAT",
    "TURN_DETECTION_DEFAULTS",
    "InputTranscription",
    "SessionConfig",
    "TurnDetection",
]

DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "marin"
AUDIO_FORMAT: dict[str, Any] = {"type": "audio/pcm", "rate": SAMPLE_RATE}
#: The GA API's value for each ``turn_detection`` field a ``session.update`` leaves out, by type:
#: what :class:`TurnDetection` starts from and what the embedded server fills in and echoes.
TURN_DETECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "server_vad": {"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
                   "create_response": True, "interrupt_response": True, "idle_timeout_ms": None},
    "semantic_vad": {"eagerness": "auto", "create_response": True, "interrupt_response": True},
}
_SERVER_VAD = TURN_DETECTION_DEFAULTS["server_vad"]

DEFAULT_INSTRUCTIONS = """\
You are a friendly voice assistant talking with someone through their microphone inside a \
Jupyter notebook. Everything you say is spoken aloud, so:
- Keep answers short: one to three sentences, unless asked for more. Offer to go deeper instead \
of going deep unasked.
- Speak naturally, like a helpful person on a call. Use plain words and contractions.
- Never use markdown, bullet points, numbered lists, tables, code blocks, emoji or URLs: they \
cannot be heard. Say numbers, symbols and code the way a person would read them out.
- If you did not catch what was said, or it is ambiguous, ask one short clarifying question.
- If you are interrupted, stop and listen; do not repeat what you already said.
- When a tool can answer, use it, then tell the result in a sentence.
- Answer in the language the user speaks.\
"""

TurnDetectionType = Literal["server_vad", "semantic_vad"]
Eagerness = Literal["low", "medium", "high", "auto"]
NoiseReduction = Literal["near_field", "far_field"]

_TURN_DETECTION_TYPES = ("server_vad", "semantic_vad")
_EAGERNESS = ("low", "medium", "high", "auto")
_NOISE_REDUCTION = ("near_field", "far_field")
_MODALITIES = ("audio", "text")
_TOOL_CHOICE_MODES = ("auto", "none", "required")
# GA limits, from the API reference; the server would reject values outside them.
_SPEED_RANGE = (0.25, 1.5)
_MAX_OUTPUT_TOKENS = 4096


def _fail(field_name: str, message: str) -> ValueError:
    return ValueError(f"{field_name}: {message}")


def _check_number(
    field_name: str, value: Any, low: float, high: float, *, integer: bool = False
) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise _fail(field_name, f"must be {kind}, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        bounds = f">= {low}" if high == math.inf else f"between {low} and {high}"
        raise _fail(field_name, f"must be {bounds}, got {value!r}")


def _check_choice(field_name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise _fail(field_name, f"must be one of {allowed}; got {value!r}")


def _check_fields(cls: type, field_name: str, data: Mapping[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail(field_name, f"unknown key(s) {unknown}; expected some of {sorted(known)}")


@dataclass(frozen=True)
class TurnDetection:
    """How the server decides that the user finished speaking.

    ``type=None`` turns detection off: the client commits the audio buffer itself (push-to-talk)
    and asks for a response. ``server_vad`` uses ``threshold``, ``prefix_padding_ms``,
    ``silence_duration_ms`` and ``idle_timeout_ms``; ``semantic_vad`` uses ``eagerness``. Both use
    ``create_response`` (answer automatically after a turn) and ``interrupt_response`` (the server
    cancels the active response when the user starts speaking; when False the client does).
    """

    type: TurnDetectionType | None = "server_vad"
    threshold: float = _SERVER_VAD["threshold"]
    prefix_padding_ms: int = _SERVER_VAD["prefix_padding_ms"]
    silence_duration_ms: int = _SERVER_VAD["silence_duration_ms"]
    create_response: bool = _SERVER_VAD["create_response"]
    interrupt_response: bool = _SERVER_VAD["interrupt_response"]
    idle_timeout_ms: int | None = _SERVER_VAD["idle_timeout_ms"]
    eagerness: Eagerness = TURN_DETECTION_DEFAULTS["semantic_vad"]["eagerness"]

    def __post_init__(self) -> None:
        _check_choice("turn_detection.type", self.type, _TURN_DETECTION_TYPES + (None,))
        _check_number("turn_detection.threshold", self.threshold, 0.0, 1.0)
        for name in ("prefix_padding_ms", "silence_duration_ms"):
            _check_number(f"turn_detection.{name}", getattr(self, name), 0, math.inf, integer=True)
        for name in ("create_response", "interrupt_response"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise _fail(f"turn_detection.{name}", f"must be True or False, got {value!r}")
        if self.idle_timeout_ms is not None:
            _check_number(
                "turn_detection.idle_timeout_ms", self.idle_timeout_ms, 1, math.inf, integer=True
            )
        _check_choice("turn_detection.eagerness", self.eagerness, _EAGERNESS)

    @property
    def enabled(self) -> bool:
        """True when the server detects turns; False for manual commit (push-to-talk)."""
        return self.type is not None

    def replace(self, **changes: Any) -> TurnDetection:
        """A copy with ``changes`` applied and validated."""
        _check_fields(TurnDetection, "turn_detection", changes)
        return dataclasses.replace(self, **changes)

    def to_session(self) -> dict[str, Any] | None:
        """The GA ``audio.input.turn_detection`` object (``None`` for manual commit)."""
        if self.type is None:
            return None
        common = {
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }
        if self.type == "semantic_vad":
            return {"type": "semantic_vad", "eagerness": self.eagerness, **common}
        out: dict[str, Any] = {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            **common,
        }
        if self.idle_timeout_ms is not None:
            out["idle_timeout_ms"] = self.idle_timeout_ms
        return out

    @classmethod
    def coerce(cls, value: Any) -> TurnDetection:
        """Accept a ``TurnDetection``, ``None`` (manual), a type name, or a dict of fields."""
        if isinstance(value, TurnDetection):
            return value
        if value is None:
            return cls(type=None)
        if isinstance(value, str):
            _check_choice("turn_detection", value, _TURN_DETECTION_TYPES)
            return cls(type=value)  # type: ignore[arg-type]
        if isinstance(value, Mapping):
            _check_fields(cls, "turn_detection", value)
            return cls(**value)
        raise _fail(
            "turn_detection",
            f"expected TurnDetection, None, 'server_vad', 'semantic_vad' or a dict; got {value!r}",
        )


@dataclass(frozen=True)
class InputTranscription:
    """Transcription of the user's audio (``audio.input.transcription``).

    ``model`` is the transcription model name (``whisper-1``, ``gpt-4o-transcribe``,
    ``gpt-4o-mini-transcribe``, or whatever a compatible server offers); ``language`` an ISO-639-1
    code such as ``"en"``; ``prompt`` guides spelling and vocabulary.
    """

    model: str = "gpt-4o-mini-transcribe"
    language: str | None = None
    prompt: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise _fail("input_transcription.model", f"must be a non-empty string, got "
                        f"{self.model!r}")
        if self.language is not None and (
            not isinstance(self.language, str) or not self.language.isalpha()
            or not 2 <= len(self.language) <= 3
        ):
            raise _fail(
                "input_transcription.language",
                f"must be an ISO-639-1 code such as 'en', got {self.language!r}",
            )
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise _fail("input_transcription.prompt", f"must be a string, got {self.prompt!r}")

    def to_session(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        if self.language is not None:
            out["language"] = self.language
        if self.prompt is not None:
            out["prompt"] = self.prompt
        return out

    @classmethod
    def coerce(cls, value: Any) -> InputTranscription | None:
        """Accept an ``InputTranscription``, ``None`` (off), a model name, or a dict of fields."""
        if value is None or isinstance(value, InputTranscription):
            return value
        if isinstance(value, str):
            return cls(model=value)
        if isinstance(value, Mapping):
            _check_fields(cls, "input_transcription", value)
            return cls(**value)
        raise _fail(
            "input_transcription",
            f"expected InputTranscription, None, a model name or a dict; got {value!r}",
        )


Tool = Mapping[str, Any] | Callable[..., Any]


@dataclass(frozen=True)
class SessionConfig:
    """Everything the client sets with ``session.update``.

    ``model`` is chosen when connecting (it goes in the URL) and is not part of
    :meth:`to_session` unless asked for. ``tools`` holds GA function tool dicts or plain Python
    callables (their schema comes from :func:`rtvoice_widget.tools.tool_schema`). ``tool_choice``
    is ``"auto"``, ``"none"``, ``"required"``, a tool name, or ``{"type": "function", "name": ...}``.
    ``max_output_tokens`` is 1..4096, ``"inf"``, or ``None`` for the server default.
    """

    model: str = DEFAULT_MODEL
    instructions: str = DEFAULT_INSTRUCTIONS
    voice: str = DEFAULT_VOICE
    speed: float = 1.0
    output_modalities: tuple[str, ...] = ("audio",)
    turn_detection: TurnDetection = field(default_factory=TurnDetection)
    input_transcription: InputTranscription | None = field(default_factory=InputTranscription)
    noise_reduction: NoiseReduction | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | Mapping[str, Any] = "auto"
    max_output_tokens: int | Literal["inf"] | None = None

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise through object.__setattr__ so that every accepted spelling
        # (None, "server_vad", a dict, a list) ends up as one canonical value.
        set_ = object.__setattr__
        for name in ("model", "voice"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise _fail(name, f"must be a non-empty string, got {value!r}")
        if not isinstance(self.instructions, str):
            raise _fail("instructions", f"must be a string, got {type(self.instructions).__name__}")
        _check_number("speed", self.speed, *_SPEED_RANGE)

        modalities = self.output_modalities
        if isinstance(modalities, str):
            modalities = (modalities,)
        if not isinstance(modalities, Iterable):
            raise _fail("output_modalities", f"must be ['audio'] or ['text'], got {modalities!r}")
        modalities = tuple(modalities)
        # The GA API answers with audio (plus its transcript) or with text, never both at once.
        if len(modalities) != 1 or modalities[0] not in _MODALITIES:
            raise _fail(
                "output_modalities",
                f"must be ['audio'] (speech plus transcript) or ['text'], got {list(modalities)!r}",
            )
        set_(self, "output_modalities", modalities)

        set_(self, "turn_detection", TurnDetection.coerce(self.turn_detection))
        set_(self, "input_transcription", InputTranscription.coerce(self.input_transcription))
        _check_choice("noise_reduction", self.noise_reduction, _NOISE_REDUCTION + (None,))

        tools = self.tools
        if tools is None:
            tools = ()
        if isinstance(tools, (str, bytes, Mapping)) or callable(tools) or not isinstance(
            tools, Iterable
        ):
            raise _fail("tools", f"must be a list of tool dicts or callables, got {tools!r}")
        tools = tuple(tools)
        set_(self, "tools", tools)
        names = [self._tool_name(i, t) for i, t in enumerate(tools)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise _fail("tools", f"duplicate tool name(s) {duplicates}")

        set_(self, "tool_choice", self._check_tool_choice(self.tool_choice, names))

        tokens = self.max_output_tokens
        if tokens is not None and tokens != "inf":
            _check_number("max_output_tokens", tokens, 1, _MAX_OUTPUT_TOKENS, integer=True)

    @staticmethod
    def _tool_name(index: int, tool: Any) -> str:
        if isinstance(tool, Mapping):
            if tool.get("type", "function") != "function":
                # MCP and other server-side tools: the client has nothing to check or run.
                return f"<{tool.get('type')} #{index}>"
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise _fail(f"tools[{index}]", f"a function tool needs a 'name', got {tool!r}")
            return name
        if callable(tool):
            return getattr(tool, "__name__", f"<tool #{index}>")
        raise _fail(f"tools[{index}]", f"must be a tool dict or a callable, got {tool!r}")

    @staticmethod
    def _check_tool_choice(choice: Any, names: list[str]) -> str | dict[str, Any]:
        if isinstance(choice, str):
            if choice in _TOOL_CHOICE_MODES:
                return choice
            choice = {"type": "function", "name": choice}
        if isinstance(choice, Mapping):
            choice = dict(choice)
            if choice.get("type") == "function":
                if choice.get("name") not in names:
                    raise _fail(
                        "tool_choice",
                        f"names function {choice.get('name')!r}, which is not among the tools "
                        f"{names}",
                    )
                if set(choice) != {"type", "name"}:
                    raise _fail("tool_choice", f"expected {{'type', 'name'}}, got {choice!r}")
                return choice
            if choice.get("type") == "mcp":
                return choice
        raise _fail(
            "tool_choice",
            f"must be 'auto', 'none', 'required', a tool name or "
            f"{{'type': 'function', 'name': ...}}; got {choice!r}",
        )

    def replace(self, **changes: Any) -> SessionConfig:
        """A copy with ``changes`` applied; raises ``ValueError`` for unknown or invalid fields."""
        _check_fields(SessionConfig, "SessionConfig", changes)
        return dataclasses.replace(self, **changes)

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The GA tool objects: dicts as given, callables through ``tool_schema``."""
        from .tools import tool_schema  # tools imports nothing from here; keep config light

        return [dict(t) if isinstance(t, Mapping) else tool_schema(t) for t in self.tools]

    def to_session(self, *, include_model: bool = False) -> dict[str, Any]:
        """The GA ``session`` object of ``session.update``.

        ``include_model`` adds ``model`` (for creating sessions or client secrets; the GA API
        does not let ``session.update`` change the model of a live session).
        """
        audio_input: dict[str, Any] = {
            "format": dict(AUDIO_FORMAT),
            "turn_detection": self.turn_detection.to_session(),
            "transcription": (
                self.input_transcription.to_session() if self.input_transcription else None
            ),
            "noise_reduction": (
                {"type": self.noise_reduction} if self.noise_reduction is not None else None
            ),
        }
        session: dict[str, Any] = {"type": "realtime"}
        if include_model:
            session["model"] = self.model
        session.update(
            {
                "instructions": self.instructions,
                "output_modalities": list(self.output_modalities),
                "audio": {
                    "input": audio_input,
                    "output": {
                        "format": dict(AUDIO_FORMAT),
                        "voice": self.voice,
                        "speed": self.speed,
                    },
                },
                "tools": self.tool_schemas(),
                "tool_choice": (
                    dict(self.tool_choice)
                    if isinstance(self.tool_choice, Mapping)
                    else self.tool_choice
                ),
            }
        )
        if self.max_output_tokens is not None:
            session["max_output_tokens"] = self.max_output_tokens
        return session
