"""The durable job ledger: what a DataFrame job sent, where, and what came back, in SQLite.

    store = JobStore()                      # <home>/jobs.sqlite, beside the spend ledger
    store.find(key), store.get("job_3f9a2c1b7d"), store.jobs()

Written before anything is sent and after everything that happens: the job (its request-set
hash, the distinct prompts, the row-to-prompt map), each planned batch with its prompts, the
moment its create is sent and the batch id once known (or, when the answer to a create was
lost, the batches that could be it), and every result as it comes in, in the same transaction
as the spend it owes to the spend ledger. So a crash, a ``kill -9``, a kernel restart or an
interrupt loses nothing that was paid for, re-running the same call finds the job by its hash,
and the ledger gets every job's spend exactly once (``spend``).

Two processes can share the file: WAL journaling, short transactions (writes take the lock at
once, ``BEGIN IMMEDIATE``, so they wait their turn instead of failing half way), a busy
timeout, and a claim per job (which process is working on it, with a heartbeat) so that the
same job started twice is worked on once (``claim``). The file is opened through
:func:`claude_magics.storage.open_database`: a damaged ``jobs.sqlite`` is moved aside and a
fresh one started (said in one line, naming the moved file), and every failure is a one-line
:class:`~claude_magics.errors.StorageError` that names the file and what to do.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson

from ..storage import open_database, storage_error
from .progress import say
from .records import (
    _JOB_COLUMNS,
    ChunkRecord,
    ClaimRecord,
    JobRecord,
    OwedRow,
    OwedSpend,
    ResultRow,
    _decode_owed,
    _encode_owed,
    pack_ints,
    unpack_array,
    unpack_ints,
)

__all__ = [
    "BUSY_TIMEOUT",
    "ChunkRecord",
    "ClaimRecord",
    "JobRecord",
    "JobStore",
    "OwedRow",
    "OwedSpend",
    "ResultRow",
]

#: Seconds a write waits for another process's transaction before it fails (StorageError).
BUSY_TIMEOUT = 10.0
# What the user changes to move the job store (it sits beside the spend ledger): named in
# every storage error.
_SETTING = "ClaudeMagics.ledger_path (the job store sits beside the ledger) or CLAUDE_MAGICS_HOME"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    created REAL NOT NULL,
    mode TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    n_prompts INTEGER NOT NULL,
    state TEXT NOT NULL,
    replaced INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL,
    spec BLOB NOT NULL,
    before BLOB NOT NULL,
    after BLOB NOT NULL,
    texts BLOB NOT NULL,
    row_prompt BLOB NOT NULL,
    row_index BLOB
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key);
CREATE TABLE IF NOT EXISTS chunks (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    prompts BLOB NOT NULL,
    n INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    state TEXT NOT NULL,
    sent_at REAL,
    batch_id TEXT,
    server_status TEXT,
    counts TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (job_id, attempt, chunk)
);
CREATE INDEX IF NOT EXISTS chunks_batch ON chunks(batch_id);
CREATE TABLE IF NOT EXISTS result_slices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    rows BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS result_slices_job ON result_slices(job_id, seq);
CREATE TABLE IF NOT EXISTS candidates (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    batch_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (job_id, attempt, chunk, batch_id)
);
CREATE TABLE IF NOT EXISTS spend_owed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    usage BLOB NOT NULL,
    cost BLOB,
    seconds REAL NOT NULL,
    request_id TEXT,
    writing REAL
);
CREATE INDEX IF NOT EXISTS spend_owed_job ON spend_owed(job_id);
CREATE TABLE IF NOT EXISTS claims (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    since REAL NOT NULL,
    heartbeat REAL NOT NULL
);
"""

# The first byte of a deflated result slice (a JSON array starts with "[").
_DEFLATED = b"z"

#: A chunk's life: planned (in the ledger, not sent) -> sending (create sent, answer not yet
#: recorded) -> created (batch id known) -> ended -> fetched. ``adopting``: the answer to its
#: create was lost and the batches that could be it (``candidates``) are watched until their
#: results show whose they are. ``foreign``: an adopted batch whose results turned out to
#: belong to someone else.
CHUNK_STATES = ("planned", "sending", "adopting", "created", "ended", "fetched", "foreign")


