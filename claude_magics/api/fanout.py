"""Many requests at once, as fast as the API allows, learning its limits from its answers.

    results = run_concurrently(prompts, send=lambda p: client.request(..., max_retries=0),
                               on_outcome=keep)          # keep(outcome) runs in this thread

No semaphore size to tune: `AdaptiveConcurrency` starts small, grows while answers come back
(doubling per round trip, then one more per round trip), and learns from every refusal. A 429
whose ``anthropic-ratelimit-*`` headers show an exhausted per-minute budget pauses all sending
until ``retry-after``; a 429 without them is a concurrency limit, so the number in flight drops
to what the server evidently accepts; 529 and 5xx halve it, multiplicatively. While the headers
report what remains of the per-minute request and input-token budgets, sending is paced so the
budget is not overdrawn in the first place. Failed requests are retried (as the SDKs do) and
only reported failed after ``max_attempts``; nothing is dropped.

Threads, not asyncio: the caller blocks in a plain loop that also works inside a running Jupyter
event loop, and a kernel interrupt stops sending at once while the requests already in flight
finish and are reported (a second interrupt abandons them).
"""

from __future__ import annotations

import bisect
import heapq
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import APIConnectionError, APIError, APIStatusError
from .client import ApiObject, RateLimits
from .retry import backoff, retry_delay, should_retry

__all__ = ["AdaptiveConcurrency", "Outcome", "run_concurrently"]

T = TypeVar("T")

# At most this many round trips at a learned concurrency ceiling between two probes above it.
_MAX_PROBE_ROUNDS = 16
# Seconds within which a request sent later may reach the server first.
_REORDER_WINDOW = 0.02


@dataclass
class Outcome(Generic[T]):
    """The final answer for one item: a response, or the error after the last attempt."""

    position: int
    item: T
    response: ApiObject | None
    error: APIError | None
    attempts: int
    seconds: float


@dataclass
class _Budget:
    """A per-minute budget as a response's headers reported it (a token bucket)."""

    remaining: float
    limit: float
    seen_at: float  # monotonic time of the request that carried the headers (its send time)

    def level(self, now: float, spent_since: float) -> float:
        refill = (now - self.seen_at) * self.limit / 60.0
        return min(self.limit, self.remaining + refill) - spent_since

    def wait_for(self, amount: float, now: float, spent_since: float) -> float:
        short = amount - self.level(now, spent_since)
        return 0.0 if short <= 0 else short * 60.0 / self.limit


