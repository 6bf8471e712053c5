"""DataFrame jobs: rows to requests (Message Batches or concurrent realtime calls) and back.

    job = run(df, "Classify {{review}}", label_task(["pos", "neg"]), mode="batch", wait=False)
    job.wait().result()                 # a Series aligned to df's index; attach(job.id) later

The plain functions behind ``df.claude`` and ``%%claude --batch``, usable without either.

* **Cheap.** Identical prompts are sent once; the shared instruction is cached (``rows``); batch
  mode is half price; labels have a tight ``max_tokens``.
* **Durable.** Before any batch is created the job is in the SQLite job ledger (``jobs``): the
  request-set hash, the prompts, the row map, the planned batches; then each create as it is
  sent and its batch id once known; then every result as it streams in. Running the same call
  again finds the job by its hash and attaches to it: nothing is paid twice. A create whose
  response was lost is looked for among the account's batches (same number of requests,
  created since it was sent, not known to the ledger) before anything is sent again, and an
  adopted batch is checked when its results arrive: its ``custom_id``s carry the job's tag.
* **Every row accounted for.** ``claude_status`` per row: succeeded, errored:<type>, expired,
  canceled, max_tokens, refusal, invalid_output (and pending while a job runs). Answers outside
  the labels or the schema are invalid, never coerced. ``job.retry(statuses=[...])`` resends
  only those rows.
* **Polite waiting.** A progress bar, polling with backoff, and an interrupt that detaches (the
  batch goes on at Anthropic) with a message that says how to attach again.

Realtime mode fans the requests out with ``realtime.run_concurrently`` and keeps every answer
as it arrives, so an interrupted job resumes where it stopped when the call is run again.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..cost.pricing import format_usd, price_usage
from ..errors import APIConnectionError, APIStatusError, ClaudeError
from .store import ChunkRecord, JobRecord, JobStore, ResultRow

if TYPE_CHECKING:
    import pandas as pd

    from ..api.client import ApiObject, Client
    from ..api.fanout import Outcome
    from ..cost.ledger import Ledger
    from .estimate import JobEstimate
    from .progress import Progress
    from .rows import Task

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "BatchLimits",
    "ConfirmationDeclined",
    "Job",
    "JobDetached",
    "JobInterrupted",
    "attach",
    "batch_bodies",
    "batch_body",
    "batch_result_row",
    "cancel",
    "custom_id",
    "custom_ids",
    "default_store",
    "list_jobs",
    "request_items",
    "run",
    "split_requests",
]

MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
_BODY_OVERHEAD = len(b'{"requests":[]}')
# How far back (seconds) a lost create is looked for, beyond the moment it was sent: server and
# local clocks may disagree by this much.
_CLOCK_SKEW = 600.0
FAILED_STATUSES = ("errored", "expired", "canceled")


@dataclass(frozen=True)
class BatchLimits:
    """How much one batch may hold (the API's limits; tests use small ones)."""

    max_requests: int = MAX_BATCH_REQUESTS
    max_bytes: int = MAX_BATCH_BYTES


# --------------------------------------------------------------------------------------------
# Rows to custom_ids (the one place), and requests into batches


def custom_id(tag: str, prompt: int) -> str:
    """The ``custom_id`` of distinct prompt ``prompt`` in the job tagged ``tag``.

    Rows map to prompts (``rows.Prompts.row_prompt``) and prompts to ids here; the DataFrame
    index never enters an id, so any index works and ids always match ``^[a-zA-Z0-9_-]{1,64}$``.
    """
    return f"{tag}-{prompt}"


def custom_ids(tag: str, prompts: Iterable[int]) -> list[str]:
    """``custom_id`` for many prompts at once (the same ids, without a call per prompt)."""
    return [f"{tag}-{prompt}" for prompt in prompts]


def prompt_of(value: str, tag: str) -> int | None:
    """The prompt number in a ``custom_id`` of this job, or None for someone else's id."""
    head, _, number = value.rpartition("-")
    if head != tag or not number.isdigit():
        return None
    return int(number)


def split_requests(
    sizes: Sequence[int], limits: BatchLimits = BatchLimits()
) -> list[tuple[int, int, int]]:
    """Cut consecutive requests of the given serialised sizes into batches that respect
    ``limits``: a list of (start, end, body bytes). Raises if one request alone is too big."""
    total = sum(sizes) + max(len(sizes) - 1, 0) + _BODY_OVERHEAD
    if sizes and len(sizes) <= limits.max_requests and total <= limits.max_bytes:
        return [(0, len(sizes), total)]  # the common case: everything fits in one batch
    chunks: list[tuple[int, int, int]] = []
    start, used = 0, _BODY_OVERHEAD
    for i, size in enumerate(sizes):
        if size + _BODY_OVERHEAD > limits.max_bytes:
            raise ClaudeError(
                f"request {i} alone is {size:,} bytes, more than a batch may hold "
                f"({limits.max_bytes:,}); shorten that row"
            )
        extra = size + (1 if i > start else 0)  # the comma between requests
        if i > start and (i - start >= limits.max_requests or used + extra > limits.max_bytes):
            chunks.append((start, i, used))
            start, used, extra = i, _BODY_OVERHEAD, size
        used += extra
    if start < len(sizes):
        chunks.append((start, len(sizes), used))
    return chunks


def request_items(
    tag: str, before: bytes, after: bytes, texts: Sequence[str], prompts: Iterable[int]
) -> list[bytes]:
    """The serialised batch requests of ``prompts``: ``{"custom_id": ..., "params": ...}``
    with each body laid out around its text (the shared part was serialised once)."""
    dumps, join = orjson.dumps, b"".join
    middle = b'","params":' + before
    tail = after + b"}"
    numbers = list(prompts)
    ids = custom_ids(tag, numbers)
    # One join per item: chained + would copy the long shared part several times.
    return [
        join((b'{"custom_id":"', ident.encode(), middle, dumps(texts[n]), tail))
        for ident, n in zip(ids, numbers, strict=True)
    ]


def batch_body(items: Sequence[bytes]) -> bytes:
    """``{"requests": [...]}`` around serialised requests, copying each byte once."""
    if not items:
        return b'{"requests":[]}'
    parts = list(items)
    parts[0] = b'{"requests":[' + parts[0]
    parts[-1] = parts[-1] + b"]}"
    return b",".join(parts)


def batch_bodies(items: Sequence[bytes], limits: BatchLimits = BatchLimits()) -> list[bytes]:
    """Create-request bodies holding ``items``, as many as ``limits`` require."""
    chunks = split_requests([len(item) for item in items], limits)
    return [batch_body(items[s:e]) for s, e, _ in chunks]


# --------------------------------------------------------------------------------------------
# Interrupts and refusals


class JobDetached(KeyboardInterrupt):
    """Waiting was interrupted; the job's batches go on at Anthropic."""

    def __init__(self, job: Job) -> None:
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

    def __init__(self, job: Job, done: int, total: int) -> None:
        super().__init__(job.id)
        self.job, self.done, self.total = job, done, total

    def _render_traceback_(self) -> list[str]:
        return [
            f"Interrupted {self.job.id}: {self.done:,} of {self.total:,} requests answered "
            "and kept.",
            "Run the same cell or call again to send only the rest, or "
            f"%claude_batch attach {self.job.id}.",
        ]


class ConfirmationDeclined(ClaudeError):
    """A job above ``confirm_above_usd`` was not confirmed; nothing was sent."""


# --------------------------------------------------------------------------------------------
# The job


def default_store() -> JobStore:
    """The job ledger beside the spend ledger (``<home>/jobs.sqlite``)."""
    from ..config import shared_ledger

    return JobStore(shared_ledger().path.parent / "jobs.sqlite")


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _usage_of(message: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """(input, output, cache write 5m, cache write 1h, cache read) tokens of a message."""
    usage = message.get("usage") or {}
    created = usage.get("cache_creation_input_tokens") or 0
    one_hour = five_min = 0
    if created:
        breakdown = usage.get("cache_creation") or {}
        one_hour = breakdown.get("ephemeral_1h_input_tokens") or 0
        five_min = breakdown.get("ephemeral_5m_input_tokens") or 0
        if one_hour + five_min != created:  # no breakdown: the API's default, five minutes
            five_min, one_hour = created - one_hour, one_hour
    return (
        usage.get("input_tokens") or 0,
        usage.get("output_tokens") or 0,
        five_min,
        one_hour,
        usage.get("cache_read_input_tokens") or 0,
    )


def _message_row(prompt: int, message: Mapping[str, Any], source: str, attempt: int) -> ResultRow:
    content: list[Any] = message.get("content") or []
    if len(content) == 1 and content[0].get("type") == "text":  # the usual shape: one text
        text = content[0].get("text", "")
    else:
        text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
    fresh, out, w5, w1, read = _usage_of(message)
    return (
        prompt,
        "succeeded",
        text,
        message.get("stop_reason"),
        message.get("model"),
        fresh,
        out,
        w5,
        w1,
        read,
        None,
        source,
        attempt,
    )


def _failed_row(
    prompt: int, status: str, error: str | None, source: str, attempt: int
) -> ResultRow:
    return (prompt, status, None, None, None, 0, 0, 0, 0, 0, error, source, attempt)


def batch_result_row(
    line: Mapping[str, Any], tag: str, attempt: int, batch_id: str
) -> ResultRow | None:
    """One line of a batch's results as a stored result (None: not one of this job's ids)."""
    # prompt_of, inlined: this runs once per line of 100,000-line result files.
    head, _, number = str(line.get("custom_id")).rpartition("-")
    if head != tag or not number.isdigit():
        return None
    prompt = int(number)
    result = line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        return _message_row(prompt, result.get("message") or {}, batch_id, attempt)
    if kind == "errored":
        # The error is nested twice: {"type": "error", "error": {"type": T, "message": M}}.
        outer: Mapping[str, Any] = result.get("error") or {}
        nested = outer.get("error")
        inner: Mapping[str, Any] = nested if isinstance(nested, Mapping) else outer
        error_type = str(inner.get("type") or "api_error")
        return _failed_row(prompt, f"errored:{error_type}", inner.get("message"), batch_id, attempt)
    return _failed_row(prompt, str(kind or "errored:unknown"), None, batch_id, attempt)


class _Spend:
    """Usage summed per model, recorded in the spend ledger as one row per batch or flush."""

    def __init__(self) -> None:
        self.by_model: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])

    def add(self, row: ResultRow) -> None:
        if row[1] == "succeeded" or row[2] is not None:
            totals = self.by_model[str(row[4] or "")]
            for k, value in enumerate(row[5:10]):
                totals[k] += int(value or 0)

    def record(
        self,
        ledger: Ledger | None,
        *,
        kind: str,
        seconds: float,
        request_id: str | None,
        overrides: Mapping[str, Any] | None,
        fallback_model: str,
    ) -> float:
        spent = 0.0
        for model, (fresh, out, w5, w1, read) in self.by_model.items():
            usage = {
                "input_tokens": fresh,
                "output_tokens": out,
                "cache_creation_input_tokens": w5 + w1,
                "cache_read_input_tokens": read,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": w5,
                    "ephemeral_1h_input_tokens": w1,
                },
            }
            name = model or fallback_model
            cost = price_usage(usage, name, batch=kind == "batch", overrides=overrides)
            spent += cost.total if cost is not None else 0.0
            if ledger is not None:
                ledger.record_usage(
                    model=name,
                    usage=usage,
                    cost=cost,
                    seconds=seconds,
                    request_id=request_id,
                    kind=kind,
                )
        self.by_model.clear()
        return spent


