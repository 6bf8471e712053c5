"""Replay in ``%%claude``: an answer already paid for is shown again for $0, in a real IPython
shell against the emulator over sockets; the emulator's request log says what was sent."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from shell_support import final, magics_of, run_cell

from claude_magics.emulator import Emulator
from claude_magics.notebook.result import ClaudeResult
from claude_magics.pytest_plugin import TEST_API_KEY

PROMPT = "Name three prime numbers. [[reply_tokens=20]]"


def sent(emulator: Emulator) -> int:
    """How many answers were asked of the emulator."""
    return sum(1 for r in emulator.requests if r.path == "/v1/messages")


def answer(ip: InteractiveShell, line: str = "", prompt: str = PROMPT) -> tuple[Any, Any]:
    """``%%claude line`` / ``prompt`` as a cell; the cell must succeed."""
    result, captured = run_cell(ip, f"%%claude {line}\n{prompt}")
    assert result.success, captured.stdout + captured.stderr
    return result, captured


def restart(ip: InteractiveShell) -> None:
    """What a kernel restart does to the extension: a new ClaudeMagics, a new ledger session,
    no conversation; the files under CLAUDE_MAGICS_HOME stay."""
    ip.run_line_magic("unload_ext", "claude_magics")
    ip.run_line_magic("load_ext", "claude_magics")
    magics_of(ip).display = "markdown"


def test_a_cell_run_again_after_a_restart_is_replayed_not_sent(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    _, first = answer(ip, "--out t_first")
    assert sent(emulator) == 1
    session = magics_of(ip).ledger.session
    restart(ip)
    assert magics_of(ip).ledger.session != session
    _, second = answer(ip, "--out t_second")
    assert sent(emulator) == 1  # nothing asked: the stored answer is shown
    live, replayed = ip.user_ns["t_first"], ip.user_ns["t_second"]
    assert isinstance(replayed, ClaudeResult)
    assert replayed.text == live.text != ""
    assert replayed.message == live.message
    # The same outputs: placeholder then answer, the same text; only the status line differs.
    statics = [[o for o in c.outputs if not getattr(o, "update", False)] for c in (first, second)]
    assert len(statics[0]) == len(statics[1]) == 2
    assert final(second)["text/plain"] == final(first)["text/plain"]
    markdown = final(second)["text/markdown"]
    assert markdown.startswith(live.text)
    assert "replayed from " in markdown and "· $0 (saved $" in markdown
    assert "--fresh for a new answer" in markdown
    when = time.strftime("%Y-%m-%d", time.localtime())
    assert f"replayed from {when}" in replayed.status()
    assert replayed.saved_usd == pytest.approx(live.cost.total)
    assert replayed.cost is not None and replayed.cost.total == 0
    # The conversation holds the replayed turn as it would hold a live one.
    assert magics_of(ip).chats.get().turns[-1].assistant_text == live.text


def test_fresh_asks_anew_and_replay_off_always_sends(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    answer(ip, "--once")
    answer(ip, "--once")
    assert sent(emulator) == 1
    _, fresh = answer(ip, "--once --fresh")
    assert sent(emulator) == 2
    assert "replayed" not in final(fresh)["text/markdown"]
    magics_of(ip).replay = False
    answer(ip, "--once")
    answer(ip, "--once")
    assert sent(emulator) == 4
    magics_of(ip).replay = True
    answer(ip, "--once")
    assert sent(emulator) == 4


def test_dry_run_and_count_never_replay(ip: InteractiveShell, emulator: Emulator) -> None:
    answer(ip, "--once")
    _, dry = answer(ip, "--once --dry-run")
    assert "replayed" not in str(dry.outputs[-1].data)
    assert "/v1/messages" in dry.outputs[-1].data["text/plain"]
    before = len(emulator.requests)
    answer(ip, "--once --count")
    assert [r.path for r in emulator.requests[before:]] == ["/v1/messages/count_tokens"]
    assert sent(emulator) == 1


def test_a_follow_up_is_replayed_only_when_its_history_is_the_same(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    def conversation(first_prompt: str) -> list[str]:
        magics = magics_of(ip)
        magics._cell_id = "cell-a"
        _, a = answer(ip, "", first_prompt)
        magics._cell_id = "cell-b"
        _, b = answer(ip, "", "And two more? [[reply_tokens=8]]")
        return [final(a)["text/markdown"], final(b)["text/markdown"]]

    conversation("Name a prime. [[reply_tokens=8]]")
    assert sent(emulator) == 2
    restart(ip)
    a, b = conversation("Name a prime. [[reply_tokens=8]]")
    assert sent(emulator) == 2
    assert "replayed from" in a and "replayed from" in b
    restart(ip)
    a, b = conversation("Name an even prime. [[reply_tokens=8]]")  # the earlier cell changed
    assert sent(emulator) == 4
    assert "replayed" not in a and "replayed" not in b
    # The follow-up was sent with the new history.
    last = [r for r in emulator.requests if r.path == "/v1/messages"][-1].body
    assert "even prime" in str(last["messages"][0])


def test_the_ledger_records_replays_and_claude_usage_shows_what_they_saved(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    _, _ = answer(ip, "--once --out t_live")
    cost = ip.user_ns["t_live"].cost.total
    restart(ip)
    magics_of(ip).budget_usd = 0.0  # nothing left to spend: a replay costs nothing
    answer(ip, "--once")
    assert sent(emulator) == 1
    ledger = magics_of(ip).ledger
    (row,) = ledger.calls(session=ledger.session)
    assert (row.kind, row.cost_usd) == ("replay", 0.0)
    assert row.saved_usd == pytest.approx(cost)
    assert ledger.saved(session=ledger.session) == pytest.approx(cost)
    with capture_output() as captured:
        ip.run_line_magic("claude_usage", "")
    from claude_magics.cost.pricing import format_usd

    saved = format_usd(cost)
    assert (
        f"Replay saved {saved} this session, {saved} overall"
        in captured.outputs[-1].data["text/plain"]
    )
    with capture_output() as captured:
        ip.run_line_magic("claude_replay", "stats")
    stats = captured.outputs[-1].data["text/plain"]
    assert stats.startswith("1 answer stored, ")
    assert f"Replay saved {saved} this session" in stats
    with capture_output() as captured:
        ip.run_line_magic("claude_replay", "clear --older-than 1")
    assert "Forgot 0 stored answers older than 1 days." in captured.stdout + str(
        captured.outputs[-1].data
    )
    with capture_output() as captured:
        ip.run_line_magic("claude_replay", "clear")
    assert "Forgot 1 stored answer." in captured.outputs[-1].data["text/plain"]
    magics_of(ip).budget_usd = None
    answer(ip, "--once")
    assert sent(emulator) == 2


def test_a_cassette_recorded_then_replayed_with_the_emulator_stopped(
    ip: InteractiveShell,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cassette = tmp_path / "answers.jsonl"
    ip.run_line_magic("claude_replay", f"cassette {cassette} --mode record")
    magics_of(ip)._cell_id = "cell-a"
    _, first = answer(ip, "--out t_a")
    magics_of(ip)._cell_id = "cell-b"
    _, second = answer(ip, "--out t_b", "Which is the largest? [[reply_tokens=6]]")
    assert sent(emulator) == 2
    recorded = cassette.read_bytes()
    assert recorded.count(b"\n") == 2
    assert cassette.read_bytes() == recorded  # nothing that changes between runs
    # CI: the emulator is gone (its URL still set), a fresh home, no key.
    emulator.stop()
    monkeypatch.setenv("CLAUDE_MAGICS_HOME", str(tmp_path / "ci-home"))
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    restart(ip)
    ip.run_line_magic("claude_replay", f"cassette {cassette} --mode replay")
    started = time.monotonic()
    magics_of(ip)._cell_id = "cell-a"
    _, again_first = answer(ip, "--out t_a2")
    magics_of(ip)._cell_id = "cell-b"
    _, again_second = answer(ip, "--out t_b2", "Which is the largest? [[reply_tokens=6]]")
    assert time.monotonic() - started < 2  # no connection tried, no model list waited for
    assert final(again_first)["text/plain"] == final(first)["text/plain"]
    assert final(again_second)["text/plain"] == final(second)["text/plain"]
    assert "replayed from the cassette answers.jsonl" in final(again_second)["text/markdown"]
    assert cassette.read_bytes() == recorded
    # A request the cassette lacks: one line that names it, and nothing sent.
    result, captured = run_cell(ip, "%%claude --once\nSomething never recorded")
    assert not result.success
    lines = [line for line in (captured.stdout + captured.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ReplayMissError: no recorded answer for claude-sonnet-5-5")
    assert "«Something never recorded»" in lines[0] and "--mode record" in lines[0]


def test_a_miss_in_replay_mode_sends_nothing(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_MAGICS_CASSETTE", str(tmp_path / "empty.jsonl"))
    monkeypatch.setenv("CLAUDE_MAGICS_REPLAY", "replay")
    restart(ip)  # the environment is read when the extension first replays
    before = len(emulator.requests)
    result, captured = run_cell(ip, "%%claude\nAnything at all")
    assert not result.success
    assert "ReplayMissError: no recorded answer" in captured.stdout + captured.stderr
    # The model list may be asked for (a fresh session); the request is not.
    assert [r.path for r in emulator.requests[before:]] in ([], ["/v1/models"])
    ip.run_line_magic("claude_replay", "cassette off")
    answer(ip, "", "Anything at all")
    assert sent(emulator) == 1


def test_the_key_is_in_neither_store(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    cassette = tmp_path / "answers.jsonl"
    ip.run_line_magic("claude_replay", f"cassette {cassette} --mode auto")
    ip.user_ns["t_secret"] = TEST_API_KEY
    with capture_output():
        ip.run_cell("%%claude --once\nRepeat this back: {{t_secret}} [[reply_tokens=30]]")
    answer(ip, "--once")
    assert sent(emulator) == 2
    store = magics_of(ip).replayer.store
    assert store is not None and store.stats().entries == 2
    for path in (store.path, cassette):
        assert path.exists()
        assert TEST_API_KEY.encode() not in path.read_bytes()
    with sqlite3.connect(store.path) as db:
        for (blob,) in db.execute("SELECT message FROM answers"):
            assert TEST_API_KEY.encode() not in blob


def test_a_store_that_cannot_be_written_loses_no_answer(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    magics = magics_of(ip)
    answer(ip, "--once")  # the store exists now
    store = magics.replayer.store
    assert store is not None
    store.path.unlink()
    store.path.mkdir()  # a folder where the file was: every write fails
    result, captured = run_cell(ip, "%%claude --once --out t_kept\nNew question [[reply_tokens=5]]")
    assert result.success
    assert ip.user_ns["t_kept"].text
    lines = [line for line in captured.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Warning: ")
    assert "Not replayed: asking the API." in lines[0]
    assert sent(emulator) == 2


def test_past_the_size_cap_the_answers_used_longest_ago_go_first(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    ip.run_line_magic("config", "ClaudeMagics.replay_max_mb = 1")
    # Eight long answers (about 150 kB each) pass the 1 MB cap: the oldest are evicted.
    long = "--once --no-stream --max-tokens 40000"
    prompts = [f"Tell story {n} at length. [[reply_tokens=40000]]" for n in range(8)]
    kept = 0
    for n, prompt in enumerate(prompts):
        answer(ip, f"{long} --out t_story{n}", prompt)
        kept += len(orjson.dumps(ip.user_ns[f"t_story{n}"].message))
    assert sent(emulator) == 8
    assert kept > 2**20  # what the cap is there for
    store = magics_of(ip).replayer.store
    assert store is not None and store.max_bytes == 2**20
    stats = store.stats()
    assert 0 < stats.bytes <= 2**20
    assert 2 <= stats.entries < 8
    with capture_output() as captured:
        ip.run_line_magic("claude_replay", "stats")
    assert captured.outputs[-1].data["text/plain"].startswith(f"{stats.entries} answers stored")
    # The newest is replayed; the oldest was evicted, and is asked for again.
    _, newest = answer(ip, long, prompts[-1])
    assert sent(emulator) == 8
    assert "replayed from" in final(newest)["text/markdown"]
    _, oldest = answer(ip, long, prompts[0])
    assert sent(emulator) == 9
    assert "replayed" not in final(oldest)["text/markdown"]
    last = [r for r in emulator.requests if r.path == "/v1/messages"][-1].body
    assert "Tell story 0" in str(last["messages"])
    assert store.stats().bytes <= 2**20


REVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["good", "bad"]},
        "score": {"type": "integer"},
    },
    "required": ["label", "score"],
}
REVIEW = "Rate this review, with a label and a score: it was good"


def live_then_replayed(
    ip: InteractiveShell, emulator: Emulator, view: str, flags: str
) -> tuple[Any, Any]:
    """A JSON cell (``flags``: ``--schema`` or ``-f json``) answered, then, after a restart,
    run again and replayed, both in ``view``: the two cells' captured output."""
    ip.user_ns["t_schema"] = REVIEW_SCHEMA
    if flags == "-f json":
        emulator.add_reply('{"label": "good", "score": 4}')  # the answer's text is JSON
    magics_of(ip).display = view
    _, live = answer(ip, f"{flags} --once --out t_live", REVIEW)
    restart(ip)
    magics_of(ip).display = view
    _, again = answer(ip, f"{flags} --once --out t_again", REVIEW)
    assert sent(emulator) == 1
    return live, again


