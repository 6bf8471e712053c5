"""What a DataFrame job will send and cost, before anything is sent.

    estimate_job(prompts).frame()        # realtime / batch, with and without caching
    count_prompt_tokens(prompts, client)  # exact input tokens per row (count_tokens endpoint)

``estimate_job`` is local and instant: input tokens by ``prompt.estimate_tokens`` (an estimate,
labelled as such), output at most ``max_tokens`` per request, priced by ``cost.pricing`` (the
token counts of each scenario become a ``Usage`` priced by ``price_usage``: there is no formula
here). Its ``worst_case`` is what the budget and the confirmation threshold are checked against:
``pricing.worst_case_usd``, every input token at the dearest rate it could be billed (a cache
write, when the prefix is marked) and every answer as long as ``max_tokens``.

``count_prompt_tokens`` asks ``/v1/messages/count_tokens`` for each distinct prompt, concurrently
within that endpoint's own rate limit (the adaptive fan-out of ``api.fanout``); for more distinct
prompts than ``exact_limit`` it counts a seeded sample exactly and scales the local estimate of
the others by what the sample showed, and says so.
"""

from __future__ import annotations

import html
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..cost.pricing import (
    PRICES_AS_OF,
    ModelPrice,
    format_usd,
    model_price,
    price_usage,
)
from ..cost.usage import Usage

if TYPE_CHECKING:
    import pandas as pd

    from ..api.client import Client
    from ..cost.pricing import Cost
    from .rows import Prompts

__all__ = ["JobEstimate", "Scenario", "TokenCount", "count_prompt_tokens", "estimate_job"]

# Tokens the API adds around a user turn (role markers) beyond the text itself.
_TURN_OVERHEAD = 8


@dataclass(frozen=True)
class Scenario:
    """One way to run the job and what it would cost."""

    name: str
    requests: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost_usd: float | None


