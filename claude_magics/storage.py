"""SQLite files that must never cost an answer: the spend ledger and the job store.

    db, notice = open_database(path, SCHEMA, busy_timeout=5.0)   # notice: a file moved aside

Every failure becomes a :class:`~claude_magics.errors.StorageError` with one line that says
what happened to which file and what to do, so callers can warn and carry on: a folder that
cannot be made (the home is a file, no permission), a path that is a folder, a file locked by
another program for longer than the busy timeout, a read-only file or folder, a full disk. A
file that is not a database (or a damaged one) is moved aside (``ledger.sqlite.corrupt-<time>``)
and a fresh one started; the notice names the moved file. A leaf: any wing may use it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from .errors import StorageError

__all__ = ["open_database", "storage_error"]

# What SQLite says, and what the user can do about it.
_ADVICE = (
    ("locked", "another program holds it; close it, or wait and run the cell again"),
    ("busy", "another program holds it; close it, or wait and run the cell again"),
    ("readonly", "the file or its folder is read-only; make it writable or move it"),
    ("read-only", "the file or its folder is read-only; make it writable or move it"),
    ("disk is full", "the disk is full; free some space"),
    ("disk i/o", "the disk failed to write; check it, or move the file elsewhere"),
    ("unable to open", "the file cannot be opened; check the path and its permissions"),
)
_CORRUPT = ("file is not a database", "malformed", "corrupt")


def storage_error(path: Path, action: str, error: BaseException, setting: str) -> StorageError:
    """A one-line error for ``error`` met while ``action`` (e.g. "written") at ``path``."""
    reason = str(error) or type(error).__name__
    if _read_only(path):
        reason = f"{reason}; the file system is read-only"
    advice = next(
        (tip for key, tip in _ADVICE if key in reason.lower()),
        f"point {setting} somewhere writable",
    )
    return StorageError(f"{path} could not be {action} ({reason}): {advice}.")


def _read_only(path: Path) -> bool:
    """Whether ``path`` (or the nearest folder of it that exists) is on a read-only mount."""
    for folder in (path, *path.parents):
        try:
            return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:
            continue
    return False


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.rename(target)
    for suffix in ("-wal", "-shm", "-journal"):  # the old file's companions go with it
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


def open_database(
    path: Path, schema: str, *, busy_timeout: float = 5.0, setting: str = "the path"
) -> tuple[sqlite3.Connection, str | None]:
    """A connection to ``path`` with ``schema`` in place, and a notice when a damaged file had
    to be moved aside (None otherwise). Raises :class:`StorageError` (one line) on failure;
    ``setting`` names what the user can change to move the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise storage_error(path.parent, "created as a folder", error, setting) from None
    if path.is_dir():
        raise StorageError(f"{path} is a folder, not a file: point {setting} at a file name.")
    notice = None
    for attempt in (1, 2):
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(path, timeout=busy_timeout)
            connection.executescript(schema)
            return connection, notice
        except sqlite3.DatabaseError as error:
            if connection is not None:
                connection.close()
            damaged = any(mark in str(error).lower() for mark in _CORRUPT)
            if not damaged or attempt == 2:
                raise storage_error(path, "opened", error, setting) from None
            try:
                moved = _move_aside(path)
            except OSError as move_error:
                raise storage_error(path, "moved aside", move_error, setting) from None
            notice = f"{path} was damaged: moved to {moved.name}, and a fresh file was started."
    raise AssertionError("unreachable")  # pragma: no cover
