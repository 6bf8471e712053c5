"""What a call cost, from its ``usage`` and a dated price table: the one place usage is priced.

    cost = price_usage(Usage.from_api(message["usage"]), message["model"])  # None: unknown
    cost.total, cost.input, cost.output, cost.cache_write, cost.cache_read
    worst_case_usd(model, input_tokens=12_000, max_output=4096, cache_write="5m")

Prices are data: ``claude_magics/data/prices.json``, dated (``PRICES_AS_OF``), read once, with
each model's input, output, 5-minute and 1-hour cache-write and cache-read prices, and tiers by
prompt length (Haiku 5.5 bills a whole request at its higher rates once the prompt, cache reads
and writes included, passes 100,000 tokens; each request on its own). ``overrides`` (the
``ClaudeMagics.price_overrides`` setting) maps a model to ``(input, output)`` dollars per million
tokens (cache prices then follow the usual ratios) or to a dict with any of the table's fields. A
model missing from both has an unknown cost: ``None``, never a guess. Message Batches halve
every token price (``BATCH_MULTIPLIER``).

Server tools have prices of their own in the table's ``server_tools`` section
(`SERVER_TOOL_PRICES`): web search costs a fee per search (``usage.server_tool_use``), which
the batch discount does not touch, on top of its results' tokens (already in ``input_tokens``);
web fetch costs only tokens. Code execution is billed per container-hour after a daily free
allowance; usage does not report container time, so no call is priced for it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .. import platform_table
from .usage import Usage

__all__ = [
    "BATCH_MULTIPLIER",
    "CACHE_READ_MULTIPLIER",
    "CACHE_WRITE_1H_MULTIPLIER",
    "CACHE_WRITE_5M_MULTIPLIER",
    "PRICES",
    "PRICES_AS_OF",
    "SERVER_TOOL_PRICES",
    "Cost",
    "ModelPrice",
    "PriceTier",
    "ServerToolPrices",
    "format_usd",
    "model_price",
    "price_table",
    "price_usage",
    "regional_premium",
    "worst_case_usd",
]

# The usual ratios to the input price, used only to complete an override that gives just
# (input, output); the table states every price itself.
CACHE_WRITE_5M_MULTIPLIER = 1.25
CACHE_WRITE_1H_MULTIPLIER = 2.0
CACHE_READ_MULTIPLIER = 0.1

_PRICE_FILE = Path(__file__).resolve().parent.parent / "data" / "prices.json"
_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


@dataclass(frozen=True)
class PriceTier:
    """Prices that apply to a whole request whose prompt is over ``above_prompt_tokens``."""

    above_prompt_tokens: int
    price: ModelPrice


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per million tokens, by kind of token. Cache prices left out follow the usual
    ratios to ``input`` (1.25x and 2x to write, 0.1x to read)."""

    input: float
    output: float
    cache_write_5m: float = -1.0
    cache_write_1h: float = -1.0
    cache_read: float = -1.0
    tiers: tuple[PriceTier, ...] = field(default=(), compare=True)

    def __post_init__(self) -> None:
        for name, ratio in (
            ("cache_write_5m", CACHE_WRITE_5M_MULTIPLIER),
            ("cache_write_1h", CACHE_WRITE_1H_MULTIPLIER),
            ("cache_read", CACHE_READ_MULTIPLIER),
        ):
            if getattr(self, name) < 0:
                object.__setattr__(self, name, self.input * ratio)

    def scaled(self, factor: float) -> ModelPrice:
        """Every price (tiers too) times ``factor``: a platform's regional premium."""
        return ModelPrice(
            **{name: getattr(self, name) * factor for name in _FIELDS},
            tiers=tuple(
                PriceTier(t.above_prompt_tokens, t.price.scaled(factor)) for t in self.tiers
            ),
        )

    def for_prompt(self, prompt_tokens: int) -> ModelPrice:
        """The prices that apply to a request with ``prompt_tokens`` of prompt (tiers)."""
        chosen = self
        for tier in self.tiers:
            if prompt_tokens > tier.above_prompt_tokens:
                chosen = tier.price
        return chosen

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ModelPrice:
        """From one entry of the price file (or an override dict)."""
        values = {k: float(data[k]) for k in _FIELDS if k in data}
        tiers = tuple(
            PriceTier(int(t["above_prompt_tokens"]), cls.from_data(t))
            for t in data.get("tiers") or ()
        )
        return cls(**values, tiers=tiers)


@dataclass(frozen=True)
class ServerToolPrices:
    """Dollars per request of the server tools billed per request (the same on every model)."""

    web_search: float = 0.0
    web_fetch: float = 0.0

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ServerToolPrices:
        """From the price file's ``server_tools`` section (prices per 1,000 requests)."""

        def per_request(name: str) -> float:
            entry = data.get(name) or {}
            return float(entry.get("usd_per_1000_requests", 0.0)) / 1000

        return cls(web_search=per_request("web_search"), web_fetch=per_request("web_fetch"))


