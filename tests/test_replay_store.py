"""The replay store and cassettes on their own: keys that change only when the answer can,
answers kept and evicted by size, cassettes that are stable files with one-line misses."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_magics.api.client import Client
from claude_magics.cost.replay import Cassette, ReplayStore, request_key
from claude_magics.emulator import Emulator
from claude_magics.errors import ReplayMissError, StorageError

EMULATOR = "http://127.0.0.1:8765"
REAL = "https://api.anthropic.com"


def body(text: str = "Why is the sky blue?", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-haiku-5-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        **extra,
    }


def key(request: dict[str, Any], **where: Any) -> str:
    options = {"base_url": EMULATOR, "api_version": "2023-06-01", **where}
    return request_key(request, **options)


def test_the_key_ignores_what_does_not_change_the_answer() -> None:
    plain = key(body())
    assert key(body(stream=True)) == plain
    assert key(body(metadata={"user_id": "u1"})) == plain
    marked = body()
    marked["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}
    assert key(marked) == plain
    reordered = dict(reversed(list(body().items())))
    assert key(reordered) == plain


def test_the_key_changes_with_anything_that_can_change_the_answer() -> None:
    plain = key(body())
    others = {
        key(body("Why is the sea blue?")),
        key(body(max_tokens=65)),
        key(body(model="claude-sonnet-5-5")),
        key(body(system=[{"type": "text", "text": "Be brief."}])),
        key(body(), base_url=REAL),  # an emulator's answer is never replayed on the real API
        key(body(), base_url="http://127.0.0.1:8766"),
        key(body(), api_version="2026-10-21"),
        key(body(), betas=["files-api-2025-04-14"]),
    }
    assert plain not in others
    assert len(others) == 8
    assert key(body(), base_url=EMULATOR + "/") == plain  # same server


def message(text: str, n: int = 1) -> dict[str, Any]:
    return {
        "id": f"msg_{n}",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-5-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def test_answers_round_trip_and_the_least_recently_used_go_first(tmp_path: Path) -> None:
    store = ReplayStore(tmp_path / "responses.sqlite", max_bytes=7_000)
    store.put("a", message("A" * 2_000, 1), cost_usd=0.01)
    store.put("b", message("B" * 2_000, 2), cost_usd=0.02)
    hit = store.get("a")
    assert hit is not None and hit.message == message("A" * 2_000, 1)
    assert hit.cost_usd == 0.01 and hit.request_id == "msg_1"
    time.sleep(0.01)
    store.get("a")  # "a" used again: "b" is now the least recently used
    store.put_many([("c", message("C" * 2_000, 3), None), ("d", message("D" * 2_000, 4), None)])
    stats = store.stats()
    assert stats.bytes <= 7_000 and stats.entries == 3
    assert store.get("b") is None
    assert store.get("a") is not None
    assert set(store.get_many(["a", "c", "d", "zzz"])) == {"a", "c", "d"}


def test_clear_all_or_by_age(tmp_path: Path) -> None:
    store = ReplayStore(tmp_path / "responses.sqlite")
    store.put("old", message("old"))
    store.put("new", message("new"))
    assert store.clear(older_than_days=1) == 0
    assert store.clear() == 2
    assert store.stats().entries == 0


def test_a_damaged_store_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    path.write_bytes(b"garbage" * 500)
    store = ReplayStore(path)
    assert store.get("x") is None
    assert store.notices and "moved to responses.sqlite.corrupt-" in store.notices[0]


def test_a_cassette_is_a_stable_sorted_file(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    tape = Cassette(path, "record")
    tape.put(key(body("second")), body("second"), message("2"))
    tape.put(key(body("first")), body("first"), message("1"))
    first_write = path.read_bytes()
    lines = first_write.splitlines()
    assert lines == sorted(lines)
    assert b'"prompt":"first"' in first_write
    again = Cassette(path, "record")  # recording the same answers writes the same bytes
    again.put(key(body("first")), body("first"), message("1"))
    assert path.read_bytes() == first_write
    replaying = Cassette(path, "replay")
    assert replaying.get(key(body("first")), body("first")) == message("1")


def test_a_miss_in_replay_mode_names_the_request_and_how_to_record(tmp_path: Path) -> None:
    tape = Cassette(tmp_path / "answers.jsonl", "replay")
    with pytest.raises(ReplayMissError) as caught:
        tape.get(key(body("What is a p-value?")), body("What is a p-value?"))
    text = str(caught.value)
    assert "claude-haiku-5-5" in text and "What is a p-value?" in text
    assert "--mode record" in text and "\n" not in text
    assert Cassette(tmp_path / "answers.jsonl", "auto").get("nope", body()) is None


def test_neither_store_holds_the_api_key(emulator: Emulator, tmp_path: Path) -> None:
    client = Client(api_key="sk-ant-very-secret-0042", base_url=emulator.url)
    request = body("Hello")
    reply = client.messages.create(**request)
    k = request_key(request, base_url=client.base_url, api_version=client.api_version)
    store = ReplayStore(tmp_path / "responses.sqlite")
    store.put(k, reply)
    tape = Cassette(tmp_path / "answers.jsonl", "record")
    tape.put(k, request, reply)
    for path in (tmp_path / "responses.sqlite", tmp_path / "answers.jsonl"):
        assert b"very-secret" not in path.read_bytes()


def test_the_ledger_records_replays_at_no_cost_with_what_they_saved(tmp_path: Path) -> None:
    from claude_magics.cost.ledger import Ledger
    from claude_magics.cost.pricing import price_usage
    from claude_magics.cost.usage import Usage

    ledger = Ledger(tmp_path / "ledger.sqlite", session="s1")
    usage = Usage(input=1_000, output=200)
    paid = price_usage(usage, "claude-sonnet-5-5")
    assert paid is not None
    ledger.record_usage(model="claude-sonnet-5-5", usage=usage, cost=paid, seconds=1.0)
    ledger.record_replay(model="claude-sonnet-5-5", usage=usage, saved=paid)
    ledger.record_replay(model="claude-sonnet-5-5", usage=usage, saved=paid)
    assert ledger.spent(session="s1") == pytest.approx(paid.total)
    assert ledger.saved(session="s1") == pytest.approx(2 * paid.total)
    assert [c.kind for c in ledger.calls()] == ["realtime", "replay", "replay"]


def hex_key(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_answers_kept_in_the_background_are_read_back_at_once(tmp_path: Path) -> None:
    store = ReplayStore(tmp_path / "responses.sqlite")
    keys = [hex_key(n) for n in range(2_000)]
    for start in range(0, 2_000, 500):  # a job's slices, the messages encoded as they came
        part = keys[start : start + 500]
        store.put_many_later(part, [orjson.dumps(message(k)) for k in part], [0.01] * 500)
    found = store.get_many(keys)  # waits for the writer: a lookup never misses what was kept
    assert len(found) == 2_000
    assert found[keys[7]].message == message(keys[7]) and found[keys[7]].cost_usd == 0.01
    assert store.stats().entries == 2_000


def test_interpreter_exit_waits_for_answers_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    script = (
        "import hashlib, sys\n"
        "from claude_magics.cost.replay import ReplayStore\n"
        "store = ReplayStore(sys.argv[1])\n"
        "keys = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(5000)]\n"
        "store.put_many_later(keys, [{'id': k, 'content': []} for k in keys], [None] * 5000)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    assert ReplayStore(path).stats().entries == 5_000


def test_a_background_write_that_fails_is_told_and_waits_for_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "in-the-way"
    folder.mkdir()
    store = ReplayStore(folder)  # a folder where the file should be
    failures: list[Exception] = []
    store.put_many_later(["k"], [message("x")], [None], failures.append)
    assert store.flush(timeout=10)
    (failure,) = failures
    assert isinstance(failure, StorageError) and "\n" not in str(failure)
    assert str(folder) in str(failure)


def test_keys_that_share_their_first_digits_never_get_each_others_answers(
    tmp_path: Path,
) -> None:
    store = ReplayStore(tmp_path / "responses.sqlite")
    first, second = "0" * 15 + "a" * 49, "0" * 15 + "b" * 49  # one slot in the index
    store.put(first, message("first"))
    store.put(second, message("second"))
    hit = store.get(second)
    assert hit is not None and hit.message == message("second")
    assert store.get(first) is None  # pushed out (a re-ask), never answered with the other


def test_answers_of_the_first_layout_are_moved_over(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, created REAL NOT NULL, used REAL "
            "NOT NULL, model TEXT NOT NULL, request_id TEXT, cost_usd REAL, size INTEGER NOT "
            "NULL, message BLOB NOT NULL)"
        )
        blob = orjson.dumps(message("kept"))
        db.execute(
            "INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (hex_key(1), 1.5e9, 1.6e9, "claude-haiku-5-5", "msg_1", 0.02, len(blob), blob),
        )
    db.close()
    store = ReplayStore(path)
    hit = store.get(hex_key(1))
    assert hit is not None and hit.message == message("kept")
    assert (hit.created, hit.cost_usd, hit.request_id) == (1.5e9, 0.02, "msg_1")
    assert store.stats().entries == 1
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "responses" not in tables


def test_an_interrupt_while_waiting_for_the_writer_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_magics.cost import replay

    store = ReplayStore(tmp_path / "responses.sqlite")
    insert = replay._insert

    def slow_insert(db: Any, values: list[Any]) -> None:  # a disk that takes its time
        time.sleep(1.0)
        insert(db, values)

    monkeypatch.setattr(replay, "_insert", slow_insert)
    keys = [hex_key(n) for n in range(100)]
    store.put_many_later(keys, [message(k) for k in keys], [None] * 100)
    interrupt = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))  # Ctrl-C
    interrupt.start()
    with pytest.raises(KeyboardInterrupt):
        store.flush(timeout=30)
    interrupt.join()
    assert store.flush(timeout=30)  # the writer went on meanwhile: nothing was dropped
    assert len(store.get_many(keys)) == 100
