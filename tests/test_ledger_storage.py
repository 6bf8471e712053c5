"""The spend ledger on real files that fight back: garbage, a folder where the file should be,
a home that is a file, a lock held by another process, a read-only and a full file system.
Each is one line naming the file and what to do (a StorageError); a damaged file is moved
aside and a fresh ledger started."""

from __future__ import annotations

from pathlib import Path

import pytest
from file_faults import held_by_another_process, tmpfs

from claude_magics.cost.ledger import Ledger
from claude_magics.cost.usage import Usage
from claude_magics.errors import StorageError


def _spend(ledger: Ledger) -> None:
    ledger.record_usage(
        model="claude-haiku-5-5", usage=Usage(input=10, output=5), cost=None, seconds=0.1
    )


def _one_line(error: StorageError) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_a_damaged_file_is_moved_aside_and_a_fresh_ledger_started(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not SQLite at all\x00" * 100)
    ledger = Ledger(path)
    _spend(ledger)
    assert len(ledger.calls()) == 1
    (moved,) = tmp_path.glob("ledger.sqlite.corrupt-*")
    assert moved.read_bytes().startswith(b"this is not SQLite")
    (notice,) = ledger.notices
    assert moved.name in notice and "fresh" in notice


def test_a_ledger_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        _spend(Ledger(tmp_path))
    assert "is a folder, not a file" in _one_line(caught.value)
    assert "ClaudeMagics.ledger_path" in str(caught.value)


def test_a_home_that_is_a_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("oops")
    with pytest.raises(StorageError) as caught:
        _spend(Ledger(home / "ledger.sqlite"))
    assert "could not be created as a folder" in _one_line(caught.value)


def test_a_lock_held_by_another_process_for_too_long(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _spend(Ledger(path))  # the file exists, with its table
    with held_by_another_process(path), pytest.raises(StorageError) as caught:
        _spend(Ledger(path, busy_timeout=0.2))
    text = _one_line(caught.value)
    assert "locked" in text and "another program holds it" in text
    _spend(Ledger(path, busy_timeout=0.2))  # free again: written


def test_a_full_disk(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=64k") as small:
        ledger = Ledger(small / "ledger.sqlite")
        (small / "filler").write_bytes(b"\0" * (64 * 1024 - 4096))

        def spend_until_full() -> None:
            for _ in range(200):
                _spend(ledger)

        with pytest.raises(StorageError) as caught:
            spend_until_full()
        assert "disk is full" in _one_line(caught.value)


def test_a_read_only_file_system(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
        with pytest.raises(StorageError) as caught:
            _spend(Ledger(read_only / "ledger.sqlite"))
        assert "read-only" in _one_line(caught.value)