class Job:
    """One DataFrame job, live or attached from the ledger. Use ``run`` or ``attach``."""

    #: Seconds between the first polls of a batch; grows by half each poll up to ``max_poll``.
    poll_interval = 2.0
    max_poll = 60.0
    #: How long a lost create may take to show up in the list of batches before it is resent.
    lost_create_grace = 30.0
    #: Results written to the ledger in transactions of this many rows.
    flush_rows = 5000
    #: Realtime: tries per request, and the backoff between them (seconds) when the API does
    #: not say how long to wait.
    max_attempts = 8
    initial_backoff = 0.5
    max_backoff = 8.0

    def __init__(
        self,
        store: JobStore,
        record: JobRecord,
        *,
        client: Client,
        ledger: Ledger | None = None,
        progress: bool = True,
        limits: BatchLimits = BatchLimits(),
        price_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        from .rows import Task

        self.store = store
        self.record = record
        self.client = client
        self.ledger = ledger
        self.progress = progress
        self.limits = limits
        self.price_overrides = dict(price_overrides or {}) or None
        self.task: Task = Task.from_spec(record.spec["task"])
        self._texts: list[str] | None = None
        self._row_prompt: list[int] | None = None
        self._encoded: dict[int, bytes] | None = None
        self._rows: dict[int, ResultRow] | None = None
        self.spent_usd = 0.0

    # -- identity ------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def mode(self) -> str:
        return self.record.mode

    @property
    def tag(self) -> str:
        return self.record.id.removeprefix("job_")

    @property
    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = self.store.texts(self.id)
        return self._texts

    @property
    def row_prompt(self) -> list[int]:
        if self._row_prompt is None:
            self._row_prompt = self.store.row_prompt(self.id)
        return self._row_prompt

    def params(self, prompt: int) -> bytes:
        """The JSON request body of one distinct prompt, as sent."""
        return self.record.before + orjson.dumps(self.texts[prompt]) + self.record.after

    def _items(self, prompts: Iterable[int]) -> list[bytes]:
        numbers = list(prompts)
        cached = self._encoded
        if cached is not None and all(n in cached for n in numbers):
            return [cached[n] for n in numbers]
        return request_items(self.tag, self.record.before, self.record.after, self.texts, numbers)

    # -- state -----------------------------------------------------------------------------------

    def _results(self) -> dict[int, ResultRow]:
        """The latest result per prompt: read from the ledger once, then kept up to date by
        this object, which writes every new result through ``_put``."""
        if self._rows is None:
            self._rows = self.store.results(self.id)
        return self._rows

    def _put(self, rows: list[ResultRow]) -> None:
        known = self._results()  # read first, so that the view stays complete
        self.store.put_results(self.id, rows)
        known.update((row[0], row) for row in rows)

    def reload(self) -> Job:
        """Forget what this object knows and read the ledger again."""
        self._rows = None
        return self

    def statuses(self) -> dict[int, str]:
        """The status of every prompt that has a result."""
        return {prompt: row[1] for prompt, row in self._results().items()}

    def counts(self) -> dict[str, int]:
        """Rows per status (``pending``: no result yet)."""
        by_prompt = self.statuses()
        counts: dict[str, int] = defaultdict(int)
        for prompt in self.row_prompt:
            counts[by_prompt.get(prompt, "pending")] += 1
        return dict(counts)

    @property
    def done(self) -> bool:
        return len(self._results()) >= self.record.n_prompts

    def summary(self) -> str:
        counts = self.counts()
        order = sorted(counts, key=lambda s: (s != "succeeded", s == "pending", s))
        parts = ", ".join(f"{counts[s]:,} {s}" for s in order)
        return (
            f"{self.id}: {self.task.kind} of {self.record.n_rows:,} rows "
            f"({self.record.n_prompts:,} distinct prompts) via {self.mode}, "
            f"{self.record.model}: {parts}"
        )

    def __repr__(self) -> str:
        return f"<Job {self.summary()}>"

    def _repr_markdown_(self) -> str:
        counts = self.counts()
        rows = "\n".join(f"| {status} | {n:,} |" for status, n in sorted(counts.items()))
        return (
            f"**{self.id}** · {self.task.kind} · {self.mode} · {self.record.model} · "
            f"{self.record.n_rows:,} rows, {self.record.n_prompts:,} distinct prompts\n\n"
            f"| claude_status | rows |\n|---|---:|\n{rows}"
        )

    # -- sending ---------------------------------------------------------------------------------

    def start(self, prompts: Sequence[int] | None = None) -> Job:
        """Send ``prompts`` (default: all without a result): plan and create the batches, or run
        them in realtime (blocking, with progress)."""
        todo = list(prompts) if prompts is not None else self._unanswered()
        if not todo:
            return self
        if self.mode == "batch":
            self._plan(todo)
            try:
                self._send_planned()
            finally:
                self._encoded = None
        else:
            self._run_realtime(todo)
        return self

    def _unanswered(self) -> list[int]:
        answered = self.statuses()
        return [n for n in range(self.record.n_prompts) if n not in answered]

    def _plan(self, prompts: list[int]) -> None:
        attempt = self.store.next_attempt(self.id)
        items = self._items(prompts)
        # Kept until the creates are sent, so that each request is serialised once.
        self._encoded = dict(zip(prompts, items, strict=True))
        chunks = split_requests([len(item) for item in items], self.limits)
        self.store.plan(
            self.id, attempt, [(prompts[start:end], nbytes) for start, end, nbytes in chunks]
        )

    def _send_planned(self) -> None:
        """Create the batches that are planned, and settle creates whose answer was lost."""
        for chunk in self.store.chunks(self.id):
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
            batch = self.client.request(
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
        for fresh in self.store.chunks(self.id, chunk.attempt):
            if fresh.chunk == chunk.chunk:
                return fresh
        raise AssertionError("chunk vanished from the ledger")

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
        take clock skew), holding as many requests, and unknown to the ledger."""
        known = self.store.known_batch_ids()
        since = (chunk.sent_at or 0.0) - _CLOCK_SKEW
        found: list[Mapping[str, Any]] = []
        for batch in self.client.batches.iter_all():  # newest first
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
        deadline = (chunk.sent_at or 0.0) + self.lost_create_grace
        while True:
            found = self._find_lost(chunk)
            if len(found) == 1:
                self._adopt(chunk, found[0])
                return
            if len(found) > 1:
                ids = ", ".join(str(b["id"]) for b in found)
                raise ClaudeError(
                    f"{self.id}: the answer to a batch create was lost and {len(found)} batches "
                    f"could be it ({ids}); nothing was resent. Cancel the ones that are not "
                    "yours in the Console, then run the cell again."
                )
            wait = deadline - time.time()
            if wait <= 0:
                self.store.update_chunk(chunk, state="planned", sent_at=None)
                self._create(self._reload(chunk))
                return
            time.sleep(min(wait, 2.0))

    # -- realtime ----------------------------------------------------------------------------

    def _run_realtime(self, prompts: list[int]) -> None:
        from ..api.fanout import run_concurrently
        from ..prompt import estimate_tokens
        from .progress import Progress

        done_before = self.record.n_prompts - len(prompts)
        bar = Progress(
            self.record.n_prompts, f"{self.id} realtime", enabled=self.progress, initial=done_before
        )
        buffer: list[ResultRow] = []
        spend = _Spend()
        last_flush = last_spend = time.monotonic()
        answered = 0
        attempt = self.store.next_attempt(self.id)

        def flush(*, spending: bool = True) -> None:
            # Results go to the job ledger often (cheap: one WAL append); the spend ledger,
            # a file opened per record, gets one summed row every few seconds and at the end.
            nonlocal last_flush, last_spend
            self._put(buffer)
            buffer.clear()
            last_flush = time.monotonic()
            if spending:
                self.spent_usd += spend.record(
                    self.ledger,
                    kind="realtime",
                    seconds=last_flush - last_spend,
                    request_id=None,
                    overrides=self.price_overrides,
                    fallback_model=self.record.model,
                )
                last_spend = last_flush

        def send(prompt: int) -> ApiObject:
            return self.client.request(
                "POST", "/v1/messages", body=orjson.Fragment(self.params(prompt)), max_retries=0
            )

        def keep(outcome: Outcome[int]) -> None:
            nonlocal answered
            if outcome.response is not None:
                row = _message_row(
                    outcome.item, outcome.response, outcome.response.request_id or "", attempt
                )
            else:
                error = outcome.error
                kind = getattr(error, "error_type", None) or (
                    "connection_error" if isinstance(error, APIConnectionError) else "api_error"
                )
                row = _failed_row(outcome.item, f"errored:{kind}", str(error), "realtime", attempt)
            buffer.append(row)
            spend.add(row)
            answered += 1
            bar.advance(1)
            now = time.monotonic()
            if len(buffer) >= 200 or now - last_flush > 1.0:
                flush(spending=now - last_spend > 10.0)

        cacheable = bool(self.record.spec.get("cacheable"))
        # What each request costs against an input-token budget: cache reads do not count.
        shared = 0 if cacheable else int(self.record.spec.get("instruction_tokens") or 0)
        fresh_tokens = {n: shared + estimate_tokens(self.texts[n]) for n in prompts}
        try:
            run_concurrently(
                prompts,
                send,
                on_outcome=keep,
                weight=lambda n: float(fresh_tokens[n]),
                first_alone=cacheable,
                max_attempts=self.max_attempts,
                initial_backoff=self.initial_backoff,
                max_backoff=self.max_backoff,
            )
        except KeyboardInterrupt:
            flush()
            bar.close()
            self.store.set_state(self.id, "interrupted")
            raise JobInterrupted(self, done_before + answered, self.record.n_prompts) from None
        finally:
            flush()
            bar.close()
        self.store.set_state(self.id, "done")

    # -- batches: polling and results ------------------------------------------------------------

    def refresh(self, bar: Progress | None = None) -> int:
        """Check the batches once; fetch the results of those that ended. Returns how many
        batches are still running (or not yet created)."""
        self._send_planned()
        active = 0
        for chunk in self.store.chunks(self.id):
            if chunk.state in ("fetched", "foreign"):
                continue
            if chunk.state == "created" and chunk.batch_id is not None:
                batch = self.client.batches.retrieve(chunk.batch_id)
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
        """Stream an ended batch's results into the ledger, a transaction every few thousand
        lines, so that a crash in the middle loses at most the current slice."""
        assert chunk.batch_id is not None
        spend = _Spend()
        batch = self.client.batches.retrieve(chunk.batch_id)
        created = _parse_time(batch.get("created_at"))
        ended = _parse_time(batch.get("ended_at"))
        with self.client.batches.results(chunk.batch_id) as lines:
            foreign = self.ingest(lines, chunk.batch_id, chunk.attempt, spend=spend, bar=bar)
        if foreign:
            # An adopted batch that was not ours after all: send these prompts for real.
            self.store.update_chunk(chunk, state="foreign")
            self._plan(chunk.prompts)
            return
        seconds = (ended - created) if created is not None and ended is not None else 0.0
        self.spent_usd += spend.record(
            self.ledger,
            kind="batch",
            seconds=max(seconds, 0.0),
            request_id=chunk.batch_id,
            overrides=self.price_overrides,
            fallback_model=self.record.model,
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
        ``flush_rows``, so that a crash in the middle loses at most the current slice.
        Returns how many lines carried someone else's ``custom_id``."""
        buffer: list[ResultRow] = []
        foreign = 0
        tag = self.tag
        for line in lines:
            row = batch_result_row(line, tag, attempt, batch_id)
            if row is None:
                foreign += 1
                continue
            buffer.append(row)
            if spend is not None:
                spend.add(row)
            if len(buffer) >= self.flush_rows:
                self._put(buffer)
                if bar is not None:
                    bar.advance(len(buffer))
                buffer = []
        self._put(buffer)
        if bar is not None:
            bar.advance(len(buffer))
        return foreign

    def wait(self, *, progress: bool | None = None, timeout: float | None = None) -> Job:
        """Block until every result is in (batch mode: poll with backoff; realtime: send what
        is left). An interrupt detaches (batch) or stops (realtime), keeping everything."""
        if progress is not None:
            self.progress = progress
        if self.mode != "batch":
            self.start()
            return self
        chunks = self.store.chunks(self.id)
        if self.done and all(c.state in ("fetched", "foreign") for c in chunks):
            return self
        from .progress import Progress

        total = self.record.n_prompts
        have = len(self._results())
        bar = Progress(total, f"{self.id} batch", enabled=self.progress, initial=min(have, total))
        interval = self.poll_interval
        started = time.monotonic()
        try:
            while True:
                active = self.refresh(bar)
                if not active:
                    bar.note("all batches ended")  # not the last poll's "N of M running"
                    break
                states = [c.server_status or c.state for c in self.store.chunks(self.id)]
                running = sum(1 for s in states if s in ("in_progress", "canceling", "sending"))
                bar.note(f"{running} of {len(states)} batches running")
                if timeout is not None and time.monotonic() - started > timeout:
                    raise TimeoutError(f"{self.id} still has {active} batches running")
                time.sleep(interval)
                interval = min(interval * 1.5, self.max_poll)
        except KeyboardInterrupt:
            bar.close()
            self.store.set_state(self.id, "detached")
            raise JobDetached(self) from None
        finally:
            bar.close()
        self.store.set_state(self.id, "done")
        return self

    def batches(self, *, check: bool = True) -> list[dict[str, Any]]:
        """The job's batches: id, attempt, requests, state in the ledger and, with ``check``,
        the API's processing status and request counts now (read-only: nothing is sent or
        fetched)."""
        rows = []
        for chunk in self.store.chunks(self.id):
            status, counts = chunk.server_status, chunk.counts
            if check and chunk.batch_id is not None and chunk.state == "created":
                batch = self.client.batches.retrieve(chunk.batch_id)
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
        """Cancel the job's running batches (results already in stay); returns their ids."""
        canceled = []
        for chunk in self.store.chunks(self.id):
            if chunk.state == "created" and chunk.batch_id is not None:
                batch = self.client.batches.cancel(chunk.batch_id)
                self.store.update_chunk(chunk, server_status=batch.get("processing_status"))
                canceled.append(chunk.batch_id)
        self.store.set_state(self.id, "canceled")
        return canceled

    def retry(self, statuses: Iterable[str] = FAILED_STATUSES, *, wait: bool = True) -> Job:
        """Send again only the prompts whose status starts with one of ``statuses`` (e.g.
        ``["errored", "expired"]`` or ``["invalid_output"]``); the others stay as they are."""
        wanted = tuple(statuses)
        if isinstance(statuses, str):
            wanted = (statuses,)
        chosen = [
            prompt
            for prompt, status in self.statuses().items()
            if any(status == s or status.startswith(s + ":") for s in wanted)
        ]
        if chosen:
            self.start(sorted(chosen))
        if wait:
            self.wait()
        return self

    # -- results -------------------------------------------------------------------------------

    def result(
        self,
        frame: pd.DataFrame | None = None,
        *,
        status: bool = False,
        usage: bool = False,
    ) -> pd.Series | pd.DataFrame:
        """The answers, one per row of the original frame, in its order and with its index
        (``frame`` gives the index; else the one stored with the job, else positions).

        A Series for one value column (``label``, text ``map``), else a DataFrame with one
        typed column per field. ``status=True`` returns a DataFrame with ``claude_status``
        too; ``usage=True`` adds tokens and cost (a shared prompt's cost on its first row).
        """
        import pandas as pd

        index = self._index(frame)
        n_prompts = self.record.n_prompts
        prompt_status = ["pending"] * n_prompts
        prompt_value: list[Any] = [None] * n_prompts
        prompt_usage: list[ResultRow | None] = [None] * n_prompts
        interpret = self.task.interpret
        # Many answers are the same text (labels): interpret each distinct one once.
        seen: dict[tuple[str, str | None], tuple[str, Any]] = {}
        for prompt, row in self._results().items():
            if row[1] == "succeeded":
                key = (row[2] or "", row[3])
                if key not in seen:
                    seen[key] = interpret(*key)
                prompt_status[prompt], prompt_value[prompt] = seen[key]
            else:
                prompt_status[prompt] = row[1]
            prompt_usage[prompt] = row
        row_prompt = self.row_prompt
        statuses = [prompt_status[p] for p in row_prompt]
        values = [prompt_value[p] for p in row_prompt]
        columns = self._columns(values)
        single = len(columns) == 1 and not status and not usage
        if single:
            ((name, data),) = columns.items()
            result: pd.Series | pd.DataFrame = pd.Series(data, index=index, name=name)
        else:
            result = pd.DataFrame(columns, index=index)
            if status or len(columns) > 1:
                result["claude_status"] = pd.Categorical(statuses)
            if usage:
                self._add_usage(result, row_prompt, prompt_usage)
        # Only plain values in attrs: pandas compares attrs when it combines frames.
        result.attrs["claude_job"] = self.id
        return result

    def _index(self, frame: pd.DataFrame | None) -> Any:
        import pandas as pd

        n = self.record.n_rows
        if frame is not None:
            if len(frame) != n:
                raise ClaudeError(
                    f"{self.id} has {n:,} rows but the frame given has {len(frame):,}"
                )
            return frame.index
        blob = self.store.row_index(self.id)
        if blob:
            stored = orjson.loads(blob)
            values = stored["values"]
            names = stored["names"]
            if stored.get("multi"):
                return pd.MultiIndex.from_tuples([tuple(v) for v in values], names=names)
            dtype = str(stored.get("dtype", ""))
            if dtype.startswith("datetime64"):
                return pd.DatetimeIndex(pd.to_datetime(values), name=names[0])
            if dtype.startswith("timedelta64"):
                return pd.TimedeltaIndex(pd.to_timedelta(values), name=names[0])
            return pd.Index(values, name=names[0])
        return pd.RangeIndex(n)

    def _columns(self, values: list[Any]) -> dict[str, Any]:
        import pandas as pd

        columns: dict[str, Any] = {}
        for name, (dtype, categories) in self.task.dtypes().items():
            if self.task.kind == "label" or self.task.schema is None:
                data = values
            else:
                data = [None if v is None else v.get(name) for v in values]
            try:
                if dtype == "category":
                    columns[name] = pd.Categorical(data, categories=categories)
                elif dtype == "object":
                    columns[name] = pd.array(data, dtype=object)
                else:
                    columns[name] = pd.array(data, dtype=dtype)
            except (TypeError, ValueError):
                columns[name] = pd.array(data, dtype=object)
        return columns

    def _add_usage(
        self, table: pd.DataFrame, row_prompt: list[int], usage: list[ResultRow | None]
    ) -> None:
        seen: set[int] = set()
        fields = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
        data: dict[str, list[Any]] = {f: [] for f in (*fields, "cost_usd")}
        batch = self.mode == "batch"
        for prompt in row_prompt:
            row = usage[prompt]
            first = prompt not in seen
            seen.add(prompt)
            if row is None or not first:
                for f in fields:
                    data[f].append(0)
                data["cost_usd"].append(0.0 if row is not None else None)
                continue
            fresh, out, w5, w1, read = row[5:10]
            data["input_tokens"].append(fresh)
            data["output_tokens"].append(out)
            data["cache_write_tokens"].append(w5 + w1)
            data["cache_read_tokens"].append(read)
            cost = price_usage(
                {
                    "input_tokens": fresh,
                    "output_tokens": out,
                    "cache_creation_input_tokens": w5 + w1,
                    "cache_read_input_tokens": read,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": w5,
                        "ephemeral_1h_input_tokens": w1,
                    },
                },
                str(row[4] or self.record.model),
                batch=batch,
                overrides=self.price_overrides,
            )
            data["cost_usd"].append(None if cost is None else cost.total)
        for name, column in data.items():
            table[name] = column

    def failures_note(self) -> str | None:
        """One line about rows that did not succeed, or None when all did."""
        counts = self.counts()
        bad = {s: n for s, n in counts.items() if s != "succeeded"}
        if not bad:
            return None
        parts = ", ".join(f"{n:,} {s}" for s, n in sorted(bad.items()))
        return (
            f"{sum(bad.values()):,} of {self.record.n_rows:,} rows did not succeed ({parts}); "
            f"their values are missing. status=True shows which; "
            f"claude_magics.jobs.attach({self.id!r}).retry() sends them again."
        )


