"""What a DataFrame job will send and cost, before anything is sent.

    estimate_job(prompts, compare=(settings.model,)).frame()   # four ways, two models
    count_prompt_tokens(prompts, client, df.index)   # input tokens per row (count_tokens)

``estimate_job`` is local and instant: input tokens by ``prompt.estimate_tokens`` (an estimate,
labelled as such), output at most ``max_tokens`` per request, priced by ``cost.pricing`` (the
token counts of each scenario become a ``Usage`` priced by ``price_usage``: there is no formula
here). Beside the job's model it prices the same tokens on the models in ``compare`` (by
default, from :func:`comparison_models`, the cells' model and the newest current Opus), so the
table shows what a bigger model would cost. Its ``worst_case`` is what the budget and the
confirmation threshold are checked against: every input token at the dearest rate it could be
billed (a cache write, when the prefix is marked) and every answer as long as ``max_tokens``.

``count_prompt_tokens`` asks ``/v1/messages/count_tokens`` for each distinct prompt, concurrently
within that endpoint's own rate limit (the adaptive fan-out of ``api.fanout``); for more distinct
prompts than ``exact_limit`` it counts a seeded sample exactly and scales the local estimate of
the others by what the sample showed, and says so. A server without that endpoint (a gateway)
gets local estimates instead, and a server that marks its counts as estimates gets them shown as
estimates: the result always says which figures it holds.
"""

from __future__ import annotations

import html
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ..api.models import cache_min_tokens
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

__all__ = [
    "JobEstimate",
    "Scenario",
    "TokenCount",
    "comparison_models",
    "count_prompt_tokens",
    "estimate_job",
    "prompt_tokens",
]

# Tokens the API adds around a user turn (role markers) beyond the text itself.
_TURN_OVERHEAD = 8
# The model family the estimate compares with besides the cells' model: the largest one.
_BIGGEST_FAMILY = "-opus-"


def comparison_models(job_model: str, cell_model: str) -> tuple[str, ...]:
    """The models an estimate prices beside the job's: the cells' model (``Settings.model``, a
    current Sonnet by default) and the newest current Opus of the bundled line-up, each once
    and never the job's own."""
    from ..model_table import load

    current = [entry for entry in load().active() if _BIGGEST_FAMILY in entry.id]
    biggest = max(current, key=lambda entry: entry.created_at).id if current else None
    chosen = [name for name in (cell_model, biggest) if name and name != job_model]
    return tuple(dict.fromkeys(chosen))


