"""The durable job ledger: what a DataFrame job sent, where, and what came back, in SQLite.

    store = JobStore()                      # <home>/jobs.sqlite, beside the spend ledger
    store.find(key), store.get("job_3f9a2c1b7d"), store.jobs()

Written before anything is sent and after everything that happens: the job (its request-set
hash, the distinct prompts, the row-to-prompt map), each planned batch with its prompts, the
moment its create is sent and the batch id once known, and every result as it streams in. So
a crash, a kernel restart or an interrupt loses nothing that was paid for, re-running the same
call finds the job by its hash, and a batch whose create response was lost can be recognised.

One connection per store, used from the thread that owns the job; WAL journaling so that
another kernel can list jobs while this one writes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from ..cost.usage import Usage

__all__ = ["ChunkRecord", "JobRecord", "JobStore", "ResultRow"]

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
"""

#: A chunk's life: planned (in the ledger, not sent) -> sending (create sent, answer not yet
#: recorded) -> created (batch id known) -> ended -> fetched. ``foreign``: an adopted batch
#: whose results turned out to belong to someone else.
CHUNK_STATES = ("planned", "sending", "created", "ended", "fetched", "foreign")


@dataclass(frozen=True)
class JobRecord:
    id: str
    key: str
    created: float
    mode: str
    kind: str
    model: str
    n_rows: int
    n_prompts: int
    state: str
    description: str
    spec: dict[str, Any]
    before: bytes
    after: bytes


@dataclass(frozen=True)
class ChunkRecord:
    job_id: str
    attempt: int
    chunk: int
    prompts: list[int]
    n: int
    nbytes: int
    state: str
    sent_at: float | None
    batch_id: str | None
    server_status: str | None
    counts: dict[str, int] | None


class ResultRow(NamedTuple):
    """One result of one distinct prompt, as stored (a JSON array of these 13 fields, in this
    order: the field order is the storage format).

    ``status`` is ``succeeded`` for an answer (``text``, ``stop_reason``, ``model`` and the
    token counts set) or ``errored:<type>`` / ``expired`` / ``canceled`` (``error`` may say
    why). ``source`` is the batch id, or the request id of a realtime answer; ``attempt`` the
    job's attempt that produced it (a retry's result replaces an earlier one).
    """

    prompt: int
    status: str
    text: str | None
    stop_reason: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int
    error: str | None
    source: str
    attempt: int

    @property
    def usage(self) -> Usage:
        """The tokens of this result (all zero for a request that failed)."""
        return Usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_write_5m,
            self.cache_write_1h,
            self.cache_read,
        )

    @property
    def answered(self) -> bool:
        """Whether the model answered (and was paid for), whatever the answer's status."""
        return self.status == "succeeded" or self.text is not None


_JOB_COLUMNS = (
    "id, key, created, mode, kind, model, n_rows, n_prompts, state, description, spec, "
    "before, after"
)


def pack_ints(values: Sequence[int]) -> bytes:
    return array("I", values).tobytes()


def unpack_ints(blob: bytes) -> list[int]:
    values = array("I")
    values.frombytes(blob)
    return values.tolist()


class JobStore:
    """Jobs, their batches and their results in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
                self._db = db
            with self._db:  # one transaction, committed on exit
                yield self._db

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
        with self._tx() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE key = ? AND replaced = 0 "
                "ORDER BY created DESC LIMIT 1",
                (key,),
            ).fetchone()
        return None if row is None else self._job(row)

    def get(self, job_id: str) -> JobRecord | None:
        """A job by id, or by a unique prefix of its id."""
        with self._tx() as db:
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
        with self._tx() as db:
            rows = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created DESC").fetchall()
        return [self._job(r) for r in rows]

    def set_state(self, job_id: str, state: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = ? WHERE id = ?", (state, job_id))

    def replace(self, key: str) -> None:
        """Retire the jobs with this hash, so that the next run starts afresh (``fresh=True``)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET replaced = 1 WHERE key = ?", (key,))

    def texts(self, job_id: str) -> list[str]:
        with self._tx() as db:
            (blob,) = db.execute("SELECT texts FROM jobs WHERE id = ?", (job_id,)).fetchone()
        result: list[str] = orjson.loads(blob)
        return result

    def row_prompt(self, job_id: str) -> list[int]:
        with self._tx() as db:
            (blob,) = db.execute("SELECT row_prompt FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return unpack_ints(blob)

    def row_index(self, job_id: str) -> bytes | None:
        with self._tx() as db:
            (blob,) = db.execute("SELECT row_index FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return blob  # type: ignore[no-any-return]

    # -- chunks (one batch each) -----------------------------------------------------------------

    def plan(self, job_id: str, attempt: int, chunks: Iterable[tuple[list[int], int]]) -> None:
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
        with self._tx() as db:
            rows = db.execute(query + " ORDER BY attempt, chunk", params).fetchall()
        return [
            ChunkRecord(
                r[0],
                r[1],
                r[2],
                unpack_ints(r[3]),
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

    def update_chunk(self, chunk: ChunkRecord, **values: Any) -> None:
        if "counts" in values and values["counts"] is not None:
            values["counts"] = orjson.dumps(values["counts"]).decode()
        values["updated"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._tx() as db:
            db.execute(
                f"UPDATE chunks SET {assignments} WHERE job_id = ? AND attempt = ? AND chunk = ?",
                [*values.values(), chunk.job_id, chunk.attempt, chunk.chunk],
            )

    def known_batch_ids(self) -> set[str]:
        """Every batch id any job in this ledger has recorded."""
        with self._tx() as db:
            rows = db.execute("SELECT batch_id FROM chunks WHERE batch_id IS NOT NULL").fetchall()
        return {r[0] for r in rows}

    def next_attempt(self, job_id: str) -> int:
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(attempt) + 1, 0) FROM chunks WHERE job_id = ?", (job_id,)
            ).fetchone()
        return int(row[0])

    # -- results ---------------------------------------------------------------------------------

    def put_results(self, job_id: str, rows: Sequence[ResultRow]) -> None:
        """Append results as they arrive: one row per slice, the slice's results as a JSON
        array (100,000 results are a few dozen inserts). A later result for a prompt replaces
        an earlier one (a retry's)."""
        if not rows:
            return
        # orjson leaves NamedTuples to ``default``: each row is stored as a plain JSON array.
        blob = orjson.dumps(rows, default=tuple)
        with self._tx() as db:
            db.execute("INSERT INTO result_slices (job_id, rows) VALUES (?, ?)", (job_id, blob))

    def results(self, job_id: str) -> dict[int, ResultRow]:
        """The latest result of every prompt that has one."""
        with self._tx() as db:
            blobs = db.execute(
                "SELECT rows FROM result_slices WHERE job_id = ? ORDER BY seq", (job_id,)
            ).fetchall()
        latest: dict[int, ResultRow] = {}
        make = ResultRow._make
        for (blob,) in blobs:
            for values in orjson.loads(blob):
                row = make(values)
                latest[row.prompt] = row
        return latest

    def result_statuses(self, job_id: str) -> dict[int, str]:
        return {prompt: row.status for prompt, row in self.results(job_id).items()}
