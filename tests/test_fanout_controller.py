"""The decisions of the realtime fan-out's controller (`AdaptiveConcurrency`), on a fake clock:
every method takes the time from its caller, so each test states the moments itself.

Ramp (slow start doubling), one back-off per congestion episode (429 without a spent budget,
529), probes above a learned concurrency limit, and pacing by the budgets the
``anthropic-ratelimit-*`` headers announce. The same controller driving real requests against
the emulator is in tests/test_batch_realtime.py."""

from __future__ import annotations

import pytest

from claude_magics.api.fanout import (
    AdaptiveConcurrency,
    Dispatch,
    Learned,
    Retry,
    _Attempt,
    _Wire,
)

NO_BUDGET = {"retry-after": "1"}  # what a concurrency 429 carries


def budget(kind: str, remaining: int, limit: int, **more: str) -> dict[str, str]:
    return {
        f"anthropic-ratelimit-{kind}-limit": str(limit),
        f"anthropic-ratelimit-{kind}-remaining": str(remaining),
        f"anthropic-ratelimit-{kind}-reset": "2026-12-02T12:00:00Z",
        **more,
    }


def answer_all(control: AdaptiveConcurrency, n: int, now: float, headers: dict[str, str]) -> None:
    for _ in range(n):
        control.succeeded(headers, control.dispatched(now - 0.2, 0.0), now)


def ramped_to(n: int) -> AdaptiveConcurrency:
    control = AdaptiveConcurrency(initial=16, maximum=64)
    answer_all(control, n - 16, 0.2, {})
    assert control.current == n
    return control


def test_slow_start_doubles_every_round_trip() -> None:
    control = AdaptiveConcurrency(initial=4, maximum=64)
    assert control.current == 4
    answer_all(control, 4, 0.2, {})  # a round trip: every request answered
    assert control.current == 8
    answer_all(control, 8, 0.4, {})
    assert control.current == 16
    answer_all(control, 64, 0.6, {})
    assert control.current == 64  # never past the maximum (the HTTP pool)


def test_a_concurrency_429_cuts_to_what_the_server_held_once_per_episode() -> None:
    control = ramped_to(32)
    burst = [control.dispatched(0.20, 0.0) for _ in range(32)]  # sent before any refusal
    # It may go again when a slot of ours frees, or after retry-after at the latest.
    assert control.throttled(NO_BUDGET, burst[20], 0.41, holding=20) == Retry(1.0, True)
    assert (control.ceiling, control.current, control.episodes) == (20, 20, 1)
    assert not control.slow_start
    # The rest of the burst comes back refused: the same episode, no second cut, even when a
    # count taken while answers were still on their way says fewer.
    for dispatch in burst[21:]:
        control.throttled(NO_BUDGET, dispatch, 0.42, holding=14)
    assert (control.ceiling, control.current, control.episodes) == (20, 20, 1)
    # A refusal of a request sent after the cut is news: a new episode.
    later = control.dispatched(0.50, 0.0)
    control.throttled(NO_BUDGET, later, 0.70, holding=12)
    assert control.episodes == 2 and control.ceiling == 12


def test_a_known_limit_is_the_start_and_is_probed_above() -> None:
    control = AdaptiveConcurrency(known=Learned(20))
    assert (control.current, control.ceiling, control.slow_start) == (20, 20, False)
    assert control.learned == Learned(20, 1)
    answer_all(control, 20, 0.2, {})  # a calm round trip at the limit: a probe above it
    assert control.current == 21
    assert control.learned == Learned(20, 1)  # not yet shown to hold
    answer_all(control, 21, 0.4, {})  # a round trip at the probe's level: it held
    assert control.learned == Learned(21, 1)
    fresh = AdaptiveConcurrency()
    assert fresh.learned is None and fresh.current == 16


def test_a_limit_whose_probes_were_refused_is_probed_as_seldom_next_time() -> None:
    control = ramped_to(32)
    control.throttled(NO_BUDGET, control.dispatched(0.2, 0.0), 0.4, holding=20)
    answer_all(control, 20, 0.6, {})
    probe = control.dispatched(0.65, 0.0)
    control.throttled(NO_BUDGET, probe, 0.85, holding=20)  # refused: probe half as often
    assert control.learned == Learned(20, 2)
    again = AdaptiveConcurrency(known=control.learned)
    answer_all(again, 20, 0.2, {})
    assert again.current == 20  # one calm round trip is not enough now
    answer_all(again, 20, 0.4, {})
    assert again.current == 21


def test_the_count_of_an_episode_grows_as_the_held_answers_arrive() -> None:
    control = ramped_to(32)
    burst = [control.dispatched(0.20, 0.0) for _ in range(32)]
    control.throttled(NO_BUDGET, burst[25], 0.40, holding=16)  # the previous round's answers
    assert control.ceiling == 16
    control.throttled(NO_BUDGET, burst[26], 0.41, holding=20)  # this round's, now back
    assert control.ceiling == 20 and control.episodes == 1
    control.throttled(NO_BUDGET, burst[27], 0.42, holding=40)  # never above what was refused
    assert control.ceiling == 31


