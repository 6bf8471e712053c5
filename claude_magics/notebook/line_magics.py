"""What the ``%claude_*`` line magics show: a conversation, the settings, a value's tokens, the
spend, the models. The magic methods parse their flags and hand over here.

    show_history(chats.get("default"), "default")
    show_usage(ledger, all_sessions=False, since=None)

Each function displays one output (a Markdown table with a plain-text twin, or a DataFrame and a
totals line) and returns None, as a magic should.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from IPython.core.error import UsageError

from ..cost.pricing import format_usd, model_price, price_usage
from ..cost.usage import Usage
from .views import display

if TYPE_CHECKING:
    from ..api.client import Client
    from ..cost.ledger import Ledger
    from .chat import Conversation

__all__ = ["show_config", "show_history", "show_models", "show_tokens", "show_usage"]


def _show(markdown: str | None, plain: str) -> None:
    """One output: Markdown with its plain-text twin, or plain text alone."""
    bundle = (
        {"text/plain": plain}
        if markdown is None
        else {
            "text/markdown": markdown,
            "text/plain": plain,
        }
    )
    display(bundle, raw=True)


def show_history(conversation: Conversation) -> None:
    """``%claude_history``: the turns of ``conversation``, numbered."""
    if not conversation.turns:
        _show(None, f"(conversation {conversation.name!r} is empty)")
        return
    md: list[str] = []
    plain: list[str] = []
    for number, turn in enumerate(conversation.turns, 1):
        note = " (interrupted)" if turn.interrupted else ""
        md.append(f"**{number}. You:** {turn.user_text}\n\n**Claude{note}:** {turn.assistant_text}")
        plain.append(f"{number}. You: {turn.user_text}\n   Claude{note}: {turn.assistant_text}")
    _show("\n\n---\n\n".join(md), "\n".join(plain))


def show_config(settings: Sequence[tuple[str, Any, str]], api_key_env: str, base_url: str) -> None:
    """``%claude_config``: ``settings`` as (name, value, where it comes from), then whether the
    key is set (never the key) and the base URL the client uses, with their sources."""
    from ..api.client import DEFAULT_BASE_URL

    rows = [(name, repr(value), source) for name, value, source in settings]
    key_status = "set" if os.environ.get(api_key_env) else "unset"
    rows.append(("API key", key_status, f"environment variable {api_key_env}"))
    # The client's own order: the setting, then ANTHROPIC_BASE_URL, then the default.
    if base_url:
        rows.append(("base URL", base_url, "ClaudeMagics.base_url"))
    elif os.environ.get("ANTHROPIC_BASE_URL"):
        rows.append(("base URL", os.environ["ANTHROPIC_BASE_URL"], "ANTHROPIC_BASE_URL"))
    else:
        rows.append(("base URL", DEFAULT_BASE_URL, "default"))
    width = max(len(r[0]) for r in rows)
    plain = "\n".join(f"{n:<{width}}  {v}  ({s})" for n, v, s in rows)
    md = "| setting | value | from |\n|---|---|---|\n" + "\n".join(
        f"| {n} | `{v}` | {s} |" for n, v, s in rows
    )
    _show(md, plain)


def show_tokens(
    client: Client,
    value: Any,
    name: str,
    *,
    model: str,
    value_budget: int,
    df_budget: int,
    df_format: Literal["csv", "markdown"],
    price_overrides: Mapping[str, Any] | None = None,
) -> None:
    """``%claude_tokens NAME``: ``value`` rendered as a prompt would render it, counted by the
    API for ``model`` and priced as input."""
    from ..prompt import render_value

    text = render_value(
        value, name=name, budget=value_budget, df_budget=df_budget, df_format=df_format
    )
    tokens = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": text}])
    cost = price_usage(Usage(input=tokens), model, overrides=price_overrides or None)
    note = " (cut to fit the token budget)" if "[cut:" in text or "omitted" in text else ""
    _show(
        None,
        f"{name}: {tokens:,} tokens as a prompt for {model}{note}, "
        f"{len(text):,} characters, {format_usd(cost.total if cost else None)} as input",
    )


def _since(text: str) -> float:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(
            f"--since {text}: not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        ) from None


_USAGE_COLUMNS = [
    "time",
    "cell",
    "model",
    "kind",
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "cache_hit_share",
    "cost_usd",
    "seconds",
    "request_id",
]


def show_usage(ledger: Ledger, *, all_sessions: bool = False, since: str | None = None) -> None:
    """``%claude_usage``: the ledger's calls as a DataFrame, then their totals. This session's
    calls by default; every session's with ``all_sessions``, or those since a date."""
    import pandas as pd

    start = _since(since) if since else None
    session = None if (all_sessions or start is not None) else ledger.session
    records = ledger.calls(session=session, since=start)
    frame = pd.DataFrame([r.__dict__ for r in records])
    scope = "this session" if session else ("all sessions" if start is None else since)
    if frame.empty:
        _show(None, f"No calls recorded ({scope}) in {ledger.path}.")
        return
    frame["time"] = pd.to_datetime(frame["time"], unit="s").dt.floor("s")
    known = frame["cost_usd"].notna()
    count = len(frame)
    totals = (
        f"{count:,} call{'' if count == 1 else 's'} ({scope}): "
        f"{int(frame['input_tokens'].sum()):,} input, "
        f"{int(frame['cache_write_tokens'].sum()):,} cache-write, "
        f"{int(frame['cache_read_tokens'].sum()):,} cache-read, "
        f"{int(frame['output_tokens'].sum()):,} output tokens; "
        f"{format_usd(float(frame.loc[known, 'cost_usd'].sum()))}"
        + ("" if known.all() else f" (+{int((~known).sum())} calls of unknown cost)")
    )
    display(frame[_USAGE_COLUMNS])
    _show(None, totals)


def show_models(client: Client, price_overrides: Mapping[str, Any] | None = None) -> None:
    """``%claude_models``: every model the API lists, its context window, output limit and
    price per million tokens (from the price table)."""
    rows = []
    for m in client.models.iter_all():
        price = model_price(m["id"], price_overrides)
        cost = f"${price.input:g} / ${price.output:g}" if price else "unknown"
        window = f"{m.get('max_input_tokens') or 0:,}"
        out = f"{m.get('max_tokens') or 0:,}"
        rows.append((m["id"], m.get("display_name", ""), window, out, cost))
    md = "| model | name | context | max output | $/MTok in / out |\n|---|---|---|---|---|\n"
    md += "\n".join(f"| {' | '.join(r)} |" for r in rows)
    _show(md, "\n".join("  ".join(r) for r in rows))
