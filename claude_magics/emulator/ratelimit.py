"""Per-minute rate limits as token buckets, and the headers that report them.

    limiter = RateLimiter(options)
    denied = limiter.admit(now, input_tokens=1200)   # None, or (retry_after, limit name)
    limiter.spend_output(now, 60); limiter.headers(now)

Each limit (requests, input tokens, output tokens per minute) is a bucket holding at most its
limit and refilling continuously at limit/60 per second on the emulator clock, like the API's
token-bucket limiter. A request is admitted when every bucket can pay for it: one request, its
uncached input tokens (cache reads are free), and at least one output token (output is charged
after generation, so a burst can drive the output bucket negative and later requests wait).
count_tokens has its own requests bucket.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime, timezone

from .options import EmulatorOptions

__all__ = ["RateLimiter", "rfc3339"]


def rfc3339(timestamp: float) -> str:
    """UTC RFC 3339 time with a ``Z`` suffix (the API's format)."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class _Bucket:
    def __init__(self, limit: int, now: float) -> None:
        self.limit = limit
        self.level = float(limit)
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.limit, self.level + (now - self.updated) * self.limit / 60.0)
        self.updated = max(self.updated, now)

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds ``amount`` (a full minute if it never can)."""
        if self.level >= amount:
            return 0.0
        if amount > self.limit:
            return 60.0
        return (amount - self.level) * 60.0 / self.limit

    def reset_at(self, now: float) -> float:
        """When the bucket will be full again."""
        return now + max(0.0, self.limit - self.level) * 60.0 / self.limit


class RateLimiter:
    def __init__(self, options: EmulatorOptions, now: float) -> None:
        self._lock = threading.Lock()
        self.configure(options, now)

    def configure(self, options: EmulatorOptions, now: float) -> None:
        """(Re)build the buckets for ``options``; state starts full."""

        def bucket(limit: int | None) -> _Bucket | None:
            return None if limit is None else _Bucket(limit, now)

        with self._lock:
            self.requests = bucket(options.requests_per_minute)
            self.count_requests = bucket(options.requests_per_minute)
            self.input = bucket(options.input_tokens_per_minute)
            self.output = bucket(options.output_tokens_per_minute)

    def _refill(self, now: float) -> None:
        for bucket in (self.requests, self.count_requests, self.input, self.output):
            if bucket is not None:
                bucket.refill(now)

    def admit(
        self, now: float, input_tokens: int, *, count_tokens: bool = False
    ) -> tuple[int, str] | None:
        """Charge one request and its input; None if admitted, else (retry-after, reason)."""
        with self._lock:
            self._refill(now)
            requests = self.count_requests if count_tokens else self.requests
            needs: list[tuple[_Bucket | None, float, str]] = [(requests, 1.0, "requests")]
            if not count_tokens:
                needs.append((self.input, float(input_tokens), "input tokens"))
                needs.append((self.output, 1.0, "output tokens"))
            for bucket, amount, name in needs:
                if bucket is not None and bucket.level < amount:
                    return max(1, math.ceil(bucket.wait_for(amount))), name
            for bucket, amount, name in needs:
                if bucket is not None and name != "output tokens":
                    bucket.level -= amount
            return None

    def spend_output(self, now: float, tokens: int) -> None:
        with self._lock:
            if self.output is not None:
                self.output.refill(now)
                self.output.level -= tokens

    def limit_of(self, reason: str) -> int | None:
        bucket = {"requests": self.requests, "input tokens": self.input,
                  "output tokens": self.output}.get(reason)  # fmt: skip
        return None if bucket is None else bucket.limit

    def headers(self, now: float, *, count_tokens: bool = False) -> dict[str, str]:
        """The anthropic-ratelimit-* headers for the limits that are set."""
        out: dict[str, str] = {}
        with self._lock:
            self._refill(now)

            def put(name: str, bucket: _Bucket) -> None:
                out[f"anthropic-ratelimit-{name}-limit"] = str(bucket.limit)
                out[f"anthropic-ratelimit-{name}-remaining"] = str(max(0, math.floor(bucket.level)))
                out[f"anthropic-ratelimit-{name}-reset"] = rfc3339(bucket.reset_at(now))

            requests = self.count_requests if count_tokens else self.requests
            if requests is not None:
                put("requests", requests)
            if count_tokens:
                return out
            if self.input is not None:
                put("input-tokens", self.input)
            if self.output is not None:
                put("output-tokens", self.output)
            # "tokens" reports whichever token limit is currently the most restrictive.
            token_buckets = [b for b in (self.input, self.output) if b is not None]
            if token_buckets:
                put("tokens", min(token_buckets, key=lambda b: b.level / b.limit))
        return out