def test_probes_above_the_limit_step_up_and_fall_back_when_refused() -> None:
    control = ramped_to(32)
    control.throttled(NO_BUDGET, control.dispatched(0.2, 0.0), 0.4, holding=18)
    assert control.ceiling == 18
    answer_all(control, 18, 0.6, {})  # a calm round trip at the ceiling: try one more
    assert control.ceiling == 19
    answer_all(control, 19, 0.8, {})  # that held: the next step is twice as big
    assert control.ceiling == 21
    probe = control.dispatched(0.85, 0.0)
    control.throttled(NO_BUDGET, probe, 1.05, holding=20)  # the probe is refused
    assert control.ceiling == 19 and control.current == 19  # back to the level that held
    # And the next probe waits twice as long: two calm round trips, not one.
    answer_all(control, 19, 1.25, {})
    assert control.ceiling == 19
    answer_all(control, 19, 1.45, {})
    assert control.ceiling == 20


def test_no_probe_when_the_caller_says_the_end_is_near() -> None:
    control = ramped_to(32)
    control.throttled(NO_BUDGET, control.dispatched(0.2, 0.0), 0.4, holding=20)
    for _ in range(100):
        control.succeeded({}, control.dispatched(0.5, 0.0), 0.7, probe=False)
    assert control.ceiling == 20


def test_a_refusal_at_a_level_that_held_steps_down_by_one() -> None:
    control = ramped_to(32)
    control.throttled(NO_BUDGET, control.dispatched(0.2, 0.0), 0.4, holding=20)
    answer_all(control, 10, 0.6, {})
    # Refused at the ceiling after it held (a slot freed a moment late): one less, not the
    # noisy count of a busy machine.
    control.throttled(NO_BUDGET, control.dispatched(0.7, 0.0), 0.9, holding=20)
    assert control.ceiling == 19
    answer_all(control, 30, 1.1, {})
    # ...unless the count says the limit fell by half or more.
    control.throttled(NO_BUDGET, control.dispatched(1.2, 0.0), 1.4, holding=6)
    assert control.ceiling == 6


def test_overload_halves_once_per_episode() -> None:
    control = ramped_to(32)
    burst = [control.dispatched(1.0, 0.0) for _ in range(10)]
    for dispatch in burst:
        control.overloaded(dispatch, 1.2)
    assert control.current == 16 and control.episodes == 1
    control.overloaded(control.dispatched(1.3, 0.0), 1.5)
    assert control.current == 8 and control.episodes == 2


def test_requests_are_spread_at_the_announced_rate() -> None:
    control = AdaptiveConcurrency()
    # 600 a minute (ten a second), nothing left when this request was let go at t=10.
    first = control.dispatched(10.0, 0.0)
    control.succeeded(budget("requests", 0, 600), first, 10.2)
    # One request and the reserve (one more) must have refilled: 0.2 s after the report.
    assert control.wait_time(10.0, 0.0) == pytest.approx(0.2)
    assert control.wait_time(10.2, 0.0) == pytest.approx(0.0, abs=1e-9)
    # Each request let go since the report is counted: the next one waits 0.1 s more.
    control.dispatched(10.2, 0.0)
    assert control.wait_time(10.2, 0.0) == pytest.approx(0.1)
    control.dispatched(10.3, 0.0)
    assert control.wait_time(10.3, 0.0) == pytest.approx(0.1)
    # A full bucket lets a burst through at once.
    other = AdaptiveConcurrency()
    other.succeeded(budget("requests", 500, 600), other.dispatched(0.0, 0.0), 0.2)
    for _ in range(400):
        assert other.wait_time(0.2, 0.0) == 0.0
        other.dispatched(0.2, 0.0)


def test_input_tokens_are_paced_by_each_request_s_weight() -> None:
    control = AdaptiveConcurrency()
    # 60,000 input tokens a minute: 1,000 a second; 3,000 left.
    control.succeeded(budget("input-tokens", 3000, 60000), control.dispatched(0.0, 500), 0.2)
    assert control.wait_time(0.0, 500) == 0.0
    for _ in range(3):
        control.dispatched(0.0, 500)
    assert control.wait_time(0.0, 500) == 0.0  # 1,500 left
    control.dispatched(0.0, 500)
    # 1,000 left: this request (500) and the reserve (one request's worth) fit exactly.
    assert control.wait_time(0.0, 500) == 0.0
    control.dispatched(0.0, 500)
    assert control.wait_time(0.0, 500) == pytest.approx(0.5)  # 500 left, 500 short
    # A bigger request needs more, and a reserve of its own size: 3,500 short.
    assert control.wait_time(0.0, 2000) == pytest.approx(3.5)