@dataclass(frozen=True)
class JobEstimate:
    """The cost of a job four ways, from local token estimates."""

    model: str
    rows: int
    prompts: int
    prefix_tokens: int
    fresh_tokens: int
    max_tokens: int
    cacheable: bool
    #: Prices to use instead of the table's (``ClaudeMagics.price_overrides``).
    overrides: Mapping[str, Any] | None = None

    @property
    def price(self) -> ModelPrice | None:
        """The model's price (None: unknown, and so is every cost here)."""
        return model_price(self.model, self.overrides)

    def usage(self, *, batch: bool, cached: bool) -> Usage:
        """The tokens of the whole job in one scenario, every answer ``max_tokens`` long.
        Cached: the first request writes the shared prefix (for an hour in batches, whose
        requests can be far apart) and every other request reads it."""
        output = self.prompts * self.max_tokens
        if not (cached and self.prompts):
            return Usage(input=self.prefix_tokens * self.prompts + self.fresh_tokens, output=output)
        written = self.prefix_tokens
        return Usage(
            input=self.fresh_tokens,
            output=output,
            cache_write_5m=0 if batch else written,
            cache_write_1h=written if batch else 0,
            cache_read=self.prefix_tokens * (self.prompts - 1),
        )

    def _cost(self, *, batch: bool, cached: bool) -> float | None:
        cost: Cost | None = price_usage(
            self.usage(batch=batch, cached=cached),
            self.model,
            batch=batch,
            overrides=self.overrides,
            requests=self.prompts,
        )
        return None if cost is None else cost.total

    @property
    def scenarios(self) -> list[Scenario]:
        rows = []
        for name, batch, cached in (
            ("realtime", False, False),
            ("realtime + cache", False, True),
            ("batch", True, False),
            ("batch + cache", True, True),
        ):
            if cached and not self.cacheable:
                continue
            usage = self.usage(batch=batch, cached=cached)
            rows.append(
                Scenario(
                    name,
                    self.prompts,
                    usage.prompt,  # every prompt token, whether fresh, written or read
                    usage.cache_read,
                    usage.output,
                    self._cost(batch=batch, cached=cached),
                )
            )
        return rows

    def cost(self, mode: str) -> float | None:
        """The expected cost in ``mode`` ("batch" or "realtime"), caching included where the
        prefix qualifies; output counted at ``max_tokens``."""
        return self._cost(batch=mode == "batch", cached=self.cacheable)

    def worst_case(self, mode: str) -> float | None:
        """The most the job can cost in ``mode``: no cache hit at all, every marked prefix
        written (the one-hour cache in batches, five minutes in realtime), every answer
        ``max_tokens`` long. The rows' own text comes after the breakpoint: never written."""
        batch = mode == "batch"
        prefixes = self.prefix_tokens * self.prompts
        usage = Usage(
            input=self.fresh_tokens + (0 if self.cacheable else prefixes),
            output=self.prompts * self.max_tokens,
            cache_write_5m=prefixes if self.cacheable and not batch else 0,
            cache_write_1h=prefixes if self.cacheable and batch else 0,
        )
        # Priced as the job's requests, each on its own (a prompt-length tier is per request).
        cost = price_usage(
            usage, self.model, batch=batch, overrides=self.overrides, requests=self.prompts
        )
        return None if cost is None else cost.total

    def note(self) -> str:
        cache = (
            f"the shared {self.prefix_tokens:,}-token instruction is cached"
            if self.cacheable
            else "the shared instruction is too short to cache"
        )
        return (
            f"{self.rows:,} rows, {self.prompts:,} distinct prompts, {self.model}; input tokens "
            f"are local estimates, output is at most max_tokens={self.max_tokens:,} a request; "
            f"{cache}; prices as of {PRICES_AS_OF}."
        )

    def frame(self) -> pd.DataFrame:
        """The scenarios as a small table (``df.claude.estimate``)."""
        import pandas as pd

        table = pd.DataFrame(
            [
                {
                    "requests": s.requests,
                    "input tokens (est.)": s.input_tokens,
                    "of which from cache": s.cached_tokens,
                    "output tokens (max)": s.output_tokens,
                    "cost, at most ($)": None if s.cost_usd is None else round(s.cost_usd, 4),
                }
                for s in self.scenarios
            ],
            index=pd.Index([s.name for s in self.scenarios], name="mode"),
        )
        table.attrs["note"] = self.note()
        return table


def estimate_job(prompts: Prompts, overrides: Mapping[str, Any] | None = None) -> JobEstimate:
    """What the job costs, from local estimates (nothing is sent)."""
    from ..prompt import estimate_tokens

    fresh = sum(estimate_tokens(text) + _TURN_OVERHEAD for text in prompts.texts)
    return JobEstimate(
        model=prompts.model,
        rows=prompts.n_rows,
        prompts=prompts.n_prompts,
        prefix_tokens=prompts.instruction_tokens,
        fresh_tokens=fresh,
        max_tokens=prompts.max_tokens,
        cacheable=prompts.cacheable,
        overrides=overrides,
    )


