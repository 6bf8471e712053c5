"""What a call cost, from its ``usage`` and a dated price table: the one place usage is priced.

    cost = price_usage(Usage.from_api(message["usage"]), "claude-sonnet-4-6")  # None: unknown
    cost.total, cost.input, cost.output, cost.cache_write, cost.cache_read
    worst_case_usd("claude-sonnet-4-6", input_tokens=12_000, max_output=4096, cache_write="5m")

Prices are data, dated, and overridable (``overrides`` maps a model to (input, output) dollars per
million tokens). A model missing from the table has an unknown cost: ``None``, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .usage import Usage

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
    "worst_case_usd",
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


def price_usage(
    usage: Usage | Mapping[str, Any],
    model: str,
    *,
    batch: bool = False,
    overrides: Mapping[str, ModelPrice | tuple[float, float]] | None = None,
) -> Cost | None:
    """Price ``usage`` (a :class:`Usage`, or the API's ``usage`` object) for ``model``; None if
    the model's price is unknown. Every cost the package shows or records comes from here."""
    price = model_price(model, overrides)
    if price is None:
        return None
    tokens = usage if isinstance(usage, Usage) else Usage.from_api(usage)
    per_in = price.input / 1e6
    per_out = price.output / 1e6
    factor = BATCH_MULTIPLIER if batch else 1.0
    written = (
        tokens.cache_write_5m * CACHE_WRITE_5M_MULTIPLIER
        + tokens.cache_write_1h * CACHE_WRITE_1H_MULTIPLIER
    )
    return Cost(
        input=tokens.input * per_in * factor,
        output=tokens.output * per_out * factor,
        cache_write=written * per_in * factor,
        cache_read=tokens.cache_read * per_in * CACHE_READ_MULTIPLIER * factor,
        batch=batch,
    )


def worst_case_usd(
    model: str,
    input_tokens: int,
    max_output: int,
    *,
    cache_write: Literal["5m", "1h"] | None = None,
    batch: bool = False,
    overrides: Mapping[str, ModelPrice | tuple[float, float]] | None = None,
) -> float | None:
    """The most a request (or a job's requests, summed) can cost: every input token at the
    dearest rate it could be billed (a cache write of ``cache_write``'s lifetime when the
    request marks a breakpoint: no cache hit is counted on) and every reply ``max_output``
    tokens long. None when the model's price is unknown. The budget and every confirmation
    are checked against this one figure."""
    if cache_write == "1h":
        usage = Usage(output=max_output, cache_write_1h=input_tokens)
    elif cache_write == "5m":
        usage = Usage(output=max_output, cache_write_5m=input_tokens)
    else:
        usage = Usage(input=input_tokens, output=max_output)
    cost = price_usage(usage, model, batch=batch, overrides=overrides)
    return None if cost is None else cost.total


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
