"""Tokens and cost inline: --count, %claude_tokens, the ledger across restarts, the budget."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from shell_support import magics_of

from claude_magics.config import DEFAULTS, BudgetExceededError
from claude_magics.cost import pricing
from claude_magics.cost.ledger import Ledger
from claude_magics.cost.pricing import format_usd, price_usage
from claude_magics.cost.usage import Usage
from claude_magics.emulator import Emulator

LONG_SYSTEM = "You are a careful data analyst who explains every step. " * 150
#: The model a cell uses when -m is not given (claude-sonnet-5-5: $2 in, $10 out per MTok).
MODEL = DEFAULTS.model


@pytest.fixture(autouse=True)
def _plain_and_private_ledger(ip: InteractiveShell, tmp_path: Path) -> None:
    magics = magics_of(ip)
    magics.display = "plain"
    magics.ledger_path = str(tmp_path / "ledger.sqlite")


def message_requests(emulator: Emulator) -> list[object]:
    return [r for r in emulator.requests if r.path == "/v1/messages"]


def test_count_equals_usage_of_the_same_request(ip: InteractiveShell, emulator: Emulator) -> None:
    ip.user_ns["t_df_note"] = {"rows": 3, "cols": ["a", "b"]}
    cell = "How big is this? {{t_df_note}} [[reply_tokens=5]]"
    line = f'--once --no-cache -s "{LONG_SYSTEM.strip()}"'
    with capture_output() as captured:
        ip.run_cell_magic("claude", f"--count {line}", cell)
    shown = captured.outputs[0].data["text/plain"]
    counted = int(re.search(r"input\s+([\d,]+)", shown).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert not message_requests(emulator), "--count must not generate anything"
    assert "of 1,000,000" in shown  # share of the model's context window, from /v1/models
    assert "worst case" in shown
    with capture_output():
        ip.run_cell_magic("claude", line, cell)
    result = magics_of(ip).last_result
    assert result is not None
    assert result.usage["input_tokens"] == counted


def _count(ip: InteractiveShell, line: str) -> tuple[str, str]:
    """``%%claude --count`` of a one-word cell: its Markdown, and its plain caching row."""
    with capture_output() as captured:
        ip.run_cell_magic("claude", f"--count {line}", "q")
    data = captured.outputs[0].data
    caching = re.search(r"^\s*caching\s+(.*)$", data["text/plain"], re.M)
    assert caching is not None, data["text/plain"]
    return data["text/markdown"], caching.group(1)


def test_haiku_does_not_mark_or_promise_a_cache_below_its_minimum(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    # LONG_SYSTEM is about 2,300 tokens: over Sonnet 4.6's 1,024-token minimum, under Haiku
    # 4.5's 4,096, so Haiku would not cache it and nothing may promise that it does.
    line = f'-m claude-haiku-4-5 --max-tokens 1000 -s "{LONG_SYSTEM.strip()}"'
    markdown, caching = _count(ip, line)
    assert "$0.0050" in markdown  # 1,000 reply tokens at $5/MTok
    assert caching == "no cache breakpoints in this request"
    assert "cacheable" not in markdown
    assert "saves" not in markdown
    assert not message_requests(emulator)
    # What is sent carries no breakpoint, and the API writes nothing to the cache.
    with capture_output():
        ip.run_cell_magic("claude", f"--once {line}", "q [[reply_tokens=5]]")
    assert "cache_control" not in json.dumps(emulator.requests[-1].body)
    result = magics_of(ip).last_result
    assert result is not None
    assert result.tokens.cache_write == 0


def test_sonnet_marks_the_same_prompt_and_count_shows_the_saving(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    line = f'-m claude-sonnet-4-6 --max-tokens 1000 -s "{LONG_SYSTEM.strip()}"'
    _, caching = _count(ip, line)
    saving = re.fullmatch(
        r"([\d,]+) tokens cacheable: written once for (\$[\d.]+), then each reuse costs "
        r"(\$[\d.]+) instead of (\$[\d.]+) \(saves (\$[\d.]+) a call\)",
        caching,
    )
    assert saving is not None, caching
    cacheable = int(saving.group(1).replace(",", ""))
    assert 1024 <= cacheable < 4096
    # The saving is the price table's: the prefix at the input price, less a cache read.
    full = price_usage(Usage(input=cacheable), "claude-sonnet-4-6")
    read = price_usage(Usage(cache_read=cacheable), "claude-sonnet-4-6")
    assert full is not None
    assert read is not None
    assert saving.group(5) == format_usd(full.total - read.total)
    # And the API does cache it: written by the first call, read by the second.
    for prompt in ("first [[reply_tokens=5]]", "second [[reply_tokens=5]]"):
        with capture_output():
            ip.run_cell_magic("claude", f"--once {line}", prompt)
    assert emulator.requests[-1].body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    result = magics_of(ip).last_result
    assert result is not None
    # --count measures the prefix with a one-character user turn after it (count_tokens needs a
    # message), so it may read a few tokens above what the cache holds.
    assert result.tokens.cache_read == pytest.approx(cacheable, abs=8)


def test_cache_figures_from_a_long_system_prompt_sent_twice(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    line = f'--once -s "{LONG_SYSTEM.strip()}"'
    with capture_output():
        ip.run_cell_magic("claude", line, "first [[reply_tokens=5]]")
    first = magics_of(ip).last_result
    with capture_output():
        ip.run_cell_magic("claude", line, "second [[reply_tokens=5]]")
    second = magics_of(ip).last_result
    assert first is not None
    assert second is not None
    assert first.usage["cache_creation_input_tokens"] > 1000
    assert second.usage["cache_read_input_tokens"] == first.usage["cache_creation_input_tokens"]
    assert second.cost is not None
    assert first.cost is not None
    assert second.cost.total < first.cost.total
    # The cost shown is exactly the price table applied to the usage the API reported.
    expected = price_usage(second.usage, MODEL)
    assert expected is not None
    assert second.cost.total == pytest.approx(expected.total)
    assert "read from cache" in second.status()
    assert "first token" in second.status()
    calls = magics_of(ip).ledger.calls()
    assert calls[-1].cache_read_tokens == second.usage["cache_read_input_tokens"]
    assert calls[-1].cache_hit_share > 0.9


def test_budget_refuses_before_sending(ip: InteractiveShell, emulator: Emulator) -> None:
    magics = magics_of(ip)
    ip.run_line_magic("config", "ClaudeMagics.budget_usd = 0.01")
    with pytest.raises(BudgetExceededError) as info:
        ip.run_cell_magic("claude", "--once --max-tokens 64000", "expensive")
    text = "\n".join(info.value._render_traceback_())
    worst = price_usage(Usage(output=64_000), MODEL)
    assert worst is not None
    assert worst.total == pytest.approx(0.64)  # 64,000 reply tokens at $10/MTok
    assert "$0.64" in text  # plus the input, a few hundredths of a cent
    assert "$0.01" in text
    assert "%config ClaudeMagics.budget_usd" in text
    assert not message_requests(emulator)
    # A small call fits, and the spend is counted against what is left.
    with capture_output():
        ip.run_cell_magic("claude", "--once --max-tokens 100", "cheap [[reply_tokens=10]]")
    assert len(message_requests(emulator)) == 1
    spent = magics.ledger.spent(session=magics.ledger.session)
    assert spent > 0
    ip.run_line_magic("config", f"ClaudeMagics.budget_usd = {spent + 0.0001}")
    with pytest.raises(BudgetExceededError):
        ip.run_cell_magic("claude", "--once --max-tokens 100", "one more")
    assert len(message_requests(emulator)) == 1
    with pytest.raises(Exception, match="must not be negative"):
        magics.budget_usd = -1


def test_budget_with_unknown_price_is_refused_not_guessed(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model the API serves but the price table does not know (a new release, say).
    monkeypatch.delitem(pricing.PRICES, "claude-opus-4-7")
    ip.run_line_magic("config", "ClaudeMagics.budget_usd = 5")
    with pytest.raises(UsageError, match="price of claude-opus-4-7 is unknown"):
        ip.run_cell_magic("claude", "--once -m claude-opus-4-7", "x")
    assert not message_requests(emulator)
    # Without a budget the call goes through and its cost is shown as unknown.
    ip.run_line_magic("config", "ClaudeMagics.budget_usd = None")
    with capture_output():
        ip.run_cell_magic("claude", "--once -m claude-opus-4-7", "x")
    result = magics_of(ip).last_result
    assert result is not None
    assert result.cost is None
    assert "cost unknown" in result.status()


def test_claude_tokens_counts_a_dataframe(ip: InteractiveShell) -> None:
    import pandas as pd

    ip.user_ns["t_frame"] = pd.DataFrame({"a": range(2000), "b": ["text"] * 2000})
    with capture_output() as captured:
        ip.run_line_magic("claude_tokens", "t_frame")
    text = captured.outputs[0].data["text/plain"]
    tokens = int(re.search(r"t_frame: ([\d,]+) tokens", text).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert 1000 < tokens < 6000  # the frame was cut to the DataFrame budget (4,000 by default)
    assert "cut to fit" in text
    with pytest.raises(UsageError, match="t_frme"):
        ip.run_line_magic("claude_tokens", "t_frme")


def test_usage_magic_and_ledger_across_a_restart(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    ledger_path = tmp_path / "ledger.sqlite"
    # Another kernel (a separate process) spends first.
    script = textwrap.dedent(
        f"""
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "claude_magics")
        m = ip.magics_manager.registry["ClaudeMagics"]
        m.display = "plain"
        m.ledger_path = {str(ledger_path)!r}
        ip.run_cell_magic("claude", "--once", "from the old session [[reply_tokens=7]]")
        """
    )
    subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        env={**__import__("os").environ, "ANTHROPIC_BASE_URL": emulator.url},
    )
    # This session: nothing yet; --all sees the old session's call.
    with capture_output() as captured:
        ip.run_line_magic("claude_usage", "")
    assert "No calls recorded" in captured.outputs[0].data["text/plain"]
    (old_call,) = Ledger(ledger_path).calls()
    with capture_output():
        ip.run_cell_magic("claude", "--once", "from this session [[reply_tokens=3]]")
    result = magics_of(ip).last_result
    assert result is not None
    # The ledger stores the call's figures (never its prompt): exactly those of the result.
    magics = magics_of(ip)
    (call,) = magics.ledger.calls(session=magics.ledger.session)
    assert call.session != old_call.session
    assert call.request_id == result.request_id
    assert (call.model, call.kind) == (MODEL, "realtime")
    assert (call.input_tokens, call.output_tokens) == (result.tokens.input, 3)
    assert result.cost is not None
    assert call.cost_usd == pytest.approx(result.cost.total)
    assert call.seconds == pytest.approx(result.elapsed)
    with capture_output() as captured:
        ip.run_line_magic("claude_usage", "")
    frame_html = captured.outputs[0].data["text/html"]
    assert "1 call (this session)" in captured.outputs[1].data["text/plain"]
    assert MODEL in frame_html
    # This session's table has this session's call and not the other kernel's.
    assert str(result.request_id) in frame_html
    assert str(old_call.request_id) not in frame_html
    with capture_output() as captured:
        ip.run_line_magic("claude_usage", "--all")
    assert str(old_call.request_id) in captured.outputs[0].data["text/html"]
    totals = captured.outputs[1].data["text/plain"]
    assert totals.startswith("2 calls (all sessions)")
    assert "10 output tokens" in totals
    with capture_output() as captured:
        ip.run_line_magic("claude_usage", "--since 2000-01-01")
    assert captured.outputs[1].data["text/plain"].startswith("2 calls")
    with pytest.raises(UsageError, match="not a date"):
        ip.run_line_magic("claude_usage", "--since yesterday-ish")


def test_metadata_of_the_static_output_carries_usage_and_cost(ip: InteractiveShell) -> None:
    magics_of(ip).display = "markdown"
    with capture_output() as captured:
        ip.run_cell_magic("claude", "--once", "hi [[reply_tokens=9]]")
    final = [o for o in captured.outputs if "text/markdown" in o.data and not o.update][-1]
    meta = final.metadata["claude_magics"]
    assert meta["usage"]["output_tokens"] == 9
    expected = price_usage(meta["usage"], MODEL)
    assert expected is not None
    assert meta["cost_usd"] == pytest.approx(expected.total)
    json.dumps(meta)  # the metadata is saved in the notebook: it must be JSON


def test_count_budget_and_live_status_all_price_with_the_overrides(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    # Prices 100x the table's: every figure shown or checked must move with them.
    overrides = {MODEL: (200.0, 1000.0)}
    magics = magics_of(ip)
    magics.price_overrides = overrides
    line = "--once --no-cache --max-tokens 100"
    with capture_output() as captured:
        ip.run_cell_magic("claude", f"--count {line}", "price me")
    plain = captured.outputs[0].data["text/plain"]
    counted = re.search(r"^\s*input\s+([\d,]+)", plain, re.M)
    shown_worst = re.search(r"^\s*worst case\s+(\S+)$", plain, re.M)
    assert counted is not None
    assert shown_worst is not None
    input_tokens = int(counted.group(1).replace(",", ""))
    worst = price_usage(Usage(input=input_tokens, output=100), MODEL, overrides=overrides)
    assert worst is not None
    assert shown_worst.group(1) == format_usd(worst.total)
    # The budget check refuses on the same figure.
    magics.budget_usd = worst.total * 0.99
    with pytest.raises(BudgetExceededError) as info:
        ip.run_cell_magic("claude", line, "price me")
    assert info.value.worst_case == pytest.approx(worst.total)
    assert not message_requests(emulator)
    # The live status line prices what has arrived so far with them too.
    magics.budget_usd = None
    magics.display = "markdown"
    emulator.configure(tokens_per_second=200)
    with capture_output() as captured:
        ip.run_cell_magic("claude", line, "price me [[reply_tokens=60]]")
    statuses = [
        re.search(r"<sub>(.*)</sub>", o.data.get("text/markdown", ""))
        for o in captured.outputs
        if o.update
    ]
    live = [m.group(1) for m in statuses if m is not None and "streaming" in m.group(1)]
    assert live
    for status in live:
        figures = re.search(r"([\d,]+) in · ≈([\d,]+) out · .* · (\$[\d.]+) · streaming", status)
        assert figures is not None, status
        tokens_in, tokens_out = (int(g.replace(",", "")) for g in figures.group(1, 2))
        cost = price_usage(Usage(input=tokens_in, output=tokens_out), MODEL, overrides=overrides)
        assert cost is not None
        assert figures.group(3) == format_usd(cost.total)