class AdaptiveConcurrency:
    """How many requests may be in flight and when the next may go, learned as answers come.

    ``initial``: in flight at the start; ``maximum``: a ceiling (the HTTP pool's size).
    """

    def __init__(self, initial: int = 16, maximum: int = 64) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(max(1, min(initial, self.maximum)))
        self.slow_start = True
        self.paused_until = 0.0
        #: The smallest in-flight count a concurrency 429 has been seen at, minus one.
        self.ceiling: int | None = None
        self._calm = 0  # answers since the last concurrency refusal, at the ceiling
        self._probe_rounds = 1  # round trips at the ceiling before trying one more
        self._probe_at = float("inf")  # when the ceiling was last raised by one, to try
        self._cut_at = float("-inf")  # when the ceiling was last lowered
        #: The retry-after of the latest 429 (what a refused request waits).
        self.last_retry_after = 1.0
        self._requests: _Budget | None = None
        self._tokens: _Budget | None = None
        # (send time, weight) of every dispatch, to know what was spent since a header's time.
        self._sent_times: list[float] = []
        self._sent_weights: list[float] = []
        self._weight_total: list[float] = [0.0]

    @property
    def current(self) -> int:
        return max(1, int(self.limit))

    def dispatched(self, now: float, weight: float) -> None:
        """Note a request sent at ``now`` that will use about ``weight`` input tokens."""
        self._sent_times.append(now)
        self._sent_weights.append(weight)
        self._weight_total.append(self._weight_total[-1] + weight)

    def _spent_since(self, moment: float) -> tuple[int, float]:
        start = bisect.bisect_right(self._sent_times, moment)
        count = len(self._sent_times) - start
        return count, self._weight_total[-1] - self._weight_total[start]

    def wait_time(self, now: float, weight: float) -> float:
        """Seconds until one more request of ``weight`` input tokens may be sent (0: now)."""
        wait = max(0.0, self.paused_until - now)
        if self._requests is not None:
            count, _ = self._spent_since(self._requests.seen_at)
            wait = max(wait, self._requests.wait_for(1.0, now, count))
        if self._tokens is not None and weight:
            _, tokens = self._spent_since(self._tokens.seen_at)
            wait = max(wait, self._tokens.wait_for(min(weight, self._tokens.limit), now, tokens))
        return wait

    def _read_budgets(self, headers: Mapping[str, str], sent_at: float) -> RateLimits:
        limits = RateLimits.from_headers(headers)
        fresher = self._requests is None or sent_at >= self._requests.seen_at
        if limits.requests_remaining is not None and limits.requests_limit and fresher:
            self._requests = _Budget(limits.requests_remaining, limits.requests_limit, sent_at)
        remaining = limits.input_tokens_remaining
        limit = limits.input_tokens_limit
        if remaining is None or not limit:
            remaining, limit = limits.tokens_remaining, limits.tokens_limit
        if (
            remaining is not None
            and limit
            and (self._tokens is None or sent_at >= self._tokens.seen_at)
        ):
            self._tokens = _Budget(remaining, limit, sent_at)
        return limits

    def succeeded(self, headers: Mapping[str, str], sent_at: float, *, probe: bool = True) -> None:
        """An answer came back. ``probe=False`` near the end of a run: a refused probe would
        hold its request back by ``retry-after`` when nothing else is left to send."""
        self._read_budgets(headers, sent_at)
        if self.slow_start:
            self.limit += 1.0  # one more per answer: doubles every round trip
        else:
            self.limit += 1.0 / self.limit  # one more per round trip
        if self.ceiling is not None:
            if self.limit >= self.ceiling:
                # Hold at the known limit, and now and then try one more: a cut may have come
                # from a passing limit or a noisy estimate. Probes that fail at the same level
                # come less and less often (every 1, 2, 4... round trips).
                self._calm += 1
                if probe and self._calm >= self._probe_rounds * self.ceiling:
                    self.ceiling += 1
                    self.limit = float(self.ceiling)  # the probe: one more, now
                    self._calm = 0
                    self._probe_at = time.monotonic()
            self.limit = min(self.limit, float(self.ceiling))
        self.limit = min(self.limit, float(self.maximum))

    def throttled(
        self,
        headers: Mapping[str, str],
        sent_at: float,
        in_flight_peak: int,
        now: float,
        answered_last_round: int | None = None,
    ) -> float:
        """A 429: returns how long this request waits before it is sent again.

        ``in_flight_peak``: the most requests (this one included) that were on the wire while
        it was on its way to the server. ``answered_last_round``: successful answers in the
        last round trip; while the server is full, that is how many it holds at once.
        """
        limits = self._read_budgets(headers, sent_at)
        retry_after = limits.retry_after if limits.retry_after is not None else 1.0
        retry_after = min(max(retry_after, 0.0), 60.0)
        self.last_retry_after = retry_after
        exhausted = (limits.requests_remaining is not None and limits.requests_remaining < 1) or (
            limits.input_tokens_remaining is not None and limits.input_tokens_remaining < 1
        )
        self.slow_start = False
        if exhausted or limits.requests_remaining is not None:
            # A per-minute budget ran out: nobody sends until it refills.
            self.paused_until = max(self.paused_until, now + retry_after)
        elif sent_at >= self._cut_at:
            # No budget reported: a limit on requests in flight. (A refusal of a request sent
            # before the last cut says nothing new: it was sent under the old limit.) The
            # server held at most the others we had on the wire when this one reached it.
            bound = max(1, in_flight_peak - 1)
            if answered_last_round:
                # Little's law: a full server answers as many per round trip as it holds. The
                # peak alone is loose while many refused requests are in the air; the answer
                # count is noisy (low while a burst of refusals passes): trust it at most to
                # halve the peak's bound.
                bound = min(bound, max(answered_last_round, (bound + 1) // 2))
            if self.ceiling is not None and bound >= self.ceiling - 1:
                if sent_at >= self._probe_at:  # refused at the top: the probe failed
                    self._probe_rounds = min(self._probe_rounds * 2, _MAX_PROBE_ROUNDS)
            else:
                self._probe_rounds = 1  # a new, lower limit: look for its edge soon
            self._probe_at = float("inf")
            self.ceiling = bound if self.ceiling is None else min(self.ceiling, bound)
            self.limit = float(min(self.current, self.ceiling))
            self._calm = 0
            self._cut_at = now
        return retry_after

    def overloaded(self) -> None:
        """A 529 or 5xx: back off multiplicatively."""
        self.slow_start = False
        self.limit = max(1.0, self.limit / 2.0)


class _Wire:
    """What is actually on the wire, counted by the worker threads from the moment each sends a
    request until its answer is back: the loop's own count lags behind both ways."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._log: list[tuple[float, int]] = []  # (send time, on the wire then, itself included)

    def sending(self) -> float:
        with self._lock:
            self._active += 1
            now = time.monotonic()
            self._log.append((now, self._active))
            return now

    def answered(self) -> None:
        with self._lock:
            self._active -= 1

    def peak(self, sent_at: float, window: float) -> int:
        """The most on the wire at a send within ``window`` seconds after ``sent_at``: a
        request sent a moment later may reach the server first (another connection)."""
        most = 1
        with self._lock:
            for moment, count in reversed(self._log):
                if moment < sent_at:
                    break
                if moment <= sent_at + window:
                    most = max(most, count)
        return most


def _retry_delay(error: APIError, attempt: int, initial: float, cap: float) -> float | None:
    """How long to wait before retrying after ``error`` (None: not retryable)."""
    if isinstance(error, APIConnectionError):
        return backoff(attempt, initial, cap)
    if not isinstance(error, APIStatusError) or not should_retry(error.status_code, error.headers):
        return None
    return retry_delay(attempt, error.headers, initial, cap)


def run_concurrently(
    items: Sequence[T],
    send: Callable[[T], ApiObject],
    *,
    on_outcome: Callable[[Outcome[T]], None],
    controller: AdaptiveConcurrency | None = None,
    weight: Callable[[T], float] | None = None,
    max_attempts: int = 8,
    first_alone: bool = False,
    initial_backoff: float = 0.5,
    max_backoff: float = 8.0,
) -> None:
    """Send every item, concurrently, and report each final outcome to ``on_outcome``.

    ``send`` runs in worker threads and must not retry by itself (``max_retries=0``): the
    retries are scheduled here, where they also teach the controller. ``on_outcome`` runs in the
    calling thread, one outcome at a time. ``weight`` estimates an item's input tokens for
    pacing against the input-token budget. ``first_alone`` sends the first item by itself and
    waits for its answer, so that a shared prompt prefix is in the cache before the rest go.
    Errors other than API errors (a missing key, a bug) stop everything and are raised.
    A KeyboardInterrupt stops sending, waits for the requests in flight (reported as usual)
    and is raised again.
    """
    control = controller or AdaptiveConcurrency()
    fresh: deque[int] = deque(range(len(items)))
    retries: list[tuple[float, int, int]] = []  # (ready at, position, attempt)
    attempts = [0] * len(items)
    started = [0.0] * len(items)
    done: queue.Queue[tuple[int, float, ApiObject | None, BaseException | None]] = queue.Queue()
    wire = _Wire()
    in_flight = 0
    rtt: float | None = None  # smoothed seconds from sending to an answer
    answers: deque[float] = deque()  # when recent successful answers came back
    warming = first_alone and len(items) > 1
    pool = ThreadPoolExecutor(max_workers=control.maximum, thread_name_prefix="claude-fanout")

    def work(position: int) -> None:
        sent_at = wire.sending()
        try:
            response = send(items[position])
        except BaseException as exc:  # reported to the loop, which decides
            wire.answered()
            done.put((position, sent_at, None, exc))
        else:
            wire.answered()
            done.put((position, sent_at, response, None))

    def settle(entry: tuple[int, float, ApiObject | None, BaseException | None]) -> None:
        nonlocal in_flight, warming, rtt
        position, sent_at, response, exc = entry
        in_flight -= 1
        now = time.monotonic()
        attempts[position] += 1
        if response is not None:
            warming = False
            answers.append(now)
            rtt = (now - sent_at) if rtt is None else 0.8 * rtt + 0.2 * (now - sent_at)
            # Probe only while there is work for longer than a refused probe would be held
            # back (retry-after plus a round trip): never at the very end.
            time_left = len(fresh) / control.current * rtt
            probe = time_left > control.last_retry_after + 2 * rtt
            control.succeeded(response.response_headers, sent_at, probe=probe)
            on_outcome(
                Outcome(
                    position,
                    items[position],
                    response,
                    None,
                    attempts[position],
                    now - started[position],
                )
            )
            return
        if not isinstance(exc, APIError):
            raise exc if exc is not None else RuntimeError("no response and no error")
        delay = _retry_delay(exc, attempts[position] - 1, initial_backoff, max_backoff)
        if isinstance(exc, APIStatusError) and exc.status_code == 429:
            peak = wire.peak(sent_at, _REORDER_WINDOW)
            while answers and rtt is not None and answers[0] < now - rtt:
                answers.popleft()
            delay = control.throttled(exc.headers, sent_at, peak, now, len(answers) or None)
        elif isinstance(exc, APIStatusError) and exc.status_code >= 500:
            control.overloaded()
        if delay is None or attempts[position] >= max_attempts:
            warming = False
            on_outcome(
                Outcome(
                    position,
                    items[position],
                    None,
                    exc,
                    attempts[position],
                    now - started[position],
                )
            )
            return
        heapq.heappush(retries, (now + delay, position, attempts[position]))

    def next_position(now: float) -> int | None:
        if retries and retries[0][0] <= now:
            return heapq.heappop(retries)[1]
        if fresh:
            return fresh.popleft()
        return None

    try:
        while fresh or retries or in_flight:
            now = time.monotonic()
            while in_flight < (1 if warming else control.current):
                ready = (retries and retries[0][0] <= now) or fresh
                if not ready:
                    break
                peek = retries[0][1] if retries and retries[0][0] <= now else fresh[0]
                item_weight = weight(items[peek]) if weight is not None else 0.0
                if control.wait_time(now, item_weight) > 0:
                    break
                position = next_position(now)
                assert position is not None
                if not started[position]:
                    started[position] = now
                in_flight += 1
                control.dispatched(now, item_weight)
                pool.submit(work, position)
            timeout = 0.25
            if retries:
                timeout = min(timeout, max(0.001, retries[0][0] - now))
            if (fresh or retries) and in_flight < control.current:
                peek_item = items[fresh[0]] if fresh else items[retries[0][1]]
                pace = control.wait_time(now, weight(peek_item) if weight is not None else 0.0)
                if pace > 0:
                    timeout = min(timeout, pace)
            try:
                entry = done.get(timeout=timeout)
            except queue.Empty:
                continue
            settle(entry)
            while True:  # everything else that has finished meanwhile
                try:
                    settle(done.get_nowait())
                except queue.Empty:
                    break
    except KeyboardInterrupt:
        fresh.clear()
        retries.clear()
        try:
            # Requests already sent are paid for: wait for them and report their answers.
            while in_flight:
                try:
                    entry = done.get(timeout=0.25)
                except queue.Empty:
                    continue
                if entry[2] is not None:
                    settle(entry)
                else:
                    in_flight -= 1  # failed: stays unsent, for the next run
        except KeyboardInterrupt:
            pass  # a second interrupt: leave them
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
