"""What ``%%claude`` works out before it sends: the context window, the budget, ``--count``.

    check_context(client, body, catalog.get(body["model"]).max_input_tokens)
    check_budget(client, body)                     # refuses a call that could pass the budget

Model facts come from :mod:`claude_magics.api.models` (``ModelCatalog``: the API's model list,
the bundled table, each model's cache minimum); prices and worst cases from
:mod:`claude_magics.cost`. Nothing here knows a model by name.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..errors import APIError, ClaudeError, NotFoundError

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.models import ModelCatalog
    from ..cost.tokens import CountReport

__all__ = ["check_budget", "check_context", "count", "explain_not_found"]


def explain_not_found(exc: NotFoundError, model: str, catalog: ModelCatalog) -> None:
    """Give a 404 about the model a hint: the closest model id and the ones there are."""
    try:
        available = list(catalog.names())
    except ClaudeError:
        return  # the hint is a courtesy: it must never hide the 404 itself
    if available and "model" in exc.message.lower():
        close = difflib.get_close_matches(model, available, n=1)
        hint = f"Did you mean {close[0]}? " if close else ""
        exc.hint = f"{hint}Available models: {', '.join(sorted(available))}. Use -m NAME."


def check_context(client: Client, body: dict[str, Any], window: int | None) -> None:
    """Refuse, before sending, a request over the model's context ``window`` (None: unknown).

    A cheap local estimate decides whether to ask; only a request near the limit costs a
    ``count_tokens`` call."""
    if not window:
        return
    from ..prompt import estimate_tokens

    estimate = estimate_tokens(json.dumps(body["messages"], default=str)) + estimate_tokens(
        json.dumps(body.get("system", ""))
    )
    if estimate < 0.8 * window:
        return
    # Close to the limit: ask the API for the exact count before paying for a 400.
    exact: int
    try:
        exact = client.messages.count_tokens(**body)
    except APIError:
        exact = estimate
    if exact > window:
        raise UsageError(
            f"This conversation is {exact:,} tokens, over {body['model']}'s context window of "
            f"{window:,}. Start afresh with %%claude --new (or --once, or another --chat)."
        )


def check_budget(
    client: Client, body: dict[str, Any], price_overrides: Mapping[str, Any] | None = None
) -> None:
    """Refuse, before sending, a call whose worst case passes what is left of the budget
    (:func:`claude_magics.config.check_budget`); a model of unknown price cannot be checked,
    so it is refused too while a budget is set."""
    from ..config import check_budget as check_against_budget
    from ..cost.tokens import request_worst_case

    input_tokens = client.messages.count_tokens(**body)
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
    catalog: ModelCatalog,
    *,
    cache_min_override: int | None = None,
    price_overrides: Mapping[str, Any] | None = None,
) -> CountReport:
    """``--count``: the request's exact input tokens, its worst case and what caching saves."""
    from ..cost.tokens import count_request

    return count_request(
        client,
        body,
        context_window=catalog.get(str(body["model"])).max_input_tokens,
        cache_min_override=cache_min_override,
        overrides=price_overrides or None,
    )
