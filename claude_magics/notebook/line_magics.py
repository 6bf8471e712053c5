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

from ..cost.pricing import format_usd, model_price, price_usage, regional_premium
from ..cost.usage import Usage
from .views import display

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.models import ModelCatalog, ModelInfo
    from ..api.platforms import Platform
    from ..cost.ledger import Ledger
    from ..cost.replay import Cassette, Replayer
    from .chat import Conversation

__all__ = [
    "clear_replays",
    "show_cassette",
    "show_config",
    "show_history",
    "show_models",
    "show_replay_stats",
    "show_tokens",
    "show_usage",
]


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


def show_config(
    settings: Sequence[tuple[str, Any, str]],
    api_key_env: str,
    base_url: str,
    *,
    platform: Platform | None = None,
) -> None:
    """``%claude_config``: ``settings`` as (name, value, where it comes from), then whether the
    key is set (never the key) and the base URL the client uses, with their sources. On Bedrock
    or Vertex: the platform, region, project, endpoint and whether credentials were found."""
    from ..api.client import DEFAULT_BASE_URL

    rows = [(name, repr(value), source) for name, value, source in settings]
    if platform is not None:
        rows.extend(platform.describe())
        _config_table(rows)
        return
    key_status = "set" if os.environ.get(api_key_env) else "unset"
    rows.append(("API key", key_status, f"environment variable {api_key_env}"))
    # The client's own order: the setting, then ANTHROPIC_BASE_URL, then the default.
    if base_url:
        rows.append(("base URL", base_url, "ClaudeMagics.base_url"))
    elif os.environ.get("ANTHROPIC_BASE_URL"):
        rows.append(("base URL", os.environ["ANTHROPIC_BASE_URL"], "ANTHROPIC_BASE_URL"))
    else:
        rows.append(("base URL", DEFAULT_BASE_URL, "default"))
    _config_table(rows)


