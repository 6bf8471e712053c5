"""Sending a job's requests: the Message Batches protocol, and the realtime runner.

    Batches(job).send(prompts)      # plan the batches in the job store, then create them
    Batches(job).wait()             # poll with backoff; fetch each ended batch's results
    run_realtime(job, prompts)      # concurrent /v1/messages calls, every answer kept at once

**Batches, durably.** Before any batch is created the job store has the planned batches
(``plan``); then each create as it is sent (``sending``) and its batch id once known
(``created``); then every result as it streams in. A create whose answer was lost (a dropped
connection, a 5xx, a process that died in between) is looked for among the account's batches
(same number of requests, created since it was sent, not known to the store) before anything
is sent again; it is sent again only once it has had ``Settings.lost_create_grace_seconds`` to
appear and has not. An adopted batch is checked when its results arrive: its ``custom_id``s
carry the job's tag, and a batch that turns out to be someone else's is replaced by a real one.

**Polite waiting.** A progress bar, polling from ``Settings.batch_poll_seconds`` growing by half
up to ``batch_poll_max_seconds``, and an interrupt that detaches (the batches go on at
Anthropic) with a message that says how to attach again.

**Realtime.** ``api.fanout.run_concurrently`` sends the requests, learning the account's limits
as it goes; every answer is kept as it arrives, so an interrupted job resumes where it stopped.

Both record what they spend in the spend ledger: one row per model per batch, or per few
seconds of realtime answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..cost.pricing import Cost, price_usage
from ..cost.usage import Usage
from ..errors import APIConnectionError, APIStatusError, ClaudeError
from .store import ChunkRecord, ResultRow
from .wire import (
    batch_body,
    batch_result_row,
    failed_row,
    message_row,
    request_items,
    split_requests,
)

if TYPE_CHECKING:
    from ..api.client import ApiObject
    from ..api.fanout import Outcome
    from ..cost.ledger import Ledger
    from .progress import Progress
    from .state import JobState

__all__ = ["FLUSH_ROWS", "MAX_ATTEMPTS", "Batches", "JobDetached", "JobInterrupted", "run_realtime"]

#: Results are written to the job store in transactions of this many rows.
FLUSH_ROWS = 5000
#: Realtime: tries per request. The backoff between them, when the API does not say how long to
#: wait, is the client's (``initial_retry_delay`` growing to ``max_retry_delay``).
MAX_ATTEMPTS = 8
# How far back (seconds) a lost create is looked for, beyond the moment it was sent: server and
# local clocks may disagree by this much.
_CLOCK_SKEW = 600.0


class JobDetached(KeyboardInterrupt):
    """Waiting was interrupted; the job's batches go on at Anthropic."""

    def __init__(self, job: JobState) -> None:
        super().__init__(job.id)
        self.job = job

    def _render_traceback_(self) -> list[str]:
        return [
            f"Detached from {self.job.id}: its batches go on running at Anthropic; nothing is "
            "lost and nothing will be sent twice.",
            "Run the same cell or call again to pick the results up, or "
            f"%claude_batch attach {self.job.id} (claude_magics.jobs.attach({self.job.id!r})).",
        ]