# --------------------------------------------------------------------------------------------
# Entry points


def _encode_index(index: Any) -> bytes | None:
    """The index, for ``attach`` from a fresh kernel (None when it is not plain data)."""
    try:
        values = index.tolist()
        multi = getattr(index, "nlevels", 1) > 1
        return orjson.dumps(
            {
                "names": [None if n is None else str(n) for n in index.names],
                "values": values,
                "multi": multi,
                "dtype": str(index.dtype),
            },
            default=str,  # timestamps and the like, parsed back by dtype in Job._index
        )
    except (TypeError, orjson.JSONEncodeError):
        return None


def _in_ipython() -> bool:
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return get_ipython() is not None


def _confirm(what: str, expected: float | None, worst: float | None, threshold: float) -> None:
    """Ask before a job whose worst case is above ``threshold``; refuse where one cannot ask."""
    cached = (
        f" (about {format_usd(expected)} if the shared prefix is read from cache)"
        if expected is not None and worst is not None and expected < worst * 0.99
        else ""
    )
    message = (
        f"{what} could cost up to {format_usd(worst)}{cached}, above "
        f"ClaudeMagics.confirm_above_usd = {format_usd(threshold)}."
    )
    if not _in_ipython():
        raise ConfirmationDeclined(
            message + " Nothing was sent: pass yes=True to send it (outside IPython there is "
            "no one to ask)."
        )
    from IPython.core.error import StdinNotImplementedError

    try:
        answer = input(message + " Send it? [y/N] ")
    # A kernel without a front end to answer (nbclient, nbval) cannot read stdin.
    except (EOFError, RuntimeError, StdinNotImplementedError) as exc:
        error = ConfirmationDeclined(message + " Nothing was sent: no way to ask here.")
        error.hint = "Pass yes=True (or --yes) to send it."
        raise error from exc
    if answer.strip().lower() not in ("y", "yes"):
        raise ConfirmationDeclined("Not confirmed: nothing was sent.")


