"""Many requests at once, as fast as the API allows, learning its limits from its answers.

    results = run_concurrently(prompts, send=lambda p: client.request(..., max_retries=0),
                               on_outcome=keep)          # keep(outcome) runs in this thread

No semaphore size to tune: `AdaptiveConcurrency` decides how many requests are in flight and
when the next one goes, from the answers alone.

- **Ramp.** 16 in flight at first, then one more per answer (doubling every round trip) until
  the server first refuses or is overloaded.
- **An unknown concurrency limit.** A 429 while no announced budget is spent means the server
  holds no more requests at once: the number in flight becomes how many of ours it evidently
  holds (the most successful requests of ours on the wire together lately). Probes above that
  come now and then, a step that doubles while it holds; after a refused probe it goes back to
  the level that held, and probes less often.
- **Refused for concurrency, sent again when a slot frees.** Such a row goes again as soon as an
  answer of ours frees a slot (first in line), or after ``retry-after`` if none comes first:
  the server's ``retry-after`` is advice for a client that cannot see its slots free.
- **Remembered.** With ``remember=(client, model)`` a run starts at the limit the last run with
  the same pair learned (and probes above it as seldom), instead of ramping into it again.
- **Announced budgets.** The ``anthropic-ratelimit-*`` headers describe each per-minute budget
  (requests, input tokens, output tokens) as a token bucket refilling at limit/60 a second. A
  request goes only when every bucket, as last reported less what was sent since, can pay for it
  and keep a small reserve: sending is spread at the budget's own rate instead of bursting into
  429s. A 429 that finds a budget spent doubles the reserve (the estimate was too bold); the
  refused request is paced like the others from the refusal's own headers, after its
  ``retry-after`` less the rounding to whole seconds (which is what shows a bucket overdrawn by
  output, charged after the fact), not after the whole rounded-up second.
- **Once per congestion episode.** Refusals of requests sent before the last reaction belong to
  the episode already answered: one cut per episode, not one per refused request. 529 and 5xx
  halve the number in flight, once per episode.

A 429 proves the server did not act, so a refused row is sent again (up to
``4 x max_attempts`` refusals), never dropped, and never sent twice at once; other failures
(529 and 5xx included) are retried as the SDKs retry and reported after ``max_attempts``.

Threads, not asyncio: a dispatcher thread sends, settles and retries; the caller's thread only
receives outcomes (so a slow ``on_outcome`` never idles the wire), in a plain loop that also
works inside a running Jupyter event loop. A kernel interrupt stops sending at once while the
requests already in flight finish and are reported (a second interrupt abandons them).
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from ..errors import APIConnectionError, APIError, APIStatusError
from .client import ApiObject, RateLimits
from .retry import backoff, retry_delay, should_retry

__all__ = ["AdaptiveConcurrency", "Learned", "Outcome", "Retry", "run_concurrently"]

T = TypeVar("T")

# At most this many round trips at a learned concurrency ceiling between two probes above it.
_MAX_PROBE_ROUNDS = 16
# Seconds within which a request sent later may reach the server first.
_REORDER_WINDOW = 0.02
# The reserve kept in an announced bucket, in requests' worth: at first, and at most.
_RESERVE = 1.0
_MAX_RESERVE = 8.0
# Dispatches remembered while no budget has been announced (the first report will be of one
# of the requests in flight).
_UNREPORTED_LOG = 4096
# Refusals (429) a row may meet before it is reported failed, per max_attempts.
_REFUSALS_PER_ATTEMPT = 4

# Concurrency limits learned by earlier runs, by owner (a client, held weakly) and key (a
# model): the next run with the same pair starts at the limit instead of ramping into it.
_LEARNED: weakref.WeakKeyDictionary[object, dict[Hashable, Learned]] = weakref.WeakKeyDictionary()


@dataclass
class Outcome(Generic[T]):
    """The final answer for one item: a response, or the error after the last attempt."""

    position: int
    item: T
    response: ApiObject | None
    error: APIError | None
    attempts: int
    seconds: float


class Learned(NamedTuple):
    """What a run learned of a concurrency limit, for the next run against it: the level that
    held, and how many round trips at it went between probes above it (more after each
    refused probe)."""

    limit: int
    probe_rounds: int = 1


class Retry(NamedTuple):
    """When a refused request may go again: after ``after`` seconds, or, with ``on_answer``,
    as soon as an answer of ours frees a slot on the server, if that comes first."""

    after: float
    on_answer: bool = False


@dataclass
class Dispatch:
    """One request as the controller counts it against the budgets: when it was let go and what
    it will cost (zeroed when the server refuses it: a refusal costs nothing)."""

    number: int  # the order let go in (times may tie)
    at: float
    requests: float
    input_tokens: float
    output_tokens: float

    def refund(self) -> None:
        self.requests = self.input_tokens = self.output_tokens = 0.0


@dataclass
class _Budget:
    """A per-minute budget as one answer's headers reported it: a token bucket."""

    remaining: float
    limit: float
    seen_at: float  # when the request that carried the headers was let go
    seen_number: int  # and its place in the order let go

    def wait_for(self, amount: float, now: float, spent: float) -> float:
        """Seconds until the bucket holds ``amount`` more than ``spent`` (sent since)."""
        refill = (now - self.seen_at) * self.limit / 60.0
        level = min(self.limit, self.remaining + refill) - spent
        short = min(amount, self.limit) - level
        return 0.0 if short <= 0 else short * 60.0 / self.limit


