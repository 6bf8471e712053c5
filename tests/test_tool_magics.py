"""Tool loops in ``%%claude`` (``--tools``, ``--inspect``, ``--python``, ``--max-steps``) and
``%claude_fix``, in a real IPython shell against the emulator over sockets: what the functions
received, what went back to the model (the emulator's request log), what the cell shows, and
that the conversation stays valid for the next cell."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_support import final, ok, run_cell

from claude_magics.emulator import Emulator
from claude_magics.pytest_plugin import TEST_API_KEY


def messages_requests(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.path == "/v1/messages"]


def tool_results(request: Any) -> list[dict[str, Any]]:
    """The tool_result blocks of a request's last user turn."""
    last = request.body["messages"][-1]
    assert last["role"] == "user"
    return [b for b in last["content"] if b.get("type") == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    content = block["content"]
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if b.get("type") == "text")


def glossary(calls: list[str]) -> Callable[[str], str]:
    """A function tool that looks a word up, noting each call in ``calls``."""

    def t_lookup(word: str) -> str:
        """Look up a word in the glossary."""
        calls.append(word)
        return f"{word}: a measure of spread"

    return t_lookup


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Callable[[str | BaseException], list[str]]:
    """Make IPython's input() answer ``reply`` (or raise it); returns the prompts it got."""

    def set_reply(reply: str | BaseException) -> list[str]:
        asked: list[str] = []

        def fake_input(prompt: str = "") -> str:
            asked.append(prompt)
            if isinstance(reply, BaseException):
                raise reply
            return reply

        monkeypatch.setattr(builtins, "input", fake_input)
        return asked

    return set_reply


