"""Sending a job's requests: the Message Batches protocol, and the realtime runner.

    Batches(job).send(prompts)      # plan the batches in the job store, then create them
    Batches(job).wait()             # poll with backoff; fetch each ended batch's results
    run_realtime(job, prompts)      # concurrent /v1/messages calls, every answer kept at once

Both run while the job's claim is held (``state.JobState.claimed``): one process at a time.

**Batches, durably.** Before any batch is created the job store has the planned batches
(``plan``); then each create as it is sent (``sending``) and its batch id once known
(``created``); then every result as it streams in. A create whose answer was lost (a dropped
connection, a 5xx, a process that died in between) is looked for among the account's batches
(same number of requests, created since it was sent, not known to the store) before anything
is sent again; it is sent again only once it has had ``Settings.lost_create_grace_seconds`` to
appear and has not. The batches found are only candidates: another notebook on the same
account may have made a batch of the same size at the same time, and the Batches API shows
nothing of a running batch's requests. So each candidate is watched (``adopting``) until it
ends, and then the first line of its results says whose it is: every ``custom_id`` carries the
job's tag and the prompt's number. Ours is adopted; the others are left alone (never canceled:
they may be a colleague's); if none was ours, the create is sent again.

**Polite, stubborn waiting.** A progress bar, polling from ``Settings.batch_poll_seconds``
growing by half up to ``batch_poll_max_seconds``; a check that fails for a reason that passes
(5xx, 529, 429, a dropped connection: beyond the client's own retries) is tried again at the
next poll, up to :data:`MAX_FAILED_POLLS` in a row; an interrupt detaches (the batches go on at
Anthropic). Whenever the wait ends early, one line names the job and how to attach again.

**Realtime.** ``api.fanout.run_concurrently`` sends the requests, learning the account's limits
as it goes. Every answer is written to the job store, with the spend it owes the ledger, in one
transaction as it arrives (sending goes on in the fan-out's thread); the ledger gets the spend every
second and at the end, from the store (``spend``), so a ``kill -9`` loses neither answers nor
spend and a re-run pays for no answer twice. A response that is not an answer (cut short, not
JSON) marks its row ``errored:malformed_response`` and the job goes on; it is not retried at
once, since it was billed, but a re-run sends it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..api.retry import should_retry
from ..errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    ClaudeError,
    StorageError,
)
from .progress import say
from .replaying import Fresh
from .spend import Tally
from .store import ChunkRecord, ResultRow
from .wire import (
    batch_body,
    batch_result_row,
    failed_row,
    prompt_of,
    request_items,
    split_requests,
)

if TYPE_CHECKING:
    from .progress import Progress
    from .state import JobState

__all__ = [
    "FLUSH_ROWS",
    "MAX_ATTEMPTS",
    "MAX_FAILED_POLLS",
    "Batches",
    "JobDetached",
    "JobInterrupted",
    "JobWaitError",
    "JobWaitTimeout",
]

#: Results are written to the job store in transactions of this many rows.
FLUSH_ROWS = 5000
#: Realtime: tries per request. The backoff between them, when the API does not say how long to
#: wait, is the client's (``initial_retry_delay`` growing to ``max_retry_delay``).
MAX_ATTEMPTS = 8
#: Waiting for batches: checks that may fail in a row (5xx, 529, a lost connection) before the
#: wait gives up (about a quarter of an hour at the default poll timings).
MAX_FAILED_POLLS = 20
# How far back (seconds) a lost create is looked for, beyond the moment it was sent: server and
# local clocks may disagree by this much.
_CLOCK_SKEW = 600.0
# Realtime: seconds between two writes of the answers' spend to the ledger (the answers
# themselves are stored one by one, with the spend they owe).
SPEND_EVERY = 1.0


def _attach_hint(job_id: str) -> str:
    return f"%claude_batch attach {job_id} (or claude_magics.jobs.attach({job_id!r}))"


class JobDetached(KeyboardInterrupt):
    """Waiting was interrupted; the job's batches go on at Anthropic."""

    def __init__(self, job: JobState) -> None:
        super().__init__(job.id)
        self.job = job

    def _render_traceback_(self) -> list[str]:
        return [
            f"Detached from {self.job.id}: its batches go on running at Anthropic; nothing is "
            "lost and nothing will be sent twice.",
            f"Run the same cell or call again to pick the results up, or "
            f"{_attach_hint(self.job.id)}.",
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


class JobWaitError(ClaudeError):
    """Waiting for a job's batches ended before they did (the API kept failing, or refused,
    or the job store failed). The batches go on; the message says how to attach again."""

    def __init__(self, job_id: str, why: str, *, hint: str = "") -> None:
        super().__init__(
            f"{job_id}: stopped waiting for its batches ({why}). They go on at Anthropic and "
            f"nothing is lost: {_attach_hint(job_id)} picks the results up."
        )
        self.job_id = job_id
        self.hint = hint


class JobWaitTimeout(JobWaitError, TimeoutError):
    """``wait(timeout=...)`` ran out before the batches ended."""


def _describe(error: BaseException) -> str:
    """An error in a few words: its status and type, or its message."""
    if isinstance(error, APIStatusError):
        return f"{error.status_code} {error.error_type}: {error.message}"
    return f"{type(error).__name__}: {error}"


def _transient(error: APIError) -> bool:
    """Whether a failed check may succeed if simply tried again later."""
    if isinstance(error, APIConnectionError):
        return True
    if isinstance(error, APIStatusError):
        return should_retry(error.status_code, error.headers)
    return False


@contextmanager
def _readable(batch_id: str) -> Iterator[None]:
    """A results download that arrives broken (a line cut short, not JSON) is a download to
    try again at the next poll, like a dropped connection: the results stay at Anthropic."""
    try:
        yield
    except orjson.JSONDecodeError as exc:
        raise APIConnectionError(f"the results of {batch_id} arrived broken ({exc})") from None


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


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

    def send(self, prompts: Sequence[int]) -> None:
        """Plan batches for ``prompts`` and create them (and any planned earlier)."""
        self.plan(prompts)
        self.send_planned()

    def _items(self, prompts: Iterable[int]) -> list[bytes]:
        numbers = list(prompts)
        cached = self._encoded
        if all(n in cached for n in numbers):
            return [cached[n] for n in numbers]
        job = self.job
        return request_items(
            job.tag, job.record.before, job.record.after, job.texts, numbers, job.documents
        )

    def plan(self, prompts: Sequence[int]) -> None:
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

    def _body(self, chunk: ChunkRecord) -> bytes:
        """The create request's body for ``chunk``."""
        return batch_body(self._items(chunk.prompts))

    def _payload(self, chunk: ChunkRecord) -> dict[str, Any]:
        """How the create request carries its body (a streamed job's goes from disk)."""
        return {"body": orjson.Fragment(self._body(chunk))}

    def _create(self, chunk: ChunkRecord) -> None:
        payload = self._payload(chunk)
        # Written before sending: if the answer is lost, or the process dies, the next run
        # knows a batch may exist and looks for it instead of paying twice.
        self.store.update_chunk(chunk, state="sending", sent_at=time.time())
        try:
            batch = self.job.client.request(
                "POST",
                "/v1/messages/batches",
                retry="unsent",
                betas=self.job.betas,
                **payload,
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
        try:
            self.store.update_chunk(
                chunk,
                state="created",
                batch_id=str(batch["id"]),
                server_status=batch.get("processing_status"),
                counts=batch.get("request_counts"),
            )
        except StorageError as error:
            # The batch exists but the store does not know it: the chunk stays "sending", so
            # the next run finds the batch among the account's (by its size and tag).
            raise StorageError(
                f"{self.job.id}: batch {batch['id']} was created but could not be recorded: "
                f"{error} Once the file is fixed, run the same call again: the batch is found "
                "and nothing is sent twice."
            ) from None

    def _find_lost(
        self, chunk: ChunkRecord, exclude: Iterable[str] = ()
    ) -> list[Mapping[str, Any]]:
        """Batches that could be this chunk's lost create: created since it was sent (give or
        take clock skew), holding as many requests, and not recorded as any job's."""
        known = self.store.known_batch_ids() | set(exclude)
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
        """A create was sent but its answer never recorded: watch the batches that could be
        it (:meth:`_identify` tells whose they are once they end), or, once it has had time
        to appear and has not, send the create again."""
        deadline = (chunk.sent_at or 0.0) + self.job.settings.lost_create_grace_seconds
        # Batches an earlier look showed to be others' are not candidates again.
        passed = self.store.candidates(chunk)
        while True:
            found = self._find_lost(chunk, exclude=passed)
            if found:
                self._watch(chunk, [str(b["id"]) for b in found])
                return
            wait = deadline - time.time()
            if wait <= 0:
                self.store.update_chunk(chunk, state="planned", sent_at=None)
                self._create(self._reload(chunk))
                return
            time.sleep(min(wait, 2.0))

    def _watch(self, chunk: ChunkRecord, batch_ids: list[str]) -> None:
        self.store.watch_candidates(chunk, batch_ids)
        if len(batch_ids) > 1:
            say(
                f"{self.job.id}: the answer to a batch create was lost, and {len(batch_ids)} "
                f"batches of its size were made meanwhile ({', '.join(batch_ids)}): each is "
                "watched until its results show whose it is; none is canceled, nothing is "
                "sent twice."
            )

    def _identify(self, chunk: ChunkRecord, bar: Progress | None) -> bool:
        """Look at the batches that could be ``chunk``'s; adopt and fetch the one whose
        results carry this job's tag and the chunk's prompts. Returns whether the chunk is
        still waiting (for a candidate to end, or for its create to be sent again)."""
        for batch_id, state in self.store.candidates(chunk).items():
            if state != "watching":
                continue
            batch = self.job.client.batches.retrieve(batch_id)
            if batch.get("processing_status") != "ended":
                continue
            if self._is_ours(batch_id, chunk):
                self.store.update_chunk(
                    chunk,
                    state="ended",
                    batch_id=batch_id,
                    server_status="ended",
                    counts=batch.get("request_counts"),
                )
                self._fetch(self._reload(chunk), bar)
                return False
            self.store.set_candidate(chunk, batch_id, "foreign")
        candidates = self.store.candidates(chunk)
        if any(state == "watching" for state in candidates.values()):
            return True
        # None was ours. Look once more (a create can take a while to be listed) before
        # concluding it was never made and sending it again (unless the job was canceled
        # meanwhile: then its rows are canceled, as a batch's would have been).
        found = self._find_lost(chunk, exclude=candidates)
        if found:
            self._watch(chunk, [str(b["id"]) for b in found])
            return True
        record = self.store.get(self.job.id)
        if record is not None and record.state == "canceled":
            why = "the job was canceled before its batch was made"
            self.job.put_results(
                [failed_row(p, "canceled", why, "", chunk.attempt) for p in chunk.prompts]
            )
            self.store.update_chunk(chunk, state="fetched")
            return False
        self.store.update_chunk(chunk, state="planned", sent_at=None)
        return True

    def _is_ours(self, batch_id: str, chunk: ChunkRecord) -> bool:
        """Whether an ended batch is ``chunk``'s: its first result line names one of the
        chunk's prompts under this job's tag (the rest is not downloaded)."""
        with _readable(batch_id), self.job.client.batches.results(batch_id) as lines:
            first = next(iter(lines), None)
        if first is None:
            return False
        prompt = prompt_of(str(first.get("custom_id")), self.job.tag)
        return prompt is not None and prompt in set(chunk.prompts)

    # -- polling and results ---------------------------------------------------------------------

    def refresh(self, bar: Progress | None = None) -> int:
        """Check the batches once; fetch the results of those that ended. Returns how many
        batches are still running (or not yet created, or not yet identified)."""
        self.send_planned()
        active = 0
        fetched_here = self.job.fetched_here
        for chunk in self.store.chunks(self.job.id):
            if (
                chunk.state in ("fetched", "foreign")
                or (chunk.attempt, chunk.chunk) in fetched_here
            ):
                continue
            if chunk.state == "adopting":
                active += self._identify(chunk, bar)
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
        tally = Tally(kind="batch", overrides=job.price_overrides, model=job.record.model)
        batch = job.client.batches.retrieve(chunk.batch_id)
        created = _parse_time(batch.get("created_at"))
        ended = _parse_time(batch.get("ended_at"))
        with _readable(chunk.batch_id), job.client.batches.results(chunk.batch_id) as lines:
            foreign = self.ingest(lines, chunk.batch_id, chunk.attempt, tally=tally, bar=bar)
        if foreign:
            # An adopted batch that was not ours after all: send these prompts for real.
            self.store.update_chunk(chunk, state="foreign")
            self.plan(chunk.prompts)
            return
        seconds = max((ended - created) if created is not None and ended is not None else 0.0, 0)
        owed = tally.owed(seconds=seconds, request_id=chunk.batch_id)
        try:
            # The chunk is done and its spend owed, in one transaction: refetching the results
            # later (a crash before this) owes it once, not twice.
            self.store.finish_fetch(chunk, owed)
        except StorageError:
            # The results are in hand (kept by the job, said once); the store still says
            # "ended", so a later run fetches them again, at no cost, and owes the spend then.
            job.fetched_here.add((chunk.attempt, chunk.chunk))
            return
        job.write_spend()

    def ingest(
        self,
        lines: Iterable[Mapping[str, Any]],
        batch_id: str,
        attempt: int = 0,
        *,
        tally: Tally | None = None,
        bar: Progress | None = None,
    ) -> int:
        """Store a batch's result lines (parsed JSON) as they come, a transaction every
        ``FLUSH_ROWS``, so that a crash in the middle loses at most the current slice.
        Returns how many lines carried someone else's ``custom_id``."""
        buffer: list[ResultRow] = []
        # Answers kept for replay, with the message as it came, encoded as it arrives (bytes:
        # 5,000 messages' dicts held for a slice would make the garbage collector crawl over
        # them): handed to the replay store's writer with each slice (it writes while the
        # next slice is read), and waited for at the end.
        fresh = Fresh()
        kept_prompt, kept_message, kept_cost = fresh.appenders()
        foreign = 0
        job = self.job
        tag = job.tag
        put = job.put_results
        keeping = job.replay is not None
        price = _batch_pricer(job) if keeping else None
        dumps = orjson.dumps
        for line in lines:
            row = batch_result_row(line, tag, attempt, batch_id)
            if row is None:
                foreign += 1
                continue
            buffer.append(row)
            if tally is not None:
                tally.add(row)
            if price is not None and row.status == "succeeded":
                kept_prompt(row.prompt)
                kept_message(dumps(line["result"]["message"]))
                kept_cost(price(row))
            if len(buffer) >= FLUSH_ROWS:
                put(buffer)
                job.keep_answers(fresh)
                fresh = Fresh()
                kept_prompt, kept_message, kept_cost = fresh.appenders()
                if bar is not None:
                    bar.advance(len(buffer))
                buffer = []
        put(buffer)
        job.keep_answers(fresh, final=True)
        if bar is not None:
            bar.advance(len(buffer))
        return foreign

    def wait(self, *, timeout: float | None = None) -> None:
        """Poll until every batch has ended and its results are in; an interrupt detaches.
        Checks that fail for a passing reason are tried again; whatever ends the wait early
        is one line (:class:`JobWaitError`) naming the job and how to attach."""
        job = self.job
        try:
            chunks = self.store.chunks(job.id)
        except StorageError as error:
            raise JobWaitError(job.id, f"the job store failed: {error}") from None
        if job.done and all(c.state in ("fetched", "foreign") for c in chunks):
            return
        from .progress import Progress

        total = job.record.n_prompts
        have = job.answered_count()
        bar = Progress(total, f"{job.id} batch", enabled=job.progress, initial=min(have, total))
        interval = job.settings.batch_poll_seconds
        started = time.monotonic()
        failures = 0
        try:
            while True:
                job.check_claim()
                try:
                    active = self.refresh(bar)
                except APIError as error:
                    if not _transient(error):
                        raise JobWaitError(job.id, _describe(error), hint=error.hint) from error
                    failures += 1
                    if failures >= MAX_FAILED_POLLS:
                        why = f"{failures} checks in a row failed, the last {_describe(error)}"
                        raise JobWaitError(job.id, why) from error
                    bar.note(f"the API did not answer ({_describe(error)}); trying again")
                except StorageError as error:
                    raise JobWaitError(job.id, f"the job store failed: {error}") from None
                else:
                    failures = 0
                    if not active:
                        bar.note("all batches ended")  # not the last poll's "N of M running"
                        break
                    states = [c.server_status or c.state for c in self.store.chunks(job.id)]
                    running = sum(
                        1
                        for s in states
                        if s in ("in_progress", "canceling", "sending", "adopting")
                    )
                    bar.note(f"{running} of {len(states)} batches running")
                if timeout is not None and time.monotonic() - started > timeout:
                    raise JobWaitTimeout(job.id, f"still running after {timeout:g} s")
                bar.pause(interval)
                interval = min(interval * 1.5, job.settings.batch_poll_max_seconds)
        except KeyboardInterrupt:
            bar.close()
            job.set_state("detached")
            raise JobDetached(job) from None
        finally:
            bar.close()
            job.save()
        job.set_state("done")

    def describe(self, *, check: bool = True) -> list[dict[str, Any]]:
        """The job's batches: id, attempt, requests, state in the store and, with ``check``,
        the API's processing status and request counts now (nothing is sent or fetched)."""
        rows = []
        for chunk in self.store.chunks(self.job.id):
            status, counts = chunk.server_status, chunk.counts
            if chunk.state == "adopting":
                watched = [b for b, s in self.store.candidates(chunk).items() if s == "watching"]
                status = f"create answer lost; watching {', '.join(watched)} to tell which is ours"
            elif check and chunk.batch_id is not None and chunk.state == "created":
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
        """Cancel the running batches (results already in stay); returns their ids. A batch
        not yet told from others' (its create's answer was lost) is left alone: once the
        batches that could be it end, its rows get its results, or ``canceled`` if none was
        its (it is then not sent again)."""
        canceled = []
        unsure = 0
        for chunk in self.store.chunks(self.job.id):
            if chunk.state == "created" and chunk.batch_id is not None:
                batch = self.job.client.batches.cancel(chunk.batch_id)
                self.store.update_chunk(chunk, server_status=batch.get("processing_status"))
                canceled.append(chunk.batch_id)
            elif chunk.state == "adopting":
                unsure += 1
        if unsure:
            say(
                f"{self.job.id}: {unsure} batch(es) whose create answer was lost are not "
                "canceled: which of the account's batches is ours is known only once they end, "
                "and the others may be someone else's."
            )
        self.job.set_state("canceled")
        return canceled


def _batch_pricer(job: JobState) -> Callable[[ResultRow], float | None]:
    """What one batch result cost (kept with it for replay: what replaying it saves). Rows
    of one job mostly share their token counts, so each distinct usage is priced once."""
    from ..cost.pricing import price_usage

    prices: dict[tuple[Any, ...], float | None] = {}
    unpriced = object()

    def price(row: ResultRow) -> float | None:
        key = row[4:10]  # a ResultRow's model and its five token counts
        cost = prices.get(key, unpriced)
        if cost is unpriced:
            model = row.model or job.record.model
            paid = price_usage(row.usage, model, batch=True, overrides=job.price_overrides)
            cost = prices[key] = None if paid is None else paid.total
        return cost  # type: ignore[return-value]

    return price