def _budgets_of(limits: RateLimits) -> dict[str, tuple[int, int]]:
    """The (remaining, limit) of each budget the headers announce, by what it counts."""
    found: dict[str, tuple[int, int]] = {}
    if limits.requests_remaining is not None and limits.requests_limit:
        found["requests"] = (limits.requests_remaining, limits.requests_limit)
    if limits.input_tokens_remaining is not None and limits.input_tokens_limit:
        found["input_tokens"] = (limits.input_tokens_remaining, limits.input_tokens_limit)
    if limits.output_tokens_remaining is not None and limits.output_tokens_limit:
        found["output_tokens"] = (limits.output_tokens_remaining, limits.output_tokens_limit)
    if (
        limits.tokens_remaining is not None
        and limits.tokens_limit
        and not {"input_tokens", "output_tokens"} & found.keys()
    ):
        # Only the combined figure (the tightest token budget, whichever it is): pace the
        # input by it, the one size known before sending.
        found["input_tokens"] = (limits.tokens_remaining, limits.tokens_limit)
    return found


class AdaptiveConcurrency:
    """How many requests may be in flight and when the next may go, learned as answers come.

    ``initial``: in flight at the start; ``maximum``: a ceiling (the HTTP pool's size);
    ``known``: a concurrency limit an earlier run learned (start there, no ramp, and probe as
    seldom as it did). Every method takes the time (``time.monotonic()`` seconds) from its
    caller.
    """

    def __init__(
        self, initial: int = 16, maximum: int = 64, *, known: Learned | None = None
    ) -> None:
        self.maximum = max(1, maximum)
        if known is not None:
            initial = known.limit
        self.limit = float(max(1, min(initial, self.maximum)))
        self.slow_start = known is None
        #: Nobody sends before this (a refusal whose budget cannot be paced).
        self.paused_until = 0.0
        #: How many requests in flight the server evidently accepts (a concurrency limit).
        self.ceiling: int | None = None if known is None else self.current
        #: Requests' worth kept in each announced bucket; doubles on each budget 429 episode.
        self.reserve = _RESERVE
        #: The retry-after of the latest 429 (what a request refused for concurrency waits).
        self.last_retry_after = 1.0
        #: Back-offs so far (concurrency cuts, overload halvings, budget reserve doublings).
        self.episodes = 0
        self._episode_at = float("-inf")  # the last back-off: refusals of earlier sends are its
        self._calm = 0  # answers at the ceiling since the last probe or cut
        # Round trips at the ceiling before trying one more.
        self._probe_rounds = 1 if known is None else min(known.probe_rounds, _MAX_PROBE_ROUNDS)
        self._probe_at = float("inf")  # when the ceiling was last raised, to try
        self._probe_from = 1  # the ceiling before that probe: the level known to hold
        self._step = 1  # how far the next probe goes above the ceiling
        self._episode_top = 1  # in flight when the current episode began, less one
        self._budgets: dict[str, _Budget] = {}
        self._log: deque[Dispatch] = deque()  # every dispatch since the oldest budget report
        self._dispatches = 0
        self._input_mean = 0.0
        self._output_mean: float | None = None

    @property
    def current(self) -> int:
        return max(1, int(self.limit))

    @property
    def learned(self) -> Learned | None:
        """The concurrency limit learned so far that held (not a probe still unanswered)."""
        if self.ceiling is None:
            return None
        # A probe holds once a round trip's worth of answers came at its level.
        probing = self._probe_at < float("inf") and self._calm < self.ceiling
        return Learned(self._probe_from if probing else self.ceiling, self._probe_rounds)

    # ---------------------------------------------------------------- budgets

    def dispatched(self, now: float, weight: float) -> Dispatch:
        """Note a request let go at ``now`` that will use about ``weight`` input tokens."""
        output = self._output_mean if self._output_mean is not None else 1.0
        dispatch = Dispatch(self._dispatches, now, 1.0, weight, output)
        self._dispatches += 1
        self._log.append(dispatch)
        if not self._budgets and len(self._log) > _UNREPORTED_LOG:
            self._log.popleft()  # no budget announced yet: only the recent ones can matter
        first = self._dispatches == 1
        self._input_mean = weight if first else 0.9 * self._input_mean + 0.1 * weight
        return dispatch

    def _spent_since(self, number: int) -> dict[str, float]:
        """What was let go after dispatch ``number``."""
        spent = {"requests": 0.0, "input_tokens": 0.0, "output_tokens": 0.0}
        for dispatch in reversed(self._log):  # in the order let go: the recent ones only
            if dispatch.number <= number:
                break
            spent["requests"] += dispatch.requests
            spent["input_tokens"] += dispatch.input_tokens
            spent["output_tokens"] += dispatch.output_tokens
        return spent

    def _needs(self, weight: float) -> dict[str, float]:
        """What one more request takes from each bucket, its reserve included."""
        output = self._output_mean if self._output_mean is not None else 1.0
        return {
            "requests": 1.0 + self.reserve,
            "input_tokens": weight + self.reserve * max(self._input_mean, weight),
            "output_tokens": output * (1.0 + self.reserve),
        }

    def wait_time(self, now: float, weight: float) -> float:
        """Seconds until one more request of ``weight`` input tokens may be sent (0: now)."""
        wait = max(0.0, self.paused_until - now)
        needs = self._needs(weight)
        for name, budget in self._budgets.items():
            spent = self._spent_since(budget.seen_number)[name]
            wait = max(wait, budget.wait_for(needs[name], now, spent))
        return wait

    def _read_budgets(self, headers: Mapping[str, str], dispatch: Dispatch) -> RateLimits:
        limits = RateLimits.from_headers(headers)
        for name, (remaining, limit) in _budgets_of(limits).items():
            known = self._budgets.get(name)
            if known is None or dispatch.number >= known.seen_number:  # the freshest wins
                self._budgets[name] = _Budget(
                    float(remaining), float(limit), dispatch.at, dispatch.number
                )
        if self._budgets:  # what no budget will ask about again
            oldest = min(b.seen_number for b in self._budgets.values())
            while self._log and self._log[0].number < oldest:
                self._log.popleft()
        return limits

    # ---------------------------------------------------------------- answers

    def succeeded(
        self,
        headers: Mapping[str, str],
        dispatch: Dispatch,
        now: float,
        *,
        output_tokens: int | None = None,
        probe: bool = True,
    ) -> None:
        """An answer came back for ``dispatch``. ``output_tokens``: what it generated (for
        the output budget). ``probe=False`` near the end of a run: a refused
        probe would hold its request back by ``retry-after`` when nothing else is left."""
        self._read_budgets(headers, dispatch)
        if output_tokens is not None:
            mean = self._output_mean
            self._output_mean = (
                float(output_tokens) if mean is None else 0.9 * mean + 0.1 * output_tokens
            )
        if self.slow_start:
            self.limit += 1.0  # one more per answer: doubles every round trip
        else:
            self.limit += 1.0 / self.limit  # one more per round trip
        if self.ceiling is not None:
            if self.limit >= self.ceiling:
                # Hold at the known limit, and now and then try above it: a cut may have come
                # from a passing limit or a low count. Each probe that holds for its rounds
                # makes the next step twice as big (the edge is found in a few round trips);
                # probes refused at the same level come less and less often.
                self._calm += 1
                if probe and self._calm >= self._probe_rounds * self.ceiling:
                    if self._probe_at < float("inf"):
                        self._step *= 2  # the last probe held
                    self._probe_from = self.ceiling
                    self.ceiling += self._step
                    self.limit = float(self.ceiling)  # the probe: now
                    self._calm = 0
                    self._probe_at = now
            self.limit = min(self.limit, float(self.ceiling))
        self.limit = min(self.limit, float(self.maximum))

    def _new_episode(self, sent_at: float, now: float) -> bool:
        """Whether a refusal of a request let go at ``sent_at`` is news: requests let go before
        the last back-off were sent under the old rules, and their refusals are its echo."""
        if sent_at < self._episode_at:
            return False
        self._episode_at = now
        self.episodes += 1
        self.slow_start = False
        return True

    def throttled(
        self,
        headers: Mapping[str, str],
        dispatch: Dispatch,
        now: float,
        *,
        holding: int,
    ) -> Retry:
        """A 429 for ``dispatch``: returns when that request may go again (it is also paced
        like any other).

        ``holding``: how many of our requests the server evidently holds at once (the most
        successful ones on the wire together lately).

        Refused for concurrency, a request may go again as soon as one of ours is answered
        (a slot is free), not only after ``retry-after``: that is advice for a client that
        cannot see the slots free; the refusal proves the server did not act on it.
        """
        sent_at = dispatch.at
        weight = dispatch.input_tokens
        dispatch.refund()
        limits = self._read_budgets(headers, dispatch)
        retry_after = limits.retry_after if limits.retry_after is not None else 1.0
        retry_after = min(max(retry_after, 0.0), 60.0)
        self.last_retry_after = retry_after
        announced = _budgets_of(limits)
        # Which budget turned it away: one with less left than this request takes (token
        # counts are our estimates: twice the estimate, to be sure).
        needs = {"requests": 1.0, "input_tokens": 2.0 * weight, "output_tokens": 1.0}
        spent = [name for name, (left, _) in announced.items() if left < max(1.0, needs[name])]
        if spent:
            # A per-minute budget ran out sooner than the pacing expected: keep more in hand.
            # Its own headers say when it refills; pacing holds this request until then. The
            # headers show no debt (output is charged after the fact and can overdraw), but
            # retry-after does, rounded up to whole seconds: wait that, less the rounding.
            if self._new_episode(sent_at, now):
                self.reserve = min(self.reserve * 2.0, _MAX_RESERVE)
            self.paused_until = max(self.paused_until, now + retry_after - 1.0)
            return Retry(0.0)
        if (limits.requests_remaining is not None or limits.tokens_remaining is not None) and (
            not announced
        ):
            # Budget headers without their limits: nothing to pace by; wait as told.
            self.paused_until = max(self.paused_until, now + retry_after)
            return Retry(retry_after)
        if self._new_episode(sent_at, now):
            # No budget spent: a limit on requests in flight, and the server was full with
            # the requests of ours it was holding.
            bound = max(1, holding)
            rounds, self._probe_rounds = self._probe_rounds, 1  # a new limit: find its edge
            if self.ceiling is not None and holding >= self.ceiling // 2:
                # Not a collapse (that would show as a count of half or less): a step.
                if sent_at >= self._probe_at:
                    # A probe above the known limit was refused: back to the level that held
                    # before it, and try again less often.
                    self._probe_rounds = min(rounds * 2, _MAX_PROBE_ROUNDS)
                    bound = self._probe_from
                elif self._calm >= self.ceiling:
                    # Refused at a level that held for a round trip: the limit moved a
                    # little, or a slot was freed a moment after its answer. One less.
                    bound = max(1, self.ceiling - 1)
            self._probe_at = float("inf")
            self._step = 1
            self._episode_top = max(1, self.current - 1)  # refused at this many: fewer hold
            self.ceiling = min(bound, self._episode_top)
            self.limit = float(min(self.current, self.ceiling))
            self._calm = 0
        elif self.ceiling is not None and holding > self.ceiling:
            # The same episode: not another cut, a better count. Answers of the requests the
            # server took are still coming back as the first refusals arrive.
            self.ceiling = min(holding, self._episode_top)
            self.limit = float(self.ceiling)
        return Retry(retry_after, on_answer=True)

    def overloaded(self, dispatch: Dispatch, now: float) -> None:
        """A 529 or 5xx: halve the number in flight, once per episode."""
        dispatch.refund()
        if self._new_episode(dispatch.at, now):
            self.limit = max(1.0, self.limit / 2.0)


