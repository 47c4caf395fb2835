"""The client side of the Realtime protocol as a pure state machine (sans-I/O).

:class:`ClientProtocol` does no I/O and has no clock: the caller sends the event dicts the
builders return, feeds every parsed server event to :meth:`ClientProtocol.receive` together with
the current time in milliseconds, and carries out the :class:`Action` objects it gets back::

    proto = ClientProtocol(SessionConfig())
    ws.send(json.dumps(proto.session_update()))
    for action in proto.receive(json.loads(message), now_ms=clock()):
        match action:
            case Send(event): ws.send(json.dumps(event))
            case PlayAudio(): player.enqueue(action.item_id, action.pcm16)
            case FlushPlayback(item_id): player.flush(item_id)
            case RunTool(): ...   # run it, then send proto.tool_output(call_id, output)
            case TurnDone(turn): ...

State kept: ``items`` (conversation items in server order), ``active_response_id``, per-item
audio received and played, user and assistant transcripts (partial and final), ``calls``
(function calls, ``calls_in_flight`` for the unanswered ones), ``turns`` (one :class:`Turn` per
response, with its latency marks) and ``errors``.

Playback position. Barge-in needs what the user really heard. The player reports it through
:meth:`ClientProtocol.playback_progress`; between reports the position is extrapolated in real
time. Items the player has not reported on are estimated by a *virtual player* (on by default)
that plays each chunk in real time from when it arrived or when the previous chunk ends, like a
gap-free player with no start-up buffer; ``virtual_player=False`` counts such items as unplayed.
Every estimate is clamped to the audio received, because the server rejects a truncation past it.

Beta event names (``response.audio.delta``, ``response.audio_transcript.*``, ``response.text.*``,
``conversation.item.created``) are accepted and normalised to GA names; unknown types are
tolerated (they return no action).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .config import SessionConfig
from .errors import ProtocolError
from .pcm import SAMPLE_RATE, decode_pcm16, encode_pcm16, pcm16_ms

__all__ = [
    "Action",
    "BETA_ALIASES",
    "ClientProtocol",
    "CostCapReached",
    "CostLimitError",
    "FlushPlayback",
    "FunctionCall",
    "Item",
    "PlayAudio",
    "ProtocolError",
    "RunTool",
    "Send",
    "Turn",
    "TOKEN_KINDS",
    "TurnDone",
    "check_prices",
    "normalize_event",
    "pcm16_ms",
    "usage_tokens",
]

#: Keys ``Protocol.ignored_types`` holds at most; later new unknown types count under IGNORED_OTHER.
MAX_IGNORED_TYPES = 256
IGNORED_OTHER = "(other)"

BETA_ALIASES: dict[str, str] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}

# Keys ``create_response(**overrides)`` accepts, as in the GA ``response`` object; ``voice`` is a
# shortcut for ``audio.output.voice``.
_RESPONSE_KEYS = frozenset(
    {"audio", "conversation", "input", "instructions", "max_output_tokens", "metadata",
     "output_modalities", "prompt", "tool_choice", "tools", "voice"}
)


# Types of the top-level fields the handlers read; a server event whose field has another type
# is refused whole (ProtocolError) rather than half-applied.
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "item_id": str, "response_id": str, "call_id": str, "previous_item_id": str, "name": str,
    "delta": str, "transcript": str, "text": str, "arguments": str, "content_index": int,
    "audio_end_ms": (int, float), "item": Mapping, "response": Mapping, "part": Mapping,
}
# Fields without which an event of that type says nothing usable.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "response.output_audio.delta": ("item_id", "delta"),
    "response.output_audio_transcript.delta": ("item_id",),
    "response.output_text.delta": ("item_id",),
    "response.output_audio_transcript.done": ("item_id",),
    "response.output_text.done": ("item_id",),
    "conversation.item.input_audio_transcription.delta": ("item_id",),
    "conversation.item.input_audio_transcription.completed": ("item_id",),
    "conversation.item.input_audio_transcription.failed": ("item_id",),
    "conversation.item.truncated": ("item_id", "audio_end_ms"),
    "conversation.item.deleted": ("item_id",),
    "response.content_part.added": ("item_id",),
    "response.function_call_arguments.delta": ("call_id",),
    "response.function_call_arguments.done": ("call_id",),
}


# --- tokens and cost ----------------------------------------------------------------------------

# Token kinds a ``response.done`` usage breaks down into. ``input_*`` count the tokens billed at
# the full input rate, ``cached_*`` the cached input tokens (billed at the cached rate); the GA
# usage counts cached tokens inside ``input_token_details.{text,audio,image}_tokens``, so they
# are subtracted there.
TOKEN_KINDS = ("input_text", "input_audio", "input_image", "cached_text", "cached_audio",
               "cached_image", "output_text", "output_audio")
# Prices a ``prices=`` mapping must give (USD per 1M tokens); the others fall back to an upper
# bound so that a cap never under-counts: a cached kind to its uncached price, ``input_image``
# to the dearest input price.
_REQUIRED_PRICES = ("input_text", "input_audio", "output_text", "output_audio")


class CostLimitError(RuntimeError):
    """The session reached its ``max_cost_usd``: no more responses are created."""


def check_prices(prices: Mapping[str, Any]) -> dict[str, float]:
    """``prices`` validated and completed: USD per 1M tokens for every kind of :data:`TOKEN_KINDS`.

    There are no default prices: they differ per model and change over time. Take them from the
    provider's pricing page, e.g. for OpenAI ``gpt-realtime`` (published Aug 2025)::

        {"input_text": 4.0, "cached_text": 0.4, "output_text": 16.0,
         "input_audio": 32.0, "cached_audio": 0.4, "output_audio": 64.0}

    Raises ``ValueError`` naming the kind for unknown kinds, missing required kinds
    (``input_text``, ``input_audio``, ``output_text``, ``output_audio``) or prices that are not
    finite numbers >= 0.
    """
    if not isinstance(prices, Mapping):
        raise TypeError(f"prices must be a mapping of token kind -> USD per 1M tokens, got {type(prices).__name__}")
    unknown = sorted(set(prices) - set(TOKEN_KINDS))
    if unknown:
        raise ValueError(f"prices: unknown token kind(s) {unknown}; expected some of {list(TOKEN_KINDS)}")
    missing = [kind for kind in _REQUIRED_PRICES if kind not in prices]
    if missing:
        raise ValueError(f"prices: missing {missing} (USD per 1M tokens)")
    for kind, value in prices.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise ValueError(f"prices[{kind!r}] must be a finite number >= 0 (USD per 1M tokens), got {value!r}")
    full = {kind: float(value) for kind, value in prices.items()}
    for kind in ("text", "audio"):
        full.setdefault(f"cached_{kind}", full[f"input_{kind}"])
    full.setdefault("input_image", max(full["input_text"], full["input_audio"]))
    full.setdefault("cached_image", full["input_image"])
    return full


def usage_tokens(usage: Any) -> dict[str, int]:
    """Tokens per kind (:data:`TOKEN_KINDS`) from a GA ``response.done`` ``usage`` object.

    Tokens the server does not break down by modality count as text. Malformed or missing
    numbers count as 0 (usage is informational; a bad one must not cost a turn).
    """
    if not isinstance(usage, Mapping):
        return dict.fromkeys(TOKEN_KINDS, 0)

    def count(source: Any, key: str) -> int:
        value = source.get(key) if isinstance(source, Mapping) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    inputs, outputs = usage.get("input_token_details"), usage.get("output_token_details")
    cached_details = inputs.get("cached_tokens_details") if isinstance(inputs, Mapping) else None
    tokens: dict[str, int] = {}
    for kind in ("text", "audio", "image"):
        cached = count(cached_details, f"{kind}_tokens")
        tokens[f"input_{kind}"] = max(0, count(inputs, f"{kind}_tokens") - cached)
        tokens[f"cached_{kind}"] = cached
    # Cached tokens reported without a per-modality split are text (the prompt prefix).
    unsplit_cached = count(inputs, "cached_tokens") - sum(tokens[f"cached_{k}"] for k in ("text", "audio", "image"))
    if unsplit_cached > 0:
        moved = min(unsplit_cached, tokens["input_text"])
        tokens["input_text"] -= moved
        tokens["cached_text"] += unsplit_cached
    tokens["output_text"] = count(outputs, "text_tokens")
    tokens["output_audio"] = count(outputs, "audio_tokens")
    input_total = sum(tokens[k] for k in TOKEN_KINDS if not k.startswith("output_"))
    tokens["input_text"] += max(0, count(usage, "input_tokens") - input_total)
    output_total = tokens["output_text"] + tokens["output_audio"]
    tokens["output_text"] += max(0, count(usage, "output_tokens") - output_total)
    return {kind: tokens[kind] for kind in TOKEN_KINDS}


def _cost_usd(tokens: Mapping[str, int], prices: Mapping[str, float]) -> float:
    return sum(tokens[kind] * prices[kind] for kind in TOKEN_KINDS) / 1e6


def _check_id(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _encode_pcm16(pcm16: Any) -> tuple[str, float]:
    """Base64 of PCM16 bytes and their duration in ms; clear errors for anything else."""
    if not isinstance(pcm16, (bytes, bytearray, memoryview)):
        raise TypeError(f"pcm16 must be bytes, got {type(pcm16).__name__} "
                        "(use rtvoice_widget.audio.to_pcm16 for arrays)")
    size = pcm16.nbytes if isinstance(pcm16, memoryview) else len(pcm16)
    if size == 0:
        raise ValueError("pcm16 is empty")
    if size % 2:
        raise ValueError(f"pcm16 must hold whole 16-bit samples, got {size} bytes")
    return encode_pcm16(pcm16), pcm16_ms(size)


def normalize_event(event: Any) -> dict[str, Any]:
    """``event`` with a beta type renamed to its GA name (a shallow copy when renamed).

    Raises :class:`ProtocolError` when ``event`` is not a dict with a string ``type``.
    """
    if not isinstance(event, Mapping):
        raise ProtocolError(f"a server event must be a JSON object, got {type(event).__name__}")
    kind = event.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"a server event needs a string 'type', got {kind!r}")
    ga = BETA_ALIASES.get(kind)
    if ga is None:
        return event if isinstance(event, dict) else dict(event)
    return {**event, "type": ga}


# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send ``event`` (a GA client event dict) to the server."""

    event: dict[str, Any]


