"""The spend ledger: every call recorded in a local SQLite file, so spend survives restarts.

    ledger = Ledger()                  # <user cache dir>/claude_magics/ledger.sqlite
    ledger.record_usage(model=..., usage=message["usage"], cost=cost, seconds=2.1, ...)
    ledger.calls(session=ledger.session)                # this kernel's calls
    ledger.spent(session=ledger.session)                # their total in dollars

One row per call: time, session, notebook cell, model, tokens by kind, cost, time taken, request
id, realtime or batch, the share of input read from cache, and the web searches and fetches the
API ran: enough to price the call again (``price_usage(row.usage, row.model, batch=...)``).
Older files gain the newer columns when first opened (columns are only ever added; rows written
before a column existed read 0 there, so their cache writes re-price as 5-minute ones).

The file location comes from the ``path`` argument, else ``$CLAUDE_MAGICS_HOME/ledger.sqlite``,
else the user cache directory. Writes are small transactions; the file is opened per operation,
so two kernels can share it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..paths import default_home
from ..storage import open_database, storage_error
from .pricing import PRICES_AS_OF, Cost
from .usage import Usage

__all__ = ["CallRecord", "Ledger", "default_home"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    session TEXT NOT NULL,
    cell TEXT,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cost_usd REAL,
    seconds REAL NOT NULL,
    request_id TEXT,
    kind TEXT NOT NULL,
    cache_hit_share REAL NOT NULL,
    prices_as_of TEXT,
    saved_usd REAL,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    web_search_requests INTEGER NOT NULL DEFAULT 0,
    web_fetch_requests INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS calls_time ON calls(time);
CREATE INDEX IF NOT EXISTS calls_session ON calls(session);
"""


@dataclass(frozen=True)
class CallRecord:
    """One recorded call. ``input_tokens`` is the uncached part, as in the API's usage."""

    time: float
    session: str
    cell: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_usd: float | None
    seconds: float
    request_id: str | None
    kind: str  # "realtime" or "batch"
    cache_hit_share: float
    #: The date of the price table that priced the call (None: unknown price).
    prices_as_of: str | None = None
    #: For kind "replay": what the answer cost when it was paid for (what replay saved).
    saved_usd: float | None = None
    #: The part of ``cache_write_tokens`` written for an hour (the rest: 5 minutes).
    cache_write_1h_tokens: int = 0
    #: Server tool requests the API ran for the call (web searches carry a fee of their own).
    web_search_requests: int = 0
    web_fetch_requests: int = 0

    @property
    def usage(self) -> Usage:
        """The call's usage, as priced (``price_usage(record.usage, record.model, ...)``)."""
        one_hour = min(self.cache_write_1h_tokens, self.cache_write_tokens)
        return Usage(
            input=self.input_tokens,
            output=self.output_tokens,
            cache_write_5m=self.cache_write_tokens - one_hour,
            cache_write_1h=one_hour,
            cache_read=self.cache_read_tokens,
            web_search_requests=self.web_search_requests,
            web_fetch_requests=self.web_fetch_requests,
        )


_COLUMNS = [f.name for f in fields(CallRecord)]
# What the user changes to move the ledger: named in every storage error.
_SETTING = "ClaudeMagics.ledger_path (or CLAUDE_MAGICS_HOME)"


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a ledger written by an older version up to date (columns are only ever added)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
    for column, kind in (
        ("prices_as_of", "TEXT"),
        ("saved_usd", "REAL"),
        ("cache_write_1h_tokens", "INTEGER NOT NULL DEFAULT 0"),
        ("web_search_requests", "INTEGER NOT NULL DEFAULT 0"),
        ("web_fetch_requests", "INTEGER NOT NULL DEFAULT 0"),
    ):
        if column not in present:
            db.execute(f"ALTER TABLE calls ADD COLUMN {column} {kind}")


