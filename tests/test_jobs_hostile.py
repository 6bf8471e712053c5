"""DataFrame jobs against what a hostile or careless user does (issue 11): job stores that fight
back, ``kill -9`` mid-job, answers that arrive broken, the same job in two processes, a lost
batch create beside another notebook's batch, an API that keeps failing while a batch is
waited for, indexes that must come back exactly in a fresh kernel, and odd frames.

Other processes are real processes on the same files and the same emulator; locks are real
SQLite locks held by another process; damaged files are real files of garbage."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from batch_support import FAST, LABELS, REVIEWS, Jobs, user_text
from file_faults import start_lock_holder

import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)
from claude_magics.api.client import Client
from claude_magics.cost.ledger import Ledger
from claude_magics.emulator import Emulator
from claude_magics.errors import StorageError
from claude_magics.jobs import entry
from claude_magics.jobs.claim import _HOST
from claude_magics.jobs.sending import JobWaitError, JobWaitTimeout
from claude_magics.jobs.store import ClaimRecord, JobStore
from claude_magics.jobs.tasks import label_task
from claude_magics.prompt import PromptError


def rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"review": [f"Review {i}: positive" for i in range(n)]})


def prompt_of_request(request: Any) -> str:
    """Which row a /v1/messages request was for (its user turn)."""
    return user_text(request.body)


def answered(jobs: Jobs) -> Counter[str]:
    """How many times each row's request was answered (HTTP 200) by the emulator."""
    return Counter(prompt_of_request(r) for r in jobs.messages() if r.status == 200)


def one_line(text: str) -> str:
    assert "\n" not in text.strip(), text
    return text.strip()


def ledger_dollars(ledger: Ledger) -> float:
    return sum(call.cost_usd or 0.0 for call in ledger.calls())


# --------------------------------------------------------------------------------------------
# 1. The job store and the ledger on files that fight back


