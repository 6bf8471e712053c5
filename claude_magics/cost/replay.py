"""Answers already paid for, kept to be shown again: a Run All never pays twice.

    key = request_key(body, base_url=client.base_url, api_version=client.api_version)
    store = ReplayStore()                    # <home>/responses.sqlite, beside the spend ledger
    hit = store.get(key)                     # a StoredAnswer (message, time, cost) or None
    store.put(key, message, cost_usd=0.0123)

    cassette = Cassette("tests/claude.jsonl", mode="auto")   # a committed file for users' CI

**The key** is a SHA-256 of the normalised request: the body with keys sorted and what does not
change the answer left out (``stream``, ``metadata``, cache breakpoints), plus the server (scheme,
host and port of the base URL: an emulator's answer is never replayed against the real API), the
API version and the beta headers. The API key is never part of it.

**The store** is SQLite (busy timeout, damaged file moved aside: :mod:`claude_magics.storage`),
capped at ``max_bytes``: the entries used longest ago go first. A job's answers are written by a
background thread (``put_many_later``: thousands to a statement, so that SQLite's work runs
beside the job's Python); reads wait for it, and so does interpreter exit (bounded).

**A cassette** is a JSON-lines file meant to be committed: one answer a line, sorted by key, with
the model and the start of the prompt for people, no API key and nothing that changes between
runs. ``record`` asks the API and writes every answer; ``replay`` answers only from the file (a
miss is :class:`~claude_magics.errors.ReplayMissError`, naming the request and how to record it);
``auto`` replays what is there and records the rest.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from ..errors import ReplayMissError
from ..paths import default_home
from ..storage import open_database, storage_error

__all__ = [
    "Cassette",
    "CassetteMode",
    "ReplayStats",
    "ReplayStore",
    "Replayer",
    "StoredAnswer",
    "cassette_from_environment",
    "prompt_preview",
    "request_key",
]

CassetteMode = Literal["record", "replay", "auto"]
#: An answer to keep: its request key, the API's message, what it cost (None: not known).
_Item = tuple[str, Mapping[str, Any], float | None]
#: Body fields that never change the answer.
_IGNORED = frozenset({"stream", "metadata"})
_SETTING = "ClaudeMagics.ledger_path (or CLAUDE_MAGICS_HOME)"
# ``slot`` is the key's first 60 bits: the index holds small integers rather than 64-character
# keys, so that keeping a job's 100,000 answers rewrites a few pages of index, not megabytes
# (the full key is stored beside it, and checked on every read). No index on ``used``:
# eviction, rare, scans the table.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    slot INTEGER NOT NULL,
    key TEXT NOT NULL,
    created REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    used REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    cost_usd REAL,
    message BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS answers_slot ON answers(slot);
"""
# What an INSERT binds per answer (the times are SQLite's, the size is length(message)).
_COLUMNS = "slot, key, cost_usd, message"
_WIDTH = 4
# A replay store is a cache of answers that the job store and the notebook also keep: losing
# the last writes to a power cut costs a re-ask, never an answer, so it need not sync each one.
_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
# Past the cap, eviction frees this much more than the excess, so that the writes that follow
# do not each scan the table again.
_EVICT_SLACK = 0.05
# Answers handed to the background writer and not yet written, at most (then the caller waits
# for room); and how long the writer lingers for more before its thread ends.
_MAX_WAITING = 20_000
_LINGER_SECONDS = 2.0
# How long, at most, interpreter exit waits for answers still being written.
_EXIT_WAIT_SECONDS = 10.0


def _without_cache_marks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_cache_marks(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_cache_marks(v) for v in value]
    return value