@dataclass(frozen=True)
class PlayAudio:
    """Queue ``pcm16`` (PCM16 24 kHz mono) for playback after what is queued already."""

    item_id: str
    response_id: str | None
    content_index: int
    pcm16: bytes


@dataclass(frozen=True)
class FlushPlayback:
    """Drop whatever of ``item_id`` is queued or playing, now."""

    item_id: str


@dataclass(frozen=True)
class RunTool:
    """Run tool ``name`` with JSON ``arguments``; answer with ``tool_output(call_id, ...)``."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class CostCapReached:
    """Spending reached ``max_cost_usd``: the protocol creates no more responses (log it)."""

    cost_usd: float
    max_cost_usd: float


@dataclass(frozen=True)
class TurnDone:
    """A response finished (completed, cancelled, failed or incomplete)."""

    turn: Turn


Action = Send | PlayAudio | FlushPlayback | RunTool | TurnDone | CostCapReached


# --- state --------------------------------------------------------------------------------------


@dataclass
class Item:
    """One conversation item as the client knows it.

    ``transcript_partial`` grows with deltas; ``transcript`` is the final text (``None`` until
    known). For assistant audio, ``audio_received_ms`` is what the server sent and ``played_ms``
    the last position the player reported (or that barge-in froze); ``truncated_at_ms`` is where
    the item was cut, ``flushed`` whether its playback was dropped.
    """

    id: str
    type: str = "message"
    role: str | None = None
    status: str | None = None
    response_id: str | None = None
    content_index: int = 0
    added_ms: float | None = None
    audio_received_ms: float = 0.0
    played_ms: float = 0.0
    truncated_at_ms: float | None = None
    flushed: bool = False
    transcript_partial: str = ""
    transcript: str | None = None
    error: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None

    @property
    def text(self) -> str:
        """The best text known: the final transcript, else the partial one."""
        return self.transcript if self.transcript is not None else self.transcript_partial


@dataclass
class FunctionCall:
    """A function call of the model: arguments stream in, then the tool runs, then an output."""

    call_id: str
    name: str
    item_id: str | None
    response_id: str | None
    arguments: str = ""
    arguments_done: bool = False
    output: str | None = None


@dataclass
class Turn:
    """One response and the user input it answers, with timing marks on the caller's clock (ms).

    A turn is made at ``response.created``; user marks collected before it (speech started and
    stopped, commit, the user item) are attached to it. Latencies count from ``user_done_ms``:
    speech stopped when the server detected it, else the commit, else the user item. Late facts
    (a user transcript that arrives after ``response.done``, a barge-in while the tail of the audio
    still plays) update the same object after :class:`TurnDone`.
    """

    index: int
    response_id: str | None = None
    user_item_id: str | None = None
    assistant_item_ids: list[str] = field(default_factory=list)
    speech_started_ms: float | None = None
    speech_stopped_ms: float | None = None
    committed_ms: float | None = None
    user_item_ms: float | None = None
    response_created_ms: float | None = None
    first_audio_ms: float | None = None
    first_transcript_ms: float | None = None
    response_done_ms: float | None = None
    status: str | None = None
    interrupted: bool = False
    truncated_at_ms: float | None = None
    user_text: str = ""
    assistant_text: str = ""
    audio_ms: float = 0.0
    tool_calls: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    # Per kind of TOKEN_KINDS plus input_tokens / output_tokens / total_tokens, from usage.
    tokens: dict[str, int] | None = None
    cost_usd: float | None = None  # when the protocol has prices

    @property
    def user_done_ms(self) -> float | None:
        for mark in (self.speech_stopped_ms, self.committed_ms, self.user_item_ms):
            if mark is not None:
                return mark
        return None

    def _since_user(self, mark: float | None) -> float | None:
        start = self.user_done_ms
        return None if mark is None or start is None else mark - start

    # Latency names match the public turns table (rtvoice_widget.turns.LATENCY_COLUMNS).

    @property
    def speech_to_response_ms(self) -> float | None:
        """End of user input → ``response.created``."""
        return self._since_user(self.response_created_ms)

    @property
    def speech_to_first_audio_ms(self) -> float | None:
        """End of user input → first audio delta (the latency a user hears)."""
        return self._since_user(self.first_audio_ms)

    @property
    def speech_to_first_text_ms(self) -> float | None:
        """End of user input → first assistant transcript or text delta."""
        return self._since_user(self.first_transcript_ms)

    @property
    def response_duration_ms(self) -> float | None:
        """``response.created`` → ``response.done``."""
        if self.response_created_ms is None or self.response_done_ms is None:
            return None
        return self.response_done_ms - self.response_created_ms

    # The names these latencies had first (still used by callers); same values.
    response_latency_ms = speech_to_response_ms
    first_audio_latency_ms = speech_to_first_audio_ms
    first_transcript_latency_ms = speech_to_first_text_ms
    duration_ms = response_duration_ms

    def to_dict(self) -> dict[str, Any]:
        """Fields and latencies as one flat dict (a DataFrame row)."""
        out = asdict(self)
        for name in ("user_done_ms", "speech_to_response_ms", "speech_to_first_audio_ms",
                     "speech_to_first_text_ms", "response_duration_ms", "response_latency_ms",
                     "first_audio_latency_ms", "first_transcript_latency_ms", "duration_ms"):
            out[name] = getattr(self, name)
        return out


@dataclass
class _Playback:
    """Where the player is in one item: the last report, and the virtual player's segments."""

    reported_ms: float | None = None
    reported_at_ms: float = 0.0
    # Spans [start, duration] in session ms during which the virtual player plays this item.
    segments: list[list[float]] = field(default_factory=list)


