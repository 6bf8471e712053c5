"""``Usage``: the tokens of one call (or of many, summed) by kind: the one parser of ``usage``.

    usage = Usage.from_api(message["usage"])
    usage.input, usage.output, usage.cache_write_5m, usage.cache_write_1h, usage.cache_read
    usage.web_search_requests, usage.web_fetch_requests
    total = usage + Usage.from_api(other["usage"])

The API reports ``input_tokens`` (the uncached part), ``output_tokens``,
``cache_creation_input_tokens`` with an optional ``cache_creation`` breakdown by lifetime,
``cache_read_input_tokens``, and ``server_tool_use`` with the web searches and fetches the API
ran for the call (their results are already in the input tokens). The split of cache writes into
5-minute and 1-hour is done here once: without a breakdown (or with one that does not add up)
writes count as 5-minute, the API's default lifetime. Pricing, the spend ledger, the status line
and DataFrame jobs all read usage through this type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Usage"]


def _count(source: Mapping[str, Any], key: str) -> int:
    value = source.get(key)
    if type(value) is int and value >= 0:  # the usual case, first: this runs per result line
        return value
    # bool is an int to Python, never a token count; negative counts are nonsense.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(int(value), 0)


@dataclass(frozen=True)
class Usage:
    """Tokens by kind. ``input`` is the uncached part of the prompt, as in the API."""

    input: int = 0
    output: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    #: Server tool requests (``usage.server_tool_use``): searches are billed per request.
    web_search_requests: int = 0
    web_fetch_requests: int = 0

    @classmethod
    def from_api(cls, usage: Mapping[str, Any] | None) -> Usage:
        """From the API's ``usage`` object (a message's, or a ``message_delta``'s)."""
        if not usage:
            return cls()
        created = _count(usage, "cache_creation_input_tokens")
        breakdown = usage.get("cache_creation")
        one_hour = five_min = 0
        if isinstance(breakdown, Mapping):
            one_hour = _count(breakdown, "ephemeral_1h_input_tokens")
            five_min = _count(breakdown, "ephemeral_5m_input_tokens")
        if one_hour + five_min != created:
            # No breakdown, or one that does not add up: trust the total; the rest is 5-minute.
            one_hour = min(one_hour, created)
            five_min = created - one_hour
        server = usage.get("server_tool_use")
        if not isinstance(server, Mapping):
            server = {}
        return cls(
            input=_count(usage, "input_tokens"),
            output=_count(usage, "output_tokens"),
            cache_write_5m=five_min,
            cache_write_1h=one_hour,
            cache_read=_count(usage, "cache_read_input_tokens"),
            web_search_requests=_count(server, "web_search_requests"),
            web_fetch_requests=_count(server, "web_fetch_requests"),
        )

    def to_api(self) -> dict[str, Any]:
        """The API's shape, with the breakdown by lifetime (and ``server_tool_use`` when the
        call used web search or web fetch)."""
        shape: dict[str, Any] = {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write_5m,
                "ephemeral_1h_input_tokens": self.cache_write_1h,
            },
        }
        if self.web_search_requests or self.web_fetch_requests:
            shape["server_tool_use"] = {
                "web_search_requests": self.web_search_requests,
                "web_fetch_requests": self.web_fetch_requests,
            }
        return shape

    @property
    def cache_write(self) -> int:
        """Tokens written to the cache, both lifetimes."""
        return self.cache_write_5m + self.cache_write_1h

    @property
    def prompt(self) -> int:
        """Every prompt token: uncached, written and read (what a prompt-length tier counts)."""
        return self.input + self.cache_write + self.cache_read

    @property
    def cache_hit_share(self) -> float | None:
        """The share of the prompt read from cache (None for an empty prompt)."""
        return self.cache_read / self.prompt if self.prompt else None

    def with_output(self, output: int) -> Usage:
        """The same usage with ``output`` output tokens (a live count while streaming)."""
        return replace(self, output=output)

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_write_5m + other.cache_write_5m,
            self.cache_write_1h + other.cache_write_1h,
            self.cache_read + other.cache_read,
            self.web_search_requests + other.web_search_requests,
            self.web_fetch_requests + other.web_fetch_requests,
        )

    def __bool__(self) -> bool:
        return bool(
            self.prompt or self.output or self.web_search_requests or self.web_fetch_requests
        )
