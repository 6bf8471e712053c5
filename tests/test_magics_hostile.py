"""%%claude as a careless or hostile user drives it, in a real IPython shell against the emulator
over sockets: a spend ledger that cannot be written (real files: a lock held by another process,
garbage, a folder, a home that is a file, a read-only or full tmpfs), interrupts (a real SIGINT)
at every stage, keys pasted into settings or interpolated into prompts, quoted flags, lone
surrogates, devices and a request over 32 MB. Each ends in one clear line; a paid answer is
never lost, and no key is ever shown."""

from __future__ import annotations

import base64
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from file_faults import held_by_another_process, tmpfs
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from shell_support import magics_of

from claude_magics.config import BudgetExceededError
from claude_magics.cost.ledger import Ledger
from claude_magics.emulator import Emulator
from claude_magics.errors import RequestBodyError, StorageError
from claude_magics.notebook import views
from claude_magics.notebook.cell import ESTIMATED_KIND, ClaudeInterrupted
from claude_magics.notebook.magics import SettingRefused
from claude_magics.notebook.result import ClaudeResult


def message_requests(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.path == "/v1/messages"]


def final_outputs(captured: Any) -> list[dict[str, Any]]:
    """The outputs a saved notebook keeps: display updates folded into their slots."""
    return [o.data for o in captured.outputs if not getattr(o, "update", False)]


def shown_lines(captured: Any) -> list[str]:
    """The non-empty lines printed to stdout and stderr (where IPython shows an error)."""
    text = captured.stdout + captured.stderr
    return [line for line in text.splitlines() if line.strip()]


def run_cell(ip: InteractiveShell, source: str) -> tuple[Any, Any]:
    """Run ``source`` as a notebook cell: IPython shows any error itself, as a user sees it."""
    with capture_output() as captured:
        result = ip.run_cell(source)
    return result, captured


# -- paid answers are never lost -----------------------------------------------------------------


@contextmanager
def _locked_by_another_process(path: Path) -> Iterator[None]:
    """``path`` (a ledger) held with an exclusive lock by a second process until the end."""
    Ledger(path).calls()  # the file exists, with its table
    with held_by_another_process(path):
        yield


@contextmanager
def unusable_ledger(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ip: InteractiveShell
) -> Iterator[tuple[str, str]]:
    """Make the magics' spend ledger unusable in the way ``how`` says, with real files; yields
    what the one-line warning must say happened, and what it must say to do."""
    magics = magics_of(ip)
    magics.ledger_busy_timeout = 0.2
    path = tmp_path / "ledger.sqlite"
    if how == "locked":
        magics.ledger_path = str(path)
        with _locked_by_another_process(path):
            yield "locked", "another program holds it; close it, or wait"
    elif how == "folder":
        magics.ledger_path = str(tmp_path)
        yield "is a folder, not a file", "point ClaudeMagics.ledger_path"
    elif how == "home is a file":
        home = tmp_path / "home"
        home.write_text("not a folder")
        monkeypatch.setenv("CLAUDE_MAGICS_HOME", str(home))
        yield "could not be created as a folder", "point ClaudeMagics.ledger_path"
    elif how == "read-only":
        with tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
            magics.ledger_path = str(read_only / "ledger.sqlite")
            yield "the file system is read-only", "make it writable or move it"
    elif how == "full":
        with tmpfs(tmp_path / "small", "size=64k") as small:
            _fill(small / "filler")
            magics.ledger_path = str(small / "ledger.sqlite")
            yield "full", "free some space"
    else:  # pragma: no cover - a typo in a parameter
        raise AssertionError(how)


def _fill(path: Path) -> None:
    """Write ``path`` until its file system is full."""
    try:
        with path.open("wb") as filler:
            for _ in range(10_000):
                filler.write(b"\0" * 4096)
                filler.flush()
    except OSError:
        return
    raise AssertionError(f"{path}: the file system never filled up")


