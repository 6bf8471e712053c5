"""What ``%%claude`` works out before it sends: the model's rules, the context window, the
budget, ``--count``; and what it adds to a 404 about the model.

    check_rules(body, catalog.get(body["model"]), client.api_version)  # one line, not a 400
    check_context(client, body, info)
    check_budget(client, body, info)               # refuses a call that could pass the budget

Model facts come from :mod:`claude_magics.api.models` (``ModelCatalog``: the API's model list,
the bundled table, each model's rules, status and cache minimum) and the rules themselves from
:mod:`claude_magics.api.rules`; prices and worst cases from :mod:`claude_magics.cost`. Nothing
here knows a model by name.

Token counts come from the API's ``count_tokens``. A server without that endpoint (a gateway or
proxy that speaks only part of the API) gets a local estimate instead, labelled as one, so a
budget never blocks every cell there; a count the server itself marks as an estimate is shown as
one too.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError

from ..errors import APIError, ClaudeError, EndpointNotFoundError, NotFoundError

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.messages import TokenCount
    from ..api.models import ModelCatalog, ModelInfo

__all__ = [
    "NEW_TOKENIZER_FACTOR",
    "Counter",
    "check_budget",
    "check_context",
    "check_rules",
    "count",
    "deprecation_notice",
    "estimate_input_tokens",
    "explain_not_found",
]

#: How many more tokens the newer tokenizer (Opus 4.7 and every later model) counts for the
#: same text than the one the local estimate was tuned on: "about 30% more".
NEW_TOKENIZER_FACTOR = 1.3


def check_rules(body: Mapping[str, Any], info: ModelInfo, api_version: str) -> None:
    """Refuse, before sending, a request its model or API version would answer with a 400:
    one line saying what to do instead (a thinking budget on a model that only thinks
    adaptively, sampling where it is rejected, an effort level the model lacks, ...)."""
    from ..api.rules import RequestNotAllowedError, check_request

    try:
        check_request(body, info, api_version)
    except RequestNotAllowedError as exc:
        # A flag the model cannot take is a mistake in the cell: IPython's one-line UsageError.
        raise UsageError(str(exc)) from None


def deprecation_notice(info: ModelInfo) -> str | None:
    """One line for a model the table marks deprecated (its retirement date, its
    replacement), or None for any other model."""
    if info.status != "deprecated":
        return None
    when = f" (retirement date {info.retires_on})" if info.retires_on else ""
    instead = f": move to {info.replacement} (-m {info.replacement})" if info.replacement else ""
    return f"Warning: {info.id} is deprecated{when}{instead}."


def explain_not_found(exc: NotFoundError, model: str, catalog: ModelCatalog) -> None:
    """Give a 404 about the model a hint: for a retired model its retirement and the current
    line-up, for an unknown one the closest model id and the current line-up."""
    if isinstance(exc, EndpointNotFoundError):
        return  # the server lacks the endpoint; the model may be fine
    current = ", ".join(catalog.current())
    retired = catalog.retired(model)
    if retired is not None:
        when = f" on {retired.retired_on}" if retired.retired_on else ""
        instead = f" Its replacement is {retired.replacement}." if retired.replacement else ""
        exc.hint = (
            f"{model} was retired{when}.{instead} Current models: {current}. Use -m NAME "
            "(%claude_models lists them)."
        )
        return
    if "model" not in exc.message.lower():
        return
    try:
        available = list(catalog.names())
    except ClaudeError:
        available = []  # the hint is a courtesy: it must never hide the 404 itself
    close = difflib.get_close_matches(model, available, n=1)
    guess = f"Did you mean {close[0]}? " if close else ""
    exc.hint = f"{guess}Current models: {current}. Use -m NAME (%claude_models lists them)."


def _new_tokenizer(info: ModelInfo) -> bool:
    """Whether ``info``'s model counts with the newer tokenizer; a model the table does not know
    is taken to (it is newer than the table), so an estimate that checks a budget errs high."""
    return info.entry is None or info.entry.tokenizer == "new"


def estimate_input_tokens(body: Mapping[str, Any], info: ModelInfo) -> int:
    """A local estimate of ``body``'s input tokens, for a server that cannot count them:
    :func:`claude_magics.prompt.body.estimate_request_tokens`, raised by
    ``NEW_TOKENIZER_FACTOR`` for models on the newer tokenizer."""
    from ..prompt.body import estimate_request_tokens

    estimate = estimate_request_tokens(body)
    if _new_tokenizer(info):
        estimate = int(estimate * NEW_TOKENIZER_FACTOR + 0.5)
    return estimate


class Counter:
    """Counts requests of one model: the server's ``count_tokens``, or a local estimate where
    the server has no such endpoint. ``estimated`` says why a figure is not the API's exact
    count ("local": our estimate, "server": the server marked its own count as one), None
    while every count was exact.

    It has the shape :func:`claude_magics.cost.tokens.count_request` needs of a client
    (``counter.messages.count_tokens(**body)``), so ``--count`` goes through the one counting
    path whatever the server."""

    def __init__(self, client: Client, info: ModelInfo) -> None:
        self._client = client
        self._info = info
        self.messages = self
        self.estimated: str | None = None

    def count_tokens(self, **body: Any) -> int:
        from ..api.messages import TokenCount

        try:
            counted: TokenCount = self._client.messages.count_tokens(**body)
        except EndpointNotFoundError:
            self.estimated = "local"
            return TokenCount(estimate_input_tokens(body, self._info), estimated=True)
        if counted.estimated and self.estimated is None:
            self.estimated = "server"
        return counted

    def note(self) -> str | None:
        """What to say under a figure that is an estimate (None for exact counts)."""
        if self.estimated == "local":
            from ..prompt import CHARS_PER_TOKEN

            scaled = (
                f", +{NEW_TOKENIZER_FACTOR - 1:.0%} for {self._info.id}'s newer tokenizer"
                if _new_tokenizer(self._info)
                else ""
            )
            return (
                "≈ Estimated locally: this server has no token-counting endpoint "
                f"(about {CHARS_PER_TOKEN:g} characters a token{scaled}); the API's count may "
                "differ."
            )
        if self.estimated == "server":
            return "≈ Estimated by the server: it marked its token count as an estimate."
        return None


def check_context(client: Client, body: dict[str, Any], info: ModelInfo) -> None:
    """Refuse, before sending, a request over the model's context window (when it is known).

    A cheap local estimate decides whether to ask; only a request near the limit costs a
    ``count_tokens`` call."""
    window = info.max_input_tokens
    if not window:
        return
    estimate = estimate_input_tokens(body, info)
    if estimate < 0.8 * window:
        return
    # Close to the limit: ask the API for the exact count before paying for a 400.
    exact: int
    try:
        exact = Counter(client, info).count_tokens(**body)
    except APIError:
        exact = estimate
    if exact > window:
        raise UsageError(
            f"This conversation is {exact:,} tokens, over {body['model']}'s context window of "
            f"{window:,}. Start afresh with %%claude --new (or --once, or another --chat)."
        )


def check_budget(
    client: Client,
    body: dict[str, Any],
    info: ModelInfo,
    price_overrides: Mapping[str, Any] | None = None,
) -> None:
    """Refuse, before sending, a call whose worst case passes what is left of the budget
    (:func:`claude_magics.config.check_budget`); a model of unknown price cannot be checked,
    so it is refused too while a budget is set. Where the server cannot count tokens, the
    worst case is priced from a local estimate."""
    from ..config import check_budget as check_against_budget
    from ..cost.tokens import request_worst_case

    input_tokens = Counter(client, info).count_tokens(**body)
    worst = request_worst_case(body, input_tokens, price_overrides or None)
    if worst is None:
        raise UsageError(
            f"A budget is set, but the price of {body['model']} is unknown, so this call "
            "cannot be checked against it. Set %config ClaudeMagics.price_overrides = "
            f"{{'{body['model']}': (input, output)}} in $/MTok, or unset the budget."
        )
    check_against_budget(worst, "This cell")


def count(
    client: Client,
    body: dict[str, Any],
    info: ModelInfo,
    *,
    cache_min_override: int | None = None,
    price_overrides: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """``--count``: the request's input tokens, its worst case and what caching saves, as a
    MIME bundle; figures that are estimates (no counting endpoint, or the server says so) are
    labelled as such."""
    from ..cost.tokens import count_request

    counter = Counter(client, info)
    report = count_request(
        # The counter has the one method count_request uses of a client.
        cast("Client", counter),
        body,
        context_window=info.max_input_tokens,
        cache_min_override=cache_min_override,
        overrides=price_overrides or None,
    )
    bundle = report.to_bundle()
    note = counter.note()
    if note is None:
        return bundle
    return {
        "text/markdown": bundle["text/markdown"].replace("Token count for", "Token estimate for", 1)
        + f"\n\n{note}",
        "text/plain": bundle["text/plain"].replace("Token count for", "Token estimate for", 1)
        + f"\n  {note}",
    }