def test_a_damaged_job_store_is_moved_aside_with_a_notice(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    path = jobs.store.path
    path.write_bytes(b"not a database, just bytes\x00" * 200)
    job = jobs.run(rows(3), "review", label_task(LABELS), mode="realtime")
    assert job.counts() == {"succeeded": 3}
    (moved,) = path.parent.glob("jobs.sqlite.corrupt-*")
    assert moved.read_bytes().startswith(b"not a database")
    (notice,) = [line for line in capsys.readouterr().out.splitlines() if "damaged" in line]
    assert moved.name in notice and "fresh" in notice
    assert JobStore(path).get(job.id) is not None  # the fresh file has the job


def test_a_job_store_that_is_a_folder_is_one_line_and_nothing_is_sent(
    jobs: Jobs, emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "jobs-as-folder"
    folder.mkdir()
    with pytest.raises(StorageError) as caught:
        entry.run(
            rows(3),
            "review",
            label_task(LABELS),
            mode="realtime",
            store=JobStore(folder),
            ledger=jobs.ledger,
            client=jobs.client,
            progress=False,
        )
    text = one_line(str(caught.value))
    assert "is a folder, not a file" in text and "CLAUDE_MAGICS_HOME" in text
    assert not jobs.messages()


def test_a_job_store_locked_by_another_process_is_one_line_before_anything_is_sent(
    jobs: Jobs,
) -> None:
    jobs.run(rows(1), "review", label_task(LABELS), mode="realtime")  # the file exists
    sent = len(jobs.messages())
    holder = start_lock_holder(jobs.store.path)
    try:
        with pytest.raises(StorageError) as caught:
            jobs.run(
                rows(3),
                "review",
                label_task(LABELS),
                mode="realtime",
                store=JobStore(jobs.store.path, busy_timeout=0.2),
            )
    finally:
        holder.kill()
        holder.wait()
    text = one_line(str(caught.value))
    assert str(jobs.store.path) in text and "another program holds it" in text
    assert len(jobs.messages()) == sent  # refused before anything was paid for


class _LockAfter:
    """A client that, after ``n`` requests of its own (or, with ``on_results``, when a batch's
    results are asked for), has another process lock the job store: a real SQLite write lock,
    held until ``release``."""

    def __init__(self, client: Client, n: int, path: Path, *, on_results: bool = False) -> None:
        self._client, self._n, self._path = client, n, path
        self._on_results = on_results
        self._lock = threading.Lock()
        self.holder: subprocess.Popen[str] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    @property
    def batches(self) -> Any:
        return _LockingBatches(self) if self._on_results else self._client.batches

    def request(self, *args: Any, **kwargs: Any) -> Any:
        answer = self._client.request(*args, **kwargs)
        with self._lock:
            self._n -= 1
            if self._n == 0:
                self.lock()
        return answer

    def lock(self) -> None:
        if self.holder is None:
            self.holder = start_lock_holder(self._path)

    def release(self) -> None:
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()


class _LockingBatches:
    def __init__(self, owner: _LockAfter) -> None:
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner._client.batches, name)

    def results(self, batch_id: str) -> Any:
        self._owner.lock()
        return self._owner._client.batches.results(batch_id)


def test_answers_paid_for_are_kept_when_the_job_store_is_locked_mid_job(
    jobs: Jobs, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.configure(latency=0.05)
    store = JobStore(jobs.store.path, busy_timeout=0.2)
    locking = _LockAfter(jobs.client, 4, store.path)
    frame = rows(12)
    try:
        job = jobs.run(
            frame, "review", label_task(LABELS), mode="realtime", store=store, client=locking
        )
        # Every answer is in the result, though the store could not take them all.
        assert job.result(frame).tolist() == ["positive"] * 12
        said = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
        assert said, "the failure was not said"
        assert all(line.startswith("⚠") for line in said)
        assert "answers could not be saved to the job store" in said[0]
        assert str(store.path) in said[0] and "locked" in said[0]
        (final,) = [line for line in said if "are only in this process" in line]
        assert "restarted kernel would pay for them again" in final
        assert len(said) == 2  # the failure, then what is left unsaved: no more
        assert len(JobStore(store.path).results(job.id)) < 12  # the lock was real
    finally:
        locking.release()
    # Running the call again in this process, the lock gone: what was kept is saved, and
    # nothing is sent again.
    again = jobs.run(frame, "review", label_task(LABELS), mode="realtime", store=store)
    assert again.id == job.id and "works again" in capsys.readouterr().out
    assert len(JobStore(store.path).results(job.id)) == 12 and len(jobs.messages()) == 12
    # And the ledger has the spend of every answer, those that waited for the store included.
    assert ledger_dollars(jobs.ledger) == pytest.approx(again.result(usage=True)["cost_usd"].sum())


def test_a_batch_created_while_the_job_store_is_locked_is_found_not_sent_again(
    jobs: Jobs,
) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    store = JobStore(jobs.store.path, busy_timeout=0.2)
    locking = _LockAfter(jobs.client, 1, store.path)  # locked right after the create
    try:
        with pytest.raises(StorageError) as caught:
            jobs.run(frame, "review", label_task(LABELS), mode="batch", store=store, client=locking)
    finally:
        locking.release()
    text = one_line(str(caught.value))
    assert "was created but could not be recorded" in text and "nothing is sent twice" in text
    job = jobs.run(frame, "review", label_task(LABELS), mode="batch")
    assert job.counts() == {"succeeded": 5}
    assert len(jobs.creates()) == 1  # found among the account's batches, not paid twice


def test_batch_results_fetched_while_the_job_store_is_locked_are_returned(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    store = JobStore(jobs.store.path, busy_timeout=0.2)
    locking = _LockAfter(jobs.client, 0, store.path, on_results=True)
    try:
        job = jobs.run(
            frame, "review", label_task(LABELS), mode="batch", store=store, client=locking
        )
        assert job.result(frame).tolist() == [r.split()[-1] for r in REVIEWS]
        said = capsys.readouterr().out
        assert "answers could not be saved to the job store" in said
        assert not jobs.ledger.calls()  # not yet: owed with the results, once they are saved
    finally:
        locking.release()
    # The lock gone, attaching saves them and writes the batch's spend, once; the results
    # are fetched again (free), nothing is sent again.
    again = jobs.attach(job.id)
    assert again.counts() == {"succeeded": 5} and len(jobs.creates()) == 1
    (call,) = jobs.ledger.calls()
    (chunk,) = jobs.store.chunks(job.id)
    assert call.request_id == chunk.batch_id and chunk.state == "fetched"
    assert call.cost_usd == pytest.approx(again.result(usage=True)["cost_usd"].sum())


def test_a_ledger_that_cannot_be_written_costs_no_answer_and_no_spend(
    jobs: Jobs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ledger-is-a-folder"
    folder.mkdir()
    frame = rows(4)
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime", ledger=Ledger(folder))
    assert job.result(frame).tolist() == ["positive"] * 4
    (warning,) = [line for line in capsys.readouterr().out.splitlines() if "⚠" in line]
    assert "spend is not in the spend ledger yet" in warning and "is a folder" in warning
    assert jobs.store.jobs_owing() == [job.id]  # kept, in the job store
    # With a ledger that works, the next run writes it: exactly what the answers cost.
    entry.run(
        rows(1),
        "review",
        label_task(LABELS),
        mode="realtime",
        store=jobs.store,
        ledger=jobs.ledger,
        client=jobs.client,
        progress=False,
        settings=FAST,
    )
    assert jobs.store.jobs_owing() == []
    owed = job.result(frame, usage=True)["cost_usd"].sum()
    spent = [c for c in jobs.ledger.calls() if (c.request_id or "").startswith(job.id)]
    assert sum(c.cost_usd or 0 for c in spent) == pytest.approx(owed)


# --------------------------------------------------------------------------------------------
# 2. kill -9 mid-job, then run again: nothing paid twice, no spend missing


def test_kill_9_mid_job_then_a_rerun_pays_for_no_row_twice(jobs: Jobs, emulator: Emulator) -> None:
    latency = 0.3
    emulator.configure(latency=latency)
    n = 40
    child = jobs.child(
        f"""
        frame = pd.DataFrame({{"review": [f"Review {{i}}: positive" for i in range({n})]}})
        jobs.run(frame, "review", jobs.label_task(LABELS), mode="realtime", progress=False)
        print("finished", flush=True)
        """
    )
    try:
        deadline = time.monotonic() + 30
        while len([r for r in jobs.messages() if r.status == 200]) < 20:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never got going"
            time.sleep(0.01)
        time.sleep(latency / 2)  # the first answers are in the child's hands; more in flight
        child.send_signal(signal.SIGKILL)
        killed_at = emulator.now()
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    before = jobs.messages()
    (record,) = JobStore(jobs.store.path).jobs()
    stored = JobStore(jobs.store.path).results(record.id)
    assert 0 < len(stored) < n
    # Every answer that reached the child well before the kill was in the store.
    delivered = {
        r.request_id for r in before if r.status == 200 and r.time + latency < killed_at - 0.1
    }
    assert delivered and delivered <= {row.source for row in stored.values()}

    started = time.monotonic()
    job = jobs.run(rows(n), "review", label_task(LABELS), mode="realtime")
    assert time.monotonic() - started < 10  # the dead child's claim did not hold it up
    assert job.id == record.id and job.counts() == {"succeeded": n}
    again = jobs.messages()[len(before) :]
    # No stored answer was asked for again; only what was unanswered at the kill was sent.
    stored_prompts = {job.texts[p] for p in stored}
    resent = {prompt_of_request(r) for r in again}
    assert not {text.removeprefix("<review>") for text in resent} & stored_prompts
    assert len(again) == n - len(stored)
    # A row answered twice was in flight at the kill: its first answer never reached the child.
    for text, count in answered(jobs).items():
        assert count <= 2
        if count == 2:
            first = next(r for r in before if r.status == 200 and prompt_of_request(r) == text)
            assert first.time + latency >= killed_at - 0.1
    # The ledger has the spend of every answer stored, the child's included, once.
    assert ledger_dollars(jobs.ledger) == pytest.approx(job.result(usage=True)["cost_usd"].sum())
    assert sum(c.output_tokens for c in jobs.ledger.calls()) == sum(
        row.output_tokens for row in job.stored_results().values()
    )


# --------------------------------------------------------------------------------------------
# 3. Broken answers inside a realtime job


def test_broken_answers_fail_their_rows_and_the_job_goes_on(jobs: Jobs, emulator: Emulator) -> None:
    emulator.add_fault(kind="malformed", count=3)  # a 200 whose JSON is cut in half
    emulator.add_fault(kind="drop", count=2)  # the connection closes, no answer
    emulator.add_fault(kind="error_event", error_type="api_error", count=2)  # a 500
    frame = rows(20)
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    assert job.counts() == {"succeeded": 17, "errored:malformed_response": 3}
    table = job.result(frame, status=True)
    broken = table[table["claude_status"] == "errored:malformed_response"]
    assert len(broken) == 3 and broken["label"].isna().all()
    (reason,) = {row.error for row in job.stored_results().values() if row.status != "succeeded"}
    assert reason is not None and "cut short or is not JSON" in reason
    # Dropped connections and 500s were retried; the broken answers were not (billed once).
    assert sum(1 for r in jobs.messages() if r.status == 0) == 2
    assert sum(1 for r in jobs.messages() if r.status == 500) == 2
    first = answered(jobs)

    # Running it again sends only the three broken rows.
    sent = len(jobs.messages())
    again = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    assert again.id == job.id and again.counts() == {"succeeded": 20}
    assert len(jobs.messages()) - sent == 3
    twice = {text for text, count in answered(jobs).items() if count == 2}
    assert len(twice) == 3 and all(first[text] == 1 for text in twice)
    assert max(answered(jobs).values()) == 2


def test_a_rerun_sends_errored_rows_again_but_never_answered_ones(
    jobs: Jobs, emulator: Emulator
) -> None:
    emulator.add_fault(status=529, count=0)  # overloaded, for good
    frame = rows(3)
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    assert job.counts() == {"errored:overloaded_error": 3}
    note = one_line(job.failures_note() or "")
    assert "running the same call again sends the errored ones again" in note
    emulator.configure(faults=[])
    again = jobs.attach(job.id)
    assert again.counts() == {"succeeded": 3}
    assert sum(answered(jobs).values()) == 3


# --------------------------------------------------------------------------------------------
# 4. The same job in two processes at once


def test_the_same_job_started_in_two_processes_is_worked_on_once(
    jobs: Jobs, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Slow enough that the child is still answering when this process asks the third time,
    # even on a loaded machine (at 0.4 s it sometimes finished first, and nothing waited).
    emulator.configure(latency=1.0)
    n = 40
    child = jobs.child(
        f"""
        frame = pd.DataFrame({{"review": [f"Review {{i}}: positive" for i in range({n})]}})
        job = jobs.run(frame, "review", jobs.label_task(LABELS), mode="realtime", progress=False)
        print(job.id, flush=True)
        """
    )
    try:
        deadline = time.monotonic() + 30
        while not jobs.messages():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never got going"
            time.sleep(0.01)
        frame = rows(n)
        busy = jobs.run(frame, "review", label_task(LABELS), mode="realtime", wait=False)
        line = one_line(capsys.readouterr().out.splitlines()[-1])
        assert f"{busy.id} is being worked on by another process (pid {child.pid}" in line
        assert f"%claude_batch attach {busy.id}" in line
        job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, err
    assert out.strip() == job.id
    # This process waited for the other's answers instead of returning "pending".
    assert job.counts() == {"succeeded": n}
    assert job.result(frame).tolist() == ["positive"] * n
    assert "waiting for its results here" in capsys.readouterr().out
    assert len(jobs.messages()) == n and max(answered(jobs).values()) == 1


def test_a_claim_whose_heartbeat_stopped_is_passed_over(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    job = jobs.run(rows(2), "review", label_task(LABELS), mode="realtime")
    old = time.time() - 3600
    # Another job object of this very process, long silent (frozen, or on another host).
    jobs.store.claim(job.id, ClaimRecord("stale", os.getpid(), _HOST, old, old), lambda _: True)
    capsys.readouterr()
    again = jobs.attach(job.id)
    assert again.counts() == {"succeeded": 2}
    assert "being worked on" not in capsys.readouterr().out


def test_a_live_holder_is_named_with_the_job_id_and_how_to_attach(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    job = jobs.run(rows(2), "review", label_task(LABELS), mode="realtime")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        now = time.time()
        jobs.store.claim(job.id, ClaimRecord("other", sleeper.pid, _HOST, now, now), lambda _: True)
        capsys.readouterr()
        again = jobs.run(rows(2), "review", label_task(LABELS), mode="realtime", wait=False)
        line = one_line(capsys.readouterr().out)
        assert again.id == job.id
        assert f"is being worked on by another process (pid {sleeper.pid}" in line
        assert f"%claude_batch attach {job.id}" in line
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its process gone, the claim is dead at once: no wait for the heartbeat to age.
    started = time.monotonic()
    assert jobs.attach(job.id).counts() == {"succeeded": 2}
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------------------------
# 5. A lost batch create, and another notebook's batch of the same size


def _their_batch(emulator: Emulator, size: int) -> str:
    """A batch another notebook on the same account made: same size, its own custom_ids."""
    client = Client(api_key="k", base_url=emulator.url)
    params = {
        "model": "claude-haiku-5-5",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "Someone else's request"}],
    }
    batch = client.batches.create(
        [{"custom_id": f"theirs-{i}", "params": params} for i in range(size)]
    )
    return str(batch["id"])


def _cancels(emulator: Emulator) -> list[str]:
    return [r.path for r in emulator.requests if r.path.endswith("/cancel")]


def test_a_lost_create_beside_another_notebooks_batch_of_its_size_is_told_apart(
    jobs: Jobs, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = _their_batch(emulator, 4)  # the job has 4 distinct prompts
    emulator.add_fault(kind="drop_response", path="/v1/messages/batches", method="POST")
    job = jobs.run(pd.DataFrame({"review": REVIEWS}), "review", label_task(LABELS), mode="batch")
    # Two batches could have been ours: both were watched, not a question to the user.
    said = capsys.readouterr().out
    assert "2 batches of its size were made meanwhile" in said and theirs in said
    assert job.counts() == {"succeeded": 5}
    assert len(jobs.creates()) == 2  # theirs and ours; nothing sent again
    (chunk,) = jobs.store.chunks(job.id)
    assert chunk.state == "fetched" and chunk.batch_id not in (None, theirs)
    # Theirs was left alone: never canceled, its results never taken.
    assert not _cancels(emulator)
    other = Client(api_key="k", base_url=emulator.url).batches.retrieve(theirs)
    assert other["request_counts"]["succeeded"] == 4
    (call,) = jobs.ledger.calls()
    assert call.request_id == chunk.batch_id


def test_a_create_that_never_happened_is_not_confused_with_anothers_batch(
    jobs: Jobs, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.configure(batch_processing_seconds=600)
    theirs = _their_batch(emulator, 4)
    emulator.add_fault(kind="drop", path="/v1/messages/batches", method="POST")  # never made
    frame = pd.DataFrame({"review": REVIEWS})
    job = jobs.run(frame, "review", label_task(LABELS), mode="batch", wait=False)
    (chunk,) = jobs.store.chunks(job.id)
    assert chunk.state == "adopting" and chunk.batch_id is None
    # Canceling the job while it is unknown whose the batch is leaves theirs alone.
    assert job.cancel() == []
    assert "are not canceled" in capsys.readouterr().out
    assert not _cancels(emulator)
    emulator.advance_clock(700)
    job.wait()
    assert job.counts() == {"canceled": 5}  # as its batch's would have been
    assert [r.status for r in jobs.creates()] == [200, 0]  # canceled: not sent again
    assert (
        Client(api_key="k", base_url=emulator.url).batches.retrieve(theirs)["request_counts"][
            "succeeded"
        ]
        == 4
    )

    # Not canceled, the job sends its create again once theirs shows it was not its.
    emulator.configure(batch_processing_seconds=0.2)
    _their_batch(emulator, 4)
    emulator.add_fault(kind="drop", path="/v1/messages/batches", method="POST")
    other = jobs.run(frame, "Label {{review}}", label_task(LABELS), mode="batch")
    assert other.counts() == {"succeeded": 5}
    assert [r.status for r in jobs.creates()][-3:] == [200, 0, 200]
    assert not _cancels(emulator)


# --------------------------------------------------------------------------------------------
# 6. An API that keeps failing while a batch is waited for


def test_polling_goes_on_through_a_run_of_transient_failures(
    jobs: Jobs, emulator: Emulator
) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    job = jobs.run(frame, "review", label_task(LABELS), mode="batch", wait=False)
    # Three polls' worth (the client retries each check twice itself): 529, 503, then 529.
    emulator.add_fault(status=529, path=None, method="GET", count=3)
    emulator.add_fault(status=503, path=None, method="GET", count=3)
    emulator.add_fault(status=529, path=None, method="GET", count=3)
    (chunk,) = jobs.store.chunks(job.id)
    # And the results download drops, more often than the client retries it.
    results = f"/v1/messages/batches/{chunk.batch_id}/results"
    emulator.add_fault(kind="drop", path=results, method="GET", count=4)
    job.wait()
    assert job.counts() == {"succeeded": 5}
    failed = [r.status for r in emulator.requests if r.method == "GET" and r.status >= 500]
    assert sorted(failed) == [503] * 3 + [529] * 6
    assert [r.status for r in emulator.requests if r.path == results] == [0, 0, 0, 0, 200]


def test_a_wait_that_ends_anyway_names_the_job_and_how_to_attach(
    jobs: Jobs, emulator: Emulator
) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    job = jobs.run(frame, "review", label_task(LABELS), mode="batch", wait=False)
    emulator.add_fault(status=503, path=None, method="GET", count=0)
    with pytest.raises(JobWaitError) as caught:
        job.wait()
    text = one_line(str(caught.value))
    assert text.startswith(f"{job.id}: stopped waiting")
    assert "20 checks in a row failed" in text and "503" in text
    assert f"%claude_batch attach {job.id}" in text
    emulator.configure(faults=[])
    assert jobs.attach(job.id).counts() == {"succeeded": 5}
    assert len(jobs.creates()) == 1
    # A timeout says the same, and is still a TimeoutError.
    emulator.configure(batch_processing_seconds=600)
    slow = jobs.run(frame, "Label {{review}}", label_task(LABELS), mode="batch", wait=False)
    with pytest.raises(TimeoutError) as timed_out:
        slow.wait(timeout=0.05)
    assert isinstance(timed_out.value, JobWaitTimeout)
    assert f"%claude_batch attach {slow.id}" in one_line(str(timed_out.value))


# --------------------------------------------------------------------------------------------
# 7. attach in a fresh kernel gives the index back exactly

INDEXES = {
    "range": pd.RangeIndex(10, 22, 3, name="n"),
    "strings": pd.Index(["x y", "é/ü", "x y", "", "🙂"], name="key"),
    "ints": pd.Index([3, -1, 3, 2**40, 0]),
    "tuples": pd.MultiIndex.from_tuples(
        [("a", 1), ("a", 2), ("b", 1), ("a", 1)], names=["letter", "number"]
    ),
    "duplicates": pd.Index([7, 7, 7]),
    "paris_spring_forward": pd.date_range(
        "2026-03-29 01:00", "2026-03-29 04:00", freq="h", tz="Europe/Paris", name="when"
    ),
    "paris_fall_back": pd.date_range("2026-10-25 00:00", periods=5, freq="h", tz="Europe/Paris"),
    "categorical": pd.CategoricalIndex(["b", "a", "b"], categories=["b", "a", "c"], ordered=True),
    "floats": pd.Index([0.5, float("nan"), float("inf"), -0.0]),
    "mixed": pd.Index([1, "one", None, 2.5], dtype=object),
    "periods": pd.period_range("2026-01", periods=3, freq="M"),
    "timedeltas": pd.timedelta_range(0, periods=3, freq="15min"),
    "dates_and_keys": pd.MultiIndex.from_arrays(
        [pd.date_range("2026-03-29", periods=3, freq="D", tz="UTC"), ["x", "y", "x"]]
    ),
    "objects": pd.Index([dt.date(2026, 1, 1), dt.date(2026, 1, 2)], dtype=object),
}


def _assert_same_index(back: pd.Index, index: pd.Index) -> None:
    pd.testing.assert_index_equal(back, index, exact=True, check_exact=True)
    assert getattr(back, "freq", None) == getattr(index, "freq", None)
    if isinstance(index, pd.DatetimeIndex):
        assert [t.utcoffset() for t in back] == [t.utcoffset() for t in index]


@pytest.mark.parametrize("index", list(INDEXES.values()), ids=list(INDEXES))
def test_attach_restores_every_index_exactly(jobs: Jobs, index: pd.Index) -> None:
    frame = pd.DataFrame({"review": [f"Row {i}, positive" for i in range(len(index))]}, index=index)
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    back = jobs.attach(job.id).result()  # a new store, client and ledger: only the file
    _assert_same_index(back.index, index)
    assert back.tolist() == ["positive"] * len(index)


def test_claude_batch_attach_in_a_fresh_kernel_restores_a_dst_index(
    jobs: Jobs, tmp_path: Path
) -> None:
    index = INDEXES["paris_spring_forward"]
    frame = pd.DataFrame({"review": ["a, positive", "b, negative", "c, neutral"]}, index=index)
    job = jobs.run(frame, "review", label_task(LABELS), mode="batch")
    kept = tmp_path / "index.pickle"
    kernel = jobs.child(
        f"""
        import pickle
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.history_manager.enabled = False
        ip.run_line_magic("load_ext", "claude_magics")
        ip.run_line_magic("claude_batch", "attach {job.id} --out t_result")
        with open({str(kept)!r}, "wb") as file:
            pickle.dump(ip.user_ns["t_result"], file)
        """
    )
    _, err = kernel.communicate(timeout=60)
    assert kernel.returncode == 0, err
    with kept.open("rb") as file:
        result = pickle.load(file)  # written by this test's own child
    _assert_same_index(result.index, index)
    assert result["label"].tolist() == ["positive", "negative", "neutral"]


def test_an_index_stored_by_an_earlier_version_still_reads(jobs: Jobs) -> None:
    index = pd.Index([10, 20, 30], name="n")
    frame = pd.DataFrame({"review": ["a, positive", "b, negative", "c, neutral"]}, index=index)
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    old = orjson.dumps({"names": ["n"], "values": [10, 20, 30], "multi": False, "dtype": "int64"})
    with sqlite3.connect(jobs.store.path) as db:
        db.execute("UPDATE jobs SET row_index = ? WHERE id = ?", (old, job.id))
    assert jobs.attach(job.id).result().index.equals(index)


def test_an_index_that_cannot_be_kept_exactly_is_said(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    index = pd.Index([object(), object()], dtype=object)
    frame = pd.DataFrame({"review": ["a, positive", "b, negative"]}, index=index)
    job = jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    line = one_line(capsys.readouterr().out)
    assert job.id in line and "by position" in line and ".result(df)" in line
    assert isinstance(jobs.attach(job.id).result().index, pd.RangeIndex)
    assert job.result(frame).index.equals(index)


# --------------------------------------------------------------------------------------------
# 8. Odd frames and arguments


@pytest.mark.usefixtures("emulator")
def test_odd_frames_and_arguments_are_one_line(emulator: Emulator) -> None:
    client = Client(api_key="k", base_url=emulator.url)
    options: dict[str, Any] = {"client": client, "progress": False, "settings": FAST}
    empty = pd.DataFrame(index=range(3))
    with pytest.raises(PromptError) as no_columns:
        empty.claude.label("review", LABELS, **options)
    assert one_line(str(no_columns.value)) == (
        "the DataFrame has no columns: there is nothing to put in each row's prompt"
    )
    with pytest.raises(PromptError, match="no columns"):
        empty.claude.estimate("review", labels=LABELS)
    frame = pd.DataFrame({"review": REVIEWS[:2], "stars": [5, 1]})
    with pytest.raises(PromptError) as no_labels:
        frame.claude.label("review", None, **options)  # type: ignore[arg-type]
    assert "labels are needed" in one_line(str(no_labels.value))
    with pytest.raises(PromptError, match="not int"):
        frame.claude.label("review", 3, **options)  # type: ignore[arg-type]
    with pytest.raises(PromptError) as misspelt:
        frame.claude.label("reveiw", LABELS, **options)
    assert one_line(str(misspelt.value)) == (
        "no column named 'reveiw' (did you mean 'review'?); columns: review, stars"
    )
    with pytest.raises(PromptError, match="did you mean 'review'"):
        frame.claude.extract("reviews", {"stars": int}, **options)
    with pytest.raises(PromptError, match=r"map needs a template .*\{\{review\}\}"):
        frame.claude.map("reveiw", **options)
    assert not [r for r in emulator.requests if r.path.startswith("/v1/messages")]

    # extract takes status=: True (the default) keeps claude_status, False leaves it out.
    fields = frame.claude.extract("review", {"stars": int}, status=True, **options)
    assert list(fields.columns) == ["stars", "claude_status"]
    bare = frame.claude.extract("review", {"stars": int}, status=False, **options)
    assert isinstance(bare, pd.DataFrame) and list(bare.columns) == ["stars"]
    # A frame without rows: an empty result, nothing sent.
    nothing = frame.iloc[:0].claude.label("review", LABELS, mode="realtime", **options)
    assert len(nothing) == 0 and list(nothing.cat.categories) == LABELS


class _InterruptAtLine:
    """Raise KeyboardInterrupt at the ``n``-th line run in ``module`` (what Ctrl-C does when it
    lands there); ``fired`` says whether the run got that far."""

    def __init__(self, module: Any, n: int) -> None:
        self.file, self.left, self.fired = module.__file__, n, False

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != self.file:
            return None
        if event == "line" and not self.fired:
            self.left -= 1
            if self.left == 0:
                self.fired = True
                raise KeyboardInterrupt
        return self._trace

    def __enter__(self) -> _InterruptAtLine:
        sys.settrace(self._trace)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)


def test_an_interrupt_at_any_line_of_a_store_transaction_leaves_the_store_usable(
    jobs: Jobs,
) -> None:
    import claude_magics.jobs.store as store_module

    job = jobs.run(rows(2), "review", label_task(LABELS), mode="realtime")
    store = jobs.store
    for action in (lambda: store.set_state(job.id, "done"), store.jobs):
        n = 0
        while True:
            n += 1
            with _InterruptAtLine(store_module, n) as point, suppress(KeyboardInterrupt):
                action()
            # Wherever it landed, the store still reads and writes (it once kept the
            # interrupted transaction open: "cannot start a transaction within a transaction").
            record = store.get(job.id)
            assert record is not None and record.state == "done"
            store.set_state(job.id, "done")
            if not point.fired:  # the action ran to its end: every line of it was tried
                break
        assert n > 5