LEDGER_FAILURES = ["locked", "folder", "home is a file", "read-only", "full"]


@pytest.mark.parametrize("how", LEDGER_FAILURES)
def test_a_ledger_that_cannot_be_written_costs_no_answer(
    ip: InteractiveShell,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    magics = magics_of(ip)
    magics._cell_id = "cell-paid"
    with unusable_ledger(how, tmp_path, monkeypatch, ip) as (what, todo):
        started = time.monotonic()
        result, captured = run_cell(ip, "%%claude --out t_paid\nAnswer me [[reply_tokens=12]]")
        elapsed = time.monotonic() - started
    # The cell succeeded: the answer is shown, kept in --out and in the conversation.
    assert result.success, result.error_in_exec
    kept = ip.user_ns["t_paid"]
    assert isinstance(kept, ClaudeResult)
    assert final_outputs(captured)[-1]["text/plain"] == kept.text != ""
    assert magics.chats.get().turns[-1].assistant_text == kept.text
    assert magics.last_result is kept
    # One warning line that says what happened and what to do; no traceback. The replay
    # store lives beside the ledger: when its folder is unusable too, it says so first, once.
    *replay, warning = shown_lines(captured)
    assert warning.startswith("Warning: the answer is kept, but its spend was not recorded")
    assert what in warning
    assert todo in warning
    assert len(replay) == (how in ("home is a file", "read-only", "full")), replay
    assert all(r.endswith("Not replayed: asking the API.") and todo in r for r in replay)
    assert elapsed < 3  # a lock is waited for as long as ledger_busy_timeout, no longer


def test_a_damaged_ledger_is_moved_aside_with_one_notice_shown_once(
    ip: InteractiveShell, tmp_path: Path
) -> None:
    magics = magics_of(ip)
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"garbage, not SQLite\x00" * 200)
    magics.ledger_path = str(path)
    result, captured = run_cell(ip, "%%claude --once\nfirst [[reply_tokens=5]]")
    assert result.success
    (notice,) = shown_lines(captured)
    (moved,) = tmp_path.glob("ledger.sqlite.corrupt-*")
    assert notice.startswith("Warning: ")
    assert moved.name in notice and "fresh" in notice
    assert moved.read_bytes().startswith(b"garbage, not SQLite")
    # The call went into the fresh ledger; the next cell says nothing more.
    result, captured = run_cell(ip, "%%claude --once\nsecond [[reply_tokens=5]]")
    assert result.success
    assert shown_lines(captured) == []
    assert len(Ledger(path).calls()) == 2


