"""When a failed request is tried again, and after how long: the one set of retry rules.

    if should_retry(response.status_code, response.headers):
        time.sleep(retry_delay(attempt, response.headers))

The rules of the official SDKs: obey ``x-should-retry`` when the server sends it; otherwise
retry 408, 409, 429, every 5xx, connection errors and timeouts. Wait what the server asks
(``retry-after-ms`` or ``retry-after``, when between 0 and 60 s), else an exponential backoff
from 0.5 s capped at 8 s, with jitter.

Policy ``"unsent"`` is for requests that must never be sent twice (creating a batch): only
failures that prove the server did not act (a connect error, 429, 529) may be retried.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from typing import Literal

__all__ = [
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "RETRYABLE_STATUS",
    "RetryPolicy",
    "backoff",
    "connection_retry_allowed",
    "retry_after_seconds",
    "retry_delay",
    "should_retry",
]

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: Statuses retried below 500 (every 5xx is retried too).
RETRYABLE_STATUS = frozenset({408, 409, 429})
# 429 and 529 are the only answers that prove a request was turned away untouched.
_TURNED_AWAY = frozenset({429, 529})

# "always": any retryable failure is retried (creating a message is safe to repeat).
# "unsent": only failures that prove the server did not act (connect errors, 429, 529).
RetryPolicy = Literal["always", "unsent"]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """What the server asked us to wait, from ``retry-after-ms`` or ``retry-after``."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def should_retry(
    status_code: int, headers: Mapping[str, str], policy: RetryPolicy = "always"
) -> bool:
    """Whether a response with ``status_code`` and ``headers`` may be sent again."""
    if policy == "unsent" and status_code not in _TURNED_AWAY:
        return False
    header = headers.get("x-should-retry")
    if header == "true":
        return True
    if header == "false":
        return False
    return status_code in RETRYABLE_STATUS or status_code >= 500


def connection_retry_allowed(policy: RetryPolicy, unsent: bool) -> bool:
    """Whether a connection failure may be retried: always, unless it may have reached the
    server under the ``"unsent"`` policy."""
    return policy == "always" or unsent


def backoff(
    attempt: int, initial: float = INITIAL_RETRY_DELAY, cap: float = MAX_RETRY_DELAY
) -> float:
    """Exponential backoff for retry ``attempt`` (0-based), with up to 25% jitter below."""
    return min(initial * 2.0**attempt, cap) * (1.0 - 0.25 * random.random())


def retry_delay(
    attempt: int,
    headers: Mapping[str, str] | None = None,
    initial: float = INITIAL_RETRY_DELAY,
    cap: float = MAX_RETRY_DELAY,
) -> float:
    """How long to wait before retry ``attempt``: the server's ask when it is 0-60 s, else
    :func:`backoff`."""
    if headers is not None:
        asked = retry_after_seconds(headers)
        if asked is not None and 0 <= asked <= 60:
            return asked
    return backoff(attempt, initial, cap)
