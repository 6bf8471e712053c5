"""Real files that fight back, for the tests of everything that writes SQLite: a lock held by a
second process, and small tmpfs mounts that are read-only or fill up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["held_by_another_process", "start_lock_holder", "tmpfs"]


def start_lock_holder(path: Path) -> subprocess.Popen[str]:
    """A second process holding an exclusive lock on ``path`` (an existing SQLite file) until
    it is killed; returns once the lock is held."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sqlite3, time
                db = sqlite3.connect({str(path)!r}, isolation_level=None)
                db.execute("BEGIN EXCLUSIVE")
                print("locked", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


@contextmanager
def held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    """``path`` (an existing SQLite file) held with an exclusive lock by a second process until
    the block ends."""
    holder = start_lock_holder(path)
    try:
        yield holder
    finally:
        holder.kill()
        holder.wait()


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``where`` with ``options`` (``ro``, ``size=64k``); the test is skipped,
    saying why, where mounting needs a root this process does not have."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