class JobInterrupted(KeyboardInterrupt):
    """A realtime job was interrupted; every answer received so far is kept."""

    def __init__(self, job: JobState, done: int, total: int) -> None:
        super().__init__(job.id)
        self.job, self.done, self.total = job, done, total

    def _render_traceback_(self) -> list[str]:
        return [
            f"Interrupted {self.job.id}: {self.done:,} of {self.total:,} requests answered "
            "and kept.",
            "Run the same cell or call again to send only the rest, or "
            f"%claude_batch attach {self.job.id}.",
        ]


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class _Spend:
    """What results cost, summed per model, recorded in the spend ledger as one row per model
    per batch or flush. Each result is priced on its own, as it was billed: a price can depend
    on the length of each request's prompt (tiers), which a sum of usages no longer shows."""

    def __init__(self, *, kind: str, overrides: Mapping[str, Any] | None, model: str) -> None:
        """``kind``: "batch" (half price) or "realtime"; ``model``: the job's, for results
        that do not name theirs."""
        self.batch = kind == "batch"
        self.kind, self.overrides, self.model = kind, overrides, model
        self.usage: dict[str, Usage] = {}
        self.cost: dict[str, Cost | None] = {}

    def add(self, row: ResultRow) -> None:
        """Count one result (failed requests cost nothing)."""
        if not row.answered:
            return
        name = row.model or self.model
        usage = row.usage
        cost = price_usage(usage, name, batch=self.batch, overrides=self.overrides)
        if name in self.usage:
            self.usage[name] += usage
            before = self.cost[name]
            self.cost[name] = None if before is None or cost is None else before + cost
        else:
            self.usage[name], self.cost[name] = usage, cost

    def record(self, ledger: Ledger | None, *, seconds: float, request_id: str | None) -> float:
        """Write what was summed to ``ledger`` and start again; returns the dollars."""
        spent = 0.0
        for name, usage in self.usage.items():
            cost = self.cost[name]
            spent += cost.total if cost is not None else 0.0
            if ledger is not None:
                ledger.record_usage(
                    model=name,
                    usage=usage,
                    cost=cost,
                    seconds=seconds,
                    request_id=request_id,
                    kind=self.kind,
                )
        self.usage.clear()
        self.cost.clear()
        return spent


# --------------------------------------------------------------------------------------------
# Message Batches


