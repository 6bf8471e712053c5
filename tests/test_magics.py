"""%%claude and the %claude_* magics in a real IPython shell, against the emulator over sockets."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from shell_support import magics_of
from transport_support import WatchingTransport

from claude_magics import Client
from claude_magics.config import DEFAULTS
from claude_magics.cost.pricing import model_price
from claude_magics.emulator import Emulator
from claude_magics.errors import (
    APIStreamError,
    AuthenticationError,
    MissingAPIKeyError,
    NotFoundError,
    StorageError,
)
from claude_magics.notebook import views as render
from claude_magics.notebook.cell import ClaudeInterrupted
from claude_magics.notebook.result import ClaudeResult
from claude_magics.pytest_plugin import TEST_API_KEY

#: The model a cell uses when -m is not given.
DEFAULT_MODEL = DEFAULTS.model


@pytest.fixture(autouse=True)
def _fast_renders(ip: InteractiveShell) -> None:
    magics_of(ip).updates_per_second = 15.0


def run(ip: InteractiveShell, line: str, cell: str) -> Any:
    with capture_output() as captured:
        ip.run_cell_magic("claude", line, cell)
    return captured


def final_outputs(captured: Any) -> list[dict[str, Any]]:
    """The outputs a saved notebook keeps: display updates folded into their slots."""
    return [o.data for o in captured.outputs if not getattr(o, "update", False)]


def user_prompts(emulator: Emulator) -> list[list[str]]:
    """The user texts of every /v1/messages request, per request."""
    out = []
    for request in emulator.requests:
        if request.path == "/v1/messages":
            texts = []
            for message in request.body["messages"]:
                if message["role"] != "user":
                    continue
                content = message["content"]
                if isinstance(content, str):
                    texts.append(content)
                else:
                    texts.append(
                        "".join(b.get("text", "") for b in content if b.get("type") == "text")
                    )
            out.append(texts)
    return out


def test_answer_is_displayed_as_static_markdown_with_metadata(ip: InteractiveShell) -> None:
    captured = run(ip, "", "Say hello [[reply_tokens=20]]")
    outputs = final_outputs(captured)
    # A placeholder that ends empty, then the static answer.
    assert outputs[0] == {"text/plain": ""}
    answer = outputs[1]
    assert answer["text/plain"]
    assert answer["text/markdown"].startswith(answer["text/plain"])
    assert DEFAULT_MODEL in answer["text/markdown"]
    meta = next(o.metadata for o in captured.outputs if "text/markdown" in o.data and not o.update)
    assert meta["claude_magics"]["usage"]["output_tokens"] == 20
    assert meta["claude_magics"]["cost_usd"] > 0
    # Nothing returned: the magic displays and returns None.
    assert ip.run_cell_magic("claude", "--once", "x") is None


def test_markdown_view_updates_in_place_while_streaming(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    emulator.configure(tokens_per_second=150)
    started = time.monotonic()
    captured = run(ip, "", "Stream [[reply_tokens=150]]")
    elapsed = time.monotonic() - started
    updates = [o.data.get("text/markdown", "") for o in captured.outputs if o.update]
    live = [u for u in updates if u]
    assert len(set(live)) >= 3, "the text should grow visibly while streaming"
    assert all(a.split("\n\n<sub>")[0] in b for a, b in itertools.pairwise(live))
    # At most 15 updates a second (plus the first and the final clearing update).
    assert len(updates) <= 15 * elapsed + 2
    assert "≈" in updates[-2]  # the live token count is marked as an estimate
    assert updates[-1] == ""


def test_widget_view_renders_throttled(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    magics_of(ip).display = "widget"
    emulator.configure(tokens_per_second=200)
    seen: list[str] = []
    original = render.WidgetView.render

    def spy(self: render.WidgetView, acc: Any) -> None:
        original(self, acc)
        blocks = self._answer_blocks  # what the front end shows (test_long_answers checks)
        seen.append("".join(blocks.finished) + blocks.live + self._sources[1])

    monkeypatch.setattr(render.WidgetView, "render", spy)
    started = time.monotonic()
    captured = run(ip, "", "Widget [[reply_tokens=200]]")
    elapsed = time.monotonic() - started
    first = captured.outputs[0]
    assert "application/vnd.jupyter.widget-view+json" in first.data
    assert first.data["text/plain"] == ""  # constant plain repr: nbval compares only this
    assert len(set(seen)) >= 3
    assert len(seen) <= 15 * elapsed + 1  # at most 15 renders a second
    assert all("<p>" in html or not html for html in seen)
    outputs = final_outputs(captured)
    assert outputs[-1]["text/plain"]
    updates = [o.data for o in captured.outputs if o.update]
    assert updates[-1] == {"text/plain": ""}  # the widget slot is emptied: no widget state saved


def test_plain_view_prints_as_it_arrives(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    magics_of(ip).display = "plain"
    ip.run_cell_magic("claude", "", "Plain [[reply_tokens=15]]")
    out = capsys.readouterr().out
    assert DEFAULT_MODEL in out
    assert "15 out" in out
    result = magics_of(ip).last_result
    assert result is not None
    assert out.startswith(result.text)
    assert out.count(result.text) == 1  # printed once, never re-rendered


def test_conversation_and_rerun_replaces_turn(ip: InteractiveShell, emulator: Emulator) -> None:
    magics = magics_of(ip)
    magics._cell_id = "cell-a"
    run(ip, "", "first question")
    magics._cell_id = "cell-b"
    run(ip, "", "second question")
    prompts = user_prompts(emulator)
    assert prompts[-1] == ["first question", "second question"]
    # Re-run cell a with new text: its turn is replaced, and it sees no later turns.
    magics._cell_id = "cell-a"
    run(ip, "", "first question, edited")
    assert user_prompts(emulator)[-1] == ["first question, edited"]
    turns = magics.chats.get().turns
    assert [t.user_text for t in turns] == ["first question, edited", "second question"]
    # A third cell sees both, in cell order.
    magics._cell_id = "cell-c"
    run(ip, "", "third")
    assert user_prompts(emulator)[-1] == ["first question, edited", "second question", "third"]


def test_chat_new_once(ip: InteractiveShell, emulator: Emulator) -> None:
    magics = magics_of(ip)
    magics._cell_id = None
    run(ip, "", "main one")
    run(ip, "--chat side", "side one")
    run(ip, "--chat side", "side two")
    assert user_prompts(emulator)[-1] == ["side one", "side two"]
    run(ip, "", "main two")
    assert user_prompts(emulator)[-1] == ["main one", "main two"]
    run(ip, "--once", "lonely")
    assert user_prompts(emulator)[-1] == ["lonely"]
    assert len(magics.chats.get().turns) == 2
    run(ip, "--new", "fresh start")
    assert user_prompts(emulator)[-1] == ["fresh start"]
    with capture_output() as cap:
        ip.run_line_magic("claude_history", "--chat side")
    assert "side two" in cap.outputs[0].data["text/plain"]
    with capture_output():
        ip.run_line_magic("claude_reset", "--all")
    assert magics.chats.names() == []


def test_line_magic_uses_defaults(ip: InteractiveShell, emulator: Emulator) -> None:
    with capture_output():
        ip.run_line_magic("claude", "What is 2+2? [[reply_tokens=4]]")
    assert user_prompts(emulator)[-1][-1] == "What is 2+2? [[reply_tokens=4]]"
    with pytest.raises(UsageError):
        ip.run_line_magic("claude", "  ")


def test_the_magic_line_is_taken_as_typed(ip: InteractiveShell, emulator: Emulator) -> None:
    # IPython expands $name and {expr} in a magic's line unless the magic says not to: a
    # dollar amount lost its "$" and a placeholder took a variable's value, silently.
    ip.user_ns["t_lang"] = "French"
    system = "Prices like $5 stay; reply as {t_lang} says, or $t_lang"
    with capture_output():
        result = ip.run_cell(f'%%claude --once -s "{system}"\nHi [[reply_tokens=3]]')
        assert result.success, result.error_in_exec
        line = ip.run_cell("%claude What is $5 in {t_lang}? [[reply_tokens=3]]")
        assert line.success, line.error_in_exec
    requests = [r.body for r in emulator.requests if r.path == "/v1/messages"]
    assert requests[0]["system"][0]["text"] == system
    assert user_prompts(emulator)[-1][-1] == "What is $5 in {t_lang}? [[reply_tokens=3]]"


def test_interpolation_and_code_with_braces(ip: InteractiveShell, emulator: Emulator) -> None:
    ip.user_ns["t_name"] = "Ada"
    ip.user_ns["t_cfg"] = {"k": [1, 2]}
    cell = (
        "Hi {{t_name}}! cfg={{ t_cfg }}\n"
        'd = {k: v for k, v in x.items()}\nf"{y}" $HOME \\frac{a}{b}'
    )
    run(ip, "--once", cell)
    sent = user_prompts(emulator)[-1][-1]
    assert sent.startswith("Hi Ada! cfg=")
    assert json.loads(sent.split("cfg=")[1].split("\n")[0]) == {"k": [1, 2]}
    assert 'd = {k: v for k, v in x.items()}\nf"{y}" $HOME \\frac{a}{b}' in sent
    run(ip, "--once --no-interpolate", "keep {{t_name}}")
    assert user_prompts(emulator)[-1][-1] == "keep {{t_name}}"


def test_unknown_variable_is_one_line_usage_error(ip: InteractiveShell, emulator: Emulator) -> None:
    ip.user_ns["t_frame"] = 1
    with pytest.raises(UsageError, match="t_fram"):
        ip.run_cell_magic("claude", "", "look at {{t_fram}}")
    assert not [r for r in emulator.requests if r.path == "/v1/messages"]


def test_bad_flags_are_usage_errors(ip: InteractiveShell) -> None:
    for line in [
        "--bogus",
        "--thinking 10",
        "--effort extreme",
        "-f yaml",
        "--max-tokens 0",
        "--once --new",
    ]:
        with pytest.raises(UsageError):
            ip.run_cell_magic("claude", line, "x")


def test_out_result_object(ip: InteractiveShell) -> None:
    run(ip, "--out t_answer", "Answer me [[reply_tokens=12]]")
    result = ip.user_ns["t_answer"]
    assert isinstance(result, ClaudeResult)
    assert result.usage["output_tokens"] == 12
    assert result.message["type"] == "message"
    assert result.request_id.startswith("req_")
    assert result.cost is not None
    assert result.cost.total > 0
    assert result._repr_markdown_() == result.text
    assert "ClaudeResult" in repr(result)


def test_code_format_sets_next_input(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.add_reply("Here you go:\n\n```python\ndef f(x):\n    return x * 2\n```\n\nEnjoy.")
    calls: list[str] = []
    monkeypatch.setattr(ip, "set_next_input", lambda text, replace=False: calls.append(text))
    captured = run(ip, "-f code --once", "write f")
    assert calls == ["def f(x):\n    return x * 2"]
    assert "```python\ndef f(x):" in final_outputs(captured)[-1]["text/markdown"]


def test_schema_and_json_out(ip: InteractiveShell) -> None:
    ip.user_ns["t_schema"] = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["good", "bad"]},
            "score": {"type": "integer"},
        },
        "required": ["label", "score"],
    }
    run(ip, "--schema t_schema --out t_parsed --once", "Rate: it was good")
    parsed = ip.user_ns["t_parsed"]
    assert parsed["label"] in {"good", "bad"}
    assert isinstance(parsed["score"], int)


def test_dry_run_sends_nothing_and_masks_key(ip: InteractiveShell, emulator: Emulator) -> None:
    captured = run(ip, "--dry-run -m claude-haiku-4-5 --stop END -t 0.2", "hello there")
    text = captured.outputs[0].data["text/plain"]
    assert "POST " in text
    assert '"model": "claude-haiku-4-5"' in text
    assert '"temperature": 0.2' in text
    assert os.environ["ANTHROPIC_API_KEY"] == TEST_API_KEY  # the key the client would send
    assert TEST_API_KEY not in text
    assert "ANTHROPIC_API_KEY" in text
    assert not [r for r in emulator.requests if r.path == "/v1/messages"]


def test_temperature_sent_only_when_given(ip: InteractiveShell, emulator: Emulator) -> None:
    # Haiku 4.5 takes a temperature (the default model takes none: tests/test_magics_models.py).
    run(ip, "--once -m claude-haiku-4-5", "x")
    assert "temperature" not in emulator.requests[-1].body
    run(ip, "--once -m claude-haiku-4-5 -t 0.5", "x")
    assert emulator.requests[-1].body["temperature"] == 0.5
    assert emulator.requests[-1].status == 200


def test_thinking_and_stop_and_max_tokens(ip: InteractiveShell, emulator: Emulator) -> None:
    # A thinking budget, on a model that takes one and returns the thinking text.
    captured = run(ip, "--once -m claude-haiku-4-5 --thinking 2000", "think [[reply_tokens=10]]")
    body = emulator.requests[-1].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body["max_tokens"] > 2000
    assert "<details><summary>Thinking</summary>" in final_outputs(captured)[-1]["text/markdown"]
    captured = run(ip, "--once --max-tokens 5", "long [[reply_tokens=50]]")
    assert "cut off at max_tokens" in final_outputs(captured)[-1]["text/markdown"]


def test_interrupt_stops_the_stream_and_keeps_partial_answer(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    prompt = "long one [[reply_tokens=500]]"
    with Client(base_url=emulator.url, api_key=TEST_API_KEY) as client:
        full = client.messages.create(
            model=DEFAULT_MODEL,
            max_tokens=4096,
            messages=[{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        )["content"][0]["text"]
    transport = WatchingTransport()
    magics_of(ip)._client = Client(base_url=emulator.url, transport=transport)
    emulator.configure(tokens_per_second=20)  # the whole answer would take 25 s
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with capture_output() as captured, pytest.raises(ClaudeInterrupted):
        ip.run_cell_magic("claude", "", prompt)
    elapsed = time.monotonic() - started
    timer.cancel()
    outputs = final_outputs(captured)
    answer = outputs[-1]
    assert answer["text/plain"]
    assert "interrupted" in answer["text/markdown"]
    result = magics_of(ip).last_result
    assert result is not None
    assert result.interrupted
    # The stream stopped: the connection was closed before the reply's end, the cell returned
    # long before the answer would have ended, with a strict beginning of it and no stop
    # reason (the API's closing events never came).
    (stream,) = transport.streams
    assert stream.closed
    assert not stream.read_to_end
    assert elapsed < 8
    assert result.text
    assert full.startswith(result.text)
    assert len(result.text) < len(full) / 2
    assert result.stop_reason is None
    # The partial answer is kept in the conversation.
    turn = magics_of(ip).chats.get().turns[-1]
    assert turn.interrupted
    assert turn.assistant_text == result.text


def test_answer_is_shown_and_kept_before_the_ledger_is_written(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    magics = magics_of(ip)
    magics._cell_id = "cell-ledger"
    ledger = magics.ledger
    seen_when_recording: list[tuple[bool, bool]] = []

    def unwritable(**kwargs: Any) -> None:
        # What has happened by the time the ledger is written: the answer kept, the turn too.
        turns = magics.chats.get().turns
        seen_when_recording.append(("t_kept" in ip.user_ns, bool(turns)))
        raise StorageError("ledger.sqlite could not be written (database is locked): wait.")

    monkeypatch.setattr(ledger, "record_usage", unwritable)
    with capture_output() as captured:  # the cell succeeds (tests/test_magics_hostile.py)
        ip.run_cell_magic("claude", "--out t_kept", "Answer me [[reply_tokens=12]]")
    assert seen_when_recording == [(True, True)]
    assert "its spend was not recorded" in captured.stderr
    shown = final_outputs(captured)[-1]
    kept = ip.user_ns["t_kept"]
    assert isinstance(kept, ClaudeResult)
    assert shown["text/plain"] == kept.text != ""
    assert magics.chats.get().turns[-1].assistant_text == kept.text
    assert magics.last_result is kept


def test_broken_stream_shows_and_records_the_partial_answer_then_fails(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    emulator.add_fault(kind="drop", after_events=8)
    magics = magics_of(ip)
    with capture_output() as captured, pytest.raises(APIStreamError):
        ip.run_cell_magic("claude", "--out t_broken", "x [[reply_tokens=50]]")
    shown = final_outputs(captured)[-1]
    assert shown["text/plain"]  # what arrived before the break
    assert "⚠" in shown["text/markdown"]
    (call,) = magics.ledger.calls(session=magics.ledger.session)  # it was paid for
    assert call.input_tokens > 0
    # A broken answer is not kept as if it were whole.
    assert "t_broken" not in ip.user_ns
    assert magics.chats.get().turns == []


def test_api_errors_are_short_and_fail_the_cell(ip: InteractiveShell) -> None:
    with pytest.raises(NotFoundError) as info:
        run(ip, "-m claude-sonet-4-6", "x")
    rendered = "\n".join(info.value._render_traceback_())
    assert "404" in rendered
    assert "Did you mean claude-sonnet-4-6?" in rendered  # the closest id the server lists
    assert DEFAULT_MODEL in rendered  # and the current line-up
    assert len(rendered.splitlines()) <= 6
    result = ip.run_cell("%%claude -m nope-model\nhello")
    assert result.error_in_exec is not None


def test_missing_key_message(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(MissingAPIKeyError) as info:
        run(ip, "--once", "x")
    text = "\n".join(info.value._render_traceback_())
    assert "%env" not in text
    assert "emulator" in text


def test_wrong_key_never_shown(ip: InteractiveShell, emulator: Emulator) -> None:
    emulator.configure(api_keys=frozenset({"only-this"}))
    with capture_output() as captured, pytest.raises(AuthenticationError) as info:
        ip.run_cell_magic("claude", "--once", "x")
    shown = (
        captured.stdout
        + captured.stderr
        + str(info.value)
        + "\n".join(info.value._render_traceback_())
    )
    assert TEST_API_KEY not in shown  # the key that was sent, and refused


def _key_status(ip: InteractiveShell) -> tuple[str, str]:
    """What %claude_config says of the key (its whole plain text, and the status word)."""
    with capture_output() as captured:
        ip.run_line_magic("claude_config", "")
    text = captured.outputs[0].data["text/plain"]
    row = re.search(r"^API key\s+(\S+)\s+\(environment variable ANTHROPIC_API_KEY\)$", text, re.M)
    assert row is not None, text
    return text, row.group(1)


def test_claude_config_shows_key_status_only(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    ip.run_line_magic("config", "ClaudeMagics.model = 'claude-haiku-4-5'")
    text, status = _key_status(ip)
    assert re.search(r"^model\s+'claude-haiku-4-5'\s+\(%config / ipython_config\)$", text, re.M)
    assert re.search(r"^max_tokens\s+4096\s+\(default\)$", text, re.M)
    assert re.search(r"^job_model\s+'claude-haiku-5-5'\s+\(default\)$", text, re.M)
    assert re.search(r"^api_version\s+'2023-06-01'\s+\(default\)$", text, re.M)
    assert re.search(r"^show_thinking\s+False\s+\(default\)$", text, re.M)
    ip.run_line_magic("config", "ClaudeMagics.api_version = '2026-10-21'")
    text, _ = _key_status(ip)
    assert re.search(r"^api_version\s+'2026-10-21'\s+\(%config / ipython_config\)$", text, re.M)
    assert status == "set"
    assert TEST_API_KEY not in text
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert _key_status(ip)[1] == "unset"
    with pytest.raises(Exception, match="environment variable"):
        magics_of(ip).api_key_env = "sk-ant-oops-a-real-key"


def test_config_trait_overridden_by_flag(ip: InteractiveShell, emulator: Emulator) -> None:
    ip.run_line_magic("config", "ClaudeMagics.model = 'claude-haiku-4-5'")
    ip.run_line_magic("config", "ClaudeMagics.max_tokens = 77")
    run(ip, "--once", "x")
    assert emulator.requests[-1].body["model"] == "claude-haiku-4-5"
    assert emulator.requests[-1].body["max_tokens"] == 77
    run(ip, "--once -m claude-opus-4-6 --max-tokens 99", "x")
    assert emulator.requests[-1].body["model"] == "claude-opus-4-6"
    assert emulator.requests[-1].body["max_tokens"] == 99


def test_models_magic_shows_the_line_up_and_marks_yours(ip: InteractiveShell) -> None:
    # Moved to tests/test_magics_models.py (with --all, statuses and prices); here only that
    # the default model is shown, priced from the table.
    with capture_output() as captured:
        ip.run_line_magic("claude_models", "")
    text = captured.outputs[0].data["text/plain"]
    row = next(r for r in text.splitlines() if r.startswith(DEFAULT_MODEL))
    assert "(model)" in row
    price = model_price(DEFAULT_MODEL)
    assert price is not None
    assert f"${price.input:g} / ${price.output:g}" in row


def test_help_has_examples(ip: InteractiveShell) -> None:
    # What a user sees: IPython's own help for the cell magic, not the docstring read directly.
    with capture_output() as captured:
        result = ip.run_cell("%%claude?")
    assert result.success
    shown = re.sub(r"\x1b\[[0-9;]*m", "", captured.stdout)  # IPython colours the headings
    assert "Ask Claude. The cell is the prompt" in shown
    assert "%%claude --max-tokens 300" in shown
    assert re.search(r"-m MODEL, --model MODEL\s+Model for this cell", shown)
    assert "%%claude --schema Review --out parsed" in shown
    assert "%%claude --thinking --show-thinking" in shown
    assert "--show-thinking" in shown
    assert "api_version" in shown  # which flags each model and API version refuses
    # magic_arguments adds every flag with its help.
    assert re.search(r"--out NAME\s+Store the result in this variable\.", shown)
    assert re.search(r"--count\s+Count the request's tokens and cost; send nothing\.", shown)
    assert re.search(r"--thinking <\[adaptive\|BUDGET\]>\s+Extended thinking: 'adaptive'", shown)
    assert re.search(r"--show-thinking\s+Ask for the thinking text", shown)
    # The tool flags, and how the loop ends.
    assert "%%claude --inspect" in shown and "%%claude --python" in shown
    assert re.search(r"--tools <F,G>\s+Let Claude call these notebook functions\.", shown)
    assert "[y/N]" in shown and "%claude_fix" in shown


def test_auto_cache_marks_long_conversation(ip: InteractiveShell, emulator: Emulator) -> None:
    long_system = "You are careful. " * 800
    run(ip, f'-s "{long_system.strip()}"', "q1 [[reply_tokens=5]]")
    body = emulator.requests[-1].body
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    run(ip, f'-s "{long_system.strip()}"', "q2 [[reply_tokens=5]]")
    meta = magics_of(ip).last_result
    assert meta is not None
    assert meta.usage["cache_read_input_tokens"] > 0
    run(ip, f'--no-cache --once -s "{long_system.strip()}"', "q3")
    assert "cache_control" not in json.dumps(emulator.requests[-1].body)


def _last_user_blocks(emulator: Emulator) -> list[dict[str, Any]]:
    request = [r for r in emulator.requests if r.path == "/v1/messages"][-1]
    content = request.body["messages"][-1]["content"]
    assert isinstance(content, list)
    return content


def test_attachments_become_content_blocks(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Any
) -> None:
    import base64

    import pandas as pd

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    ip.user_ns["t_png"] = png
    notes = tmp_path / "notes.txt"
    notes.write_text("Quarterly notes: revenue up 4%.", encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\ntrailer\n%%EOF\n")
    ip.user_ns["t_sales"] = pd.DataFrame({"region": ["n", "s"], "units": [3, None]})
    run(ip, f"--once --image t_png --file {notes} --pdf {pdf} --df t_sales", "What do these show?")
    blocks = _last_user_blocks(emulator)
    kinds = [b["type"] for b in blocks]
    assert kinds.count("image") == 1
    assert kinds.count("document") == 2
    assert kinds[-1] == "text"
    image = next(b for b in blocks if b["type"] == "image")
    assert image["source"]["media_type"] == "image/png"
    assert base64.b64decode(image["source"]["data"]) == png
    docs = [b for b in blocks if b["type"] == "document"]
    assert {d["source"]["media_type"] for d in docs} == {"text/plain", "application/pdf"}
    frame_text = "".join(b.get("text", "") for b in blocks if b["type"] == "text")
    assert "t_sales" in frame_text
    assert "units" in frame_text
    assert "What do these show?" in frame_text


def test_missing_attachment_is_usage_error_and_nothing_sent(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    for line in [
        "--image /no/such.png",
        "--pdf /no/such.pdf",
        "--file /no/such.txt",
        "--df t_nothing",
    ]:
        with pytest.raises(UsageError):
            ip.run_cell_magic("claude", f"--once {line}", "x")
    assert not [r for r in emulator.requests if r.path == "/v1/messages"]


def test_last_error_goes_into_the_prompt(ip: InteractiveShell, emulator: Emulator) -> None:
    ip.run_cell("def t_broken():\n    return 1 / 0\nt_broken()")
    run(ip, "--once", "Why did this fail?\n{{_error}}")
    sent = user_prompts(emulator)[-1][-1]
    assert "ZeroDivisionError" in sent
    assert "t_broken" in sent
    assert "\x1b[" not in sent  # no terminal colour codes


def test_conversation_over_the_context_window_is_refused(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Any
) -> None:
    big = tmp_path / "big.txt"
    # ~1.2 M characters: more than claude-haiku-4-5's 200,000-token window.
    big.write_text("lorem ipsum dolor sit amet " * 45_000, encoding="utf-8")
    with pytest.raises(UsageError, match="--new"):
        ip.run_cell_magic("claude", f"-m claude-haiku-4-5 --file {big}", "summarise")
    assert not [r for r in emulator.requests if r.path == "/v1/messages"]


def test_dataframe_rows_head_tail_or_seeded_sample(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    import pandas as pd

    ip.user_ns["t_big"] = pd.DataFrame({"n": range(5000), "word": ["alpha"] * 5000})
    magics = magics_of(ip)
    magics.df_token_budget = 300
    run(ip, "--once", "Look: {{t_big}}")
    head_tail = user_prompts(emulator)[-1][-1]
    assert "5000" in head_tail.replace(",", "")  # the shape is stated
    assert "omitted" in head_tail
    assert "4999,alpha" in head_tail  # the tail is there
    magics.df_sample = True
    run(ip, "--once", "Look: {{t_big}}")
    sampled = user_prompts(emulator)[-1][-1]
    assert "sample" in sampled
    assert sampled != head_tail
    run(ip, "--once", "Look: {{t_big}}")
    assert user_prompts(emulator)[-1][-1] == sampled  # seeded: the same sample every time


def test_load_ext_imports_nothing_of_the_sending_path() -> None:
    # The cell flow's heavy parts (HTTP, live views, Markdown, DataFrames) load on first use.
    probe = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'claude_magics')\n"
        "assert ip.find_cell_magic('claude') is not None\n"
        "heavy = ['httpx', 'pandas', 'ipywidgets', 'markdown_it', 'claude_magics.api.client',\n"
        "         'claude_magics.notebook.views', 'claude_magics.notebook.checks']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert done.stdout.split() == []