def test_output_tokens_are_paced_by_what_answers_have_taken() -> None:
    control = AdaptiveConcurrency()
    headers = budget("output-tokens", 0, 6000)  # 100 a second, spent
    control.succeeded(headers, control.dispatched(0.0, 0.0), 0.2, output_tokens=50)
    # One more answer of about 50 tokens and the reserve: a second.
    assert control.wait_time(0.0, 0.0) == pytest.approx(1.0)


def test_a_budget_429_is_paced_from_its_headers_not_held_for_retry_after() -> None:
    control = ramped_to(20)
    headers = budget("requests", 0, 1200, **{"retry-after": "1"})  # 20 a second
    burst = [control.dispatched(5.0, 0.0) for _ in range(16)]
    waits = [control.throttled(headers, dispatch, 5.01, holding=0) for dispatch in burst]
    assert waits == [Retry(0.0)] * 16  # each goes as soon as the pacing allows, not a slot
    assert control.ceiling is None  # not a concurrency limit
    assert control.reserve == 2.0 and control.episodes == 1  # once for the whole burst
    # The refused requests cost nothing: the bucket is as the refusal reported it, plus refill.
    # One request and two in reserve: 0.15 s after the refused request was let go, not the
    # whole second retry-after says (it is rounded up).
    assert control.wait_time(5.01, 0.0) == pytest.approx(0.14)
    assert control.wait_time(5.15, 0.0) == pytest.approx(0.0, abs=1e-9)


def test_a_429_with_budget_to_spare_is_a_concurrency_limit() -> None:
    control = ramped_to(32)
    headers = budget("requests", 500, 1200, **{"retry-after": "1"})
    control.throttled(headers, control.dispatched(1.0, 0.0), 1.2, holding=20)
    assert control.ceiling == 20 and control.reserve == 1.0


def test_budget_headers_without_their_limits_pause_everyone_for_retry_after() -> None:
    control = AdaptiveConcurrency()
    headers = {"anthropic-ratelimit-requests-remaining": "0", "retry-after": "2"}
    assert control.throttled(headers, control.dispatched(0.0, 0.0), 1.0, holding=3) == Retry(2.0)
    assert control.wait_time(1.0, 0.0) == pytest.approx(2.0)


def test_a_refund_gives_the_budget_back() -> None:
    control = AdaptiveConcurrency()
    control.succeeded(budget("requests", 3, 60), control.dispatched(0.0, 0.0), 0.1)
    sent = [control.dispatched(0.1, 0.0) for _ in range(2)]
    assert control.wait_time(0.1, 0.0) > 0  # one left, and one in reserve
    sent[0].refund()
    assert control.wait_time(0.1, 0.0) == 0.0
    assert isinstance(sent[0], Dispatch) and sent[0].requests == 0.0


def test_the_combined_tokens_header_is_not_taken_for_the_input_budget() -> None:
    """Under an output limit alone, ``tokens-*`` reports the output bucket: pacing the input
    by it would count each request's input against the output budget."""
    control = AdaptiveConcurrency()
    headers = {**budget("output-tokens", 50, 6000), **budget("tokens", 50, 6000)}
    control.succeeded(headers, control.dispatched(0.0, 500), 0.2, output_tokens=5)
    assert control.wait_time(0.2, 500) == 0.0  # 50 output tokens left: enough for 5 and 5
    # A server that gives only the combined figure: input is paced by it.
    alone = AdaptiveConcurrency()
    alone.succeeded(budget("tokens", 50, 6000), alone.dispatched(0.0, 500), 0.2)
    assert alone.wait_time(0.0, 500) > 0


def test_a_budget_in_debt_waits_what_retry_after_says_less_its_rounding() -> None:
    control = AdaptiveConcurrency()
    # Output is charged after the fact: the headers say 0 left, retry-after says 5 s of debt.
    headers = budget("output-tokens", 0, 6000, **{"retry-after": "5"})
    assert control.throttled(headers, control.dispatched(1.0, 0.0), 1.2, holding=0) == Retry(0.0)
    assert control.wait_time(1.2, 0.0) == pytest.approx(4.0)


def test_what_the_server_held_is_counted_from_overlaps_that_lasted() -> None:
    """Twenty requests held together for a round trip, one more sent a moment before one of
    them was noted answered (a busy client), and one refused: twenty, not twenty-one."""
    wire = _Wire()
    held = [_Attempt(sent=1.0 + i * 0.001, answered=1.2 + i * 0.001) for i in range(20)]
    late = _Attempt(sent=1.1995, answered=1.40)  # half a millisecond before the first answer
    refused = _Attempt(sent=1.05, answered=1.25, failed=True)
    wire._attempts = [*held, refused, late]
    assert wire.held_together(since=1.0, lasting=0.01) == 20
    assert wire.held_together(since=1.0, lasting=0.0) == 21  # what a plain count would say