@dataclass(frozen=True)
class Scenario:
    """One way to run the job and what it would cost (``compared``: on each model the
    estimate compares with, in its order)."""

    name: str
    requests: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost_usd: float | None
    compared: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class JobEstimate:
    """The cost of a job four ways, from local token estimates, on the job's model and on the
    models in ``compare``."""

    model: str
    rows: int
    prompts: int
    prefix_tokens: int
    fresh_tokens: int
    max_tokens: int
    cacheable: bool
    #: Prices to use instead of the table's (``ClaudeMagics.price_overrides``).
    overrides: Mapping[str, Any] | None = None
    #: Other models to price the same tokens on, beside the job's (to compare).
    compare: tuple[str, ...] = ()
    #: Distinct prompts answered before (the replay store, a cassette): shown again at $0,
    #: not sent, and not in ``prompts`` or any cost here.
    replayed: int = 0
    #: With ``files=``: the documents' input tokens (in ``fresh_tokens``), and how they were
    #: found (:func:`document_tokens`).
    document_tokens: int = 0
    document_note: str = ""
    #: How the rows were read, when not held in memory (a table read a row group at a time).
    read_note: str = ""

    @property
    def price(self) -> ModelPrice | None:
        """The model's price (None: unknown, and so is every cost here)."""
        return model_price(self.model, self.overrides)

    @property
    def cache_min_tokens(self) -> int:
        """The shortest prefix the job's model caches (the model table's figure)."""
        return cache_min_tokens(self.model)

    def cacheable_on(self, model: str) -> bool:
        """Whether the shared prefix is long enough for ``model`` to cache it (the job's own
        model: whether the job marks it)."""
        if model == self.model:
            return self.cacheable
        return self.prefix_tokens >= cache_min_tokens(model)

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

    def _cost(self, *, batch: bool, cached: bool, model: str | None = None) -> float | None:
        """The scenario on ``model`` (default: the job's); the prefix is read from cache only
        where that model caches a prefix this long."""
        model = model or self.model
        cost: Cost | None = price_usage(
            self.usage(batch=batch, cached=cached and self.cacheable_on(model)),
            model,
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
                    tuple(self._cost(batch=batch, cached=cached, model=m) for m in self.compare),
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

    @staticmethod
    def compare_column(model: str) -> str:
        """The heading of the cost column of a model the estimate compares with."""
        return f"if {model} ($)"

    def note(self) -> str:
        if self.cacheable:
            cache = f"the shared {self.prefix_tokens:,}-token instruction is cached"
        else:
            cache = (
                f"the shared {self.prefix_tokens:,}-token instruction is too short to cache on "
                f"{self.model} (its minimum is {self.cache_min_tokens:,} tokens)"
            )
        compared = ""
        if self.compare:
            names = " and ".join(", ".join(self.compare).rsplit(", ", 1))
            compared = f"the 'if' columns price the same tokens on {names}; "
        replayed = (
            f" to send, {self.replayed:,} more replayed from answers already paid for (at $0)"
            if self.replayed
            else ""
        )
        documents = f"{self.document_note}; " if self.document_note else ""
        read = f" ({self.read_note})" if self.read_note else ""
        return (
            f"{self.rows:,} rows, {self.prompts:,} distinct prompts{replayed}{read}, "
            f"{self.model}; "
            f"{documents}input tokens "
            f"are local estimates, output is at most max_tokens={self.max_tokens:,} a request; "
            f"{cache}; {compared}prices as of {PRICES_AS_OF}."
        )

    def frame(self) -> pd.DataFrame:
        """The scenarios as a small table (``df.claude.estimate``): tokens, the job's cost, and
        a cost column per model compared with."""
        import pandas as pd

        def dollars(value: float | None) -> float | None:
            # To the millionth of a dollar: a small job on a small model costs fractions of a cent.
            return None if value is None else round(value, 6)

        records = []
        for s in self.scenarios:
            record: dict[str, Any] = {
                "requests": s.requests,
                "input tokens (est.)": s.input_tokens,
                "of which from cache": s.cached_tokens,
                "output tokens (max)": s.output_tokens,
                "cost, at most ($)": dollars(s.cost_usd),
            }
            for model, cost in zip(self.compare, s.compared, strict=True):
                record[self.compare_column(model)] = dollars(cost)
            records.append(record)
        table = pd.DataFrame(records, index=pd.Index([s.name for s in self.scenarios], name="mode"))
        table.attrs["note"] = self.note()
        return table


def prompt_tokens(text: str) -> int:
    """A local estimate of a prompt's own input tokens (its text and the turn around it; the
    shared prefix apart): what every estimate of a job sums over its distinct prompts."""
    from ..prompt import estimate_tokens

    return estimate_tokens(text) + _TURN_OVERHEAD


def estimate_job(
    prompts: Prompts,
    overrides: Mapping[str, Any] | None = None,
    *,
    compare: Sequence[str] = (),
    replayed: Collection[int] = (),
    documents: tuple[int, str] = (0, ""),
) -> JobEstimate:
    """What the job costs, from local estimates (nothing is sent); ``compare``: other models
    to price the same tokens on; ``replayed``: the prompts that will be replayed, not sent
    (counted apart, at $0); ``documents``: the documents' tokens and what they are
    (:func:`document_tokens`)."""
    skip = set(replayed)
    fresh = sum(prompt_tokens(text) for n, text in enumerate(prompts.texts) if n not in skip)
    return JobEstimate(
        model=prompts.model,
        rows=prompts.n_rows,
        prompts=prompts.n_prompts - len(skip),
        replayed=len(skip),
        prefix_tokens=prompts.instruction_tokens,
        fresh_tokens=fresh + documents[0],
        max_tokens=prompts.max_tokens,
        cacheable=prompts.cacheable,
        overrides=overrides,
        compare=tuple(m for m in dict.fromkeys(compare) if m != prompts.model),
        document_tokens=documents[0],
        document_note=documents[1],
    )


#: How many files ``document_tokens`` counts with count_tokens before it scales.
DOCUMENT_SAMPLE = 5
# A local guess of a file's tokens when it cannot be counted: a page of a PDF is about
# 1,500 to 3,000 tokens (text and the page's image); bytes are a crude stand-in for pages.
_BYTES_PER_TOKEN = 8
_FLOOR_TOKENS = 1_500


def document_tokens(prompts: Prompts, send: Collection[int], client: Client) -> tuple[int, str]:
    """The input tokens of the documents of the prompts to ``send`` (``files=``): up to
    :data:`DOCUMENT_SAMPLE` distinct files counted by ``/v1/messages/count_tokens`` (inline,
    nothing uploaded), their mean scaled to every prompt; a local guess where counting fails.
    Always an estimate, and said so: ``(tokens, note)``."""
    import base64
    import os

    from ..errors import ClaudeError
    from ..local_files import read_regular

    files = prompts.files or []
    chosen = [n for n in send if n < len(files) and files[n].error is None]
    if not chosen:
        return 0, ""
    distinct: dict[str, int] = {}
    for n in chosen:
        distinct.setdefault(files[n].identity, n)
    sample = random.Random(0).sample(sorted(distinct.values()), min(DOCUMENT_SAMPLE, len(distinct)))
    question = {"role": "user", "content": [{"type": "text", "text": "."}]}
    counted: list[int] = []
    for n in sample:
        row_file = files[n]
        try:
            if row_file.url is not None:
                source: dict[str, Any] = {"type": "url", "url": row_file.url}
            else:
                data = row_file.data
                if data is None:
                    _, data = read_regular(
                        os.fspath(row_file.path or ""),
                        32 * 1024 * 1024,
                        error=ClaudeError,
                        what="counted",
                    )
                source = {
                    "type": "base64",
                    "media_type": row_file.media_type,
                    "data": base64.b64encode(data).decode(),
                }
            block = {"type": row_file.kind, "source": source}
            with_doc = {"role": "user", "content": [block, *question["content"]]}
            whole = client.messages.count_tokens(model=prompts.model, messages=[with_doc])
            bare = client.messages.count_tokens(model=prompts.model, messages=[question])
            counted.append(max(0, int(whole) - int(bare)))
        except ClaudeError:
            continue
    if counted:
        mean = sum(counted) / len(counted)
        total = round(mean * len(chosen))
        how = (
            f"documents about {total:,} tokens (an estimate: count_tokens on {len(counted)} "
            f"of {len(distinct):,} files, scaled to {len(chosen):,} prompts)"
        )
        return total, how
    total = sum(max(_FLOOR_TOKENS, files[n].size // _BYTES_PER_TOKEN) for n in chosen)
    return total, f"documents about {total:,} tokens (a local estimate from file sizes)"


#: Where the figures of a :class:`TokenCount` come from.
CountSource = Literal["counted", "server estimate", "local estimate"]


@dataclass
class TokenCount:
    """Input tokens per row for a job's prompts (``df.claude.count_tokens``).

    ``source`` says what the figures are: ``"counted"`` by the API's count_tokens endpoint
    (exact, unless only a sample was counted), a ``"server estimate"`` (the server marks its
    counts as estimates: a gateway counting with another tokenizer) or a ``"local estimate"``
    (the server has no count_tokens endpoint; ``prompt.estimate_tokens`` made them).
    """

    per_row: pd.Series
    prompts: int
    counted: int
    distinct_tokens: int
    model: str
    errors: int = 0
    #: Prices to use instead of the table's (``ClaudeMagics.price_overrides``).
    overrides: Mapping[str, Any] | None = None
    source: CountSource = "counted"

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
        """True when the API counted every distinct prompt and did not call it an estimate."""
        return self.source == "counted" and self.counted == self.prompts and not self.errors

    @property
    def estimated(self) -> bool:
        """True when any figure is an estimate (sampled, the server's or local)."""
        return not self.exact

    def _figures(self) -> str:
        sampled = (
            f"{self.counted:,} of {self.prompts:,} distinct prompts counted, the rest scaled "
            "from them"
        )
        if self.source == "local estimate":
            return "local estimates: this server has no count_tokens endpoint"
        if self.source == "server estimate":
            return "the server's estimates (it marks its counts so)" + (
                f"; {sampled}" if self.counted < self.prompts else ""
            )
        return "exact (count_tokens)" if self.exact else f"estimate: {sampled}"

    def _rows(self) -> list[tuple[str, str]]:
        n = len(self.per_row)
        rows = [
            ("rows", f"{n:,}"),
            ("distinct prompts (each counted once)", f"{self.prompts:,}"),
            ("input tokens, all rows", f"{self.total:,}"),
            (
                "per row: mean / max",
                f"{self.total / max(n, 1):,.0f} / {int(self.per_row.max()):,}" if n else "-",
            ),
            ("figures", self._figures()),
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

    def _title(self) -> str:
        kind = "Input tokens" if self.exact else "Estimated input tokens"
        return f"{kind} for {self.model}"

    def __repr__(self) -> str:
        width = max(len(a) for a, _ in self._rows())
        lines = [f"{self._title()} (nothing was generated)"]
        lines += [f"  {a:<{width}}  {b}" for a, b in self._rows()]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        body = "\n".join(f"| {html.escape(a)} | {html.escape(b)} |" for a, b in self._rows())
        return (
            f"**{html.escape(self._title())}** (nothing was generated)\n\n| | |\n|---|---|\n{body}"
        )


def _per_row(prompts: Prompts, per_prompt: list[int], index: Any) -> pd.Series:
    import pandas as pd

    return pd.Series(
        [per_prompt[p] for p in prompts.row_prompt], index=index, name="input_tokens", dtype="int64"
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
    """Count each distinct prompt with the API (or a sample of them, beyond ``exact_limit``);
    on a server without the count_tokens endpoint, estimate them locally and say so."""
    from ..api.client import COUNT_TOKENS_FIELDS
    from ..api.fanout import run_concurrently
    from ..errors import APIError, EndpointNotFoundError

    n = prompts.n_prompts
    if n <= exact_limit:
        chosen = list(range(n))
    else:
        chosen = sorted(random.Random(seed).sample(range(n), min(sample, n)))
    counted: dict[int, int] = {}
    failures: list[APIError] = []
    source: CountSource = "counted"
    if chosen:
        # The first count goes through the client's own count_tokens, which decides the fields
        # sent and whether the server marked its count as an estimate; one request also finds
        # out a server that has no such endpoint, before any other is sent.
        first = chosen[0]
        try:
            count = client.messages.count_tokens(**prompts.params_dict(first, batch=False))
        except EndpointNotFoundError:
            local = [prompts.input_estimate(i) for i in range(n)]
            return TokenCount(
                per_row=_per_row(prompts, local, index),
                prompts=n,
                counted=0,
                distinct_tokens=sum(local),
                model=prompts.model,
                overrides=overrides,
                source="local estimate",
            )
        except APIError:
            pass  # counted again below, with the fan-out's retries
        else:
            counted[first] = int(count)
            source = "server estimate" if count.estimated else "counted"
    # The rest at full speed, templated once like the requests themselves, with the same
    # fields (``COUNT_TOKENS_FIELDS``, the client's to decide).
    full = prompts.body(batch=False)
    body = {name: value for name, value in full.items() if name in COUNT_TOKENS_FIELDS}
    marker = orjson.dumps(body["messages"][0]["content"][-1]["text"])
    count_before, count_after = orjson.dumps(body).split(marker)

    def send(number: int) -> Any:
        payload = count_before + orjson.dumps(prompts.texts[number]) + count_after
        return client.request(
            "POST", "/v1/messages/count_tokens", body=orjson.Fragment(payload), max_retries=0
        )

    def keep(outcome: Any) -> None:
        if outcome.response is not None:
            counted[outcome.item] = int(outcome.response["input_tokens"])
        elif outcome.error is not None:
            failures.append(outcome.error)

    run_concurrently([i for i in chosen if i not in counted], send, on_outcome=keep)
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
    return TokenCount(
        per_row=_per_row(prompts, per_prompt, index),
        prompts=n,
        counted=len(counted),
        distinct_tokens=sum(per_prompt),
        model=prompts.model,
        errors=len(failures),
        overrides=overrides,
        source=source,
    )