class Batches:
    """The Message Batches side of one job: plan, create, settle lost creates, poll, fetch.

    Everything it learns goes to the job store at once; an instance holds nothing but the
    serialised requests between planning and creating (so each is serialised once), and is
    made afresh for each operation.
    """

    def __init__(self, job: JobState) -> None:
        self.job = job
        self.store = job.store
        self._encoded: dict[int, bytes] = {}

    def send(self, prompts: list[int]) -> None:
        """Plan batches for ``prompts`` and create them (and any planned earlier)."""
        self.plan(prompts)
        self.send_planned()

    def _items(self, prompts: Iterable[int]) -> list[bytes]:
        numbers = list(prompts)
        cached = self._encoded
        if all(n in cached for n in numbers):
            return [cached[n] for n in numbers]
        job = self.job
        return request_items(job.tag, job.record.before, job.record.after, job.texts, numbers)

    def plan(self, prompts: list[int]) -> None:
        """Record the batches that will hold ``prompts`` (a new attempt), before any is sent."""
        attempt = self.store.next_attempt(self.job.id)
        items = self._items(prompts)
        # Kept until the creates are sent, so that each request is serialised once.
        self._encoded = dict(zip(prompts, items, strict=True))
        chunks = split_requests([len(item) for item in items], self.job.limits)
        self.store.plan(
            self.job.id, attempt, [(prompts[start:end], nbytes) for start, end, nbytes in chunks]
        )

    def send_planned(self) -> None:
        """Create the batches that are planned, and settle creates whose answer was lost."""
        for chunk in self.store.chunks(self.job.id):
            if chunk.state == "sending":
                self._settle_lost_create(chunk)
            elif chunk.state == "planned":
                self._create(chunk)

    def _create(self, chunk: ChunkRecord) -> None:
        body = batch_body(self._items(chunk.prompts))
        # Written before sending: if the answer is lost, or the process dies, the next run
        # knows a batch may exist and looks for it instead of paying twice.
        self.store.update_chunk(chunk, state="sending", sent_at=time.time())
        try:
            batch = self.job.client.request(
                "POST", "/v1/messages/batches", body=orjson.Fragment(body), retry="unsent"
            )
        except APIConnectionError as exc:
            if not exc.may_have_reached_server:
                self.store.update_chunk(chunk, state="planned", sent_at=None)
                raise
            self._settle_lost_create(self._reload(chunk))
            return
        except APIStatusError as exc:
            if exc.status_code >= 500 and exc.status_code != 529:
                # A server error: the batch may exist all the same. Look before resending.
                self._settle_lost_create(self._reload(chunk))
                return
            # Refused (400, 413; 429 and 529 after retries): no batch was created.
            self.store.update_chunk(chunk, state="planned", sent_at=None)
            raise
        self._adopt(chunk, batch)

    def _reload(self, chunk: ChunkRecord) -> ChunkRecord:
        for fresh in self.store.chunks(self.job.id, chunk.attempt):
            if fresh.chunk == chunk.chunk:
                return fresh
        raise AssertionError("chunk vanished from the job store")

    def _adopt(self, chunk: ChunkRecord, batch: Mapping[str, Any]) -> None:
        self.store.update_chunk(
            chunk,
            state="created",
            batch_id=str(batch["id"]),
            server_status=batch.get("processing_status"),
            counts=batch.get("request_counts"),
        )

    def _find_lost(self, chunk: ChunkRecord) -> list[Mapping[str, Any]]:
        """Batches that could be this chunk's lost create: created since it was sent (give or
        take clock skew), holding as many requests, and unknown to the store."""
        known = self.store.known_batch_ids()
        since = (chunk.sent_at or 0.0) - _CLOCK_SKEW
        found: list[Mapping[str, Any]] = []
        for batch in self.job.client.batches.iter_all():  # newest first
            created = _parse_time(batch.get("created_at"))
            if created is not None and created < since:
                break
            counts = batch.get("request_counts") or {}
            total = sum(int(v or 0) for v in counts.values())
            if batch["id"] not in known and total == chunk.n:
                found.append(batch)
        return found

    def _settle_lost_create(self, chunk: ChunkRecord) -> None:
        """A create was sent but its answer never recorded: find the batch, or, once it has
        had time to appear and has not, send the create again."""
        deadline = (chunk.sent_at or 0.0) + self.job.settings.lost_create_grace_seconds
        while True:
            found = self._find_lost(chunk)
            if len(found) == 1:
                self._adopt(chunk, found[0])
                return
            if len(found) > 1:
                ids = ", ".join(str(b["id"]) for b in found)
                raise ClaudeError(
                    f"{self.job.id}: the answer to a batch create was lost and {len(found)} "
                    f"batches could be it ({ids}); nothing was resent. Cancel the ones that are "
                    "not yours in the Console, then run the cell again."
                )
            wait = deadline - time.time()
            if wait <= 0:
                self.store.update_chunk(chunk, state="planned", sent_at=None)
                self._create(self._reload(chunk))
                return
            time.sleep(min(wait, 2.0))

    # -- polling and results ---------------------------------------------------------------------

    def refresh(self, bar: Progress | None = None) -> int:
        """Check the batches once; fetch the results of those that ended. Returns how many
        batches are still running (or not yet created)."""
        self.send_planned()
        active = 0
        for chunk in self.store.chunks(self.job.id):
            if chunk.state in ("fetched", "foreign"):
                continue
            if chunk.state == "created" and chunk.batch_id is not None:
                batch = self.job.client.batches.retrieve(chunk.batch_id)
                status = batch.get("processing_status")
                if status != "ended":
                    self.store.update_chunk(
                        chunk, server_status=status, counts=batch.get("request_counts")
                    )
                    active += 1
                    continue
                self.store.update_chunk(
                    chunk, state="ended", server_status=status, counts=batch.get("request_counts")
                )
                chunk = self._reload(chunk)
            if chunk.state == "ended":
                self._fetch(chunk, bar)
            elif chunk.state in ("planned", "sending"):
                active += 1
        return active

    def _fetch(self, chunk: ChunkRecord, bar: Progress | None) -> None:
        """Stream an ended batch's results into the store and record what they cost."""
        assert chunk.batch_id is not None
        job = self.job
        spend = _Spend(kind="batch", overrides=job.price_overrides, model=job.record.model)
        batch = job.client.batches.retrieve(chunk.batch_id)
        created = _parse_time(batch.get("created_at"))
        ended = _parse_time(batch.get("ended_at"))
        with job.client.batches.results(chunk.batch_id) as lines:
            foreign = self.ingest(lines, chunk.batch_id, chunk.attempt, spend=spend, bar=bar)
        if foreign:
            # An adopted batch that was not ours after all: send these prompts for real.
            self.store.update_chunk(chunk, state="foreign")
            self.plan(chunk.prompts)
            return
        seconds = (ended - created) if created is not None and ended is not None else 0.0
        job.spent_usd += spend.record(
            job.ledger, seconds=max(seconds, 0.0), request_id=chunk.batch_id
        )
        self.store.update_chunk(chunk, state="fetched")

    def ingest(
        self,
        lines: Iterable[Mapping[str, Any]],
        batch_id: str,
        attempt: int = 0,
        *,
        spend: _Spend | None = None,
        bar: Progress | None = None,
    ) -> int:
        """Store a batch's result lines (parsed JSON) as they come, a transaction every
        ``FLUSH_ROWS``, so that a crash in the middle loses at most the current slice.
        Returns how many lines carried someone else's ``custom_id``."""
        buffer: list[ResultRow] = []
        foreign = 0
        tag = self.job.tag
        put = self.job.put_results
        for line in lines:
            row = batch_result_row(line, tag, attempt, batch_id)
            if row is None:
                foreign += 1
                continue
            buffer.append(row)
            if spend is not None:
                spend.add(row)
            if len(buffer) >= FLUSH_ROWS:
                put(buffer)
                if bar is not None:
                    bar.advance(len(buffer))
                buffer = []
        put(buffer)
        if bar is not None:
            bar.advance(len(buffer))
        return foreign

    def wait(self, *, timeout: float | None = None) -> None:
        """Poll until every batch has ended and its results are in; an interrupt detaches."""
        job = self.job
        chunks = self.store.chunks(job.id)
        if job.done and all(c.state in ("fetched", "foreign") for c in chunks):
            return
        from .progress import Progress

        total = job.record.n_prompts
        have = len(job.stored_results())
        bar = Progress(total, f"{job.id} batch", enabled=job.progress, initial=min(have, total))
        interval = job.settings.batch_poll_seconds
        started = time.monotonic()
        try:
            while True:
                active = self.refresh(bar)
                if not active:
                    bar.note("all batches ended")  # not the last poll's "N of M running"
                    break
                states = [c.server_status or c.state for c in self.store.chunks(job.id)]
                running = sum(1 for s in states if s in ("in_progress", "canceling", "sending"))
                bar.note(f"{running} of {len(states)} batches running")
                if timeout is not None and time.monotonic() - started > timeout:
                    raise TimeoutError(f"{job.id} still has {active} batches running")
                time.sleep(interval)
                interval = min(interval * 1.5, job.settings.batch_poll_max_seconds)
        except KeyboardInterrupt:
            bar.close()
            self.store.set_state(job.id, "detached")
            raise JobDetached(job) from None
        finally:
            bar.close()
        self.store.set_state(job.id, "done")

    def describe(self, *, check: bool = True) -> list[dict[str, Any]]:
        """The job's batches: id, attempt, requests, state in the store and, with ``check``,
        the API's processing status and request counts now (nothing is sent or fetched)."""
        rows = []
        for chunk in self.store.chunks(self.job.id):
            status, counts = chunk.server_status, chunk.counts
            if check and chunk.batch_id is not None and chunk.state == "created":
                batch = self.job.client.batches.retrieve(chunk.batch_id)
                status, counts = batch.get("processing_status"), batch.get("request_counts")
                self.store.update_chunk(chunk, server_status=status, counts=counts)
            rows.append(
                {
                    "batch": chunk.batch_id,
                    "attempt": chunk.attempt,
                    "requests": chunk.n,
                    "ledger": chunk.state,
                    "api": status,
                    "counts": counts,
                }
            )
        return rows

    def cancel(self) -> list[str]:
        """Cancel the running batches (results already in stay); returns their ids."""
        canceled = []
        for chunk in self.store.chunks(self.job.id):
            if chunk.state == "created" and chunk.batch_id is not None:
                batch = self.job.client.batches.cancel(chunk.batch_id)
                self.store.update_chunk(chunk, server_status=batch.get("processing_status"))
                canceled.append(chunk.batch_id)
        self.store.set_state(self.job.id, "canceled")
        return canceled


