"""The shapes the client returns: API objects as sent, pages of a listing, rate-limit headers.

message.request_id, message.response_headers      # on every ApiObject
RateLimits.from_headers(response.headers).requests_remaining
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .retry import retry_after_seconds

__all__ = ["ApiObject", "Page", "RateLimits"]


class ApiObject(dict[str, Any]):
    """A JSON object from the API, as sent, plus the ``request_id`` and response headers."""

    request_id: str | None = None
    response_headers: Mapping[str, str] = {}


@dataclass(frozen=True)
class RateLimits:
    """The ``anthropic-ratelimit-*`` headers of one response (None where absent)."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: str | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: str | None = None
    input_tokens_limit: int | None = None
    input_tokens_remaining: int | None = None
    input_tokens_reset: str | None = None
    output_tokens_limit: int | None = None
    output_tokens_remaining: int | None = None
    output_tokens_reset: str | None = None
    retry_after: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimits:
        values: dict[str, Any] = {}
        for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
            stem = kind.replace("-", "_")
            for part in ("limit", "remaining"):
                raw = headers.get(f"anthropic-ratelimit-{kind}-{part}")
                if raw is not None and raw.strip().isdigit():
                    values[f"{stem}_{part}"] = int(raw)
            reset = headers.get(f"anthropic-ratelimit-{kind}-reset")
            if reset is not None:
                values[f"{stem}_reset"] = reset
        values["retry_after"] = retry_after_seconds(headers)
        return cls(**values)


@dataclass(frozen=True)
class Page:
    """One page of a paginated listing."""

    data: list[ApiObject]
    has_more: bool
    first_id: str | None
    last_id: str | None

    def __iter__(self) -> Iterator[ApiObject]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