@functools.cache
def _price_data() -> dict[str, Any]:
    return json.loads(_PRICE_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@functools.cache
def price_table() -> tuple[str, float, dict[str, ModelPrice]]:
    """(as-of date, batch multiplier, prices by model) from the bundled price file."""
    data = _price_data()
    models = {name: ModelPrice.from_data(entry) for name, entry in data["models"].items()}
    return str(data["as_of"]), float(data["batch_discount"]), models


PRICES_AS_OF, BATCH_MULTIPLIER, PRICES = price_table()
#: Per-request prices of server tools, from the same dated table.
SERVER_TOOL_PRICES = ServerToolPrices.from_data(_price_data().get("server_tools") or {})

_DATED = re.compile(r"-\d{8}$")


def _override(value: Any) -> ModelPrice:
    if isinstance(value, ModelPrice):
        return value
    if isinstance(value, Mapping):
        return ModelPrice.from_data(value)
    return ModelPrice(*value)


def model_price(model: str, overrides: Mapping[str, Any] | None = None) -> ModelPrice | None:
    """The price of ``model`` (a snapshot id with a ``-YYYYMMDD`` date maps to its alias), or
    None when it is not in the table. A Bedrock id is priced as its model, with the regional
    premium unless it goes through the global profile (``platforms.bedrock`` in the table)."""
    for name in (model, _DATED.sub("", model)):
        if overrides and name in overrides:
            return _override(overrides[name])
        if name in PRICES:
            return PRICES[name]
    bedrock = platform_table.load().bedrock_model(model)
    if bedrock is not None and bedrock.id == model:
        price = model_price(bedrock.table_id, overrides)
        if price is None or bedrock.is_global:
            return price
        return price.scaled(float(_platform_prices()["bedrock"]["regional_multiplier"]))
    return None


def _platform_prices() -> Mapping[str, Any]:
    return _price_data().get("platforms") or {"bedrock": {"regional_multiplier": 1.0}}


def regional_premium(platform: str, region: str) -> float | None:
    """How much more than the table a platform's regional endpoint costs (1.1: 10% more), or
    None when ``region`` is priced as the table (Vertex's global endpoint, or no premium)."""
    entry = _platform_prices().get(platform) or {}
    multiplier = float(entry.get("regional_multiplier", 1.0))
    if multiplier == 1.0 or region in entry.get("global_regions", ()):
        return None
    return multiplier


@dataclass(frozen=True)
class Cost:
    """The dollar cost of one call, by kind of token, plus the fees of server tools
    (``server_tools``: web searches, never discounted)."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    batch: bool = False
    server_tools: float = 0.0

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_write + self.cache_read + self.server_tools

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.input + other.input,
            self.output + other.output,
            self.cache_write + other.cache_write,
            self.cache_read + other.cache_read,
            self.batch and other.batch,
            self.server_tools + other.server_tools,
        )

    def __str__(self) -> str:
        return format_usd(self.total)


def price_usage(
    usage: Usage | Mapping[str, Any],
    model: str,
    *,
    batch: bool = False,
    overrides: Mapping[str, Any] | None = None,
    requests: int = 1,
) -> Cost | None:
    """Price ``usage`` (a :class:`Usage`, or the API's ``usage`` object) for ``model``; None if
    the model's price is unknown. Every cost the package shows or records comes from here.

    ``usage`` may be the sum of ``requests`` requests (a job's estimate): a prompt-length tier
    is then chosen by the average prompt, since each request is billed on its own. Web searches
    add their fee per search (`SERVER_TOOL_PRICES`), which the batch discount does not halve."""
    price = model_price(model, overrides)
    if price is None:
        return None
    tokens = usage if isinstance(usage, Usage) else Usage.from_api(usage)
    rates = price.for_prompt(-(-tokens.prompt // max(requests, 1)))
    factor = (BATCH_MULTIPLIER if batch else 1.0) / 1e6
    return Cost(
        input=tokens.input * rates.input * factor,
        output=tokens.output * rates.output * factor,
        cache_write=(
            tokens.cache_write_5m * rates.cache_write_5m
            + tokens.cache_write_1h * rates.cache_write_1h
        )
        * factor,
        cache_read=tokens.cache_read * rates.cache_read * factor,
        batch=batch,
        server_tools=tokens.web_search_requests * SERVER_TOOL_PRICES.web_search
        + tokens.web_fetch_requests * SERVER_TOOL_PRICES.web_fetch,
    )


def worst_case_usd(
    model: str,
    input_tokens: int,
    max_output: int,
    *,
    cache_write: Literal["5m", "1h"] | None = None,
    batch: bool = False,
    overrides: Mapping[str, Any] | None = None,
    requests: int = 1,
    uncached_tokens: int = 0,
) -> float | None:
    """The most a request (or ``requests`` requests, summed) can cost: every input token at the
    dearest rate it could be billed (a cache write of ``cache_write``'s lifetime when the
    request marks a breakpoint: no cache hit is counted on) and every reply ``max_output``
    tokens long. None when the model's price is unknown. The budget and every confirmation
    are checked against this one figure.

    ``uncached_tokens`` are input that follows every breakpoint (a job's rows after the shared
    instruction): never written to the cache, billed as plain input. ``requests`` says how many
    requests the figures sum, so a prompt-length tier is chosen per request."""
    if cache_write == "1h":
        usage = Usage(output=max_output, cache_write_1h=input_tokens)
    elif cache_write == "5m":
        usage = Usage(output=max_output, cache_write_5m=input_tokens)
    else:
        usage = Usage(input=input_tokens, output=max_output)
    usage += Usage(input=uncached_tokens)
    cost = price_usage(usage, model, batch=batch, overrides=overrides, requests=requests)
    return None if cost is None else cost.total


def format_usd(amount: float | None) -> str:
    """Dollars for people: ``$0.0123``, ``$1.23``; ``cost unknown`` for None."""
    if amount is None:
        return "cost unknown"
    if amount == 0:
        return "$0"
    if amount < 0.01:
        # Two significant figures however small (Haiku 5.5 calls cost fractions of a cent).
        digits = max(4, 1 - math.floor(math.log10(amount)))
        return f"${amount:.{digits}f}"
    if amount < 100:
        return f"${amount:.2f}"
    return f"${amount:,.0f}"
