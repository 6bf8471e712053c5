"""DataFrame jobs in realtime mode: concurrent requests that learn the API's limits, keep every
answer, and give failed rows their status."""

from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd
import pytest
from batch_support import LABELS, REVIEWS, Jobs, user_text

from claude_magics.api.client import Client
from claude_magics.api.fanout import run_concurrently
from claude_magics.emulator import Emulator
from claude_magics.errors import ClaudeError, MissingAPIKeyError
from claude_magics.jobs import sending
from claude_magics.jobs.entry import resolve_mode
from claude_magics.jobs.sending import JobInterrupted
from claude_magics.jobs.tasks import extract_task, label_task, map_task

MODEL = "claude-sonnet-4-6"


def rows(n: int, label: str = "positive") -> pd.DataFrame:
    return pd.DataFrame({"review": [f"Review {i}: {label}" for i in range(n)]})


def test_label_end_to_end(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": REVIEWS}, index=list("vwxyz"))
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    labels = job.result(frame)
    assert labels.tolist() == ["positive", "negative", "neutral", "positive", "negative"]
    assert len(jobs.messages()) == 4  # the duplicate was sent once
    assert not jobs.creates()
    calls = jobs.ledger.calls()
    assert calls and {c.kind for c in calls} == {"realtime"}
    assert sum(c.cost_usd or 0 for c in calls) == pytest.approx(
        job.result(frame, usage=True)["cost_usd"].sum()
    )


def test_extract_end_to_end(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    job = jobs.run(frame, "review", extract_task({"product": str, "stars": int}), mode="realtime")
    table = job.result(frame)
    assert list(table.columns) == ["product", "stars", "claude_status"]
    assert str(table["stars"].dtype) == "Int64"
    assert (table["claude_status"] == "succeeded").all()
    # Values, not only columns: every row's fields are there (the emulator fills both).
    assert table["product"].notna().all() and table["stars"].notna().all()


def test_cached_prefix_goes_first_then_everyone_reads_it(jobs: Jobs) -> None:
    # Long enough for the job model to cache (Haiku 5.5: 4,096 tokens at least).
    template = "You label reviews for a shop. " * 500 + "Which label fits {{review}}?"
    job = jobs.run(rows(12), template, label_task(LABELS), mode="realtime")
    usage = job.result(status=True, usage=True)
    first = jobs.messages()[0].body["messages"][0]["content"][0]["cache_control"]
    assert first == {"type": "ephemeral"}  # realtime: the default five-minute cache
    assert (usage["cache_write_tokens"] > 0).sum() == 1  # written once, by the first request
    assert (usage["cache_read_tokens"] > 0).sum() == 11


def test_429_and_529_lose_no_row(jobs: Jobs, emulator: Emulator) -> None:
    emulator.add_fault(status=529, count=6)
    emulator.add_fault(status=429, count=6, retry_after_ms=20)
    emulator.add_fault(status=500, every=7, count=3)
    job = jobs.run(rows(40), "review", label_task(LABELS), mode="realtime")
    assert job.counts() == {"succeeded": 40}
    statuses = [r.status for r in jobs.messages()]
    assert statuses.count(529) == 6 and statuses.count(429) == 6


def test_learns_a_concurrency_limit_it_was_not_told(jobs: Jobs, emulator: Emulator) -> None:
    emulator.configure(max_concurrent_requests=4, latency=0.05)
    job = jobs.run(rows(60), "review", label_task(LABELS), mode="realtime")
    assert job.counts() == {"succeeded": 60}
    refused = sum(1 for r in jobs.messages() if r.status == 429)
    # It overshoots while it learns, then stays at the limit: refusals are few.
    assert 0 < refused < 30


def test_connections_stay_open_for_the_next_requests(jobs: Jobs, emulator: Emulator) -> None:
    # Many in flight at once (no limit here): when each answer came back, a pool that keeps
    # only 20 idle connections closed the rest, and the next requests opened new ones.
    emulator.configure(latency=0.2)
    job = jobs.run(rows(200), "review", label_task(LABELS), mode="realtime")
    assert job.counts() == {"succeeded": 200}
    assert emulator.open_connections > 20  # kept for the next job, not closed


def spend_requests_budget(emulator: Emulator) -> None:
    """Send requests until the requests-per-minute bucket refuses one: as in a long job."""
    client = Client(api_key="k", base_url=emulator.url, max_retries=0)
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(1000):
        try:
            client.request("POST", "/v1/messages", body=body)
        except ClaudeError:
            return
    raise AssertionError("the budget never ran out")


def test_a_tight_requests_per_minute_budget_is_paced_not_stormed(
    jobs: Jobs, emulator: Emulator
) -> None:
    """The headers announce 300 requests a minute and the bucket is empty: the job goes at
    five a second, every row answered, and after the first blind burst hardly any 429."""
    emulator.configure(requests_per_minute=300)
    spend_requests_budget(emulator)
    emulator.configure(latency=0.05)
    before = len(jobs.messages())
    # The same model: each model has a budget of its own.
    job = jobs.run(rows(15), "review", label_task(LABELS), mode="realtime", model=MODEL)
    assert job.counts() == {"succeeded": 15}
    sent = jobs.messages()[before:]
    statuses = [r.status for r in sent]
    assert statuses.count(200) == 15 and set(statuses) == {200, 429}
    # The first requests go before anything is known of the budget (at most the first
    # window, 16; here the 15 rows). Once the first answer is back, the pacing keeps the
    # bucket from running dry: a few refusals at most, not a burst every second. (A
    # second's grace for the client to read the first headers on a loaded machine; a storm
    # would refuse requests through the whole three seconds the job takes.)
    known = next(r.time for r in sent if r.status == 200) + 1.0
    # (Without pacing, every refused row comes back on its own retry-after and is refused
    # again while the bucket is dry: refusals through the whole run, not a few.)
    assert sum(1 for r in sent if r.status == 429 and r.time > known) <= 4
    # Paced at the budget's own rate: the emulator admitted them a fifth of a second apart.
    admitted = [r.time for r in sent if r.status == 200]
    assert admitted[-1] - admitted[0] >= 14 / 5 * 0.9


def test_failed_rows_get_their_status(jobs: Jobs, emulator: Emulator) -> None:
    frame = pd.DataFrame({"review": ["fine, positive", "bad [[error=invalid_request_error]]"]})
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    statuses = job.result(frame, status=True)["claude_status"].tolist()
    assert statuses == ["succeeded", "errored:invalid_request_error"]
    assert len(jobs.messages()) == 2  # a 400 is not retried


def test_persistent_overload_ends_as_errored_not_dropped(jobs: Jobs, emulator: Emulator) -> None:
    emulator.add_fault(status=529, count=0)  # forever
    started = time.monotonic()
    job = jobs.run(rows(3), "review", label_task(LABELS), mode="realtime")
    assert job.counts() == {"errored:overloaded_error": 3}
    assert len(jobs.messages()) == 3 * sending.MAX_ATTEMPTS
    # The retries wait as the client's own do (milliseconds here), not the built-in half a
    # second doubling to eight (about 30 s for eight attempts).
    assert time.monotonic() - started < 10


def test_invalid_outputs_are_marked_never_coerced(jobs: Jobs, emulator: Emulator) -> None:
    frame = pd.DataFrame({"review": [f"Row {i}" for i in range(5)]})
    # Scripted replies (taken in arrival order): outside the labels, not JSON, an extra key,
    # cut off, refused. None may become a label.
    emulator.add_reply('{"label": "maybe"}')
    emulator.add_reply("positive")
    emulator.add_reply('{"label": "positive", "why": "x"}')
    emulator.add_reply('{"label": "posi', stop_reason="max_tokens")
    emulator.add_reply("I can't help with that.", stop_reason="refusal")
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    table = job.result(frame, status=True)
    assert sorted(table["claude_status"]) == [
        "invalid_output", "invalid_output", "invalid_output", "max_tokens", "refusal",
    ]  # fmt: skip
    assert table["label"].isna().all()


class _InterruptAfter:
    """A client that interrupts the main thread (as a Jupyter interrupt does) after n answers;
    everything else is the wrapped client's."""

    def __init__(self, client: Client, n: int) -> None:
        self._client, self._n, self._lock = client, n, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        answer = self._client.request(*args, **kwargs)
        with self._lock:
            self._n -= 1
            if self._n == 0:
                threading.Thread(target=_interrupt_main_soon, daemon=True).start()
        return answer


def _interrupt_main_soon() -> None:
    import _thread

    time.sleep(0.01)
    _thread.interrupt_main()


def test_interrupt_keeps_finished_rows_and_a_rerun_sends_only_the_rest(
    jobs: Jobs, emulator: Emulator
) -> None:
    emulator.configure(latency=0.05, max_concurrent_requests=2)
    frame = rows(30)
    interrupting = _InterruptAfter(jobs.client, 10)
    with pytest.raises(JobInterrupted) as interrupted:
        jobs.run(frame, "review", label_task(LABELS), mode="realtime", client=interrupting)
    job = interrupted.value.job
    kept = len(job.statuses())
    assert 10 <= kept < 30  # the ten, and those in flight when it came, are all kept
    assert job.counts()["pending"] == 30 - kept
    assert "answered and kept" in "\n".join(interrupted.value._render_traceback_())
    sent_before = len([r for r in jobs.messages() if r.status == 200])
    again = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    assert again.id == job.id
    assert again.counts() == {"succeeded": 30}
    assert len([r for r in jobs.messages() if r.status == 200]) - sent_before == 30 - kept


def test_errors_other_than_api_errors_stop_the_run(emulator: Emulator) -> None:
    client = Client(base_url=emulator.url, api_key_env="NO_SUCH_KEY_VARIABLE")
    with pytest.raises(MissingAPIKeyError):
        run_concurrently(
            [1, 2, 3],
            lambda _: client.request("GET", "/v1/models", max_retries=0),
            on_outcome=lambda _: None,
        )


def test_map_realtime_text(jobs: Jobs) -> None:
    frame = pd.DataFrame({"q": ["a [[reply_tokens=4]]", "b [[reply_tokens=4]]"]})
    answers = jobs.run(frame, "Answer {{q}}", map_task(), mode="realtime").result(frame)
    # notna first: on missing answers str.len() is <NA>, which .all() skips.
    assert answers.notna().all() and answers.str.len().gt(0).all()
    sent = sorted(user_text(r.body) for r in jobs.messages())
    assert sent == ["<q>a [[reply_tokens=4]]</q>", "<q>b [[reply_tokens=4]]</q>"]


def test_auto_mode_uses_the_threshold() -> None:
    assert resolve_mode("auto", 199, 200) == "realtime"
    assert resolve_mode("auto", 200, 200) == "batch"
    with pytest.raises(ClaudeError):
        resolve_mode("fast", 1, 200)
