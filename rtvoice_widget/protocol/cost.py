"""Tokens and cost: prices checked, usage broken down by kind, a meter with an optional cap.

Contract: :class:`CostMeter` adds up every ``response.done`` usage (a repeated one for the same
response replaces its earlier count) and, given prices, the cost in USD. It never sends
anything: :class:`~rtvoice_widget.protocol.ClientProtocol` asks :meth:`CostMeter.crossed_cap`
after each response and acts (no more responses, automatic ones switched off).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .turns import Turn

__all__ = ["TOKEN_KINDS", "CostLimitError", "CostMeter", "check_prices", "usage_tokens"]

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



class CostMeter:
    """Session tokens and cost; see :class:`~rtvoice_widget.protocol.ClientProtocol` for the cap.

    ``tokens`` holds every kind of :data:`TOKEN_KINDS` plus ``input_tokens`` /
    ``output_tokens`` / ``total_tokens``; ``cost_usd`` is ``None`` without prices.
    """

    def __init__(self, prices: Mapping[str, float] | None = None,
                 max_cost_usd: float | None = None) -> None:
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
        self.capped = False

    def count(self, turn: Turn, usage: Mapping[str, Any]) -> None:
        """Add ``turn``'s usage (a ``response.done`` usage object) to the session's."""
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

    def crossed_cap(self) -> bool:
        """True once, when the cost first reaches ``max_cost_usd`` (``capped`` stays True)."""
        if self.capped or self.max_cost_usd is None or self.cost_usd is None:
            return False
        self.capped = self.cost_usd >= self.max_cost_usd
        return self.capped

    def check_can_respond(self) -> None:
        """Raise :class:`CostLimitError` once the cap is reached."""
        if self.capped:
            raise CostLimitError(f"cost cap reached: ${self.cost_usd:.4f} of max_cost_usd="
                                 f"${self.max_cost_usd:g}; no more responses are created")