def test_a_function_tool_is_called_with_validated_input_and_its_result_sent_back(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    calls: list[tuple[Any, Any]] = []

    def t_price(item: str, size: Literal["small", "large"] = "small") -> dict[str, Any]:
        """Look up the price of an item in the shop.

        Args:
            item: The item's name.
            size: Which size.
        """
        calls.append((item, size))
        return {"item": item, "usd": 4.25}

    ip.user_ns["t_price"] = t_price
    captured = ok(ip, "%%claude --tools t_price --out t_r\nWhat does a pencil cost? Use t_price.")
    assert len(calls) == 1
    item, size = calls[0]
    assert isinstance(item, str) and size in ("small", "large")
    first, second = messages_requests(emulator)
    (offered,) = first.body["tools"]
    assert offered["name"] == "t_price"
    assert offered["input_schema"]["properties"]["size"]["enum"] == ["small", "large"]
    assert "The item's name." in json.dumps(offered["input_schema"])
    (block,) = tool_results(second)
    assert "4.25" in result_text(block) and not block.get("is_error")
    # The model's final answer quotes the result: it reached the model.
    result = ip.user_ns["t_r"]
    assert "4.25" in result.text
    assert [s.tool for s in result.steps] == ["t_price"]
    assert result.loop_calls == 2
    shown = final(captured)
    assert "t_price(" in shown["text/markdown"] and "Tools" in shown["text/plain"]
    assert captured.outputs[-1].metadata["claude_magics"]["tool_steps"][0]["tool"] == "t_price"


def test_a_tool_that_raises_goes_back_as_an_error_and_the_cell_still_answers(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    def t_fail(city: str) -> str:
        """Get the weather in a city."""
        raise ValueError(f"no station in {city}")

    ip.user_ns["t_fail"] = t_fail
    ok(ip, "%%claude --tools t_fail --out t_r\nWhat is the weather in Oslo? Use t_fail.")
    (block,) = tool_results(messages_requests(emulator)[-1])
    assert block["is_error"] is True
    assert "ValueError: no station in" in result_text(block)
    assert ip.user_ns["t_r"].steps[0].is_error


def test_a_function_that_cannot_be_described_is_one_line(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    ip.user_ns["t_bad"] = lambda *args: args
    result, captured = run_cell(ip, "%%claude --tools t_bad\nHi")
    assert not result.success
    assert "t_bad" in captured.stderr or "lambda" in captured.stderr
    assert "Traceback" not in captured.stdout + captured.stderr
    ip.user_ns["t_num"] = 3
    result, captured = run_cell(ip, "%%claude --tools t_num\nHi")
    assert not result.success and "not a function" in captured.stderr
    assert messages_requests(emulator) == []


def test_inspect_describes_a_dataframe_and_redacts_the_key(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    import pandas as pd

    ip.user_ns["t_df"] = pd.DataFrame(
        {"city": ["Oslo", "Lima", None, "Oslo"], "temp": [3.5, 19.0, 11.2, None]}
    )
    ip.user_ns["t_secret"] = f"my key is {TEST_API_KEY}"
    emulator.add_reply(tool_use={"name": "describe_variable", "input": {"name": "t_df"}})
    emulator.add_reply(tool_use={"name": "describe_variable", "input": {"name": "t_secret"}})
    emulator.add_reply(tool_use={"name": "list_variables", "input": {}})
    ok(ip, "%%claude --inspect --out t_r\nWhat is in my data?")
    requests = messages_requests(emulator)
    assert len(requests) == 4
    names = {t["name"] for t in requests[0].body["tools"]}
    assert {"list_variables", "describe_variable"} <= names
    described = result_text(tool_results(requests[1])[0])
    assert "4" in described and "city" in described and "temp" in described
    assert "float64" in described  # dtypes
    secret = result_text(tool_results(requests[2])[0])
    assert TEST_API_KEY not in secret and "redacted" in secret
    listing = result_text(tool_results(requests[3])[0])
    assert "t_df" in listing and "DataFrame" in listing
    for request in requests:
        assert TEST_API_KEY not in json.dumps(request.body)


RUN = {"name": "run_python", "input": {"code": "t_ran = 41 + 1\nprint('hello from the kernel')"}}


def test_python_runs_a_snippet_only_after_a_yes(
    ip: InteractiveShell, emulator: Emulator, answers: Callable[..., list[str]]
) -> None:
    asked = answers("y")
    emulator.add_reply(tool_use=RUN)
    captured = ok(ip, "%%claude --python --out t_r\nCompute 41 + 1 in the kernel.")
    assert asked and "[y/N]" in asked[0]
    assert ip.user_ns["t_ran"] == 42
    (block,) = tool_results(messages_requests(emulator)[-1])
    assert "hello from the kernel" in result_text(block)
    shown = "".join(str(o.data.get("text/plain", "")) for o in captured.outputs)
    assert "t_ran = 41 + 1" in shown  # the snippet was shown before it ran


@pytest.mark.parametrize("reply", ["n", "", EOFError()], ids=["no", "enter", "no-stdin"])
def test_python_declined_or_unanswerable_runs_nothing_and_puts_a_new_cell(
    ip: InteractiveShell,
    emulator: Emulator,
    answers: Callable[..., list[str]],
    reply: Any,
) -> None:
    answers(reply)
    ip.rl_next_input = None
    emulator.add_reply(tool_use=RUN)
    ok(ip, "%%claude --python --out t_r\nCompute 41 + 1 in the kernel.")
    assert "t_ran" not in ip.user_ns
    assert ip.rl_next_input == RUN["input"]["code"]
    result = ip.user_ns["t_r"]
    assert result.loop_note and "new cell" in result.loop_note
    # The loop ended: one request, and the declined call is answered in the conversation.
    assert len(messages_requests(emulator)) == 1
    ok(ip, "%%claude\nThanks, I will run it myself.")
    follow_up = messages_requests(emulator)[-1]
    assert follow_up.status == 200
    merged = follow_up.body["messages"][-1]
    assert merged["content"][0]["type"] == "tool_result"
    assert follow_up.body["tool_choice"] == {"type": "none"}


def test_python_approval_never_only_inserts_the_cell(
    ip: InteractiveShell, emulator: Emulator, answers: Callable[..., list[str]]
) -> None:
    asked = answers("y")
    ip.run_line_magic("config", "ClaudeMagics.python_approval = 'never'")
    emulator.add_reply(tool_use=RUN)
    ok(ip, "%%claude --python\nCompute 41 + 1 in the kernel.")
    assert asked == [] and "t_ran" not in ip.user_ns
    assert ip.rl_next_input == RUN["input"]["code"]


def test_the_step_limit_and_a_repeated_call_stop_the_loop(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    seen: list[int] = []

    def t_next(n: int) -> int:
        """Return the number after n."""
        seen.append(n)
        return n + 1

    ip.user_ns["t_next"] = t_next
    for n in range(5):
        emulator.add_reply(tool_use={"name": "t_next", "input": {"n": n}})
    ok(ip, "%%claude --tools t_next --max-steps 3 --out t_r\nCount up.")
    assert len(messages_requests(emulator)) == 3
    assert seen == [0, 1]  # the third call's tool is not run: its result could not be sent
    assert "step limit" in ip.user_ns["t_r"].loop_note
    emulator.reset()
    seen.clear()
    emulator.add_reply(tool_use={"name": "t_next", "input": {"n": 7}})
    emulator.add_reply(tool_use={"name": "t_next", "input": {"n": 7}})
    ok(ip, "%%claude --tools t_next --new --out t_r\nCount up again.")
    assert seen == [7]
    assert "repeated" in ip.user_ns["t_r"].loop_note
    assert len(messages_requests(emulator)) == 2


def test_a_follow_up_cell_after_a_tool_turn_is_valid(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    ip.user_ns["t_lookup"] = glossary([])
    ok(ip, "%%claude --tools t_lookup\nWhat is variance? Use t_lookup.")
    ok(ip, "%%claude\nAnd in one word?")
    follow_up = messages_requests(emulator)[-1]
    assert follow_up.status == 200
    roles = [m["role"] for m in follow_up.body["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert [t["name"] for t in follow_up.body["tools"]] == ["t_lookup"]
    assert follow_up.body["tool_choice"] == {"type": "none"}


def test_claude_fix_explains_and_puts_the_corrected_cell_below(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    import pandas as pd

    ip.user_ns["t_sales"] = pd.DataFrame({"region": ["n", "s"], "sales": [1, 2]})
    result, _ = run_cell(ip, "t_total = t_sales['regoin'].sum()")
    assert not result.success
    ip.rl_next_input = None
    emulator.add_reply(
        "The column is spelt `region`, not `regoin`.\n\n```python\n"
        "t_total = t_sales['region'].sum()\n```"
    )
    captured = ok(ip, "%claude_fix")
    (request,) = messages_requests(emulator)
    sent = json.dumps(request.body)
    assert "KeyError" in sent and "regoin" in sent and "t_sales: DataFrame, 2 rows" in sent
    assert len(request.body["messages"]) == 1  # no history
    assert ip.rl_next_input == "t_total = t_sales['region'].sum()"
    assert "t_total" not in ip.user_ns  # never run
    assert "spelt" in final(captured)["text/markdown"]


def test_claude_fix_with_nothing_failed_is_one_line(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    result, captured = run_cell(ip, "%claude_fix")
    assert not result.success and "no cell has failed" in captured.stderr
    assert messages_requests(emulator) == []


def test_tool_flags_and_batch_do_not_mix(ip: InteractiveShell, emulator: Emulator) -> None:
    import pandas as pd

    ip.user_ns["t_rows"] = pd.DataFrame({"text": ["a"]})
    result, captured = run_cell(ip, "%%claude --batch t_rows --inspect\n{{text}}")
    assert not result.success and "without tools" in captured.stderr
    result, captured = run_cell(ip, "%%claude --inspect --max-steps 0\nHi")
    assert not result.success and "--max-steps 0" in captured.stderr


def test_web_answers_show_numbered_sources_and_searches_are_priced(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    captured = ok(
        ip, "%%claude --web --out t_r\nSearch the web for the latest pandas release notes."
    )
    (request,) = messages_requests(emulator)
    assert {t["type"] for t in request.body["tools"]} == {
        "web_search_20250305",
        "web_fetch_20250910",
    }
    result = ip.user_ns["t_r"]
    cited = [
        c
        for b in result.message["content"]
        if b["type"] == "text"
        for c in b.get("citations") or ()
    ]
    assert cited, result.message["content"]
    shown = final(captured)
    markdown = shown["text/markdown"]
    assert "**Sources**" in markdown and "<sup>[1]</sup>" in markdown
    assert f"1. [{cited[0]['title']}]({cited[0]['url']})" in markdown
    assert "Searched the web" in markdown
    assert "[1]" in shown["text/plain"] and cited[0]["url"] in shown["text/plain"]
    assert [s.tool for s in result.steps] == ["web_search"] and result.steps[0].server
    searches = result.tokens.web_search_requests
    assert searches >= 1
    # The search fee is in the cost: $10 per 1,000 searches on top of the tokens.
    from claude_magics.cost.pricing import price_usage

    tokens_only = price_usage(replace(result.tokens, web_search_requests=0), result.model)
    assert tokens_only is not None and result.cost is not None
    assert result.cost.total - tokens_only.total == pytest.approx(0.01 * searches)
    # %claude_usage counts the searches.
    usage = ok(ip, "%claude_usage")
    said = "1 web search;" if searches == 1 else f"{searches:,} web searches"
    assert said in usage.outputs[-1].data["text/plain"]


def test_code_execution_shows_the_code_and_its_output(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    captured = ok(ip, "%%claude --code-execution --out t_r\nCalculate (17 * 23 + 4) / 2 for me.")
    (request,) = messages_requests(emulator)
    assert [t["name"] for t in request.body["tools"]] == ["code_execution"]
    markdown = final(captured)["text/markdown"]
    assert "Ran in Anthropic's sandbox" in markdown and "17 * 23 + 4" in markdown
    assert "197.5" in markdown
    assert ip.user_ns["t_r"].steps[0].server


def test_code_execution_is_refused_on_a_model_without_it(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    emulator.add_model(
        id="claude-sandboxless-1", like="claude-sonnet-5-5", capabilities={"code_execution": False}
    )
    result, captured = run_cell(ip, "%%claude -m claude-sandboxless-1 --code-execution\nRun 1+1")
    assert not result.success and "cannot run code" in captured.stderr
    assert messages_requests(emulator) == []


def test_the_budget_stops_the_loop_before_a_call_it_cannot_afford(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    def t_report(section: str) -> str:
        """Read a section of the annual report."""
        return "revenue grew " * 600  # a long result: the next call's input is much bigger

    ip.user_ns["t_report"] = t_report
    magics = ip.magics_manager.registry["ClaudeMagics"]
    # Input at $1,000 per million tokens (output free): the next call's input alone passes what
    # is left of the budget once the report is in it.
    magics.price_overrides = {"claude-sonnet-5-5": (1000.0, 0.0)}
    magics.budget_usd = 1.5
    ok(ip, "%%claude --tools t_report --out t_r\nSummarise the report. Use t_report.")
    result = ip.user_ns["t_r"]
    assert result.loop_note and result.loop_note.startswith("the budget")
    assert len(messages_requests(emulator)) == 1
    assert [s.tool for s in result.steps] == ["t_report"]


def test_an_interrupt_during_a_tool_stops_the_loop_and_keeps_the_steps(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    def t_slow(query: str) -> str:
        """Run a slow query."""
        raise KeyboardInterrupt

    ip.user_ns["t_slow"] = t_slow
    result, captured = run_cell(ip, "%%claude --tools t_slow\nCount the rows. Use t_slow.")
    assert not result.success  # Run All stops, as on any interrupt
    said = captured.stdout + captured.stderr
    assert "tool steps above are done and kept" in said and "Traceback" not in said
    assert len(messages_requests(emulator)) == 1
    shown = final(captured)["text/plain"]
    assert "t_slow(" in shown and "interrupted" in shown
    # The call is answered in the conversation: the next cell's request is valid.
    ok(ip, "%%claude\nNever mind.")
    follow_up = messages_requests(emulator)[-1]
    assert follow_up.status == 200
    assert follow_up.body["messages"][-1]["content"][0]["type"] == "tool_result"


def test_a_loop_with_thinking_sends_its_thinking_back_and_the_next_cell_stays_valid(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    ip.user_ns["t_lookup"] = glossary([])
    ok(ip, "%%claude --tools t_lookup --thinking\nWhat is variance? Use t_lookup.")
    _, second = messages_requests(emulator)
    assert second.status == 200
    answered = second.body["messages"][1]
    assert answered["role"] == "assistant"
    assert answered["content"][0]["type"] in ("thinking", "redacted_thinking")
    ok(ip, "%%claude --thinking\nAnd in one word?")
    follow_up = messages_requests(emulator)[-1]
    assert follow_up.status == 200
    # A finished loop's thinking is not sent again: it was signed for that loop.
    kinds = [b["type"] for m in follow_up.body["messages"] for b in m["content"]]
    assert "thinking" not in kinds and "tool_use" in kinds


def test_a_tool_cell_run_again_after_a_restart_replays_every_step(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    calls: list[str] = []
    ip.user_ns["t_lookup"] = glossary(calls)
    source = "%%claude --tools t_lookup --out t_r\nWhat is variance? Use t_lookup."
    first = final(ok(ip, source))
    assert len(messages_requests(emulator)) == 2
    ip.run_line_magic("unload_ext", "claude_magics")
    ip.run_line_magic("load_ext", "claude_magics")
    ip.magics_manager.registry["ClaudeMagics"].display = "markdown"
    again = final(ok(ip, source))
    assert len(messages_requests(emulator)) == 2  # nothing sent: both calls replayed
    assert len(calls) == 2  # the tool itself runs again: its result is the kernel's, now
    assert again["text/plain"] == first["text/plain"]
    assert ip.user_ns["t_r"].loop_cost_usd == 0


def test_code_execution_gets_dataframes_as_files_uploaded_once(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    import pandas as pd

    ip.user_ns["t_sales"] = pd.DataFrame(
        {"region": ["n", "s", "e"], "secret": [TEST_API_KEY, "x", "y"], "revenue": [1, 2, 3]}
    )
    source = "%%claude --code-execution --df t_sales --out t_r\nCalculate the total revenue."
    captured = ok(ip, source)
    uploads = [r for r in emulator.requests if r.path == "/v1/files" and r.method == "POST"]
    assert len(uploads) == 1
    (request,) = messages_requests(emulator)
    blocks = request.body["messages"][-1]["content"]
    assert blocks[0]["type"] == "container_upload"
    assert "t_sales" not in json.dumps([b for b in blocks if b["type"] == "text"])
    assert "t_sales.csv: 3 rows" in final(captured)["text/markdown"]
    stored = [f for f in emulator.requests if f.path.startswith("/v1/files")]
    assert all(TEST_API_KEY not in json.dumps(f.body, default=str) for f in stored)
    # The same frame again: no second upload.
    ok(ip, "%%claude --code-execution --df t_sales --fresh\nCalculate the mean revenue.")
    uploads = [r for r in emulator.requests if r.path == "/v1/files" and r.method == "POST"]
    assert len(uploads) == 1
    # --dry-run uploads nothing.
    ok(ip, "%%claude --code-execution --df t_sales --dry-run\nCalculate it again.")
    # After a restart the upload is found in files.sqlite: the same file id, so the first
    # cell is replayed and nothing is uploaded or sent.
    asked = len(messages_requests(emulator))
    ip.run_line_magic("unload_ext", "claude_magics")
    ip.run_line_magic("load_ext", "claude_magics")
    ip.magics_manager.registry["ClaudeMagics"].display = "markdown"
    again = ok(ip, source)
    assert "replayed from" in final(again)["text/markdown"]
    assert len(messages_requests(emulator)) == asked
    uploads = [r for r in emulator.requests if r.path == "/v1/files" and r.method == "POST"]
    assert len(uploads) == 1