def test_the_budget_cannot_be_checked_on_an_unusable_ledger(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    magics = magics_of(ip)
    magics.ledger_path = str(tmp_path)  # a folder
    magics.budget_usd = 1.0
    result, captured = run_cell(ip, "%%claude --once\nx")
    assert isinstance(result.error_in_exec, StorageError)
    (line,) = shown_lines(captured)
    assert "is a folder, not a file" in line
    assert "fix the ledger, or unset the budget with %config ClaudeMagics.budget_usd = None" in line
    assert not message_requests(emulator)


# -- interrupts ------------------------------------------------------------------------------------


def sigint_on_text_event(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """Send this process a real SIGINT from the live view once ``after`` text events have
    arrived: a kernel interrupt at a known point of the stream, without a timer's guesswork."""
    original = views.MarkdownView.event

    def event(self: views.MarkdownView, event: Any, acc: Any) -> None:
        original(self, event, acc)
        if event.type == "text":
            # Counted per view: each cell has its own.
            self.texts_seen = getattr(self, "texts_seen", 0) + 1  # type: ignore[attr-defined]
            if self.texts_seen == after:  # type: ignore[attr-defined]
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(views.MarkdownView, "event", event)


@contextmanager
def sigint_in(seconds: float) -> Iterator[None]:
    """A real SIGINT to this process ``seconds`` from now (while the block runs)."""
    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def test_interrupted_answers_are_recorded_with_what_they_streamed_and_the_budget_holds(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each call streams about 800 output tokens (40 deltas of 20) before it is interrupted;
    # its worst case (1,000 output tokens, $0.01 on the default model) fits the budget.
    budget = 0.05
    magics = magics_of(ip)
    magics.budget_usd = budget
    emulator.configure(tokens_per_delta=20)
    sigint_on_text_event(monkeypatch, after=40)
    interrupted = 0
    with pytest.raises(BudgetExceededError):  # noqa: PT012 - the loop is the scenario
        for n in range(9):
            with capture_output(), pytest.raises(ClaudeInterrupted):
                ip.run_cell_magic(
                    "claude", "--once --max-tokens 1000", f"call {n} [[reply_tokens=990]]"
                )
            interrupted += 1
    calls = magics.ledger.calls(session=magics.ledger.session)
    assert len(calls) == interrupted == len(message_requests(emulator)) < 8
    for call in calls:
        # What was streamed (estimated from the text, and marked so), not message_start's 1.
        assert call.kind == ESTIMATED_KIND
        assert 400 < call.output_tokens < 1000
    spent = magics.ledger.spent(session=magics.ledger.session)
    assert budget - 0.0101 < spent <= budget  # refused once what is left cannot hold one more


def test_an_interrupted_answer_says_so_in_its_status_and_metadata(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.configure(tokens_per_delta=10)
    sigint_on_text_event(monkeypatch, after=5)
    with capture_output() as captured, pytest.raises(ClaudeInterrupted):
        ip.run_cell_magic("claude", "--out t_part", "partial [[reply_tokens=500]]")
    kept = ip.user_ns["t_part"]
    assert kept.interrupted
    assert kept.output_estimate == kept.tokens.output > 1
    assert kept.usage["output_tokens"] < kept.output_estimate  # what message_start said
    answer = final_outputs(captured)[-1]
    assert f"≈{kept.output_estimate:,} out" in answer["text/markdown"]
    meta = next(o.metadata for o in captured.outputs if o.data is answer)
    assert meta["claude_magics"]["output_tokens_estimate"] == kept.output_estimate


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("waiting for the response", "Interrupted before the answer began"),
        ("waiting for the first token", "Interrupted before the answer began"),
        ("a 429 back-off", "Interrupted before the answer began"),
        ("a slow __repr__", "Interrupted before the request was sent: nothing was sent."),
        ("mid-answer", "Interrupted: the partial answer above is kept."),
    ],
)
def test_an_interrupt_at_any_stage_is_one_line(
    ip: InteractiveShell, emulator: Emulator, stage: str, expected: str
) -> None:
    class Slow:
        def __repr__(self) -> str:
            time.sleep(30)
            return "slow"

    # Each wait lasts 30 s unless the interrupt ends it (told apart by a wide margin: CI may
    # be loaded).
    prompt = "x [[reply_tokens=3000]]"
    if stage == "waiting for the response":
        emulator.add_fault(kind="slow", delay=30)
    elif stage == "waiting for the first token":
        emulator.configure(time_to_first_token=30)
    elif stage == "a 429 back-off":
        emulator.add_fault(status=429, retry_after=30)
    elif stage == "a slow __repr__":
        ip.user_ns["t_slow"] = Slow()
        prompt = "look at {{t_slow}}"
    else:
        emulator.configure(tokens_per_second=100)
    started = time.monotonic()
    with sigint_in(0.5):
        result, captured = run_cell(ip, f"%%claude --out t_kept\n{prompt}")
    elapsed = time.monotonic() - started
    assert isinstance(result.error_in_exec, ClaudeInterrupted)
    assert elapsed < 10  # stopped at once, not after the 30 s wait
    assert shown_lines(captured) == [result.error_in_exec.message]
    assert result.error_in_exec.message.startswith(expected)
    if stage == "mid-answer":
        assert ip.user_ns["t_kept"].text  # the partial answer, kept
    else:
        assert "t_kept" not in ip.user_ns or not ip.user_ns["t_kept"].text
    if stage == "a slow __repr__":
        assert not message_requests(emulator)


def test_an_interrupt_while_the_spend_waits_for_a_locked_ledger_keeps_the_answer(
    ip: InteractiveShell, tmp_path: Path
) -> None:
    magics = magics_of(ip)
    path = tmp_path / "ledger.sqlite"
    magics.ledger_path = str(path)
    magics.ledger_busy_timeout = 1.0
    with _locked_by_another_process(path), sigint_in(0.3):
        # The signal lands while SQLite waits for the lock: the answer is already kept.
        result, captured = run_cell(ip, "%%claude --out t_paid\nAnswer me [[reply_tokens=12]]")
    assert isinstance(result.error_in_exec, ClaudeInterrupted)
    assert shown_lines(captured)[-1] == result.error_in_exec.message
    assert result.error_in_exec.message.startswith("Interrupted while the spend was being recorded")
    assert len(shown_lines(captured)) <= 2  # the warning may come first
    assert ip.user_ns["t_paid"].text


# -- no key is ever shown --------------------------------------------------------------------------

#: A key that looks real; the tests put it in the environment and paste it where it is refused.
SECRET = "sk-ant-api03-Hostile0123456789abcdefXYZ"


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    return SECRET


def _everything_shown(ip: InteractiveShell, caplog: pytest.LogCaptureFixture) -> str:
    """What %config ClaudeMagics, %claude_config and the logs show now."""
    with capture_output() as captured:
        ip.run_line_magic("config", "ClaudeMagics")
        ip.run_line_magic("claude_config", "")
    shown = captured.stdout + captured.stderr
    shown += "".join(str(o.data) for o in captured.outputs)
    shown += "".join(record.getMessage() for record in caplog.records)
    return shown


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("api_key_env", repr(SECRET)),
        ("api_key_env", "'ANTHROPIC API KEY'"),
        ("max_tokens", repr(SECRET)),
        ("budget_usd", "-1"),
        ("confirm_above_usd", "-0.5"),
        ("df_token_budget", "-5"),
        ("value_token_budget", "0"),
        ("max_tokens", "0"),
        ("cache_min_tokens", "0"),
        ("display", "'fancy'"),
        ("api_version", "'1999-01-01'"),
        ("timeout", "0"),
        ("max_retries", "-1"),
        ("ledger_busy_timeout", "-1"),
    ],
)
def test_a_refused_setting_fails_the_cell_in_one_line_and_keeps_the_old_value(
    ip: InteractiveShell,
    secret_key: str,
    caplog: pytest.LogCaptureFixture,
    setting: str,
    value: str,
) -> None:
    magics = magics_of(ip)
    before = getattr(magics, setting)
    caplog.set_level(logging.DEBUG)
    result, captured = run_cell(ip, f"%config ClaudeMagics.{setting} = {value}")
    assert isinstance(result.error_in_exec, SettingRefused)
    (line,) = shown_lines(captured)
    assert line.startswith("SettingRefused: ")
    assert setting in line and "kept its value" in line
    assert getattr(magics, setting) == before
    shown = line + _everything_shown(ip, caplog)
    assert secret_key not in shown
    # No configurable of the shell keeps the refused value in its config either.
    for configurable in ip.configurables:
        assert secret_key not in repr(configurable.config)
    # The next %config works as before.
    ip.run_line_magic("config", "ClaudeMagics.model = 'claude-haiku-5-5'")
    assert magics.model == "claude-haiku-5-5"


