"""Counting before sending: what a request would cost, exactly where the API can say.

    report = count_request(client, body, context_window=200_000)
    report.input_tokens, report.worst_case_usd, report.to_bundle()

Input tokens come from ``/v1/messages/count_tokens`` (exact, free). The reply's cost is bounded
by ``max_tokens``. What caching would save is worked out from the request's own cache
breakpoints (the cacheable prefix is counted too) and the cache multipliers of ``pricing``.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..api.models import cache_min_tokens
from .pricing import format_usd, price_usage, worst_case_usd
from .usage import Usage

if TYPE_CHECKING:
    from ..api.client import Client

__all__ = ["CountReport", "cache_write_ttl", "count_request", "request_worst_case"]


def cache_write_ttl(body: Any) -> Literal["5m", "1h"] | None:
    """The longest cache lifetime ``body`` marks anywhere ("1h" or "5m"), or None when it marks
    no breakpoint: walks the body (a top-level ``cache_control`` counts too)."""
    longest: Literal["5m", "1h"] | None = None
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            mark = node.get("cache_control")
            if isinstance(mark, dict):
                if mark.get("ttl") == "1h":
                    return "1h"
                longest = "5m"
            stack.extend(v for k, v in node.items() if k != "cache_control")
        elif isinstance(node, list):
            stack.extend(node)
    return longest


def request_worst_case(
    body: dict[str, Any], input_tokens: int, overrides: Mapping[str, Any] | None = None
) -> float | None:
    """The most ``body`` can cost with ``input_tokens`` of input: see
    :func:`claude_magics.cost.pricing.worst_case_usd`."""
    return worst_case_usd(
        str(body["model"]),
        input_tokens,
        int(body.get("max_tokens") or 0),
        cache_write=cache_write_ttl(body),
        overrides=overrides,
    )


# What a cacheable prefix keeps of a request: the cache order is tools -> system -> messages.
_PREFIX_FIELDS = ("model", "tools", "tool_choice", "system", "messages", "thinking")


def _cacheable_prefix(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request cut after its last cache breakpoint (None when it has none)."""
    prefix = copy.deepcopy({k: v for k, v in body.items() if k in _PREFIX_FIELDS})
    messages = prefix.get("messages", [])
    for m_index in range(len(messages) - 1, -1, -1):
        content = messages[m_index].get("content")
        if not isinstance(content, list):
            continue
        for b_index in range(len(content) - 1, -1, -1):
            if "cache_control" in content[b_index]:
                messages[m_index]["content"] = content[: b_index + 1]
                del messages[m_index + 1 :]
                if messages[-1]["role"] != "user":
                    messages.append({"role": "user", "content": "."})
                return prefix
    system = prefix.get("system")
    if isinstance(system, list) and any("cache_control" in b for b in system):
        prefix["messages"] = [{"role": "user", "content": "."}]
        return prefix
    return None


@dataclass(frozen=True)
class CountReport:
    """What ``%%claude --count`` shows: the exact input, the most the reply can cost, the worst
    case (what the budget checks), and what the request's cache breakpoints would save."""

    model: str
    input_tokens: int
    max_tokens: int
    context_window: int | None
    cacheable_tokens: int
    cache_min_tokens: int
    cache_write: Literal["5m", "1h"] | None = None
    overrides: Mapping[str, Any] | None = None

    def _usd(self, usage: Usage) -> float | None:
        cost = price_usage(usage, self.model, overrides=self.overrides)
        return None if cost is None else cost.total

    @property
    def input_usd(self) -> float | None:
        return self._usd(Usage(input=self.input_tokens))

    @property
    def reply_max_usd(self) -> float | None:
        return self._usd(Usage(output=self.max_tokens))

    @property
    def worst_case_usd(self) -> float | None:
        return worst_case_usd(
            self.model,
            self.input_tokens,
            self.max_tokens,
            cache_write=self.cache_write,
            overrides=self.overrides,
        )

    @property
    def cached(self) -> bool:
        """Whether the marked prefix is long enough for the model to cache it."""
        return self.cacheable_tokens > 0 and self.cacheable_tokens >= self.cache_min_tokens

    def caching_note(self) -> str:
        if not self.cacheable_tokens:
            return "no cache breakpoints in this request"
        if not self.cached:
            return (
                f"the marked prefix is {self.cacheable_tokens:,} tokens, below {self.model}'s "
                f"minimum of {self.cache_min_tokens:,}: it will not be cached"
            )
        full = self._usd(Usage(input=self.cacheable_tokens))
        if self.cache_write == "1h":
            write = self._usd(Usage(cache_write_1h=self.cacheable_tokens))
        else:
            write = self._usd(Usage(cache_write_5m=self.cacheable_tokens))
        read = self._usd(Usage(cache_read=self.cacheable_tokens))
        if full is None or write is None or read is None:
            return f"{self.cacheable_tokens:,} tokens cacheable; cost unknown for this model"
        return (
            f"{self.cacheable_tokens:,} tokens cacheable: written once for {format_usd(write)}, "
            f"then each reuse costs {format_usd(read)} instead of {format_usd(full)} "
            f"(saves {format_usd(full - read)} a call)"
        )

    def rows(self) -> list[tuple[str, str, str]]:
        share = (
            f" ({self.input_tokens / self.context_window:.1%} of {self.context_window:,})"
            if self.context_window
            else ""
        )
        return [
            ("input", f"{self.input_tokens:,}{share}", format_usd(self.input_usd)),
            ("reply, at most (max_tokens)", f"{self.max_tokens:,}", format_usd(self.reply_max_usd)),
            ("worst case", "", format_usd(self.worst_case_usd)),
            ("caching", "", self.caching_note()),
        ]

    def to_bundle(self) -> dict[str, str]:
        rows = self.rows()
        md = f"**Token count for {html.escape(self.model)}** (nothing was sent to the model)\n\n"
        md += "| | tokens | cost |\n|---|---:|---|\n"
        md += "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
        plain = f"Token count for {self.model} (nothing was sent to the model)\n" + "\n".join(
            f"  {a:<28} {b:>24}  {c}" for a, b, c in rows
        )
        return {"text/markdown": md, "text/plain": plain}


def count_request(
    client: Client,
    body: dict[str, Any],
    *,
    context_window: int | None = None,
    cache_min_override: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> CountReport:
    """Count ``body`` exactly with the API and price it (two calls when it has breakpoints)."""
    input_tokens = client.messages.count_tokens(**body)
    prefix = _cacheable_prefix(body)
    cacheable = 0
    if prefix is not None:
        cacheable = min(client.messages.count_tokens(**prefix), input_tokens)
    model = str(body["model"])
    return CountReport(
        model=model,
        input_tokens=input_tokens,
        max_tokens=int(body.get("max_tokens") or 0),
        context_window=context_window,
        cacheable_tokens=cacheable,
        cache_min_tokens=cache_min_tokens(model, cache_min_override),
        cache_write=cache_write_ttl(body),
        overrides=overrides,
    )