def resolve_mode(mode: str, n_prompts: int, threshold: int) -> str:
    if mode not in ("auto", "batch", "realtime"):
        raise ClaudeError(f"mode must be 'auto', 'batch' or 'realtime', not {mode!r}")
    if mode == "auto":
        return "batch" if n_prompts >= threshold else "realtime"
    return mode


def run(
    frame: pd.DataFrame,
    template: Any,
    task: Task,
    *,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    mode: str = "auto",
    yes: bool = False,
    wait: bool = True,
    fresh: bool = False,
    progress: bool = True,
    client: Client | None = None,
    store: JobStore | None = None,
    ledger: Ledger | None = None,
    limits: BatchLimits | None = None,
    what: str | None = None,
    configure: Callable[[Job], None] | None = None,
) -> Job:
    """Run ``task`` over the rows of ``frame``: the function behind ``df.claude.map``,
    ``label`` and ``extract``. Returns the job, finished unless ``wait=False``.

    The same call with the same inputs attaches to the job it started before (``fresh=True``
    starts over). ``configure`` sees the job before anything is sent (tests set polling there).
    """
    from ..config import check_budget, current_settings, shared_client, shared_ledger
    from .estimate import estimate_job
    from .rows import build_prompts, make_template

    settings = current_settings()
    model = model or settings.model
    row_template = make_template(list(frame.columns), template, task)
    prompts = build_prompts(
        frame, row_template, task, model=model, max_tokens=max_tokens, system=system
    )
    chosen = resolve_mode(mode, prompts.n_prompts, settings.batch_threshold)
    batch = chosen == "batch"
    key = prompts.key(batch=batch)
    store = store or default_store()
    client = client or shared_client()
    if ledger is None:
        ledger = shared_ledger()
    overrides = settings.price_overrides
    options = {
        "client": client,
        "ledger": ledger,
        "progress": progress,
        "limits": limits or BatchLimits(),
        "price_overrides": overrides,
    }
    if fresh:
        store.replace(key)
    existing = store.find(key)
    if existing is not None:
        job = Job(store, existing, **options)  # type: ignore[arg-type]
        if configure is not None:
            configure(job)
        if not job.done:
            print(
                f"Attaching to {job.id}, started earlier on these same rows: nothing is sent twice."
            )
        if wait:
            job.wait()
        return job

    estimate: JobEstimate = estimate_job(prompts, overrides)
    label = what or f"This {task.kind} job ({prompts.n_prompts:,} requests, {chosen})"
    worst = estimate.worst_case(chosen)
    check_budget(worst, label)
    if not yes and worst is not None and worst > settings.confirm_above_usd:
        _confirm(label, estimate.cost(chosen), worst, settings.confirm_above_usd)

    before, after = prompts.template(batch=batch)
    job_id = "job_" + secrets.token_hex(5)
    record = JobRecord(
        id=job_id,
        key=key,
        created=time.time(),
        mode=chosen,
        kind=task.kind,
        model=model,
        n_rows=prompts.n_rows,
        n_prompts=prompts.n_prompts,
        state="running",
        description=str(row_template.source)[:200],
        spec={
            "task": task.to_spec(),
            "cacheable": prompts.cacheable,
            "instruction_tokens": prompts.instruction_tokens,
            "max_tokens": prompts.max_tokens,
            "pid": os.getpid(),
        },
        before=before,
        after=after,
    )
    store.create(
        record,
        texts=prompts.texts,
        row_prompt=prompts.row_prompt,
        row_index=_encode_index(frame.index),
    )
    job = Job(store, record, **options)  # type: ignore[arg-type]
    job._texts, job._row_prompt = prompts.texts, prompts.row_prompt
    if configure is not None:
        configure(job)
    try:
        job.start()
    except KeyboardInterrupt as exc:
        if isinstance(exc, (JobDetached, JobInterrupted)):
            raise
        # Interrupted while creating batches: what was sent is in the ledger; say how to go on.
        raise JobDetached(job) from None
    if wait:
        job.wait()
    return job