@dataclass
class _Attempt:
    """One request on the wire, as its worker thread saw it."""

    sent: float
    answered: float | None = None
    failed: bool = False


class _Wire:
    """Every attempt in the order the workers sent them, and when each was answered: what was
    actually on the wire (the loop's own count lags behind both ways)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: list[_Attempt] = []
        self._longest = 0.0  # the longest round trip so far

    def sending(self) -> _Attempt:
        attempt = _Attempt(time.monotonic())
        with self._lock:
            self._attempts.append(attempt)
        return attempt

    def answered(self, attempt: _Attempt, *, failed: bool) -> None:
        now = time.monotonic()
        with self._lock:
            attempt.answered = now
            attempt.failed = failed
            self._longest = max(self._longest, now - attempt.sent)

    def held_together(self, since: float, lasting: float) -> int:
        """The most of our requests answered successfully since ``since`` that were on the
        wire together for at least ``lasting`` seconds: a server with a concurrency limit held
        at least as many. (Briefer overlaps are a busy client noting an answer late.)"""
        events: list[tuple[float, int]] = []
        with self._lock:
            for attempt in reversed(self._attempts):
                if attempt.sent < since - self._longest:
                    break  # answered before ``since``, like everything older
                answered = attempt.answered
                if answered is not None and answered >= since and not attempt.failed:
                    events += [(attempt.sent, 1), (answered, -1)]
        most = count = 0
        reached = 0.0
        for moment, change in sorted(events):  # at a tie an answer comes before a send
            if count > most and moment - reached >= lasting:
                most = count
            count += change
            reached = moment
        return most


def _retry_delay(error: APIError, attempt: int, initial: float, cap: float) -> float | None:
    """How long to wait before retrying after ``error`` (None: not retryable)."""
    if isinstance(error, APIConnectionError):
        return backoff(attempt, initial, cap)
    if not isinstance(error, APIStatusError) or not should_retry(error.status_code, error.headers):
        return None
    return retry_delay(attempt, error.headers, initial, cap)


def _output_tokens(response: ApiObject) -> int | None:
    usage = response.get("usage")
    tokens = usage.get("output_tokens") if isinstance(usage, Mapping) else None
    return tokens if isinstance(tokens, int) else None


_Done = tuple[int, Dispatch, _Attempt, ApiObject | None, BaseException | None]
# What the dispatcher hands the calling thread: an outcome, an error to raise, or the end.
_Handed = Outcome[T] | BaseException | None


class _FanOut(Generic[T]):
    """The dispatcher: runs in a thread of its own so that sending never waits for the caller's
    ``on_outcome`` (a database write, a progress bar), and owns every piece of state."""

    def __init__(
        self,
        items: Sequence[T],
        send: Callable[[T], ApiObject],
        control: AdaptiveConcurrency,
        weight: Callable[[T], float] | None,
        max_attempts: int,
        first_alone: bool,
        initial_backoff: float,
        max_backoff: float,
    ) -> None:
        self.items = items
        self.send = send
        self.control = control
        self.weight = weight
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.fresh: deque[int] = deque(range(len(items)))
        self.retries: list[tuple[float, int]] = []  # (ready at, position)
        # Refused for concurrency: each goes again when an answer of ours frees a slot, or
        # at its retry-after, whichever comes first (retry-after, position).
        self.parked: list[tuple[float, int]] = []
        self.attempts = [0] * len(items)
        self.failures = [0] * len(items)  # failed attempts other than refusals
        self.refusals = [0] * len(items)  # 429s
        self.started = [0.0] * len(items)
        self.done: queue.Queue[_Done] = queue.Queue()
        self.handed: queue.Queue[_Handed[T]] = queue.Queue()
        self.stopping = threading.Event()
        self.wire = _Wire()
        self.in_flight = 0
        self.rtt: float | None = None  # smoothed seconds from sending to an answer
        self.warming = first_alone and len(items) > 1
        self.pool = ThreadPoolExecutor(
            max_workers=control.maximum, thread_name_prefix="claude-fanout"
        )

    def _work(self, position: int, dispatch: Dispatch) -> None:
        attempt = self.wire.sending()
        try:
            response = self.send(self.items[position])
        except BaseException as exc:  # reported to the dispatcher, which decides
            self.wire.answered(attempt, failed=True)
            self.done.put((position, dispatch, attempt, None, exc))
        else:
            self.wire.answered(attempt, failed=False)
            self.done.put((position, dispatch, attempt, response, None))

    def _hand(self, position: int, response: ApiObject | None, error: APIError | None) -> None:
        seconds = time.monotonic() - self.started[position]
        outcome = Outcome(
            position, self.items[position], response, error, self.attempts[position], seconds
        )
        self.handed.put(outcome)

    def _settle(self, entry: _Done) -> None:
        position, dispatch, attempt, response, exc = entry
        control = self.control
        self.in_flight -= 1
        now = time.monotonic()
        self.attempts[position] += 1
        if response is not None:
            self.warming = False
            took = (attempt.answered or now) - attempt.sent
            self.rtt = rtt = took if self.rtt is None else 0.8 * self.rtt + 0.2 * took
            # Probe only while there is work for twice as long as a refused probe would be
            # held back (retry-after plus a round trip): never near the end.
            time_left = len(self.fresh) / control.current * rtt
            probe = time_left > 2 * (control.last_retry_after + rtt)
            control.succeeded(
                response.response_headers,
                dispatch,
                now,
                output_tokens=_output_tokens(response),
                probe=probe,
            )
            if self.parked:  # a slot of ours is free: the row refused longest ago takes it
                heapq.heappush(self.retries, (now, heapq.heappop(self.parked)[1]))
            self._hand(position, response, None)
            return
        if not isinstance(exc, APIError):
            raise exc if exc is not None else RuntimeError("no response and no error")
        if self.stopping.is_set():
            return  # interrupted: the row stays unsent, for the next run
        status = exc.status_code if isinstance(exc, APIStatusError) else None
        if status == 429:
            # Turned away by a limit we pace against: the server did not act, and the row
            # goes again (within a cap of its own, should the limit never let it through).
            self.refusals[position] += 1
        else:
            self.failures[position] += 1
        failures = self.failures[position]
        delay = _retry_delay(exc, max(0, failures - 1), self.initial_backoff, self.max_backoff)
        on_answer = False
        if status == 429:
            assert isinstance(exc, APIStatusError)
            rtt = self.rtt or 0.0
            held = self.wire.held_together(attempt.sent - 2 * rtt, lasting=rtt / 20)
            delay, on_answer = control.throttled(exc.headers, dispatch, now, holding=held)
        elif status is not None and status >= 500:
            control.overloaded(dispatch, now)
        gave_up = (
            failures >= self.max_attempts
            or self.refusals[position] >= _REFUSALS_PER_ATTEMPT * self.max_attempts
        )
        if delay is None or gave_up:
            self.warming = False
            self._hand(position, None, exc)
            return
        heapq.heappush(self.parked if on_answer else self.retries, (now + delay, position))

    def _next_ready(self, now: float) -> int | None:
        if self.retries and self.retries[0][0] <= now:
            return self.retries[0][1]
        return self.fresh[0] if self.fresh else None

    def _fill(self) -> float:
        """Send what may go now; returns how long until the next may (0: none is waiting for
        time, only for a slot or for nothing)."""
        now = time.monotonic()
        while self.parked and self.parked[0][0] <= now:  # retry-after came first
            heapq.heappush(self.retries, heapq.heappop(self.parked))
        allowed = 1 if self.warming else self.control.current
        while self.in_flight < allowed:
            position = self._next_ready(now)
            if position is None:
                return 0.0
            weight = self.weight(self.items[position]) if self.weight is not None else 0.0
            pace = self.control.wait_time(now, weight)
            if pace > 0:
                return pace
            if self.retries and self.retries[0][1] == position and self.retries[0][0] <= now:
                heapq.heappop(self.retries)
            else:
                self.fresh.popleft()
            if not self.started[position]:
                self.started[position] = now
            self.in_flight += 1
            self.pool.submit(self._work, position, self.control.dispatched(now, weight))
        return 0.0

    def run(self) -> None:
        """The dispatcher thread: send, settle, retry, until all is answered (or, once
        stopping, until what is in flight has come back)."""
        try:
            while self.fresh or self.retries or self.parked or self.in_flight:
                if self.stopping.is_set():
                    self.fresh.clear()
                    self.retries.clear()
                    self.parked.clear()
                    pace = 0.0
                else:
                    pace = self._fill()
                timeout = 0.25
                for waiting in (self.retries, self.parked):
                    if waiting:
                        timeout = min(timeout, max(0.001, waiting[0][0] - time.monotonic()))
                if pace > 0:
                    timeout = min(timeout, max(0.001, pace))
                try:
                    self._settle(self.done.get(timeout=timeout))
                except queue.Empty:
                    continue
                while True:  # everything else that has finished meanwhile
                    try:
                        self._settle(self.done.get_nowait())
                    except queue.Empty:
                        break
        except BaseException as exc:  # handed to the calling thread, which raises it
            self.stopping.set()
            self.handed.put(exc)
        finally:
            self.handed.put(None)
            self.pool.shutdown(wait=False, cancel_futures=True)

    def next_handed(self) -> _Handed[T]:
        while True:  # a timeout, so that a KeyboardInterrupt is seen at once
            try:
                return self.handed.get(timeout=0.25)
            except queue.Empty:
                continue


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
    remember: tuple[object, Hashable] | None = None,
) -> None:
    """Send every item, concurrently, and report each final outcome to ``on_outcome``.

    ``send`` runs in worker threads and must not retry by itself (``max_retries=0``): the
    retries are scheduled by a dispatcher thread, where they also teach the controller.
    ``on_outcome`` runs in the calling thread, one outcome at a time, while sending goes on.
    ``weight`` estimates an item's input tokens for pacing against the input-token budget.
    ``first_alone`` sends the first item by itself and waits for its answer, so that a shared
    prompt prefix is in the cache before the rest go. ``remember``: (owner, key), such as
    (client, model): start at the concurrency limit the last run with the same pair learned,
    and leave what this one learns for the next. Errors other than API errors (a missing
    key, a bug, or one raised by ``on_outcome``) stop everything and are raised. A
    KeyboardInterrupt stops sending, waits for the requests in flight (their answers are
    reported as usual; their failures are not: those rows stay unsent) and is raised again.
    """
    if controller is None:
        known = _LEARNED.get(remember[0], {}).get(remember[1]) if remember else None
        controller = AdaptiveConcurrency(known=known)
    fan = _FanOut(
        items,
        send,
        controller,
        weight,
        max_attempts,
        first_alone,
        initial_backoff,
        max_backoff,
    )
    dispatcher = threading.Thread(target=fan.run, name="claude-fanout-dispatch", daemon=True)
    dispatcher.start()
    try:
        while (handed := fan.next_handed()) is not None:
            if isinstance(handed, BaseException):
                raise handed
            on_outcome(handed)
    except KeyboardInterrupt:
        fan.stopping.set()
        try:
            # Requests already sent are paid for: wait for them and report their answers.
            while (handed := fan.next_handed()) is not None:
                if isinstance(handed, Outcome):
                    on_outcome(handed)
        except KeyboardInterrupt:
            pass  # a second interrupt: leave them
        raise
    finally:
        fan.stopping.set()
        learned = controller.learned
        if remember is not None and learned is not None:
            _LEARNED.setdefault(remember[0], {})[remember[1]] = learned
