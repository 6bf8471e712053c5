"""What a call cost, from its ``usage`` and a dated price table: the one place usage is priced.

    cost = price_usage(message["usage"], "claude-sonnet-4-6")      # -> Cost, or None if unknown
    cost.total, cost.input, cost.output, cost.cache_write, cost.cache_read

Prices are data, dated, and overridable (``overrides`` maps a model to (input, output) dollars per
million tokens). A model missing from the table has an unknown cost: ``None``, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BATCH_MULTIPLIER",
    "CACHE_READ_MULTIPLIER",
    "CACHE_WRITE_1H_MULTIPLIER",
    "CACHE_WRITE_5M_MULTIPLIER",
    "PRICES",
    "PRICES_AS_OF",
    "Cost",
    "ModelPrice",
    "format_usd",
    "model_price",
    "price_usage",
]

PRICES_AS_OF = "2026-05"


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per million tokens."""

    input: float
    output: float


# Anthropic's list prices, USD per million tokens, as of PRICES_AS_OF.
PRICES: dict[str, ModelPrice] = {
    "claude-opus-4-7": ModelPrice(5.0, 25.0),
    "claude-opus-4-6": ModelPrice(5.0, 25.0),
    "claude-opus-4-5": ModelPrice(5.0, 25.0),
    "claude-sonnet-4-6": ModelPrice(3.0, 15.0),
    "claude-sonnet-4-5": ModelPrice(3.0, 15.0),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0),
}

# Multipliers on the input price (cache) and on everything (batch); they stack.
CACHE_WRITE_5M_MULTIPLIER = 1.25
CACHE_WRITE_1H_MULTIPLIER = 2.0
CACHE_READ_MULTIPLIER = 0.1
BATCH_MULTIPLIER = 0.5

_DATED = re.compile(r"-\d{8}$")


def model_price(
    model: str, overrides: Mapping[str, ModelPrice | tuple[float, float]] | None = None
) -> ModelPrice | None:
    """The price of ``model`` (a dated id such as ``claude-haiku-4-5-20251001`` maps to its
    alias), or None when it is not in the table."""
    for name in (model, _DATED.sub("", model)):
        if overrides and name in overrides:
            value = overrides[name]
            return value if isinstance(value, ModelPrice) else ModelPrice(*value)
        if name in PRICES:
            return PRICES[name]
    return None


@dataclass(frozen=True)
class Cost:
    """The dollar cost of one call, by kind of token."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    batch: bool = False

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_write + self.cache_read

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.input + other.input,
            self.output + other.output,
            self.cache_write + other.cache_write,
            self.cache_read + other.cache_read,
            self.batch and other.batch,
        )

    def __str__(self) -> str:
        return format_usd(self.total)


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return int(value) if isinstance(value, (int, float)) else 0


def price_usage(
    usage: Mapping[str, Any],
    model: str,
    *,
    batch: bool = False,
    overrides: Mapping[str, ModelPrice | tuple[float, float]] | None = None,
) -> Cost | None:
    """Price a ``usage`` object (as the API returns it) for ``model``; None if unknown.

    ``input_tokens`` is the uncached part; cache writes are split by lifetime using
    ``cache_creation`` when present (all 5-minute otherwise, the API's default TTL).
    """
    price = model_price(model, overrides)
    if price is None:
        return None
    per_in = price.input / 1e6
    per_out = price.output / 1e6
    created = _count(usage, "cache_creation_input_tokens")
    breakdown = usage.get("cache_creation") or {}
    one_hour = _count(breakdown, "ephemeral_1h_input_tokens")
    five_min = _count(breakdown, "ephemeral_5m_input_tokens")
    if one_hour + five_min != created:
        five_min, one_hour = created - one_hour, one_hour
    factor = BATCH_MULTIPLIER if batch else 1.0
    return Cost(
        input=_count(usage, "input_tokens") * per_in * factor,
        output=_count(usage, "output_tokens") * per_out * factor,
        cache_write=(five_min * CACHE_WRITE_5M_MULTIPLIER + one_hour * CACHE_WRITE_1H_MULTIPLIER)
        * per_in
        * factor,
        cache_read=_count(usage, "cache_read_input_tokens")
        * per_in
        * CACHE_READ_MULTIPLIER
        * factor,
        batch=batch,
    )


def format_usd(amount: float | None) -> str:
    """Dollars for people: ``$0.0123``, ``$1.23``; ``cost unknown`` for None."""
    if amount is None:
        return "cost unknown"
    if amount == 0:
        return "$0"
    if amount < 0.01:
        return f"${amount:.4f}"
    if amount < 100:
        return f"${amount:.2f}"
    return f"${amount:,.0f}"