@dataclass
class TokenCount:
    """Input tokens per row for a job's prompts (``df.claude.count_tokens``)."""

    per_row: pd.Series
    prompts: int
    counted: int
    distinct_tokens: int
    model: str
    errors: int = 0
    #: Prices to use instead of the table's (``ClaudeMagics.price_overrides``).
    overrides: Mapping[str, Any] | None = None

    @property
    def price(self) -> ModelPrice | None:
        """The model's price (None: unknown)."""
        return model_price(self.model, self.overrides)

    def input_cost(self, *, batch: bool) -> float | None:
        """What the distinct prompts' input costs, with no cache (None: price unknown)."""
        cost = price_usage(
            Usage(input=self.distinct_tokens),
            self.model,
            batch=batch,
            overrides=self.overrides,
            requests=self.prompts,
        )
        return None if cost is None else cost.total

    @property
    def total(self) -> int:
        return int(self.per_row.sum())

    @property
    def exact(self) -> bool:
        """True when every distinct prompt was counted by the API."""
        return self.counted == self.prompts and not self.errors

    def _rows(self) -> list[tuple[str, str]]:
        kind = (
            "exact (count_tokens)"
            if self.exact
            else f"estimate: {self.counted:,} of {self.prompts:,} distinct prompts counted, "
            "the rest scaled from them"
        )
        n = len(self.per_row)
        rows = [
            ("rows", f"{n:,}"),
            ("distinct prompts (each counted once)", f"{self.prompts:,}"),
            ("input tokens, all rows", f"{self.total:,}"),
            (
                "per row: mean / max",
                f"{self.total / max(n, 1):,.0f} / {int(self.per_row.max()):,}" if n else "-",
            ),
            ("figures", kind),
        ]
        realtime, batch = self.input_cost(batch=False), self.input_cost(batch=True)
        if realtime is not None and batch is not None:
            rows.append(
                (
                    "input cost of the distinct prompts (realtime / batch, no cache)",
                    f"{format_usd(realtime)} / {format_usd(batch)}",
                )
            )
        if self.errors:
            rows.append(("prompts that could not be counted", f"{self.errors:,}"))
        return rows

    def __repr__(self) -> str:
        width = max(len(a) for a, _ in self._rows())
        lines = [f"Input tokens for {self.model} (nothing was generated)"]
        lines += [f"  {a:<{width}}  {b}" for a, b in self._rows()]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        body = "\n".join(f"| {html.escape(a)} | {html.escape(b)} |" for a, b in self._rows())
        return (
            f"**Input tokens for {html.escape(self.model)}** (nothing was generated)\n\n"
            f"| | |\n|---|---|\n{body}"
        )


def count_prompt_tokens(
    prompts: Prompts,
    client: Client,
    index: Any,
    *,
    exact_limit: int = 2000,
    sample: int = 200,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> TokenCount:
    """Count each distinct prompt with the API (or a sample of them, beyond ``exact_limit``)."""
    import pandas as pd

    from ..api.client import COUNT_TOKENS_FIELDS
    from ..api.fanout import run_concurrently
    from ..errors import APIError

    n = prompts.n_prompts
    if n <= exact_limit:
        chosen = list(range(n))
    else:
        chosen = sorted(random.Random(seed).sample(range(n), min(sample, n)))
    # The fields count_tokens takes are the client's to decide (``COUNT_TOKENS_FIELDS``, as
    # ``client.messages.count_tokens`` sends); templated once, like the requests themselves.
    full = prompts.body(batch=False)
    body = {name: value for name, value in full.items() if name in COUNT_TOKENS_FIELDS}
    marker = orjson.dumps(body["messages"][0]["content"][-1]["text"])
    count_before, count_after = orjson.dumps(body).split(marker)

    def send(number: int) -> Any:
        payload = count_before + orjson.dumps(prompts.texts[number]) + count_after
        return client.request(
            "POST", "/v1/messages/count_tokens", body=orjson.Fragment(payload), max_retries=0
        )

    counted: dict[int, int] = {}
    failures: list[APIError] = []

    def keep(outcome: Any) -> None:
        if outcome.response is not None:
            counted[outcome.item] = int(outcome.response["input_tokens"])
        elif outcome.error is not None:
            failures.append(outcome.error)

    run_concurrently(chosen, send, on_outcome=keep)
    if not counted and failures:
        raise failures[0]  # every count failed: the first error says why
    if len(counted) == n:
        per_prompt = [counted[i] for i in range(n)]
    else:
        # The local estimate of each prompt, scaled by how far off it was on the counted ones.
        ratio = sum(counted.values()) / max(1, sum(prompts.input_estimate(i) for i in counted))
        per_prompt = [
            counted[i] if i in counted else round(prompts.input_estimate(i) * ratio)
            for i in range(n)
        ]
    series = pd.Series(
        [per_prompt[p] for p in prompts.row_prompt], index=index, name="input_tokens", dtype="int64"
    )
    return TokenCount(
        per_row=series,
        prompts=n,
        counted=len(counted),
        distinct_tokens=sum(per_prompt),
        model=prompts.model,
        errors=len(failures),
        overrides=overrides,
    )
