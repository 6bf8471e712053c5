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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .pricing import (
    CACHE_READ_MULTIPLIER,
    CACHE_WRITE_1H_MULTIPLIER,
    CACHE_WRITE_5M_MULTIPLIER,
    ModelPrice,
    format_usd,
    model_price,
)

if TYPE_CHECKING:
    from ..api.client import Client

__all__ = ["CountReport", "count_request", "worst_case_usd"]

_COUNT_KEYS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")


def _count_body(body: dict[str, Any]) -> dict[str, Any]:
    """The fields count_tokens accepts (it takes no max_tokens, stop sequences...)."""
    return {k: v for k, v in body.items() if k in _COUNT_KEYS}


def _has_cache_marks(node: Any) -> bool:
    if isinstance(node, dict):
        return "cache_control" in node or any(_has_cache_marks(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_cache_marks(v) for v in node)
    return False


def _write_multiplier(body: dict[str, Any]) -> float:
    """The dearest cache-write price the request could incur (1.0 if it marks nothing)."""
    text = repr(body)
    if "'ttl': '1h'" in text:
        return CACHE_WRITE_1H_MULTIPLIER
    return CACHE_WRITE_5M_MULTIPLIER if _has_cache_marks(body) else 1.0


def worst_case_usd(
    body: dict[str, Any], input_tokens: int, overrides: dict[str, Any] | None = None
) -> float | None:
    """The most this request can cost: every input token at the dearest rate it could be
    billed (a cache write, if it marks any breakpoint) and a reply of ``max_tokens``."""
    price = model_price(str(body["model"]), overrides)
    if price is None:
        return None
    max_out = int(body.get("max_tokens") or 0)
    return (input_tokens * price.input * _write_multiplier(body) + max_out * price.output) / 1e6


def _cacheable_prefix(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request cut after its last cache breakpoint (None when it has none)."""
    prefix = copy.deepcopy(_count_body(body))
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
    """What ``%%claude --count`` shows."""

    model: str
    input_tokens: int
    max_tokens: int
    context_window: int | None
    price: ModelPrice | None
    cacheable_tokens: int

    @property
    def input_usd(self) -> float | None:
        return self.input_tokens * self.price.input / 1e6 if self.price else None

    @property
    def reply_max_usd(self) -> float | None:
        return self.max_tokens * self.price.output / 1e6 if self.price else None

    @property
    def worst_case_usd(self) -> float | None:
        if self.input_usd is None or self.reply_max_usd is None:
            return None
        return self.input_usd + self.reply_max_usd

    def caching_note(self) -> str:
        if self.price is None:
            return "cost unknown for this model"
        if not self.cacheable_tokens:
            return "no cache breakpoints in this request"
        per_token = self.price.input / 1e6
        full = self.cacheable_tokens * per_token
        write = full * CACHE_WRITE_5M_MULTIPLIER
        read = full * CACHE_READ_MULTIPLIER
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
    overrides: dict[str, Any] | None = None,
) -> CountReport:
    """Count ``body`` exactly with the API and price it (two calls when it has breakpoints)."""
    input_tokens = client.messages.count_tokens(**_count_body(body))
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
        price=model_price(model, overrides),
        cacheable_tokens=cacheable,
    )