class Ledger:
    """Records calls to a SQLite file and answers questions about spend."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        session: str | None = None,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path) if path is not None else default_home() / "ledger.sqlite"
        #: Identifies this process's calls (a kernel session) among all in the file.
        self.session = session or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        #: Seconds to wait for another process's write before giving up with a StorageError.
        self.busy_timeout = busy_timeout
        #: What happened to the file that the user should hear once (a damaged file moved
        #: aside); the caller shows and clears it.
        self.notices: list[str] = []
        self._lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r}, session={self.session!r})"

    @contextmanager
    def _connect(self, action: str = "written") -> Iterator[sqlite3.Connection]:
        """One short transaction. Every SQLite or file-system failure, at any step, becomes a
        one-line :class:`StorageError` that names the file and what to do."""
        with self._lock:
            connection, notice = open_database(
                self.path, _SCHEMA, busy_timeout=self.busy_timeout, setting=_SETTING
            )
            if notice:
                self.notices.append(notice)
            try:
                if not self._ready:
                    _add_missing_columns(connection)
                    self._ready = True
                with connection:  # one transaction
                    yield connection
            except (sqlite3.Error, OSError) as error:
                raise storage_error(self.path, action, error, _SETTING) from None
            finally:
                connection.close()

    def record(self, record: CallRecord) -> None:
        values = asdict(record)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._connect() as db:
            db.execute(
                f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                [values[c] for c in _COLUMNS],
            )

    def record_usage(
        self,
        *,
        model: str,
        usage: Usage | Mapping[str, Any],
        cost: Cost | None,
        seconds: float,
        request_id: str | None = None,
        kind: str = "realtime",
        cell: str | None = None,
        saved_usd: float | None = None,
    ) -> CallRecord:
        """Record one call from its ``usage`` (a :class:`Usage` or the API's object) and priced
        ``cost``; return the row. See :meth:`record_replay` for answers shown again."""
        tokens = usage if isinstance(usage, Usage) else Usage.from_api(usage)
        record = CallRecord(
            time=time.time(),
            session=self.session,
            cell=cell,
            model=model,
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cache_write_tokens=tokens.cache_write,
            cache_read_tokens=tokens.cache_read,
            cost_usd=cost.total if cost is not None else None,
            seconds=seconds,
            request_id=request_id,
            kind=kind,
            cache_hit_share=tokens.cache_hit_share or 0.0,
            prices_as_of=PRICES_AS_OF if cost is not None else None,
            saved_usd=saved_usd,
            cache_write_1h_tokens=tokens.cache_write_1h,
            web_search_requests=tokens.web_search_requests,
            web_fetch_requests=tokens.web_fetch_requests,
        )
        self.record(record)
        return record

    def record_replay(
        self,
        *,
        model: str,
        usage: Usage | Mapping[str, Any],
        saved: Cost | float | None,
        request_id: str | None = None,
        cell: str | None = None,
    ) -> CallRecord:
        """Record an answer shown again from the replay store: kind ``replay``, $0, with what
        it cost when it was paid for (``saved``) so ``%claude_usage`` can say what replay saved."""
        return self.record_usage(
            model=model,
            usage=usage,
            cost=Cost(0.0, 0.0, 0.0, 0.0),
            seconds=0.0,
            request_id=request_id,
            kind="replay",
            cell=cell,
            saved_usd=saved.total if isinstance(saved, Cost) else saved,
        )

    def saved(self, *, session: str | None = None, since: float | None = None) -> float:
        """Dollars replay saved for the matching calls."""
        calls = self.calls(session=session, since=since)
        return sum(c.saved_usd or 0.0 for c in calls if c.kind == "replay")

    def calls(self, *, session: str | None = None, since: float | None = None) -> list[CallRecord]:
        """Recorded calls, oldest first; filtered by session and/or start time (epoch s)."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM calls"
        where: list[str] = []
        params: list[Any] = []
        if session is not None:
            where.append("session = ?")
            params.append(session)
        if since is not None:
            where.append("time >= ?")
            params.append(since)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY time, id"
        with self._connect("read") as db:
            rows = db.execute(query, params).fetchall()
        return [CallRecord(*row) for row in rows]

    def spent(self, *, session: str | None = None, since: float | None = None) -> float:
        """Dollars spent by the matching calls (calls of unknown cost count as 0)."""
        return sum(r.cost_usd or 0.0 for r in self.calls(session=session, since=since))