# --------------------------------------------------------------------------------------------
# Realtime


def run_realtime(job: JobState, prompts: list[int]) -> None:
    """Send ``prompts`` as concurrent ``/v1/messages`` calls (blocking, with progress), keeping
    every answer as it arrives. An interrupt keeps what came and raises :class:`JobInterrupted`.
    """
    from ..api.fanout import run_concurrently
    from ..prompt import estimate_tokens
    from .progress import Progress

    record = job.record
    done_before = record.n_prompts - len(prompts)
    bar = Progress(
        record.n_prompts, f"{job.id} realtime", enabled=job.progress, initial=done_before
    )
    buffer: list[ResultRow] = []
    spend = _Spend(kind="realtime", overrides=job.price_overrides, model=record.model)
    last_flush = last_spend = time.monotonic()
    answered = 0
    attempt = job.store.next_attempt(job.id)

    def flush(*, spending: bool = True) -> None:
        # Results go to the job store often (cheap: one WAL append); the spend ledger, a file
        # opened per record, gets one summed row every few seconds and at the end.
        nonlocal last_flush, last_spend
        job.put_results(buffer)
        buffer.clear()
        last_flush = time.monotonic()
        if spending:
            job.spent_usd += spend.record(
                job.ledger, seconds=last_flush - last_spend, request_id=None
            )
            last_spend = last_flush

    def send(prompt: int) -> ApiObject:
        return job.client.request(
            "POST", "/v1/messages", body=orjson.Fragment(job.params(prompt)), max_retries=0
        )

    def keep(outcome: Outcome[int]) -> None:
        nonlocal answered
        if outcome.response is not None:
            row = message_row(
                outcome.item, outcome.response, outcome.response.request_id or "", attempt
            )
        else:
            error = outcome.error
            kind = getattr(error, "error_type", None) or (
                "connection_error" if isinstance(error, APIConnectionError) else "api_error"
            )
            row = failed_row(outcome.item, f"errored:{kind}", str(error), "realtime", attempt)
        buffer.append(row)
        spend.add(row)
        answered += 1
        bar.advance(1)
        now = time.monotonic()
        if len(buffer) >= 200 or now - last_flush > 1.0:
            flush(spending=now - last_spend > 10.0)

    cacheable = bool(record.spec.get("cacheable"))
    # What each request costs against an input-token budget: cache reads do not count.
    shared = 0 if cacheable else int(record.spec.get("instruction_tokens") or 0)
    fresh_tokens = {n: shared + estimate_tokens(job.texts[n]) for n in prompts}
    try:
        run_concurrently(
            prompts,
            send,
            on_outcome=keep,
            weight=lambda n: float(fresh_tokens[n]),
            first_alone=cacheable,
            max_attempts=MAX_ATTEMPTS,
            # One backoff for every retry the package makes: the client's.
            initial_backoff=job.client.initial_retry_delay,
            max_backoff=job.client.max_retry_delay,
        )
    except KeyboardInterrupt:
        flush()
        bar.close()
        job.store.set_state(job.id, "interrupted")
        raise JobInterrupted(job, done_before + answered, record.n_prompts) from None
    finally:
        flush()
        bar.close()
    job.store.set_state(job.id, "done")
