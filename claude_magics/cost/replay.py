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
capped at ``max_bytes``: the entries used longest ago go first.

**A cassette** is a JSON-lines file meant to be committed: one answer a line, sorted by key, with
the model and the start of the prompt for people, no API key and nothing that changes between
runs. ``record`` asks the API and writes every answer; ``replay`` answers only from the file (a
miss is :class:`~claude_magics.errors.ReplayMissError`, naming the request and how to record it);
``auto`` replays what is there and records the rest.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
#: Body fields that never change the answer.
_IGNORED = frozenset({"stream", "metadata"})
_SETTING = "ClaudeMagics.ledger_path (or CLAUDE_MAGICS_HOME)"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    used REAL NOT NULL,
    model TEXT NOT NULL,
    request_id TEXT,
    cost_usd REAL,
    size INTEGER NOT NULL,
    message BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_used ON responses(used);
"""
# A replay store is a cache of answers that the job store and the notebook also keep: losing
# the last writes to a power cut costs a re-ask, never an answer, so it need not sync each one.
_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


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


class ReplayStore:
    """``responses.sqlite``: answers by request key, the least recently used evicted first once
    the file passes ``max_bytes``. Every failure is a one-line ``StorageError``."""

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

    def __repr__(self) -> str:
        return f"ReplayStore({str(self.path)!r}, max_bytes={self.max_bytes})"

    @contextmanager
    def _connect(self, action: str = "written") -> Iterator[sqlite3.Connection]:
        with self._lock:
            db, notice = open_database(
                self.path, _SCHEMA, busy_timeout=self.busy_timeout, setting=_SETTING
            )
            if notice:
                self.notices.append(notice)
            try:
                for pragma in _PRAGMAS:
                    db.execute(pragma)
                with db:
                    yield db
            except (sqlite3.Error, OSError) as error:
                raise storage_error(self.path, action, error, _SETTING) from None
            finally:
                db.close()

    def get(self, key: str) -> StoredAnswer | None:
        """The answer stored under ``key`` (and mark it used), or None."""
        with self._connect("read") as db:
            row = db.execute(
                "SELECT message, created, cost_usd, request_id FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE responses SET used = ? WHERE key = ?", (time.time(), key))
        return StoredAnswer(orjson.loads(row[0]), row[1], row[2], row[3])

    def get_many(self, keys: Sequence[str]) -> dict[str, StoredAnswer]:
        """Every stored answer among ``keys`` (a job's distinct prompts), in one pass."""
        found: dict[str, StoredAnswer] = {}
        now = time.time()
        with self._connect("read") as db:
            for start in range(0, len(keys), 500):  # SQLite's variable limit, with room
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" for _ in chunk)
                rows = db.execute(
                    "SELECT key, message, created, cost_usd, request_id FROM responses "
                    f"WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for key, message, created, cost, request_id in rows:
                    found[key] = StoredAnswer(orjson.loads(message), created, cost, request_id)
                if rows:
                    db.executemany(
                        "UPDATE responses SET used = ? WHERE key = ?",
                        [(now, row[0]) for row in rows],
                    )
        return found

    def put(self, key: str, message: Mapping[str, Any], *, cost_usd: float | None = None) -> None:
        """Keep ``message`` (a complete API message) under ``key``; evict to stay in size."""
        self.put_many([(key, message, cost_usd)])

    def put_many(self, items: Sequence[tuple[str, Mapping[str, Any], float | None]]) -> None:
        now = time.time()
        rows = []
        for key, message, cost in items:
            blob = orjson.dumps(message)
            rows.append(
                (
                    key,
                    now,
                    now,
                    str(message.get("model") or ""),
                    message.get("id"),
                    cost,
                    len(blob),
                    blob,
                )
            )
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO responses "
                "(key, created, used, model, request_id, cost_usd, size, message) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._evict(db, sum(row[6] for row in rows))

    def _evict(self, db: sqlite3.Connection, added: int) -> None:
        # The file's size bounds the answers' size: only when it nears the cap is the exact
        # total worth a scan (a job's 100,000 answers come in many writes).
        on_disk = sum(
            f.stat().st_size
            for f in (self.path, self.path.with_name(self.path.name + "-wal"))
            if f.exists()
        )
        if on_disk + added <= self.max_bytes:
            return
        (total,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM responses").fetchone()
        if total <= self.max_bytes:
            return
        excess = total - self.max_bytes
        freed = 0
        doomed = []
        for key, size in db.execute("SELECT key, size FROM responses ORDER BY used, created"):
            doomed.append((key,))
            freed += size
            if freed >= excess:
                break
        db.executemany("DELETE FROM responses WHERE key = ?", doomed)

    def stats(self) -> ReplayStats:
        with self._connect("read") as db:
            entries, size, oldest, newest = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(created), MAX(created) FROM responses"
            ).fetchone()
        return ReplayStats(entries, size, oldest, newest)

    def clear(self, *, older_than_days: float | None = None) -> int:
        """Forget answers (all, or those stored more than ``older_than_days`` ago); how many."""
        with self._connect() as db:
            if older_than_days is None:
                cursor = db.execute("DELETE FROM responses")
            else:
                cutoff = time.time() - older_than_days * 86_400
                cursor = db.execute("DELETE FROM responses WHERE created < ?", (cutoff,))
            count = cursor.rowcount
        with self._connect() as db:
            db.execute("VACUUM")
        return count


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