def _config_table(rows: Sequence[tuple[str, str, str]]) -> None:
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
    info: ModelInfo,
    value_budget: int,
    df_budget: int,
    df_format: Literal["csv", "markdown"],
    price_overrides: Mapping[str, Any] | None = None,
) -> None:
    """``%claude_tokens NAME``: ``value`` rendered as a prompt would render it, counted by the
    API for the model ``info`` describes (estimated where the server cannot count) and priced
    as input."""
    from ..prompt import render_value
    from ..prompt.body import repair_surrogates
    from .checks import Counter

    model = info.id
    # Repaired as the body builder repairs a prompt (lone surrogates JSON cannot carry), so
    # the count is of what a cell would send.
    text, _ = repair_surrogates(
        render_value(
            value, name=name, budget=value_budget, df_budget=df_budget, df_format=df_format
        )
    )
    counter = Counter(client, info)
    tokens = counter.count_tokens(model=model, messages=[{"role": "user", "content": text}])
    cost = price_usage(Usage(input=tokens), model, overrides=price_overrides or None)
    note = " (cut to fit the token budget)" if "[cut:" in text or "omitted" in text else ""
    about = "≈" if counter.estimated else ""
    estimate = f"\n{counter.note()}" if counter.estimated else ""
    _show(
        None,
        f"{name}: {about}{tokens:,} tokens as a prompt for {model}{note}, "
        f"{len(text):,} characters, {format_usd(cost.total if cost else None)} as input" + estimate,
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
    "web_search_requests",
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
    searches = int(frame["web_search_requests"].sum())
    totals = (
        f"{count:,} call{'' if count == 1 else 's'} ({scope}): "
        f"{int(frame['input_tokens'].sum()):,} input, "
        f"{int(frame['cache_write_tokens'].sum()):,} cache-write, "
        f"{int(frame['cache_read_tokens'].sum()):,} cache-read, "
        f"{int(frame['output_tokens'].sum()):,} output tokens"
        + (f", {searches:,} web search{'es' * (searches != 1)}" if searches else "")
        + f"; {format_usd(float(frame.loc[known, 'cost_usd'].sum()))}"
        + ("" if known.all() else f" (+{int((~known).sum())} calls of unknown cost)")
    )
    display(frame[_USAGE_COLUMNS])
    _show(None, totals + "\n" + _saved_line(ledger))


def _saved_line(ledger: Ledger) -> str:
    """What replay saved this session and overall, in one line."""
    session, overall = ledger.saved(session=ledger.session), ledger.saved()
    return (
        f"Replay saved {format_usd(session)} this session, {format_usd(overall)} overall "
        "(answers already paid for, shown again for $0)."
    )


def _when(epoch: float | None) -> str:
    import time

    return "—" if epoch is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def show_replay_stats(replayer: Replayer, ledger: Ledger) -> None:
    """``%claude_replay stats``: the store's entries, size and age, the cassette, and what
    replay saved this session and overall."""
    lines = []
    store = replayer.store
    if store is None:
        lines.append("Replay is off (ClaudeMagics.replay = False): answers are not stored.")
    else:
        stats = store.stats()
        lines.append(
            f"{stats.entries:,} answer{'' if stats.entries == 1 else 's'} stored, "
            f"{stats.bytes / 2**20:.1f} MB of {store.max_bytes / 2**20:.0f} MB "
            f"(oldest {_when(stats.oldest)}, newest {_when(stats.newest)}) in {store.path}"
        )
    cassette = replayer.cassette
    if cassette is not None:
        lines.append(
            f"Cassette {cassette.path} ({cassette.mode}): {len(cassette):,} recorded answers."
        )
    lines.append(_saved_line(ledger))
    _show(None, "\n".join(lines))


def clear_replays(replayer: Replayer, *, older_than_days: float | None = None) -> None:
    """``%claude_replay clear``: forget stored answers (all, or older than some days)."""
    if older_than_days is not None and older_than_days < 0:
        raise UsageError(f"--older-than {older_than_days:g}: use a number of days, 0 or more")
    if replayer.store is None:
        _show(None, "Replay is off (ClaudeMagics.replay = False): nothing is stored.")
        return
    count = replayer.store.clear(older_than_days=older_than_days)
    scope = "" if older_than_days is None else f" older than {older_than_days:g} days"
    _show(None, f"Forgot {count:,} stored answer{'' if count == 1 else 's'}{scope}.")


def show_cassette(cassette: Cassette) -> None:
    """What ``%claude_replay cassette PATH`` set: the file, its mode and what it holds."""
    what = {
        "record": "every answer is asked of the API and written to it",
        "replay": "answers come only from it; a request it lacks fails, and nothing is sent",
        "auto": "answers come from it when it has them; the rest are asked and written to it",
    }[cassette.mode]
    _show(None, f"Cassette {cassette.path} ({cassette.mode}, {len(cassette):,} answers): {what}.")


def _thinking_kinds(info: ModelInfo) -> str:
    """How a model thinks, in a few words: adaptive and/or with a budget; always on or not."""
    if info.thinking_types is None:
        return "?"
    kinds = []
    if "adaptive" in info.thinking_types:
        kinds.append("adaptive")
    if "enabled" in info.thinking_types and not info.rejects_thinking_budget:
        deprecated = info.entry is not None and info.entry.thinking.budget == "deprecated"
        kinds.append("budget (deprecated)" if deprecated else "budget")
    if not kinds:
        return "none"
    return ", ".join(kinds) + (", always on" if info.thinking_always_on else "")


def _price_text(model: str, overrides: Mapping[str, Any] | None) -> str:
    price = model_price(model, overrides)
    if price is None:
        return "unknown"
    text = f"${price.input:g} / ${price.output:g}"
    for tier in price.tiers:
        above = tier.above_prompt_tokens
        size = f"{above // 1000:,}K" if above % 1000 == 0 else f"{above:,}"
        text += f"; prompts over {size}: ${tier.price.input:g} / ${tier.price.output:g}"
    return text


def _status_text(info: ModelInfo) -> str:
    if info.status is None:
        return "not in the table"
    if info.status == "deprecated" and info.retires_on:
        return f"deprecated, retires {info.retires_on}"
    return info.status


def show_models(
    catalog: ModelCatalog,
    yours: Mapping[str, str],
    *,
    all_models: bool = False,
    price_overrides: Mapping[str, Any] | None = None,
    platform: Platform | None = None,
) -> None:
    """``%claude_models``: the models the server lists (the bundled table when it cannot be
    asked) with their status, context window, output limit, thinking, effort levels and
    prices from the dated price table. By default the current line-up, models the table does
    not know yet, and ``yours`` (setting name -> model, such as ``{"model": ...}``); legacy and
    deprecated models too with ``all_models``."""
    from ..cost.pricing import PRICES_AS_OF

    mine: dict[str, list[str]] = {}
    for setting, name in yours.items():
        mine.setdefault(catalog.get(name).id, []).append(setting)
    rows: list[tuple[str, ...]] = []
    hidden = 0
    for info in catalog.all():
        if not (all_models or info.status in ("active", None) or info.id in mine):
            hidden += 1
            continue
        label = info.id + "".join(f" ({setting})" for setting in mine.get(info.id, []))
        rows.append(
            (
                label,
                _status_text(info),
                f"{info.max_input_tokens:,}" if info.max_input_tokens else "?",
                f"{info.max_tokens:,}" if info.max_tokens else "?",
                _thinking_kinds(info),
                ", ".join(info.effort_levels) if info.effort_levels else "—",
                _price_text(info.id, price_overrides),
            )
        )
    header = ("model", "status", "context", "max output", "thinking", "effort", "$/MTok in / out")
    notes = [
        f"Prices per million tokens from the price table of {PRICES_AS_OF} (Message Batches: half)."
    ]
    if hidden:
        notes.append(f"{hidden} legacy or deprecated models not shown: %claude_models --all.")
    for setting, name in yours.items():
        retired = catalog.retired(name)
        if retired is not None:
            instead = f": use {retired.replacement}" if retired.replacement else ""
            when = f" on {retired.retired_on}" if retired.retired_on else ""
            notes.append(f"ClaudeMagics.{setting} = {name!r} was retired{when}{instead}.")
    if platform is not None:
        notes.append(platform.models_note())
        premium = regional_premium(platform.name, platform.region)
        if platform.name == "vertex" and premium is not None:
            notes.append(
                f"The {platform.region} endpoint costs {premium - 1:.0%} more than these "
                "prices (the global endpoint's); costs, --count and the budget include it."
            )
    if catalog.unavailable:
        notes.append(
            f"The server's model list could not be fetched ({catalog.unavailable}): this is the "
            "bundled table."
        )
    md = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    md += "\n".join("| " + " | ".join(row) + " |" for row in rows)
    md += "\n\n" + "\n\n".join(notes)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    plain = "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
    _show(md, plain + "\n\n" + "\n".join(notes))