@pytest.mark.parametrize("view", ["markdown", "plain"])
@pytest.mark.parametrize("flags", ["--schema t_schema", "-f json"])
def test_a_replayed_json_answer_keeps_what_the_live_one_kept(
    ip: InteractiveShell, emulator: Emulator, view: str, flags: str
) -> None:
    live, again = live_then_replayed(ip, emulator, view, flags)
    kept, replayed = ip.user_ns["t_live"], ip.user_ns["t_again"]
    assert isinstance(kept, dict) and kept["label"] == "good"  # the parsed JSON
    assert replayed == kept
    if view == "markdown":
        assert final(again)["text/plain"] == final(live)["text/plain"]
        shown = final(live)["text/markdown"].split("<sub>")[0]
        assert shown.startswith("```json\n")
        assert final(again)["text/markdown"].split("<sub>")[0] == shown
        assert "replayed from" in final(again)["text/markdown"]


@pytest.mark.parametrize("flags", ["--schema t_schema", "-f json"])
def test_a_replayed_json_answer_prints_in_the_terminal_what_the_live_one_did(
    ip: InteractiveShell, emulator: Emulator, flags: str
) -> None:
    live, again = live_then_replayed(ip, emulator, "plain", flags)
    # The answer, then its status line (which says it was replayed).
    shown_live, status_live = live.stdout.rsplit("\n\n[", 1)
    shown_again, status_again = again.stdout.rsplit("\n\n[", 1)
    assert "replayed from" in status_again and "replayed" not in status_live
    assert shown_again == shown_live != ""