def attach(
    job_id: str,
    *,
    wait: bool = True,
    progress: bool = True,
    store: JobStore | None = None,
    client: Client | None = None,
    ledger: Ledger | None = None,
) -> Job:
    """The job with this id (or a unique prefix of it), from the ledger; waits for its
    results unless ``wait=False``. Nothing already sent is sent again."""
    from ..config import current_settings, shared_client, shared_ledger

    store = store or default_store()
    record = store.get(job_id)
    if record is None:
        raise ClaudeError(
            f"no job {job_id!r} in {store.path}; %claude_batch list shows the jobs there"
        )
    job = Job(
        store,
        record,
        client=client or shared_client(),
        ledger=ledger if ledger is not None else shared_ledger(),
        progress=progress,
        price_overrides=current_settings().price_overrides,
    )
    if wait:
        job.wait()
    return job


def cancel(job_id: str, *, store: JobStore | None = None, client: Client | None = None) -> Job:
    job = attach(job_id, wait=False, progress=False, store=store, client=client)
    job.cancel()
    return job


def list_jobs(store: JobStore | None = None) -> pd.DataFrame:
    """Every job in the ledger, newest first, with its rows per status."""
    import pandas as pd

    store = store or default_store()
    rows = []
    for record in store.jobs():
        statuses = store.result_statuses(record.id)
        succeeded = sum(1 for s in statuses.values() if s == "succeeded")
        rows.append(
            {
                "job": record.id,
                "created": datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M"),
                "task": record.kind,
                "mode": record.mode,
                "model": record.model,
                "rows": record.n_rows,
                "prompts": record.n_prompts,
                "answered": len(statuses),
                "succeeded": succeeded,
                "state": record.state,
                "template": record.description.splitlines()[0][:60] if record.description else "",
            }
        )
    columns = [
        "job",
        "created",
        "task",
        "mode",
        "model",
        "rows",
        "prompts",
        "answered",
        "succeeded",
        "state",
        "template",
    ]
    return pd.DataFrame(rows, columns=columns)