def test_the_key_is_redacted_from_what_is_interpolated_shown_and_sent(
    ip: InteractiveShell, emulator: Emulator, secret_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    ip.user_ns["os"] = os
    ip.user_ns["t_settings"] = {"region": "eu", "token": secret_key}
    cell = "Why does this fail? {{os.environ}} {{t_settings}}"
    with capture_output() as dry:
        ip.run_cell_magic("claude", "--dry-run", cell)
    dry_text = dry.outputs[0].data["text/plain"]
    assert secret_key not in dry_text
    assert "<ANTHROPIC_API_KEY: redacted>" in dry_text
    (notice,) = shown_lines(dry)
    assert notice.startswith("Note: the API key (ANTHROPIC_API_KEY) was in this request;")
    with capture_output() as captured:
        ip.run_cell_magic("claude", "", cell)
    (request,) = message_requests(emulator)
    sent = repr(request.body)
    assert secret_key not in sent
    assert sent.count("<ANTHROPIC_API_KEY: redacted>") == 2
    assert '"region": "eu"' in sent  # the rest of the value is sent as it was
    assert shown_lines(captured)[0] == notice
    # The conversation keeps what was sent, so the history and the next request have no key.
    with capture_output() as history:
        ip.run_line_magic("claude_history", "")
    with capture_output():
        ip.run_cell_magic("claude", "--count", "and now?")
    shown = repr(history.outputs[0].data) + "".join(r.getMessage() for r in caplog.records)
    assert secret_key not in shown
    assert all(secret_key not in repr(r.body) for r in emulator.requests)


# -- flags as a shell reads them -------------------------------------------------------------------


def test_flags_are_split_the_way_a_shell_splits_them(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.add_reply("one two END three")
    with capture_output():
        ip.run_cell_magic(
            "claude",
            '--once -s "You are a pandas expert" --stop "END" -m "claude-haiku-5-5"',
            "hi",
        )
    body = message_requests(emulator)[-1].body
    assert body["system"][0]["text"] == "You are a pandas expert"
    assert body["stop_sequences"] == ["END"]
    assert body["model"] == "claude-haiku-5-5"
    result = magics_of(ip).last_result
    assert result is not None
    assert result.stop_reason == "stop_sequence"
    assert result.text == "one two "
    # Paths with spaces, quoted either way or escaped.
    folder = tmp_path / "my notes"
    folder.mkdir()
    notes = folder / "q3 notes.txt"
    notes.write_text("Revenue up 4%.", encoding="utf-8")
    for path in (f'"{notes}"', f"'{notes}'", str(notes).replace(" ", "\\ ")):
        with capture_output():
            ip.run_cell_magic("claude", f"--once --file {path}", "What do the notes say?")
        blocks = message_requests(emulator)[-1].body["messages"][-1]["content"]
        assert blocks[0]["source"]["data"] == "Revenue up 4%."
    with capture_output():
        ip.run_line_magic("claude_history", '--chat "side chat"')


@pytest.mark.parametrize("line", ['-s "You are a pandas expert', "--stop 'END", "--file notes\\"])
def test_an_unbalanced_quote_is_one_usage_error_and_nothing_is_sent(
    ip: InteractiveShell, emulator: Emulator, line: str
) -> None:
    result, captured = run_cell(ip, f"%%claude {line}\nhi")
    assert isinstance(result.error_in_exec, UsageError)
    (shown,) = shown_lines(captured)
    assert shown.startswith("UsageError: %%claude: no ")
    assert not message_requests(emulator)


# -- text JSON cannot carry ------------------------------------------------------------------------

#: A Latin-1 name read as UTF-8 with errors="surrogateescape": a lone surrogate inside.
SURROGATE = b"caf\xe9 cr\xe8me".decode("utf-8", "surrogateescape")
REPAIRED = "caf\ufffd cr\ufffdme"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_lone_surrogates_in_a_value_or_dataframe_cell_are_repaired_end_to_end(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    import pandas as pd

    ip.user_ns["t_name"] = SURROGATE
    # An object column: pandas' Arrow-backed strings (pandas 3 with pyarrow) refuse a lone
    # surrogate, so only such a column can hold one.
    dishes = pd.Series([SURROGATE, "tea"], dtype=object)
    ip.user_ns["t_frame"] = pd.DataFrame({"dish": dishes, "price": [4.5, 2.0]})
    magics_of(ip).system = f"You know {SURROGATE}."
    cell = "About {{t_name}} and {{t_frame}}"
    with capture_output() as dry:
        ip.run_cell_magic("claude", "--dry-run --df t_frame", cell)
    dry_text = dry.outputs[0].data["text/plain"]
    assert _encodable(dry_text)
    assert REPAIRED in dry_text
    with capture_output():
        ip.run_cell_magic("claude", "--count --df t_frame", cell)
        ip.run_cell_magic("claude", "--df t_frame", cell)
        ip.run_line_magic("claude_tokens", "t_frame")
        ip.run_line_magic("claude_history", "")
    (request,) = message_requests(emulator)
    assert request.status == 200
    texts = [b.get("text", "") for b in request.body["messages"][-1]["content"]]
    assert all(REPAIRED in text for text in texts)  # the --df block and the prompt
    assert request.body["system"][0]["text"] == f"You know {REPAIRED}."
    # What the conversation keeps (and %claude_history shows) is what was sent.
    kept = magics_of(ip).chats.get().turns[-1].user_text
    assert REPAIRED in kept
    assert _encodable(kept)


# -- attachments and sizes -------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_devices_fifos_and_folders_as_attachments_are_one_line_at_once(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    cases = [f"--file {fifo}", f"--pdf {tmp_path}", f"--image {tmp_path}"]
    if os.path.exists("/dev/zero"):
        cases += ["--file /dev/zero", "--image /dev/zero", "--pdf /dev/zero"]
    for flags in cases:
        started = time.monotonic()
        result, captured = run_cell(ip, f"%%claude --once {flags}\nx")
        assert time.monotonic() - started < 5  # not waiting on the fifo, not reading /dev/zero
        assert isinstance(result.error_in_exec, UsageError), flags
        (line,) = shown_lines(captured)
        assert re.search(r"is a (FIFO|device or socket|directory)", line), line
    assert not message_requests(emulator)


def _big_png(size: int) -> bytes:
    """Bytes that pass for a PNG (signature and header) of ``size`` bytes."""
    head = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    return head + b"\0" * (size - len(head))


@pytest.mark.parametrize("budget", [None, 5.0])
def test_a_request_over_32_mb_is_refused_for_its_size_not_the_context_window(
    ip: InteractiveShell, emulator: Emulator, budget: float | None
) -> None:
    magics_of(ip).budget_usd = budget
    # Everything inline: with uploads on, these go by reference (test_documents.py).
    magics_of(ip).upload_above_kb = None
    ip.user_ns["t_photo"] = _big_png(3_700_000)  # just under the API's 5 MB once encoded
    flags = " ".join(["--image t_photo"] * 9)  # 9 x 4.9 MB of base64: over 32 MB
    result, captured = run_cell(ip, f"%%claude --once {flags}\nWhat is in these?")
    assert isinstance(result.error_in_exec, RequestBodyError)
    (line,) = shown_lines(captured)
    assert re.search(r"the request is 4\d\.\d MB, over the 32 MB", line), line
    assert "context window" not in line
    assert [r.path for r in emulator.requests if r.path.startswith("/v1/messages")] == []


def test_two_large_pdfs_over_32_mb_are_refused_for_their_size(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    magics_of(ip).upload_above_kb = None  # everything inline (else: uploaded, by reference)
    paths = []
    for n in (1, 2):
        pdf = tmp_path / f"scan {n}.pdf"
        pdf.write_bytes(b"%PDF-1.4\n" + b"\0" * 13_000_000 + b"\n%%EOF\n")
        paths.append(f'--pdf "{pdf}"')
    result, captured = run_cell(ip, f"%%claude --once {' '.join(paths)}\nSummarise")
    assert isinstance(result.error_in_exec, RequestBodyError)
    (line,) = shown_lines(captured)
    assert "over the 32 MB" in line and "context window" not in line
    assert not message_requests(emulator)
