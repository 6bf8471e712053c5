"""The replay store and cassettes on their own: keys that change only when the answer can,
answers kept and evicted by size, cassettes that are stable files with one-line misses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from claude_magics.api.client import Client
from claude_magics.cost.replay import Cassette, ReplayStore, request_key
from claude_magics.emulator import Emulator
from claude_magics.errors import ReplayMissError

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