def _in_groups(values: Sequence[int], size: int = 500) -> Iterator[Sequence[int]]:
    """``values`` in groups small enough for one SQL statement's parameters."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


class JobStore:
    """Jobs, their batches and their results in one SQLite file.

    ``busy_timeout``: seconds a transaction waits for another process's before it fails with
    a :class:`~claude_magics.errors.StorageError`. One connection per store, shared by the
    threads of this process under a lock; opened on first use.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        #: What happened to the file that the user was told (a damaged file moved aside).
        self.notices: list[str] = []
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        # The shared opener makes the folder, moves a damaged file aside and puts the tables
        # in place, each failure one line; then the connection the threads of this process
        # share (the opener's belongs to this thread only).
        first, notice = open_database(
            self.path, _SCHEMA, busy_timeout=self.busy_timeout, setting=_SETTING
        )
        first.close()
        if notice:
            self.notices.append(notice)
            say(f"Job store: {notice} Jobs recorded in it are no longer known here.")
        try:
            db = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                check_same_thread=False,
                isolation_level=None,  # transactions are begun and ended here, explicitly
            )
            # WAL: another kernel can read while this one writes; NORMAL loses nothing when a
            # process dies (only a power cut can), and spares an fsync per answer.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, OSError) as error:
            raise storage_error(self.path, "opened", error, _SETTING) from None
        self._db = db
        return db

    @contextmanager
    def _tx(
        self, action: str = "written", *, write: bool = True, busy: float | None = None
    ) -> Iterator[sqlite3.Connection]:
        """One short transaction. A write takes the file's write lock at once (``BEGIN
        IMMEDIATE``): waiting for it is what the busy timeout is for, whereas a read that later
        wants to write could fail at once. ``busy``: another timeout for this one (shorter,
        when a write is being retried while the file is known to be locked). Every SQLite or
        file-system failure, at any step, is a one-line StorageError naming the file."""
        with self._lock:
            db = self._connection()
            try:
                if db.in_transaction:
                    # An interrupt (Ctrl-C, a kernel interrupt) landed in an earlier one at a
                    # point no handler covered: end it, or every later BEGIN would fail.
                    db.execute("ROLLBACK")
                if busy is not None:
                    db.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
                try:
                    # BEGIN inside the try: an interrupt just after it still rolls back.
                    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        with suppress(sqlite3.Error):
                            db.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as error:
                raise storage_error(self.path, action, error, _SETTING) from None
            finally:
                if busy is not None:
                    with suppress(sqlite3.Error):
                        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read-only transaction (one snapshot of the file)."""
        return self._tx("read", write=False)

    # -- jobs ----------------------------------------------------------------------------------

    def create(
        self,
        record: JobRecord,
        *,
        texts: list[str],
        row_prompt: Sequence[int],
        row_index: bytes | None,
    ) -> None:
        """Write a new job, before anything of it is sent."""
        with self._tx() as db:
            db.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}, texts, row_prompt, row_index) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.key,
                    record.created,
                    record.mode,
                    record.kind,
                    record.model,
                    record.n_rows,
                    record.n_prompts,
                    record.state,
                    record.description,
                    orjson.dumps(record.spec),
                    record.before,
                    record.after,
                    orjson.dumps(texts),
                    pack_ints(row_prompt),
                    row_index,
                ),
            )

    @staticmethod
    def _job(row: Sequence[Any]) -> JobRecord:
        values = list(row)
        values[10] = orjson.loads(values[10])
        return JobRecord(*values)

    def find(self, key: str) -> JobRecord | None:
        """The newest job with this request-set hash that was not replaced."""
        with self._read() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE key = ? AND replaced = 0 "
                "ORDER BY created DESC LIMIT 1",
                (key,),
            ).fetchone()
        return None if row is None else self._job(row)

    def get(self, job_id: str) -> JobRecord | None:
        """A job by id, or by a unique prefix of its id."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ? OR id LIKE ? ESCAPE '\\' LIMIT 2",
                (job_id, job_id.replace("\\", "").replace("%", "").replace("_", "\\_") + "%"),
            ).fetchall()
        exact = [r for r in rows if r[0] == job_id]
        if exact:
            return self._job(exact[0])
        return self._job(rows[0]) if len(rows) == 1 else None

    def jobs(self) -> list[JobRecord]:
        """Every job, newest first."""
        with self._read() as db:
            rows = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created DESC").fetchall()
        return [self._job(r) for r in rows]

    def set_state(self, job_id: str, state: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = ? WHERE id = ?", (state, job_id))

    def update_spec(self, job_id: str, spec: dict[str, Any]) -> None:
        """Replace a job's spec (its uploads' ids, when a file the API lost is uploaded anew)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET spec = ? WHERE id = ?", (orjson.dumps(spec), job_id))

    def replace(self, key: str) -> None:
        """Retire the jobs with this hash, so that the next run starts afresh (``fresh=True``)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET replaced = 1 WHERE key = ?", (key,))

    def texts(self, job_id: str) -> list[str]:
        with self._read() as db:
            (blob,) = db.execute("SELECT texts FROM jobs WHERE id = ?", (job_id,)).fetchone()
        result: list[str] = orjson.loads(blob)
        return result

    def row_prompt(self, job_id: str) -> list[int]:
        with self._read() as db:
            (blob,) = db.execute("SELECT row_prompt FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return unpack_ints(blob)

    def row_index(self, job_id: str) -> bytes | None:
        with self._read() as db:
            (blob,) = db.execute("SELECT row_index FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return blob  # type: ignore[no-any-return]

    # -- chunks (one batch each) -----------------------------------------------------------------

    def plan(self, job_id: str, attempt: int, chunks: Iterable[tuple[Sequence[int], int]]) -> None:
        """Record the batches an attempt will create, before the first is sent."""
        now = time.time()
        with self._tx() as db:
            start = db.execute(
                "SELECT COALESCE(MAX(chunk) + 1, 0) FROM chunks WHERE job_id = ? AND attempt = ?",
                (job_id, attempt),
            ).fetchone()[0]
            db.executemany(
                "INSERT INTO chunks (job_id, attempt, chunk, prompts, n, nbytes, state, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, 'planned', ?)",
                [
                    (job_id, attempt, start + i, pack_ints(prompts), len(prompts), nbytes, now)
                    for i, (prompts, nbytes) in enumerate(chunks)
                ],
            )

    def chunks(self, job_id: str, attempt: int | None = None) -> list[ChunkRecord]:
        query = (
            "SELECT job_id, attempt, chunk, prompts, n, nbytes, state, sent_at, batch_id, "
            "server_status, counts FROM chunks WHERE job_id = ?"
        )
        params: list[Any] = [job_id]
        if attempt is not None:
            query += " AND attempt = ?"
            params.append(attempt)
        with self._read() as db:
            rows = db.execute(query + " ORDER BY attempt, chunk", params).fetchall()
        return [
            ChunkRecord(
                r[0],
                r[1],
                r[2],
                unpack_array(r[3]),
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                orjson.loads(r[10]) if r[10] else None,
            )
            for r in rows
        ]

    @staticmethod
    def _update_chunk(db: sqlite3.Connection, chunk: ChunkRecord, values: dict[str, Any]) -> None:
        if "counts" in values and values["counts"] is not None:
            values["counts"] = orjson.dumps(values["counts"]).decode()
        values["updated"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in values)
        db.execute(
            f"UPDATE chunks SET {assignments} WHERE job_id = ? AND attempt = ? AND chunk = ?",
            [*values.values(), chunk.job_id, chunk.attempt, chunk.chunk],
        )

    def update_chunk(self, chunk: ChunkRecord, **values: Any) -> None:
        with self._tx() as db:
            self._update_chunk(db, chunk, values)

    def finish_fetch(self, chunk: ChunkRecord, owed: Sequence[OwedSpend]) -> None:
        """Mark a batch's results as all stored, and what they owe the spend ledger, in one
        transaction: a batch's spend is owed once, however often its results are fetched."""
        with self._tx() as db:
            self._update_chunk(db, chunk, {"state": "fetched"})
            self._owe(db, chunk.job_id, owed)

    def known_batch_ids(self) -> set[str]:
        """Every batch id any job in this ledger has recorded as its own."""
        with self._read() as db:
            rows = db.execute("SELECT batch_id FROM chunks WHERE batch_id IS NOT NULL").fetchall()
        return {r[0] for r in rows}

    def next_attempt(self, job_id: str) -> int:
        with self._read() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(attempt) + 1, 0) FROM chunks WHERE job_id = ?", (job_id,)
            ).fetchone()
        return int(row[0])

    # -- batches that could be a lost create's ---------------------------------------------------

    def watch_candidates(self, chunk: ChunkRecord, batch_ids: Iterable[str]) -> None:
        """Record the batches that could be ``chunk``'s (its create's answer was lost), and
        that the chunk waits to learn which, if any, is its own."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO candidates (job_id, attempt, chunk, batch_id, state) "
                "VALUES (?, ?, ?, ?, 'watching')",
                [(chunk.job_id, chunk.attempt, chunk.chunk, b) for b in batch_ids],
            )
            self._update_chunk(db, chunk, {"state": "adopting"})

    def candidates(self, chunk: ChunkRecord) -> dict[str, str]:
        """The batches that could be ``chunk``'s, each with its state (``watching``, or
        ``foreign`` once its results showed it is someone else's)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT batch_id, state FROM candidates WHERE job_id = ? AND attempt = ? "
                "AND chunk = ? ORDER BY batch_id",
                (chunk.job_id, chunk.attempt, chunk.chunk),
            ).fetchall()
        return dict(rows)

    def set_candidate(self, chunk: ChunkRecord, batch_id: str, state: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE candidates SET state = ? WHERE job_id = ? AND attempt = ? AND chunk = ? "
                "AND batch_id = ?",
                (state, chunk.job_id, chunk.attempt, chunk.chunk, batch_id),
            )

    # -- results ---------------------------------------------------------------------------------

    def put_results(
        self,
        job_id: str,
        rows: Sequence[ResultRow],
        owed: Sequence[OwedSpend] = (),
        *,
        busy: float | None = None,
        compress: bool = False,
    ) -> None:
        """Append results as they arrive, with the spend they owe the ledger (``owed``), in one
        transaction: one row per slice, the slice's results as a JSON array (100,000 results
        are a few dozen inserts). A later result for a prompt replaces an earlier one.
        ``compress``: the slice deflated (a streamed job's millions of rows repeat their model,
        batch id and answers: a tenth of the bytes); read back either way."""
        if not rows and not owed:
            return
        # orjson leaves NamedTuples to ``default``: each row is stored as a plain JSON array.
        blob = orjson.dumps(rows, default=tuple)
        if compress:
            blob = _DEFLATED + zlib.compress(blob, 1)
        with self._tx(busy=busy) as db:
            if rows:
                db.execute("INSERT INTO result_slices (job_id, rows) VALUES (?, ?)", (job_id, blob))
            self._owe(db, job_id, owed)

    def results(self, job_id: str) -> dict[int, ResultRow]:
        """The latest result of every prompt that has one."""
        with self._read() as db:
            blobs = db.execute(
                "SELECT rows FROM result_slices WHERE job_id = ? ORDER BY seq", (job_id,)
            ).fetchall()
        latest: dict[int, ResultRow] = {}
        make = ResultRow._make
        for (blob,) in blobs:
            if blob[:1] == _DEFLATED:
                blob = zlib.decompress(blob[1:])
            for values in orjson.loads(blob):
                row = make(values)
                latest[row.prompt] = row
        return latest

    def result_slices(self, job_id: str, after: int = 0) -> Iterator[list[ResultRow]]:
        """The job's stored results, a slice at a time, oldest first (``after``: only slices
        stored after the one of that sequence number): one slice in memory at a time."""
        with self._read() as db:
            seqs = [
                seq
                for (seq,) in db.execute(
                    "SELECT seq FROM result_slices WHERE job_id = ? AND seq > ? ORDER BY seq",
                    (job_id, after),
                )
            ]
        make = ResultRow._make
        for seq in seqs:
            with self._read() as db:
                found = db.execute(
                    "SELECT rows FROM result_slices WHERE seq = ?", (seq,)
                ).fetchone()
            if found is None:
                continue
            blob = found[0]
            if blob[:1] == _DEFLATED:
                blob = zlib.decompress(blob[1:])
            yield [make(values) for values in orjson.loads(blob)]

    def update_job(self, job_id: str, *, n_rows: int, n_prompts: int, spec: dict[str, Any]) -> None:
        """A streamed job's size and spec, once its source has been read through."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET n_rows = ?, n_prompts = ?, spec = ? WHERE id = ?",
                (n_rows, n_prompts, orjson.dumps(spec), job_id),
            )

    def result_statuses(self, job_id: str) -> dict[int, str]:
        return {prompt: row.status for prompt, row in self.results(job_id).items()}

    # -- spend owed to the spend ledger ----------------------------------------------------------

    @staticmethod
    def _owe(db: sqlite3.Connection, job_id: str, owed: Sequence[OwedSpend]) -> None:
        if owed:
            db.executemany(
                "INSERT INTO spend_owed (job_id, kind, model, usage, cost, seconds, request_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(job_id, *_encode_owed(spend)) for spend in owed],
            )

    def start_spend_write(self, job_id: str, request_id: str) -> list[OwedRow]:
        """The spend ``job_id`` owes the ledger, marked as being written now. Realtime answers
        that have no ledger request id yet get ``request_id``; a row marked before keeps its
        own and comes back ``retried``, so the caller can look for it in the ledger first."""
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                "SELECT seq, kind, model, usage, cost, seconds, request_id, writing "
                "FROM spend_owed WHERE job_id = ? ORDER BY seq",
                (job_id,),
            ).fetchall()
            db.execute(
                "UPDATE spend_owed SET request_id = COALESCE(request_id, ?), "
                "writing = COALESCE(writing, ?) WHERE job_id = ?",
                (request_id, now, job_id),
            )
        return [
            OwedRow(
                row[0],
                _decode_owed(row[1:7]),
                row[6] or request_id,
                row[7] is not None,
                row[7] if row[7] is not None else now,
            )
            for row in rows
        ]

    def spend_written(self, seqs: Sequence[int]) -> None:
        """Forget owed spend that the ledger now has."""
        with self._tx() as db:
            for group in _in_groups(list(seqs)):
                marks = ", ".join("?" for _ in group)
                db.execute(f"DELETE FROM spend_owed WHERE seq IN ({marks})", list(group))

    def jobs_owing(self) -> list[str]:
        """The jobs with spend the ledger does not have yet."""
        with self._read() as db:
            rows = db.execute("SELECT DISTINCT job_id FROM spend_owed").fetchall()
        return [r[0] for r in rows]

    # -- claims: which process works on a job ---------------------------------------------------

    def claim(
        self, job_id: str, mine: ClaimRecord, is_live: Callable[[ClaimRecord], bool]
    ) -> ClaimRecord | None:
        """Take ``job_id`` for ``mine`` unless a live holder has it: None when taken (or
        already ours), else that holder. Read and written in one ``BEGIN IMMEDIATE``
        transaction, so that of two processes claiming at once exactly one gets it."""
        with self._tx() as db:
            row = db.execute(
                "SELECT owner, pid, host, since, heartbeat FROM claims WHERE job_id = ?",
                (job_id,),
            ).fetchone()
            if row is not None:
                held = ClaimRecord(*row)
                if held.owner != mine.owner and is_live(held):
                    return held
            db.execute(
                "INSERT OR REPLACE INTO claims (job_id, owner, pid, host, since, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, *mine),
            )
        return None

    def beat(self, job_id: str, owner: str) -> bool:
        """Say that ``owner`` still works on ``job_id``; False if the claim is no longer its."""
        with self._tx(busy=1.0) as db:
            changed = db.execute(
                "UPDATE claims SET heartbeat = ? WHERE job_id = ? AND owner = ?",
                (time.time(), job_id, owner),
            ).rowcount
        return bool(changed)

    def release(self, job_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM claims WHERE job_id = ? AND owner = ?", (job_id, owner))

    def holder(self, job_id: str) -> ClaimRecord | None:
        with self._read() as db:
            row = db.execute(
                "SELECT owner, pid, host, since, heartbeat FROM claims WHERE job_id = ?",
                (job_id,),
            ).fetchone()
        return None if row is None else ClaimRecord(*row)