class ClientProtocol:
    """Client-side Realtime state machine; see the module docstring.

    ``virtual_player``: estimate playback of items the player has not reported on (see the module
    docstring). ``barge_in``: on ``speech_started`` flush, truncate and (if needed) cancel; turn it
    off for half-duplex set-ups where the assistant's own voice would trigger the VAD.
    ``max_errors`` bounds the ``errors`` list.

    ``live_player``: a real player (the widget's browser) answers every :class:`FlushPlayback`
    with its final position. Barge-in then flushes at once but holds each truncation until the
    caller passes that position to :meth:`playback_flushed` (exact: the player kept playing
    until the flush reached it), or gives up waiting with :meth:`truncate_now` (the estimate).
    ``response.cancel`` is never held. Without it (headless) the truncation goes out with the
    flush, at the estimate.

    Cost meter: every ``response.done`` usage adds up in ``tokens`` (per kind of
    :data:`TOKEN_KINDS`, plus ``input_tokens`` / ``output_tokens`` / ``total_tokens``) and in the
    turn's ``tokens``. With ``prices`` (USD per 1M tokens by kind, see :func:`check_prices`)
    ``cost_usd`` and ``Turn.cost_usd`` follow. ``max_cost_usd`` (needs ``prices``) caps the
    spend: once ``cost_usd`` reaches it, ``cost_capped`` turns True, :class:`CostCapReached` is
    emitted once, automatic responses are switched off (``session.update`` with
    ``create_response=False``), a response the server creates anyway is cancelled, and
    ``create_response`` raises :class:`CostLimitError`. The cap acts after the response that
    crossed it: usage is only known at ``response.done``.
    """

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        virtual_player: bool = True,
        barge_in: bool = True,
        live_player: bool = False,
        max_errors: int = 1000,
        prices: Mapping[str, float] | None = None,
        max_cost_usd: float | None = None,
    ) -> None:
        self.prices = None if prices is None else check_prices(prices)
        if max_cost_usd is not None:
            if isinstance(max_cost_usd, bool) or not isinstance(max_cost_usd, (int, float)) or not (
                    math.isfinite(max_cost_usd) and max_cost_usd > 0):
                raise ValueError(f"max_cost_usd must be a positive number of USD, got {max_cost_usd!r}")
            if self.prices is None:
                raise ValueError("max_cost_usd needs prices= (USD per 1M tokens by kind) to compute the cost")
        self.max_cost_usd = None if max_cost_usd is None else float(max_cost_usd)
        self.tokens: dict[str, int] = dict.fromkeys(
            TOKEN_KINDS + ("input_tokens", "output_tokens", "total_tokens"), 0)
        self.cost_usd: float | None = None if self.prices is None else 0.0
        self.cost_capped = False
        self.config = config if config is not None else SessionConfig()
        self.virtual_player = virtual_player
        self.barge_in = barge_in
        self.live_player = live_player
        self.items: dict[str, Item] = {}
        self.active_response_id: str | None = None
        self.calls: dict[str, FunctionCall] = {}
        self.turns: list[Turn] = []
        self.pending_turn: Turn | None = None
        self.errors: list[dict[str, Any]] = []
        self.server_session: dict[str, Any] | None = None
        self.rate_limits: list[dict[str, Any]] | None = None
        self.audio_sent_ms = 0.0
        self.ignored_types: dict[str, int] = {}
        self._max_errors = max_errors
        self._ids = itertools.count(1)
        self._sent: dict[str, dict[str, Any]] = {}  # event_id -> event we built (not audio)
        self._playback: dict[str, _Playback] = {}
        # Assistant items in the order their audio went to the player (an ordered set), and those
        # a report on a later item showed to be over.
        self._audio_order: dict[str, None] = {}
        self._finished: set[str] = set()
        # live_player: flushed items whose truncation waits for the player's final position
        # (item id -> the estimate to fall back on).
        self._truncations_due: dict[str, float] = {}
        self._virtual_end_ms = 0.0  # when the virtual player's queue runs dry
        self._turn_by_response: dict[str, Turn] = {}
        self._turn_by_user_item: dict[str, Turn] = {}
        self._interrupted_responses: set[str] = set()
        self._responses_done: dict[str, str] = {}  # response id -> final status
        self._last_audio_response: str | None = None
        self._awaiting_follow_up: set[str] = set()  # call ids answered through tool_output

    # --- builders -------------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event_id = f"rtvw_{next(self._ids)}"
        event = {"type": kind, "event_id": event_id, **fields}
        # Remember what we sent (type and target only: no audio) so that an ``error`` naming
        # this event_id can be tied back to it.
        self._sent[event_id] = {"type": kind, "item_id": fields.get("item_id")}
        if len(self._sent) > 256:
            del self._sent[next(iter(self._sent))]
        return event

    def session_update(self, config: SessionConfig | None = None) -> dict[str, Any]:
        """``session.update`` with ``config`` (which becomes the protocol's config) or the
        current one."""
        if config is not None:
            if not isinstance(config, SessionConfig):
                raise TypeError(f"config must be a SessionConfig, got {type(config).__name__}")
            self.config = config
        config = self.config
        if self.cost_capped and config.turn_detection.create_response:
            # Over the cost cap the server must not answer turns by itself either.
            config = config.replace(turn_detection=config.turn_detection.replace(create_response=False))
        return self._event("session.update", session=config.to_session())

    def append_audio(self, pcm16: bytes) -> dict[str, Any]:
        """``input_audio_buffer.append`` with PCM16 24 kHz mono bytes (no event_id: hot path)."""
        audio, length_ms = _encode_pcm16(pcm16)
        self.audio_sent_ms += length_ms
        return {"type": "input_audio_buffer.append", "audio": audio}

    def commit(self) -> dict[str, Any]:
        """``input_audio_buffer.commit``: end the user's turn (manual turn detection)."""
        return self._event("input_audio_buffer.commit")

    def clear(self) -> dict[str, Any]:
        """``input_audio_buffer.clear``: drop uncommitted input audio."""
        return self._event("input_audio_buffer.clear")

    def clear_output_audio(self) -> dict[str, Any]:
        """``output_audio_buffer.clear`` (WebRTC/SIP transports only)."""
        return self._event("output_audio_buffer.clear")

    def user_text(self, text: str) -> dict[str, Any]:
        """``conversation.item.create`` with a user text message."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty string, got {text!r}")
        item = {"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": text}]}
        return self._event("conversation.item.create", item=item)

    def user_audio(self, pcm16: bytes) -> dict[str, Any]:
        """``conversation.item.create`` with a whole user audio message (PCM16 24 kHz mono)."""
        audio, _ = _encode_pcm16(pcm16)
        item = {"type": "message", "role": "user",
                "content": [{"type": "input_audio", "audio": audio}]}
        return self._event("conversation.item.create", item=item)

    def create_response(self, **overrides: Any) -> dict[str, Any]:
        """``response.create``; ``overrides`` are GA ``response`` fields (``instructions``,
        ``output_modalities``, ``tools``, ``tool_choice``, ``max_output_tokens``,
        ``conversation``, ``metadata``, ``input``, ``audio``, ``prompt``) plus ``voice``."""
        if self.cost_capped:
            raise CostLimitError(f"cost cap reached: ${self.cost_usd:.4f} of max_cost_usd="
                                 f"${self.max_cost_usd:g}; no more responses are created")
        unknown = sorted(set(overrides) - _RESPONSE_KEYS)
        if unknown:
            raise ValueError(f"create_response: unknown field(s) {unknown}; "
                             f"expected some of {sorted(_RESPONSE_KEYS)}")
        response = dict(overrides)
        if "voice" in response:
            voice = response.pop("voice")
            audio = dict(response.get("audio") or {})
            audio["output"] = {**(audio.get("output") or {}), "voice": voice}
            response["audio"] = audio
        if "output_modalities" in response:
            modalities = response["output_modalities"]
            response["output_modalities"] = (
                [modalities] if isinstance(modalities, str) else list(modalities)
            )
        if response.get("tools") is not None:
            from .tools import tool_schema  # callables allowed, as in SessionConfig

            response["tools"] = [t if isinstance(t, Mapping) else tool_schema(t)
                                 for t in response["tools"]]
        return self._event("response.create", response=response)

    def cancel_response(self) -> dict[str, Any]:
        """``response.cancel`` for the active response."""
        return self._event("response.cancel")

    def truncate(self, item_id: str, content_index: int, audio_end_ms: float) -> dict[str, Any]:
        """``conversation.item.truncate``; ``audio_end_ms`` is rounded down to whole ms."""
        _check_id("item_id", item_id)
        for name, value in (("content_index", content_index), ("audio_end_ms", audio_end_ms)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        return self._event("conversation.item.truncate", item_id=item_id,
                           content_index=int(content_index), audio_end_ms=int(audio_end_ms))

    def function_call_output(self, call_id: str, output: str) -> dict[str, Any]:
        """``conversation.item.create`` with a ``function_call_output`` item."""
        _check_id("call_id", call_id)
        if not isinstance(output, str):
            raise TypeError(f"output must be a string, got {type(output).__name__}")
        call = self.calls.get(call_id)
        if call is not None:
            call.output = output
        return self._event("conversation.item.create",
                           item={"type": "function_call_output", "call_id": call_id,
                                 "output": output})

    def tool_output(self, call_id: str, output: str) -> list[dict[str, Any]]:
        """The ``function_call_output`` event, plus the ``response.create`` that lets the model
        speak the result, when it may be sent now.

        It may when no response is active, and every call of the calling response is answered.
        Otherwise :meth:`receive` emits it at a later ``response.done``; a response created in
        the meantime (the user spoke) already sees the output, so then none is sent. Calls of a
        cancelled or failed response get no follow-up. Use either this or
        ``function_call_output`` plus your own ``create_response``.
        """
        events = [self.function_call_output(call_id, output)]
        if call_id in self.calls:
            self._awaiting_follow_up.add(call_id)
            if self._follow_up_due() and not self.cost_capped:
                events.append(self.create_response())
        return events

    def conversation_summary(self, max_turns: int = 8, max_chars: int = 4000) -> list[dict[str, Any]]:
        """``conversation.item.create`` events that restore the recent conversation as text.

        For a server session that forgot the conversation (a renewal after a session cap or a
        reconnect): the user and assistant text of the last ``max_turns`` turns, oldest first,
        as ``input_text`` / ``output_text`` messages; turns without text are skipped. Bounded by
        ``max_chars`` of text in all: older turns are dropped first, and a single message longer
        than what is left keeps its end (the most recent words).
        """
        for name, value in (("max_turns", max_turns), ("max_chars", max_chars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        messages: list[tuple[str, str]] = []  # newest first
        budget = max_chars
        for turn in reversed(self.turns[-max_turns:] if max_turns else []):
            for role, text in (("assistant", turn.assistant_text), ("user", turn.user_text)):
                text = text.strip()
                if not text or budget <= 0:
                    continue
                text = text[-budget:]
                budget -= len(text)
                messages.append((role, text))
        events = []
        for role, text in reversed(messages):
            kind = "input_text" if role == "user" else "output_text"
            events.append(self._event("conversation.item.create", item={
                "type": "message", "role": role, "content": [{"type": kind, "text": text}]}))
        return events

    def delete_item(self, item_id: str) -> dict[str, Any]:
        """``conversation.item.delete``."""
        _check_id("item_id", item_id)
        return self._event("conversation.item.delete", item_id=item_id)

    # --- playback -------------------------------------------------------------------------------

    def playback_progress(self, item_id: str, played_ms: float, now_ms: float) -> None:
        """The player has played ``played_ms`` of ``item_id`` at ``now_ms``.

        Unknown items and reports after a flush (the player may lag behind) are ignored.
        """
        item = self.items.get(item_id)
        if item is None or item.flushed:
            return
        played = max(0.0, min(float(played_ms), item.audio_received_ms))
        track = self._playback.setdefault(item_id, _Playback())
        track.reported_ms = played
        track.reported_at_ms = now_ms
        item.played_ms = played
        if played > 0:
            self._finish_items_before(item_id, now_ms)

    def _finish_items_before(self, item_id: str, now_ms: float) -> None:
        """The player plays in arrival order: audio of ``item_id`` playing means every item
        queued before it has played to its end, reported or not."""
        if item_id not in self._audio_order:
            return
        order = self._audio_order
        # Settled items leave the order, so this walks only what was new since the last report.
        while (earlier_id := next(iter(order))) != item_id:
            del order[earlier_id]
            earlier = self.items.get(earlier_id)
            if earlier is None or earlier.flushed:
                continue
            self._finished.add(earlier_id)
            track = self._playback.setdefault(earlier_id, _Playback())
            track.reported_ms = earlier.played_ms = earlier.audio_received_ms
            track.reported_at_ms = now_ms

    def playback_flushed(self, item_id: str, played_ms: float, now_ms: float) -> list[Action]:
        """The player's final position in ``item_id`` after a :class:`FlushPlayback`.

        With ``live_player``, returns the truncation held for that item, at ``played_ms``
        (clamped to the audio received); ``[]`` when none is held (already sent, or no
        barge-in touched the item).
        """
        if item_id not in self._truncations_due:
            return []
        del self._truncations_due[item_id]
        item = self.items.get(item_id)
        if item is None:
            return []
        return [self._send_truncation(item, max(0.0, min(float(played_ms), item.audio_received_ms)))]

    def truncate_now(self, item_id: str | None = None) -> list[Action]:
        """The truncations still held for a player's report (of ``item_id``, or all), at the
        estimate made at the flush: for a player that did not answer in time."""
        due = list(self._truncations_due) if item_id is None else [item_id]
        actions: list[Action] = []
        for held in due:
            estimate = self._truncations_due.pop(held, None)
            item = self.items.get(held)
            if estimate is not None and item is not None:
                actions.append(self._send_truncation(item, estimate))
        return actions

    @property
    def truncations_due(self) -> list[str]:
        """Items whose truncation waits for the player's final position (``live_player``)."""
        return list(self._truncations_due)

    def _send_truncation(self, item: Item, played_ms: float) -> Send:
        # Whole ms, exactly what the truncate event carries and the server will confirm.
        played = float(int(played_ms))
        turn = self._turn_by_response.get(item.response_id or "")
        if turn is not None and turn.truncated_at_ms == item.truncated_at_ms:
            turn.truncated_at_ms = played  # the barge-in's estimate for this item, now exact
        item.played_ms = item.truncated_at_ms = played
        return Send(self.truncate(item.id, item.content_index, played))

    def played_ms(self, item_id: str, now_ms: float) -> float:
        """Best estimate of how much of ``item_id`` the user has heard by ``now_ms``."""
        item = self.items.get(item_id)
        if item is None:
            return 0.0
        if item.flushed:
            return item.played_ms
        track = self._playback.get(item_id)
        if track is None:
            return 0.0
        if track.reported_ms is not None:
            estimate = track.reported_ms + max(0.0, now_ms - track.reported_at_ms)
        elif self.virtual_player:
            estimate = sum(min(max(now_ms - start, 0.0), length)
                           for start, length in track.segments)
        else:
            estimate = 0.0
        return min(estimate, item.audio_received_ms)

    def is_playing(self, now_ms: float) -> bool:
        """Whether assistant audio is (probably) still playing or still coming."""
        return bool(self._audible_items(now_ms))

    def _virtual_enqueue(self, item_id: str, length_ms: float, now_ms: float) -> None:
        track = self._playback.setdefault(item_id, _Playback())
        start = max(now_ms, self._virtual_end_ms)
        if track.segments and track.segments[-1][0] + track.segments[-1][1] == start:
            track.segments[-1][1] += length_ms
        else:
            track.segments.append([start, length_ms])
        self._virtual_end_ms = start + length_ms

    def _audible_items(self, now_ms: float) -> list[Item]:
        """Assistant items with audio that is queued, playing or still streaming in."""
        audible = []
        for item in self.items.values():
            if item.flushed or item.audio_received_ms <= 0 or item.id in self._finished:
                continue
            track = self._playback.get(item.id)
            known = track is not None and (track.reported_ms is not None or self.virtual_player)
            if item.response_id is not None and item.response_id == self.active_response_id:
                audible.append(item)  # more audio may still come
            elif known:
                if self.played_ms(item.id, now_ms) < item.audio_received_ms:
                    audible.append(item)
            elif item.response_id == self._last_audio_response:
                # No report and no virtual player: the newest audio may still be queued; older
                # audio went into the player before it, so it is taken as played.
                audible.append(item)
        return audible

    # --- receiving ------------------------------------------------------------------------------

    def receive(self, event: Mapping[str, Any], now_ms: float) -> list[Action]:
        """Consume one server event received at ``now_ms``; return the actions to carry out.

        Raises :class:`ProtocolError` (state unchanged) for an event that is not an object with a
        ``type`` or carries audio that is not base64. Unknown types return ``[]`` and are counted
        in ``ignored_types`` (at most ``MAX_IGNORED_TYPES`` keys: later new ones count under
        ``IGNORED_OTHER``).
        """
        event = normalize_event(event)
        kind = event["type"]
        handler = self._HANDLERS.get(kind)
        if handler is None:
            ignored = self.ignored_types
            if kind not in ignored and len(ignored) >= MAX_IGNORED_TYPES - 1:
                kind = IGNORED_OTHER  # bounded, whatever a hostile server invents
            ignored[kind] = ignored.get(kind, 0) + 1
            return []
        # Nulls read as absent (``previous_item_id: null`` is normal); wrong types are refused.
        fields = event
        if None in event.values():
            fields = {k: v for k, v in event.items() if v is not None}
        for key, value in fields.items():
            expected = _FIELD_TYPES.get(key)
            if expected is not None and not isinstance(value, expected):
                raise ProtocolError(f"{kind}: field {key!r} must be "
                                    f"{getattr(expected, '__name__', expected)}, got {value!r:.80}")
        missing = [key for key in _REQUIRED.get(kind, ()) if key not in fields]
        if missing:
            raise ProtocolError(f"{kind}: missing field(s) {missing}")
        return handler(self, fields, now_ms)

    def _item(self, item_id: str, now_ms: float | None = None) -> Item:
        item = self.items.get(item_id)
        if item is None:
            item = self.items[item_id] = Item(id=item_id, added_ms=now_ms)
        return item

    def _place(self, item_id: str, previous_item_id: str | None) -> None:
        """Move ``item_id`` right after ``previous_item_id`` (server order)."""
        if previous_item_id is None or previous_item_id not in self.items:
            return
        newest = reversed(self.items)
        if next(newest) == item_id and next(newest, None) == previous_item_id:
            return  # the usual case: appended right after its predecessor
        ids = list(self.items)
        ids.remove(item_id)
        ids.insert(ids.index(previous_item_id) + 1, item_id)
        self.items = {i: self.items[i] for i in ids}

    def _update_item(self, data: Mapping[str, Any], now_ms: float,
                     response_id: str | None = None) -> Item | None:
        item_id = data.get("id") if isinstance(data, Mapping) else None
        if not isinstance(item_id, str):
            return None

        def text(source: Mapping[str, Any], key: str, default: str | None) -> str | None:
            value = source.get(key)
            return value if isinstance(value, str) else default

        item = self._item(item_id, now_ms)
        item.type = text(data, "type", item.type) or item.type
        item.role = text(data, "role", item.role)
        item.status = text(data, "status", item.status)
        if response_id is not None:
            item.response_id = response_id
        if item.type == "function_call":
            item.call_id = text(data, "call_id", item.call_id)
            item.name = text(data, "name", item.name)
            item.arguments = text(data, "arguments", None) or item.arguments
        content = data.get("content")
        for index, part in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "input_text":
                item.transcript = text(part, "text", item.transcript)
            elif kind in ("input_audio", "output_audio", "audio") and text(part, "transcript",
                                                                           None):
                item.transcript = part["transcript"]
                item.content_index = index
            elif kind in ("output_text", "text"):
                item.transcript = text(part, "text", item.transcript)
        return item

    # conversation items

    def _on_item_added(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        data = event.get("item") or {}
        item = self._update_item(data, now_ms)
        if item is None:
            return []
        self._place(item.id, event.get("previous_item_id"))
        if item.role == "user" and item.type == "message":
            turn = self._pending(item.id)
            turn.user_item_ms = turn.user_item_ms if turn.user_item_ms is not None else now_ms
            self._sync_user_text(item)
        return []

    def _on_item_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self._update_item(event.get("item") or {}, now_ms)
        if item is not None and item.role == "user":
            self._sync_user_text(item)
        return []

    def _on_item_deleted(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item_id = event.get("item_id")
        self.items.pop(item_id, None)
        self._playback.pop(item_id, None)
        self._audio_order.pop(item_id, None)
        self._finished.discard(item_id)
        self._truncations_due.pop(item_id, None)
        return []

    def _on_item_truncated(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        # The server's word on where the item ends wins over what the client asked for.
        item = self.items.get(event["item_id"])
        if item is not None:
            item.truncated_at_ms = float(event["audio_end_ms"])
            item.error = None
            turn = self._turn_of(item.response_id)
            if turn is not None:
                turn.interrupted = True
                turn.truncated_at_ms = item.truncated_at_ms
        return []

    # user input

    def _pending(self, user_item_id: str | None = None) -> Turn:
        """The turn collecting user input for ``user_item_id``, made if needed.

        A user item that already belongs to a turn (an event arriving late) keeps that turn. A
        new user item replaces an unanswered earlier one (whose text stays in ``items``).
        """
        if user_item_id is not None and user_item_id in self._turn_by_user_item:
            return self._turn_by_user_item[user_item_id]
        turn = self.pending_turn
        if turn is None or (user_item_id is not None and turn.user_item_id is not None):
            turn = self.pending_turn = Turn(index=-1)
        if user_item_id is not None:
            turn.user_item_id = user_item_id
            self._turn_by_user_item[user_item_id] = turn
        return turn

    def _sync_user_text(self, item: Item) -> None:
        turn = self._turn_by_user_item.get(item.id)
        if turn is not None:
            turn.user_text = item.text

    def _on_speech_started(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        actions = self._barge_in(now_ms) if self.barge_in else []
        self._pending(event.get("item_id")).speech_started_ms = now_ms
        return actions

    def _on_speech_stopped(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        self._pending(event.get("item_id")).speech_stopped_ms = now_ms
        return []

    def _on_committed(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        turn = self._pending(event.get("item_id"))
        turn.committed_ms = now_ms
        return []

    def _on_cleared(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        if self.pending_turn is not None and self.pending_turn.committed_ms is None:
            self.pending_turn = None
        return []

    def _on_transcription_delta(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self._item(event["item_id"], now_ms)
        item.transcript_partial += event.get("delta") or ""
        self._sync_user_text(item)
        return []

    def _on_transcription_completed(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self._item(event["item_id"], now_ms)
        item.transcript = event.get("transcript") or ""
        self._sync_user_text(item)
        return []

    def _on_transcription_failed(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self._item(event["item_id"], now_ms)
        error = event.get("error") or {}
        item.error = error.get("message") if isinstance(error, Mapping) else str(error)
        return []

    # barge-in

    def interrupt(self, now_ms: float) -> list[Action]:
        """Stop the assistant now (the user's Interrupt button): flush what is playing, truncate
        it at the played position, and cancel the active response. Parts that do not apply
        (nothing playing, no response active) are skipped; ``[]`` when nothing does."""
        return self._barge_in(now_ms, cancel=True)

    def _barge_in(self, now_ms: float, cancel: bool = False) -> list[Action]:
        """Flush and truncate what is audible; cancel the active response when ``cancel`` or
        the server will not (``interrupt_response=False``)."""
        actions: list[Action] = []
        for item in self._audible_items(now_ms):
            estimate = float(int(self.played_ms(item.id, now_ms)))
            item.flushed = True
            item.played_ms = estimate
            item.truncated_at_ms = estimate
            actions.append(FlushPlayback(item.id))
            if self.live_player:
                self._truncations_due[item.id] = estimate  # sent at playback_flushed / truncate_now
            else:
                actions.append(Send(self.truncate(item.id, item.content_index, estimate)))
            if item.response_id is not None:
                self._interrupted_responses.add(item.response_id)
                turn = self._turn_by_response.get(item.response_id)
                if turn is not None:
                    turn.interrupted = True
                    if turn.truncated_at_ms is None:
                        turn.truncated_at_ms = estimate
        if actions:
            self._virtual_end_ms = now_ms  # the queue was dropped
        active = self.active_response_id
        if active is not None:
            self._interrupted_responses.add(active)
            turn = self._turn_by_response.get(active)
            if turn is not None:
                turn.interrupted = True
            if cancel or not self.config.turn_detection.interrupt_response:
                # The server keeps generating unless told: cancel it ourselves.
                actions.append(Send(self.cancel_response()))
        return actions

    # responses

    def _on_response_created(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        response = event.get("response") or {}
        response_id = response.get("id") if isinstance(response.get("id"), str) else None
        turn = self.pending_turn or Turn(index=-1)
        self.pending_turn = None
        turn.index = len(self.turns)
        turn.response_id = response_id
        turn.response_created_ms = now_ms
        # This response sees every tool output sent so far: no follow-up needed for them.
        self._awaiting_follow_up.clear()
        self.turns.append(turn)
        if response_id is not None:
            self._turn_by_response[response_id] = turn
            self.active_response_id = response_id
        if self.cost_capped:
            # Made by the server before our session.update (create_response=False) took effect.
            return [Send(self.cancel_response())]
        return []

    def _turn_of(self, response_id: str | None) -> Turn | None:
        return self._turn_by_response.get(response_id) if response_id else None

    def _on_output_item_added(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        data = event.get("item") or {}
        response_id = event.get("response_id")
        item = self._update_item(data, now_ms, response_id)
        if item is None:
            return []
        item.role = item.role or ("assistant" if item.type == "message" else None)
        turn = self._turn_of(response_id)
        if turn is not None and item.id not in turn.assistant_item_ids:
            turn.assistant_item_ids.append(item.id)
        if item.type == "function_call" and item.call_id:
            self.calls.setdefault(item.call_id, FunctionCall(
                call_id=item.call_id, name=item.name or "", item_id=item.id,
                response_id=response_id))
            if turn is not None:
                turn.tool_calls.append(item.name or "")
        return []

    def _on_output_item_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        data = event.get("item") or {}
        item = self._update_item(data, now_ms, event.get("response_id"))
        if item is None or item.type != "function_call" or not item.call_id:
            return []
        # Servers that skip ``function_call_arguments.done`` still get their call run, once.
        call = self.calls.get(item.call_id)
        if call is None or call.arguments_done or item.status != "completed":
            return []
        return self._finish_arguments(call, item.arguments or call.arguments, item.name)

    def _on_content_part_added(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        part = event.get("part") or {}
        if part.get("type") in ("audio", "output_audio"):
            self._item(event["item_id"], now_ms).content_index = int(
                event.get("content_index", 0))
        return []

    def _on_audio_delta(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        try:
            pcm16 = decode_pcm16(event["delta"])
        except ProtocolError as exc:
            raise ProtocolError(f"{event['type']}: delta: {exc}") from exc
        item_id = event["item_id"]
        response_id = event.get("response_id")
        item = self._item(item_id, now_ms)
        item.role = item.role or "assistant"
        item.response_id = item.response_id or response_id
        content_index = int(event.get("content_index", item.content_index))
        item.content_index = content_index
        length = pcm16_ms(len(pcm16))
        item.audio_received_ms += length
        turn = self._turn_of(response_id)
        if turn is not None:
            turn.audio_ms += length
            if turn.first_audio_ms is None:
                turn.first_audio_ms = now_ms
        # After a barge-in the server may still send what it had in flight: do not play it.
        if item.flushed or response_id in self._interrupted_responses or not pcm16:
            return []
        self._last_audio_response = response_id
        if item_id not in self._finished:
            self._audio_order.setdefault(item_id)
        self._virtual_enqueue(item_id, length, now_ms)
        return [PlayAudio(item_id, response_id, content_index, pcm16)]

    def _on_transcript_delta(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        delta = event.get("delta") or ""
        item = self._item(event["item_id"], now_ms)
        item.role = item.role or "assistant"
        item.transcript_partial += delta
        turn = self._turn_of(event.get("response_id"))
        if turn is not None:
            if turn.first_transcript_ms is None:
                turn.first_transcript_ms = now_ms
            turn.assistant_text += delta
        return []

    def _on_transcript_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        item = self._item(event["item_id"], now_ms)
        final = event.get("transcript", event.get("text"))
        if isinstance(final, str):
            item.transcript = final
        self._sync_assistant_text(self._turn_of(event.get("response_id")))
        return []

    def _sync_assistant_text(self, turn: Turn | None) -> None:
        if turn is None:
            return
        texts = [self.items[i].text for i in turn.assistant_item_ids
                 if i in self.items and self.items[i].type == "message"]
        if any(texts):
            turn.assistant_text = " ".join(t for t in texts if t)

    def _on_arguments_delta(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        call = self._call_for(event)
        if call is not None and not call.arguments_done:
            call.arguments += event.get("delta") or ""
        return []

    def _on_arguments_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        call = self._call_for(event)
        if call is None or call.arguments_done:
            return []
        return self._finish_arguments(call, event.get("arguments"), event.get("name"))

    def _call_for(self, event: Mapping[str, Any]) -> FunctionCall | None:
        call_id = event.get("call_id")
        if not isinstance(call_id, str):
            return None
        call = self.calls.get(call_id)
        if call is None:
            # Arguments without an output_item.added first: still a call we must answer.
            item = self.items.get(event.get("item_id", ""))
            call = self.calls[call_id] = FunctionCall(
                call_id=call_id, name=event.get("name") or (item.name if item else "") or "",
                item_id=event.get("item_id"), response_id=event.get("response_id"))
        return call

    def _finish_arguments(self, call: FunctionCall, arguments: Any,
                          name: Any) -> list[Action]:
        if isinstance(arguments, str):
            call.arguments = arguments
        if isinstance(name, str) and name:
            call.name = name
        call.arguments_done = True
        item = self.items.get(call.item_id or "")
        if item is not None:
            item.arguments = call.arguments
        return [RunTool(call.call_id, call.name, call.arguments)]

    def _follow_up_due(self) -> bool:
        """Whether to send ``response.create`` for tool outputs now (and forget them if so)."""
        if not self._awaiting_follow_up or self.active_response_id is not None:
            return False
        responses = {self.calls[c].response_id for c in self._awaiting_follow_up}
        for response_id in responses:
            status = self._responses_done.get(response_id or "")
            if status is None:
                return False  # the calling response is still going
            if status == "completed" and any(
                    c.output is None for c in self.calls.values() if c.response_id == response_id):
                return False  # a sibling call is still running: answer them together
        due = any(self._responses_done.get(self.calls[c].response_id or "") == "completed"
                  for c in self._awaiting_follow_up)
        self._awaiting_follow_up.clear()
        return due

    def _on_response_done(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        response = event.get("response") or {}
        response_id = response.get("id") if isinstance(response.get("id"), str) else None
        status = response.get("status") if isinstance(response.get("status"), str) else "completed"
        if response_id is not None:
            self._responses_done[response_id] = status
        if self.active_response_id == response_id:
            self.active_response_id = None
        output = response.get("output")
        for data in output if isinstance(output, list) else ():
            self._update_item(data, now_ms, response_id)
        turn = self._turn_of(response_id)
        if turn is None:
            # A response.done without response.created (a server that skips it): still a turn.
            turn = self.pending_turn or Turn(index=-1)
            self.pending_turn = None
            turn.index, turn.response_id = len(self.turns), response_id
            self.turns.append(turn)
            if response_id is not None:
                self._turn_by_response[response_id] = turn
        turn.response_done_ms = now_ms
        turn.status = status
        usage = response.get("usage")
        turn.usage = dict(usage) if isinstance(usage, Mapping) else turn.usage
        if isinstance(usage, Mapping):
            self._count_usage(turn, usage)
        if status == "cancelled" or response_id in self._interrupted_responses:
            turn.interrupted = True
        self._sync_assistant_text(turn)
        actions: list[Action] = [TurnDone(turn)]
        if not self.cost_capped and self.max_cost_usd is not None and self.cost_usd >= self.max_cost_usd:
            self.cost_capped = True
            actions.append(CostCapReached(self.cost_usd, self.max_cost_usd))
            detection = self.config.turn_detection
            if detection.enabled and detection.create_response:
                actions.append(Send(self.session_update()))
        if self._follow_up_due() and not self.cost_capped:
            actions.append(Send(self.create_response()))
        return actions

    def _count_usage(self, turn: Turn, usage: Mapping[str, Any]) -> None:
        tokens = usage_tokens(usage)
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            value = usage.get(key)
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            tokens[key] = value if ok else 0
        # A second response.done for the same response replaces its usage: count the difference.
        previous = turn.tokens or {}
        for key, value in tokens.items():
            self.tokens[key] += value - previous.get(key, 0)
        turn.tokens = tokens
        if self.prices is not None:
            turn.cost_usd = _cost_usd(tokens, self.prices)
            self.cost_usd = _cost_usd(self.tokens, self.prices)

    # session and errors

    def _on_session(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        session = event.get("session")
        if isinstance(session, Mapping):
            self.server_session = dict(session)
        return []

    def _on_rate_limits(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        self.rate_limits = event.get("rate_limits")
        return []

    def _on_error(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        error = event.get("error")
        error = dict(error) if isinstance(error, Mapping) else {"message": str(error)}
        error["t_ms"] = now_ms
        cause = self._sent.get(error.get("event_id") or "")
        if cause is not None:
            error["cause"] = cause["type"]
            if cause["type"] == "conversation.item.truncate":
                # Recoverable: the item simply stays untruncated on the server.
                item = self.items.get(cause["item_id"])
                if item is not None:
                    item.error = error.get("message")
                    error["recovered"] = True
        self.errors.append(error)
        if len(self.errors) > self._max_errors:
            del self.errors[0]
        return []

    def _on_ignored(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        return []

    _HANDLERS = {
        "session.created": _on_session,
        "session.updated": _on_session,
        "conversation.item.added": _on_item_added,
        "conversation.item.done": _on_item_done,
        "conversation.item.deleted": _on_item_deleted,
        "conversation.item.truncated": _on_item_truncated,
        "conversation.item.retrieved": _on_item_done,
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.speech_stopped": _on_speech_stopped,
        "input_audio_buffer.committed": _on_committed,
        "input_audio_buffer.cleared": _on_cleared,
        "input_audio_buffer.timeout_triggered": _on_ignored,
        "conversation.item.input_audio_transcription.delta": _on_transcription_delta,
        "conversation.item.input_audio_transcription.completed": _on_transcription_completed,
        "conversation.item.input_audio_transcription.failed": _on_transcription_failed,
        "conversation.item.input_audio_transcription.segment": _on_ignored,
        "response.created": _on_response_created,
        "response.output_item.added": _on_output_item_added,
        "response.output_item.done": _on_output_item_done,
        "response.content_part.added": _on_content_part_added,
        "response.content_part.done": _on_ignored,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_audio.done": _on_ignored,
        "response.output_audio_transcript.delta": _on_transcript_delta,
        "response.output_audio_transcript.done": _on_transcript_done,
        "response.output_text.delta": _on_transcript_delta,
        "response.output_text.done": _on_transcript_done,
        "response.function_call_arguments.delta": _on_arguments_delta,
        "response.function_call_arguments.done": _on_arguments_done,
        "response.done": _on_response_done,
        "rate_limits.updated": _on_rate_limits,
        "output_audio_buffer.started": _on_ignored,
        "output_audio_buffer.stopped": _on_ignored,
        "output_audio_buffer.cleared": _on_ignored,
        "error": _on_error,
    }

    # --- summaries ------------------------------------------------------------------------------

    @property
    def calls_in_flight(self) -> list[FunctionCall]:
        """Function calls without an output yet, oldest first."""
        return [c for c in self.calls.values() if c.output is None]

    def metrics(self) -> dict[str, Any]:
        """A small summary for dashboards: counts, median latencies (ms), audio, tokens, cost."""

        def median(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return statistics.median(present) if present else None

        assistant = [i for i in self.items.values() if i.audio_received_ms > 0]
        return {
            "turns": len(self.turns),
            "interrupted_turns": sum(t.interrupted for t in self.turns),
            # Named like the turns table's columns (rtvoice_widget.turns.LATENCY_COLUMNS).
            "median_speech_to_response_ms": median([t.speech_to_response_ms for t in self.turns]),
            "median_speech_to_first_audio_ms": median(
                [t.speech_to_first_audio_ms for t in self.turns]),
            "median_speech_to_first_text_ms": median(
                [t.speech_to_first_text_ms for t in self.turns]),
            "median_response_duration_ms": median([t.response_duration_ms for t in self.turns]),
            "audio_sent_ms": self.audio_sent_ms,
            "audio_received_ms": sum(i.audio_received_ms for i in assistant),
            "errors": len(self.errors),
            "tool_calls": len(self.calls),
            # Session tokens: input_tokens / output_tokens / total_tokens and per kind as
            # tokens_<kind> (e.g. tokens_cached_audio); cost when prices were given.
            "input_tokens": self.tokens["input_tokens"],
            "output_tokens": self.tokens["output_tokens"],
            "total_tokens": self.tokens["total_tokens"],
            **{f"tokens_{kind}": self.tokens[kind] for kind in TOKEN_KINDS},
            "cost_usd": self.cost_usd,
            "max_cost_usd": self.max_cost_usd,
            "cost_capped": self.cost_capped,
        }
