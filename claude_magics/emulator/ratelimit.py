"""Per-minute rate limits as token buckets, per model, and the headers that report them.

    limiter = RateLimiter(options, now)
    denied = limiter.admit(now, "claude-haiku-5-5", 1200)  # None, or (retry_after, which)
    limiter.spend_output(now, "claude-haiku-5-5", 60); limiter.headers(now, "claude-haiku-5-5")

Each limit (requests, input tokens, output tokens per minute) is a bucket holding at most its
limit and refilling continuously at limit/60 per second on the emulator clock, like the API's
token-bucket limiter. As on the API, each model has buckets of its own (an alias shares its
model's), so one model's traffic never spends another's budget; the configured limits apply to
each. A request is admitted when every bucket of its model can pay for it: one request, its
uncached input tokens (cache reads are free), and at least one output token (output is charged
after generation, so a burst can drive the output bucket negative and later requests wait).
The headers report the buckets of the request's model; ``-reset`` is when the bucket will be
full again, in RFC 3339. count_tokens has one requests bucket of its own.
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


class _ModelBuckets:
    """The buckets of one model (None where no limit is set)."""

    def __init__(self, options: EmulatorOptions, now: float) -> None:
        self.requests = _bucket(options.requests_per_minute, now)
        self.input = _bucket(options.input_tokens_per_minute, now)
        self.output = _bucket(options.output_tokens_per_minute, now)

    def refill(self, now: float) -> None:
        for bucket in (self.requests, self.input, self.output):
            if bucket is not None:
                bucket.refill(now)


def _bucket(limit: int | None, now: float) -> _Bucket | None:
    return None if limit is None else _Bucket(limit, now)


class RateLimiter:
    def __init__(self, options: EmulatorOptions, now: float) -> None:
        self._lock = threading.Lock()
        self.configure(options, now)

    def configure(self, options: EmulatorOptions, now: float) -> None:
        """(Re)build the buckets for ``options``; every bucket starts full."""
        with self._lock:
            self._options = options
            self._models: dict[str, _ModelBuckets] = {}
            self.count_requests = _bucket(options.requests_per_minute, now)

    def _of(self, model: str, now: float) -> _ModelBuckets:
        buckets = self._models.get(model)
        if buckets is None:  # a model's first request: its buckets start full
            buckets = self._models[model] = _ModelBuckets(self._options, now)
        buckets.refill(now)
        return buckets

    def admit(
        self, now: float, model: str, input_tokens: int, *, count_tokens: bool = False
    ) -> tuple[int, str] | None:
        """Charge one request and its input to ``model`` (its id, not an alias); None if
        admitted, else (retry-after, which limit)."""
        with self._lock:
            needs: list[tuple[_Bucket | None, float, str]]
            if count_tokens:
                if self.count_requests is not None:
                    self.count_requests.refill(now)
                needs = [(self.count_requests, 1.0, "requests")]
            else:
                buckets = self._of(model, now)
                needs = [
                    (buckets.requests, 1.0, "requests"),
                    (buckets.input, float(input_tokens), "input tokens"),
                    (buckets.output, 1.0, "output tokens"),
                ]
            for bucket, amount, name in needs:
                if bucket is not None and bucket.level < amount:
                    return max(1, math.ceil(bucket.wait_for(amount))), name
            for bucket, amount, name in needs:
                if bucket is not None and name != "output tokens":
                    bucket.level -= amount
            return None

    def spend_output(self, now: float, model: str, tokens: int) -> None:
        with self._lock:
            output = self._of(model, now).output
            if output is not None:
                output.level -= tokens

    def limit_of(self, reason: str) -> int | None:
        limit = {
            "requests": self._options.requests_per_minute,
            "input tokens": self._options.input_tokens_per_minute,
            "output tokens": self._options.output_tokens_per_minute,
        }.get(reason)
        return limit

    def headers(self, now: float, model: str = "", *, count_tokens: bool = False) -> dict[str, str]:
        """The anthropic-ratelimit-* headers of ``model``'s limits that are set (count_tokens:
        its own requests bucket)."""
        out: dict[str, str] = {}
        with self._lock:

            def put(name: str, bucket: _Bucket) -> None:
                out[f"anthropic-ratelimit-{name}-limit"] = str(bucket.limit)
                out[f"anthropic-ratelimit-{name}-remaining"] = str(max(0, math.floor(bucket.level)))
                out[f"anthropic-ratelimit-{name}-reset"] = rfc3339(bucket.reset_at(now))

            if count_tokens:
                if self.count_requests is not None:
                    self.count_requests.refill(now)
                    put("requests", self.count_requests)
                return out
            buckets = self._of(model, now)
            if buckets.requests is not None:
                put("requests", buckets.requests)
            if buckets.input is not None:
                put("input-tokens", buckets.input)
            if buckets.output is not None:
                put("output-tokens", buckets.output)
            # "tokens" reports whichever token limit is currently the most restrictive.
            token_buckets = [b for b in (buckets.input, buckets.output) if b is not None]
            if token_buckets:
                put("tokens", min(token_buckets, key=lambda b: b.level / b.limit))
        return out