def _server(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def request_key(
    body: Mapping[str, Any],
    *,
    base_url: str,
    api_version: str,
    betas: Sequence[str] = (),
) -> str:
    """The replay key of ``body`` sent to ``base_url``: equal for requests that get the same
    answer, different across servers, API versions and beta headers."""
    normal = {k: v for k, v in body.items() if k not in _IGNORED}
    identity = {
        "server": _server(base_url),
        "anthropic-version": api_version,
        "anthropic-beta": sorted(betas),
        "body": _without_cache_marks(normal),
    }
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()


def prompt_preview(body: Mapping[str, Any], width: int = 60) -> str:
    """The start of the last user turn's text, for people reading a cassette or a miss."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            text = content
        else:
            text = " ".join(
                str(b.get("text", "")) for b in content or [] if b.get("type") == "text"
            )
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"
    return ""


@dataclass(frozen=True)
class StoredAnswer:
    """An answer paid for once: the API's message as it came, when, and what it cost then."""

    message: dict[str, Any]
    created: float
    cost_usd: float | None
    request_id: str | None


@dataclass(frozen=True)
class ReplayStats:
    entries: int
    bytes: int
    oldest: float | None
    newest: float | None


def _slot(key: str) -> int:
    """The 60 bits of ``key`` the store's index holds (a positive SQLite integer): a key is a
    SHA-256 in hex, whose first 15 digits are already uniform; any other string is hashed."""
    if len(key) >= 15:
        try:
            return int(key[:15], 16)
        except ValueError:
            pass
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 4


def _values(
    keys: Sequence[str],
    messages: Sequence[Mapping[str, Any] | bytes],
    costs: Sequence[float | None],
) -> list[Any]:
    """What :func:`_insert` binds for these answers, row after row (slot, key, cost_usd,
    message as JSON), laid out column by column: a job's thousands of answers make no tuple
    each for the garbage collector to walk."""
    dumps = orjson.dumps
    values: list[Any] = [None] * (_WIDTH * len(keys))
    values[0::_WIDTH] = [_slot(key) for key in keys]
    values[1::_WIDTH] = keys
    values[2::_WIDTH] = costs
    values[3::_WIDTH] = [m if isinstance(m, bytes) else dumps(m) for m in messages]
    return values


@lru_cache(maxsize=4)
def _insert_sql(rows: int) -> str:
    """One INSERT of ``rows`` rows: SQLite then works without the GIL for long stretches,
    beside the caller's Python, rather than taking the GIL back after every row. (Plain
    ``?``: numbered parameters make SQLite's parsing quadratic.)"""
    values = ",".join(["(?, ?, ?, ?)"] * rows)
    return f"INSERT OR REPLACE INTO answers ({_COLUMNS}) VALUES {values}"


def _variables(db: sqlite3.Connection) -> int:
    """How many ``?`` one statement may hold (999 in any SQLite; Python 3.11+ can ask)."""
    getlimit = getattr(db, "getlimit", None)
    which = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
    return 999 if getlimit is None or which is None else int(getlimit(which))


def _insert(db: sqlite3.Connection, values: list[Any]) -> None:
    """Store the answers of ``values`` (:func:`_values`), thousands to a statement."""
    step = max(_variables(db) // _WIDTH, 1) * _WIDTH
    for start in range(0, len(values), step):
        part = values[start : start + step]
        db.execute(_insert_sql(len(part) // _WIDTH), part)


class ReplayStore:
    """``responses.sqlite``: answers by request key, the least recently used evicted first once
    the file passes ``max_bytes``. Every failure is a one-line ``StorageError``.

    ``put_many_later`` hands answers to a background writer (a daemon thread, one per store,
    alive while answers wait) so that a job's reading of results overlaps their writing; reads,
    ``stats`` and ``clear`` first wait for what it holds, and so does interpreter exit, for at
    most ``_EXIT_WAIT_SECONDS``."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = 300 * 2**20,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path) if path is not None else default_home() / "responses.sqlite"
        self.max_bytes = max_bytes
        self.busy_timeout = busy_timeout
        #: Notices for the user (a damaged file moved aside); the caller shows and clears them.
        self.notices: list[str] = []
        self._lock = threading.Lock()
        self._opened = False
        # The background writer: answers waiting (with who to tell of a failure), how many
        # answers are not written yet (waiting or being written), and its thread.
        self._changed = threading.Condition()
        self._waiting: list[tuple[list[Any], Callable[[Exception], None] | None]] = []
        self._unwritten = 0
        self._writer: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ReplayStore({str(self.path)!r}, max_bytes={self.max_bytes})"

    def _open(self) -> sqlite3.Connection:
        """A connection with the schema and pragmas in place (and, the first time, the first
        layout's answers moved over). Called holding ``_lock``."""
        db, notice = open_database(
            self.path, _SCHEMA, busy_timeout=self.busy_timeout, setting=_SETTING
        )
        if notice:
            self.notices.append(notice)
        try:
            for pragma in _PRAGMAS:
                db.execute(pragma)
            if not self._opened:
                with db:
                    _upgrade(db)
                self._opened = True
        except (sqlite3.Error, OSError) as error:
            db.close()
            raise storage_error(self.path, "opened", error, _SETTING) from None
        return db

    @contextmanager
    def _connect(self, action: str = "written") -> Iterator[sqlite3.Connection]:
        """One transaction, on a connection of its own."""
        with self._lock:
            db = self._open()
            try:
                with db:
                    yield db
            except (sqlite3.Error, OSError) as error:
                raise storage_error(self.path, action, error, _SETTING) from None
            finally:
                db.close()

    def get(self, key: str) -> StoredAnswer | None:
        """The answer stored under ``key`` (and mark it used), or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, StoredAnswer]:
        """Every stored answer among ``keys`` (a job's distinct prompts), in one pass."""
        self.flush()
        found: dict[str, StoredAnswer] = {}
        used = []
        with self._connect("read") as db:
            for start in range(0, len(keys), 500):  # SQLite's variable limit, with room
                chunk = keys[start : start + 500]
                wanted = {_slot(key): key for key in chunk}
                marks = ",".join("?" * len(wanted))
                rows = db.execute(
                    "SELECT rowid, slot, key, message, created, cost_usd "
                    f"FROM answers WHERE slot IN ({marks})",
                    list(wanted),
                ).fetchall()
                for rowid, slot, key, blob, created, cost in rows:
                    if wanted.get(slot) == key:  # not another key sharing its 60 bits
                        message = orjson.loads(blob)
                        found[key] = StoredAnswer(message, created, cost, message.get("id"))
                        used.append(rowid)
            if used:
                now = time.time()
                db.executemany(
                    "UPDATE answers SET used = ? WHERE rowid = ?", [(now, r) for r in used]
                )
        return found

    def empty(self) -> bool:
        """Whether no answer is stored (nor waiting to be): a job then has nothing to look up."""
        if self._unwritten:
            return False
        with self._connect("read") as db:
            return db.execute("SELECT 1 FROM answers LIMIT 1").fetchone() is None

    def put(self, key: str, message: Mapping[str, Any], *, cost_usd: float | None = None) -> None:
        """Keep ``message`` (a complete API message) under ``key``; evict to stay in size."""
        self.put_many([(key, message, cost_usd)])

    def put_many(self, items: Sequence[_Item]) -> None:
        """Keep answers ``(key, message, cost_usd)`` in one transaction; evict to stay in size."""
        values = _values(
            [key for key, _, _ in items],
            [message for _, message, _ in items],
            [cost for _, _, cost in items],
        )
        with self._connect() as db:
            _insert(db, values)
            self._evict(db)

    def put_many_later(
        self,
        keys: Sequence[str],
        messages: Sequence[Mapping[str, Any] | bytes],
        costs: Sequence[float | None],
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """:meth:`put_many` on the background writer, for answers given by column (a
        message may be its JSON as ``orjson.dumps`` wrote it: a job encodes each answer as
        it arrives, rather than hold its dicts). The Python work is done here, SQLite's
        there. Returns at once, or once there is room when ``_MAX_WAITING`` answers already
        wait. A write that fails calls ``on_error`` (on the writer's thread) with the
        one-line ``StorageError``; :meth:`flush` waits for the writes."""
        if not keys:
            return
        values = _values(keys, messages, costs)
        with self._changed:
            while self._unwritten >= _MAX_WAITING:
                self._changed.wait()
            self._waiting.append((values, on_error))
            self._unwritten += len(keys)
            if self._writer is None:
                _WRITING.add(self)
                self._writer = threading.Thread(
                    target=self._write_waiting, name="claude-magics-replay", daemon=True
                )
                self._writer.start()
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every answer handed to :meth:`put_many_later` is written (or its failure
        told), for at most ``timeout`` seconds (default: twice the busy timeout, and a little);
        whether they all are."""
        if not self._unwritten:
            return True
        limit = timeout if timeout is not None else 2 * self.busy_timeout + 5.0
        with self._changed:
            return self._changed.wait_for(lambda: not self._unwritten, limit)

    def _write_waiting(self) -> None:
        """The writer's thread: write what waits, all of it in one transaction, until nothing
        has waited for ``_LINGER_SECONDS``. Its work is SQLite's, without the GIL: it runs
        beside the caller's Python rather than taking turns with it."""
        held = _Held(self)
        try:
            while True:
                with self._changed:
                    if not self._waiting and not self._changed.wait_for(
                        lambda: bool(self._waiting), _LINGER_SECONDS
                    ):
                        self._writer = None
                        _WRITING.discard(self)
                        return
                    batch, self._waiting = self._waiting, []
                try:
                    with held.transaction() as db:
                        for values, _ in batch:
                            _insert(db, values)
                        self._evict(db)
                except BaseException as error:  # a StorageError, or something unforeseen
                    told = error if isinstance(error, Exception) else RuntimeError(repr(error))
                    for _, on_error in batch:
                        if on_error is not None:
                            with suppress(Exception):
                                on_error(told)
                finally:
                    with self._changed:
                        self._unwritten -= sum(len(values) for values, _ in batch) // _WIDTH
                        self._changed.notify_all()
        finally:
            held.close()

    def _evict(self, db: sqlite3.Connection) -> None:
        # The live pages bound the answers' size: only when they pass the cap is the exact
        # total worth a scan (a job's 100,000 answers come in many writes).
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
        if (pages - free) * page_size <= self.max_bytes:
            return
        (total,) = db.execute("SELECT COALESCE(SUM(length(message)), 0) FROM answers").fetchone()
        if total <= self.max_bytes:
            return
        excess = total - self.max_bytes * (1 - _EVICT_SLACK)
        freed = 0
        doomed = []
        for rowid, size in db.execute(
            "SELECT rowid, length(message) FROM answers ORDER BY used, created"
        ):
            doomed.append((rowid,))
            freed += size
            if freed >= excess:
                break
        db.executemany("DELETE FROM answers WHERE rowid = ?", doomed)

    def stats(self) -> ReplayStats:
        self.flush()
        with self._connect("read") as db:
            entries, size, oldest, newest = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(length(message)), 0), MIN(created), MAX(created) "
                "FROM answers"
            ).fetchone()
        return ReplayStats(entries, size, oldest, newest)

    def clear(self, *, older_than_days: float | None = None) -> int:
        """Forget answers (all, or those stored more than ``older_than_days`` ago); how many."""
        self.flush()
        with self._connect() as db:
            if older_than_days is None:
                cursor = db.execute("DELETE FROM answers")
            else:
                cutoff = time.time() - older_than_days * 86_400
                cursor = db.execute("DELETE FROM answers WHERE created < ?", (cutoff,))
            count = cursor.rowcount
        with self._connect() as db:
            db.execute("VACUUM")
        return count


class _Held:
    """The writer's connection, kept open while it writes (opening one per transaction would
    cost a schema check and a checkpoint each time), and opened afresh when the file was
    replaced or removed meanwhile: answers never go to a file that is gone."""

    def __init__(self, store: ReplayStore) -> None:
        self.store = store
        self.db: sqlite3.Connection | None = None
        self.file: tuple[int, int] | None = None

    def _file(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.store.path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        store = self.store
        with store._lock:
            if self.db is not None and self._file() != self.file:
                self.close()
            if self.db is None:
                self.db = store._open()
                self.file = self._file()
            try:
                with self.db:
                    yield self.db
            except (sqlite3.Error, OSError) as error:
                self.close()
                raise storage_error(store.path, "written", error, _SETTING) from None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def _upgrade(db: sqlite3.Connection) -> None:
    """Move the answers of the first layout (``responses``, keyed by the text key) into
    ``answers``: answers already paid for survive an upgrade of the package."""
    old = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'responses'")
    if old.fetchone() is None:
        return
    rows = db.execute("SELECT key, created, used, cost_usd, message FROM responses")
    db.executemany(
        "INSERT OR REPLACE INTO answers (slot, key, created, used, cost_usd, message) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(_slot(row[0]), *row) for row in rows.fetchall()],
    )
    db.execute("DROP TABLE responses")


#: Stores whose writer has answers to write: interpreter exit waits for them (a daemon
#: thread would otherwise die with answers in hand).
_WRITING: weakref.WeakSet[ReplayStore] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    deadline = time.monotonic() + _EXIT_WAIT_SECONDS
    for store in list(_WRITING):
        store.flush(max(deadline - time.monotonic(), 0.0))


class Cassette:
    """A committed JSON-lines file of answers for users' CI (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], mode: CassetteMode = "auto") -> None:
        if mode not in ("record", "replay", "auto"):
            raise ValueError(f"cassette mode must be record, replay or auto, not {mode!r}")
        self.path = Path(path)
        self.mode: CassetteMode = mode
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = self._read()

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r}, answers={len(self._entries)})"

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise storage_error(self.path, "read", error, "the cassette path") from None
        entries = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
                entries[str(entry["key"])] = entry
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise ReplayMissError(
                    f"{self.path}, line {number}: not a cassette entry; re-record the cassette "
                    "(mode record) or fix the line"
                ) from None
        return entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """The recorded message for ``key``; in ``replay`` mode a miss raises
        :class:`ReplayMissError` naming the request; in ``record`` mode always None."""
        if self.mode == "record":
            return None
        entry = self._entries.get(key)
        if entry is not None:
            return dict(entry["message"])
        if self.mode == "replay":
            raise ReplayMissError(
                f"no recorded answer for {body.get('model')} «{prompt_preview(body)}» in "
                f"{self.path}: re-record it with %claude_replay cassette {self.path} "
                "--mode record (or auto)"
            )
        return None

    def put(self, key: str, body: Mapping[str, Any], message: Mapping[str, Any]) -> None:
        """Record ``message`` for ``key`` and rewrite the file, sorted and stable."""
        self.put_many([(key, body, message)])

    def put_many(self, items: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> None:
        """Record many answers ``(key, body, message)`` with one rewrite of the file (a job's
        answers: one write per slice, not one per row)."""
        if self.mode == "replay" or not items:
            return
        with self._lock:
            for key, body, message in items:
                self._entries[key] = {
                    "key": key,
                    "model": body.get("model"),
                    "prompt": prompt_preview(body),
                    "message": dict(message),
                }
            lines = [
                orjson.dumps(self._entries[k], option=orjson.OPT_SORT_KEYS)
                for k in sorted(self._entries)
            ]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_name(self.path.name + ".tmp")
            temp.write_bytes(b"\n".join(lines) + b"\n")
            os.replace(temp, self.path)


class Replayer:
    """What a cell or a job asks: the cassette first (when one is set), then the store.

    ``replayer.lookup(key, body)`` gives a stored answer or None (a cassette in replay mode
    raises :class:`ReplayMissError` instead of None); ``replayer.keep(key, body, message,
    cost_usd)`` stores a fresh answer in both. ``store`` is None when replay is turned off
    (``ClaudeMagics.replay = False``); a cassette still works then, since CI asks for it."""

    def __init__(self, store: ReplayStore | None, cassette: Cassette | None = None) -> None:
        self.store = store
        self.cassette = cassette

    def __repr__(self) -> str:
        return f"Replayer(store={self.store!r}, cassette={self.cassette!r})"

    @property
    def active(self) -> bool:
        return self.store is not None or self.cassette is not None

    def lookup(self, key: str, body: Mapping[str, Any]) -> StoredAnswer | None:
        if self.cassette is not None:
            message = self.cassette.get(key, body)
            if message is not None:
                return StoredAnswer(message, 0.0, None, message.get("id"))
            if self.cassette.mode == "record":
                return None  # recording: always ask the API
        return self.store.get(key) if self.store is not None else None

    def keep(
        self,
        key: str,
        body: Mapping[str, Any],
        message: Mapping[str, Any],
        cost_usd: float | None = None,
    ) -> None:
        if self.cassette is not None:
            self.cassette.put(key, body, message)
        if self.store is not None:
            self.store.put(key, message, cost_usd=cost_usd)


def cassette_from_environment() -> Cassette | None:
    """The cassette CI asks for without editing the notebook: ``CLAUDE_MAGICS_CASSETTE=PATH``
    and ``CLAUDE_MAGICS_REPLAY=record|replay|auto`` (default ``auto``)."""
    path = os.environ.get("CLAUDE_MAGICS_CASSETTE")
    if not path:
        return None
    mode = os.environ.get("CLAUDE_MAGICS_REPLAY", "auto").strip().lower()
    if mode not in ("record", "replay", "auto"):
        raise ReplayMissError(f"CLAUDE_MAGICS_REPLAY={mode!r}: use record, replay or auto")
    return Cassette(path, mode)  # type: ignore[arg-type]
