"""What one DataFrame job is, as the job store knows it: the base of ``Job``.

    state = JobState(store, store.get("job_3f9a2c1b7d"), client=client)
    state.counts()          # {"succeeded": 480, "errored:overloaded_error": 2, "pending": 18}
    with state.claimed(): ...        # work on it (send, poll) while no other process does

The job's record (mode, model, task, the shared request bytes), its distinct prompts and
row-to-prompt map, the latest result of every prompt, and what it works through: the client,
the spend ledger and the settings (poll timings, price overrides). ``sending`` works on this
state and ``job.Job`` adds the results as a DataFrame and the verbs; keeping the state here,
below both, lets ``Job`` call into ``sending`` without the two modules importing each other.

**Nothing paid for is lost.** Results go to the store with the spend they owe the ledger, in
one transaction (``put_results``), and are kept in this object first: when the store cannot be
written (locked by another program for long, a full disk) the answers stay here, in the
result the caller gets, with a one-line warning that says what to do, and saving is tried again
as the job goes on. Spend goes to the ledger (``write_spend``) from the store, exactly once
(``spend``); a ledger that cannot be written is one line, and the spend stays owed.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..config import DEFAULTS, Settings
from ..cost.pricing import format_usd
from ..errors import StorageError
from .claim import Hold, take
from .progress import say
from .replaying import Fresh
from .spend import write_owed, write_spend
from .store import JobRecord, JobStore, OwedSpend, ResultRow
from .tasks import Task
from .wire import BatchLimits, with_document

if TYPE_CHECKING:
    from ..api.client import Client
    from ..cost.ledger import Ledger
    from ..cost.replay import Replayer, StoredAnswer
    from .replaying import JobReplay

__all__ = ["JobState"]

_State = TypeVar("_State", bound="JobState")

# After a failed write to the job store, seconds before saving is tried again, and how long
# such a retry waits for a lock (the answers are safe in memory meanwhile: the job goes on).
_SAVE_RETRY_SECONDS = 5.0
_SAVE_RETRY_BUSY = 0.5

# Fresh answers are kept for replay in writes of this many, or at least this often (seconds),
# and at the end: a write per answer would be a transaction per row. A process killed between
# two writes loses only those replay entries; the answers themselves are in the job store.
_KEEP_ROWS = 500
_KEEP_EVERY = 1.0

# Results (and the spend they owe) the store could not take, per job, for this whole process:
# a job object made later for the same job (the same call run again, an attach) has them too,
# rather than paying for them again, and saves them once the store can be written.
_UNSAVED: dict[str, tuple[list[ResultRow], list[OwedSpend]]] = {}


class JobState:
    """One job's record, prompts and results, read from the job store and kept up to date."""

    #: Whether result slices are stored deflated (``JobStore.put_results``): streamed jobs.
    compress_results = False

    def __init__(
        self,
        store: JobStore,
        record: JobRecord,
        *,
        client: Client,
        ledger: Ledger | None = None,
        progress: bool = True,
        limits: BatchLimits | None = None,
        settings: Settings | None = None,
        texts: list[str] | None = None,
        row_prompt: list[int] | None = None,
        replayer: Replayer | None = None,
        replay: JobReplay | None = None,
        fresh: bool = False,
    ) -> None:
        """``limits``: how much one batch may hold (default: the API's). ``settings`` gives the
        poll timings and price overrides (default: the built-in defaults; ``run`` and ``attach``
        pass the current ones). ``texts`` and ``row_prompt``,
        when the caller has them at hand, spare reading them back from the store.

        ``replayer`` (the session's replay store and cassette; None: no replay) is asked for
        answers already paid for before prompts are sent, and keeps every fresh answer;
        ``replay``, when ``run`` made one for its estimate, spares computing the keys again.
        ``fresh``: look nothing up (answers are still kept)."""
        self.store = store
        self.record = record
        self.client = client
        self.ledger = ledger
        self.progress = progress
        self.limits = limits if limits is not None else BatchLimits()
        self.settings = settings if settings is not None else DEFAULTS
        self.price_overrides = dict(self.settings.price_overrides or {}) or None
        self.task: Task = Task.from_spec(record.spec["task"])
        self._texts = texts
        self._documents: list[bytes | None] | None = None
        self._row_prompt = row_prompt
        self._rows: dict[int, ResultRow] | None = None
        #: Dollars spent on this job by this object (what it recorded in the spend ledger).
        self.spent_usd = 0.0
        self._hold: Hold | None = None
        # Results (and what they owe the ledger) the store could not take yet: kept here, in
        # the results this object gives, and saved when the store can take them.
        self._unsaved, self._unsaved_spend = _UNSAVED.setdefault(record.id, ([], []))
        # Non-zero once a save failed; results an earlier object could not save count too.
        self._save_retry_at = time.monotonic() if self._unsaved or self._unsaved_spend else 0.0
        self._warned: set[str] = set()
        #: Batches (attempt, chunk) whose results this object holds though the store could
        #: not be told: not fetched again by this object.
        self.fetched_here: set[tuple[int, int]] = set()
        self.replayer = replayer if replayer is not None and replayer.active else None
        self.fresh = fresh
        self._replay = replay
        self._to_keep = Fresh()
        self._kept_at = time.monotonic()

    # -- identity ------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def mode(self) -> str:
        return self.record.mode

    @property
    def tag(self) -> str:
        """What the job's ``custom_id``s start with (its id without ``job_``)."""
        return self.record.id.removeprefix("job_")

    @property
    def texts(self) -> list[str]:
        """The user-turn text of each distinct prompt (after the shared head)."""
        if self._texts is None:
            self._texts = self.store.texts(self.id)
        return self._texts

    @property
    def row_prompt(self) -> list[int]:
        """The distinct prompt of each row, by row position."""
        if self._row_prompt is None:
            self._row_prompt = self.store.row_prompt(self.id)
        return self._row_prompt

    def params(self, prompt: int) -> bytes:
        """The JSON request body of one distinct prompt, as sent."""
        before = self.record.before
        documents = self.documents
        if documents is not None:
            before = with_document(before, documents[prompt])
        return before + orjson.dumps(self.texts[prompt]) + self.record.after

    @property
    def key_documents(self) -> list[dict[str, Any]] | None:
        """With ``files=``: each prompt's document as its key sees it (``documents``)."""
        found = self.record.spec.get("documents")
        return None if found is None else list(found)

    @property
    def documents(self) -> list[bytes | None] | None:
        """With ``files=``: each prompt's document block as sent (the uploads' ids, kept in
        the job's record), or None for a prompt that is not sent (its file failed)."""
        if self._documents is None:
            keys = self.key_documents
            if keys is None:
                return None
            from .documents import block_error, block_sha, wire_block

            ids = dict(self.record.spec.get("file_ids") or {})
            self._documents = [
                None
                if block_error(block) is not None
                or (block_sha(block) is not None and block_sha(block) not in ids)
                else wire_block(block, ids)
                for block in keys
            ]
        return self._documents

    def renew_file_ids(self, ids: Mapping[str, str]) -> None:
        """Send these uploads (``{sha256: file_id}``) from now on, in place of the ids the API
        lost: in this object and in the job store (a restart sends them too)."""
        spec = dict(self.record.spec)
        spec["file_ids"] = {**(spec.get("file_ids") or {}), **ids}
        self.store.update_spec(self.id, spec)
        self.record = dataclasses.replace(self.record, spec=spec)
        self._documents = None

    @property
    def betas(self) -> tuple[str, ...]:
        """The betas the job's requests need: the Files API's when its documents are uploads
        (the request bodies are bytes the client does not look into)."""
        from ..api.betas import FILES_API_BETA

        ids = self.record.spec.get("file_ids")
        return (FILES_API_BETA,) if ids else ()

    def never_uploaded(self, prompts: list[int]) -> list[int]:
        """Those of ``prompts`` whose file is fine but was never uploaded (their answers were
        replayed, so the job had no reason to): they cannot be sent without the frame."""
        keys = self.key_documents
        if keys is None:
            return []
        from .documents import block_error, block_sha

        ids = self.record.spec.get("file_ids") or {}
        return [
            n
            for n in prompts
            if block_error(keys[n]) is None
            and block_sha(keys[n]) is not None
            and block_sha(keys[n]) not in ids
        ]

    def unsendable(self) -> set[int]:
        """The prompts that are never sent: their file could not be read or uploaded."""
        documents = self.documents
        if documents is None:
            return set()
        return {n for n, block in enumerate(documents) if block is None}

    # -- replay ----------------------------------------------------------------------------------

    @property
    def replay(self) -> JobReplay | None:
        """This job's replay side (None: replay is off and no cassette is set)."""
        if self._replay is None and self.replayer is not None:
            from .replaying import JobReplay

            self._replay = JobReplay(
                self.replayer,
                self.client,
                self.record.before,
                self.record.after,
                self.texts,
                self.key_documents,
            )
        return self._replay

    def keep_answers(self, fresh: Fresh | None = None, *, final: bool = False) -> None:
        """Keep fresh answers (``replaying.Fresh``) for replay, in bulk writes (see
        ``_KEEP_ROWS``) made in the background while the job goes on; ``final`` hands over
        what is waiting and waits for the writes (at most the store's busy timeout, twice).
        A store that cannot be written is one line, once: the answers are in the job store
        and the result all the same."""
        replay = self.replay
        if replay is None:
            return
        if fresh is not None:
            self._to_keep.extend(fresh)
        now = time.monotonic()
        if self._to_keep and (
            final or len(self._to_keep) >= _KEEP_ROWS or now - self._kept_at >= _KEEP_EVERY
        ):
            waiting, self._to_keep = self._to_keep, Fresh()
            self._kept_at = now
            try:
                replay.keep(waiting)
            except (StorageError, OSError) as error:
                self._replay_failed(error)
        if final and not replay.flush():
            self._warn(
                "replay_slow",
                f"⚠ {self.id}: the replay store is slow to write; its answers are still being "
                "kept for replay in the background (they are in the job and its result).",
            )
        for failure in replay.failures():
            self._replay_failed(failure)

    def _replay_failed(self, error: Exception) -> None:
        self._warn(
            "replay",
            f"⚠ {self.id}: answers could not be kept for replay (they are in the job "
            f"and its result; a later run may pay for them again). {error}",
        )

    def put_replayed(self, hits: Mapping[int, StoredAnswer]) -> None:
        """Put answers already paid for into the job's results (source ``replay``, nothing
        owed) and record them in the spend ledger: one ``replay`` row for all, at $0, with
        what they cost when they were paid for."""
        if not hits:
            return
        from ..cost.pricing import price_usage
        from ..cost.usage import Usage
        from .replaying import REPLAY_SOURCE
        from .wire import message_row

        rows = [message_row(n, hits[n].message, REPLAY_SOURCE, 0) for n in sorted(hits)]
        self.put_results(rows)
        usage, saved, priced = Usage(), 0.0, True
        batch = self.mode == "batch"
        for row, n in zip(rows, sorted(hits), strict=True):
            usage += row.usage
            cost = hits[n].cost_usd
            if cost is None:  # a cassette's answer: priced as this job would have paid
                paid = price_usage(
                    row.usage,
                    row.model or self.record.model,
                    batch=batch,
                    overrides=self.price_overrides,
                )
                cost = None if paid is None else paid.total
            if cost is None:
                priced = False
            else:
                saved += cost
        if self.ledger is not None:
            try:
                self.ledger.record_replay(
                    model=self.record.model,
                    usage=usage,
                    saved=saved if priced else None,
                    request_id=f"{self.id}:replay",
                )
            except StorageError as error:
                self._warn(
                    "ledger",
                    f"⚠ {self.id}: {len(rows):,} replayed answers are in the result but not "
                    f"in the spend ledger. {error}",
                )
        say(
            f"{self.id}: {len(rows):,} of {self.record.n_prompts:,} prompts replayed from "
            f"answers already paid for, at $0"
            + (f" (saved {format_usd(saved)})." if priced else ".")
        )

    # -- results ---------------------------------------------------------------------------------

    def stored_results(self) -> dict[int, ResultRow]:
        """The latest result per prompt: read from the store once, then kept up to date by
        this object, which writes every new result through :meth:`put_results` (results the
        store could not take yet included)."""
        if self._rows is None:
            rows = self.store.results(self.id)
            rows.update((row.prompt, row) for row in self._unsaved)
            self._rows = rows
        return self._rows

    def put_results(self, rows: list[ResultRow], owed: list[OwedSpend] | None = None) -> None:
        """Keep new results, with the spend they owe the ledger: in this object first, then in
        the store (one transaction). A store that cannot take them is one line; the results
        stay here and saving is tried again at the next results (or :meth:`save`)."""
        if not rows and not owed:
            return
        known = self.stored_results()  # read first, so that the view stays complete
        known.update((row.prompt, row) for row in rows)
        self._unsaved.extend(rows)
        self._unsaved_spend.extend(owed or ())
        self.save(final=False)

    def save(self, *, final: bool = True) -> bool:
        """Write what the store could not take before; True when nothing is left unsaved.
        ``final``: at the end of a run, wait for the store as long as usual, and say what is
        still unsaved."""
        if not self._unsaved and not self._unsaved_spend:
            return True
        if not final and time.monotonic() < self._save_retry_at:
            return False
        retrying = bool(self._save_retry_at)
        try:
            self.store.put_results(
                self.id,
                self._unsaved,
                self._unsaved_spend,
                busy=_SAVE_RETRY_BUSY if retrying and not final else None,
                compress=self.compress_results,
            )
        except StorageError as error:
            self._save_retry_at = time.monotonic() + _SAVE_RETRY_SECONDS
            if final:
                self._warn(
                    "unsaved",
                    f"⚠ {self.id}: {len(self._unsaved):,} answers could not be saved to the job "
                    f"store and are only in this process (and the result returned now): "
                    f"running the call again here saves them once the file can be written, "
                    f"but a restarted kernel would pay for them again. {error}",
                    again=True,
                )
            else:
                self._warn(
                    "store",
                    f"⚠ {self.id}: answers could not be saved to the job store; they are kept "
                    f"here and in the result, and saving is tried again as the job goes on. "
                    f"{error}",
                )
            return False
        if retrying:
            say(f"{self.id}: the job store works again; every answer is saved.")
        self._unsaved.clear()
        self._unsaved_spend.clear()
        self._save_retry_at = 0.0
        return True

    def write_spend(self) -> None:
        """Write what this job owes the spend ledger (exactly once: ``spend``). A ledger that
        cannot be written is one line; the spend stays owed, for a later write."""
        ledger = self.ledger
        try:
            if self._unsaved_spend and ledger is not None and self._save_retry_at:
                # The store cannot hold this spend as owed: the ledger gets it directly.
                self.spent_usd += write_spend(ledger, self._unsaved_spend, f"{self.id}:unsaved")
                self._unsaved_spend.clear()
            self.spent_usd += write_owed(self.store, self.id, ledger)
        except StorageError as error:
            if "store" in self._warned and str(self.store.path) in str(error):
                return  # the job store's failure was said; the spend waits in it, or here
            self._warn(
                "ledger",
                f"⚠ {self.id}: its spend is not in the spend ledger yet; it is kept, and "
                f"written once it can be. {error}",
            )
        if ledger is not None:
            while ledger.notices:  # a damaged ledger moved aside: said once
                say(ledger.notices.pop(0))

    def set_state(self, state: str) -> None:
        """Note the job's state (running, done, interrupted...) in the store. Only a note:
        a store that cannot take it costs nothing, and the results in hand stay."""
        # A failure here was said when the results could not be saved.
        with suppress(StorageError):
            self.store.set_state(self.id, state)

    def _warn(self, kind: str, message: str, *, again: bool = False) -> None:
        """Say a warning once per kind (``again``: say it even if said before)."""
        if again or kind not in self._warned:
            self._warned.add(kind)
            say(message)

    def reload(self: _State) -> _State:
        """Forget what this object knows and read the store again."""
        self._rows = None
        return self

    # -- the claim ---------------------------------------------------------------------------

    @contextmanager
    def claimed(self, *, wait: bool = True) -> Iterator[bool]:
        """Work on the job while no other process does (``claim``): yields True once this
        object holds the job's claim (after waiting for another holder, with ``wait``), or
        False (without ``wait``) when another process has it. Re-entrant. On taking the
        claim, what another process stored meanwhile is read, and any spend it left owed is
        written to the ledger."""
        if self._hold is None:
            self._hold = Hold(self.store, self.id)
        hold = self._hold
        if hold.depth:
            hold.depth += 1
            try:
                yield True
            finally:
                hold.depth -= 1
            return
        if not take(self, hold, wait=wait):
            yield False
            return
        hold.depth = 1
        try:
            if self._rows is not None:
                self.reload()
            self.save()  # what an earlier run of this process could not save
            self.write_spend()
            yield True
        finally:
            hold.depth = 0
            hold.release()

    @property
    def claim_owner(self) -> str | None:
        """The token this object's claim on the job carries (None: it never claimed it)."""
        return None if self._hold is None else self._hold.owner

    def check_claim(self) -> None:
        """Stop (:class:`~.claim.JobTakenOver`) if another process took the job over."""
        if self._hold is not None:
            self._hold.check()

    def statuses(self) -> dict[int, str]:
        """The status of every prompt that has a result."""
        return {prompt: row.status for prompt, row in self.stored_results().items()}

    def counts(self) -> dict[str, int]:
        """Rows per status (``pending``: no result yet)."""
        by_prompt = self.statuses()
        counts: dict[str, int] = defaultdict(int)
        for prompt in self.row_prompt:
            counts[by_prompt.get(prompt, "pending")] += 1
        return dict(counts)

    def unanswered(self) -> list[int]:
        """The prompts that have no result yet."""
        answered = self.statuses()
        return [n for n in range(self.record.n_prompts) if n not in answered]

    def answered_count(self) -> int:
        """How many prompts have a result (for the progress bar)."""
        return len(self.stored_results())

    @property
    def done(self) -> bool:
        return len(self.stored_results()) >= self.record.n_prompts
