"""``cell.send`` on its own: a client, a body and a fake view, against the emulator over sockets.

No IPython shell and no magics: what the cell flow does is visible in what the fake view was
asked to do, in the result, and in what went over the wire.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transport_support import WatchingTransport

from claude_magics import Client
from claude_magics.api.streaming import MessageAccumulator, StreamEvent, TextEvent
from claude_magics.cost.ledger import Ledger
from claude_magics.cost.pricing import format_usd, price_usage
from claude_magics.cost.usage import Usage
from claude_magics.emulator import Emulator
from claude_magics.errors import APIStreamError, ClaudeError, NotFoundError
from claude_magics.notebook import cell
from claude_magics.notebook.result import ClaudeResult, status_line
from claude_magics.notebook.views import View
from claude_magics.prompt import estimate_tokens
from claude_magics.pytest_plugin import TEST_API_KEY

MODEL = "claude-sonnet-4-6"


class FakeView:
    """A view that records what ``cell.send`` asks of it, and can stand in for Ctrl-C: it
    raises KeyboardInterrupt on the ``interrupt_at``-th text event, as a kernel interrupt
    arriving mid-render would."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.texts: list[str] = []
        self.interrupt_at = interrupt_at
        self.result: ClaudeResult | None = None
        self.bundle: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}

    def start(self) -> None:
        self.calls.append("start")

    def event(self, event: StreamEvent, acc: MessageAccumulator) -> None:
        if isinstance(event, TextEvent):
            self.texts.append(event.text)
            if self.interrupt_at is not None and len(self.texts) >= self.interrupt_at:
                raise KeyboardInterrupt

    def finish(
        self, result: ClaudeResult, bundle: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        self.calls.append("finish")
        self.result, self.bundle, self.metadata = result, bundle, metadata

    def abandon(self) -> None:
        self.calls.append("abandon")


@pytest.fixture
def transport() -> WatchingTransport:
    return WatchingTransport()


@pytest.fixture
def client(emulator: Emulator, transport: WatchingTransport) -> Iterator[Client]:
    with Client(base_url=emulator.url, api_key=TEST_API_KEY, transport=transport) as c:
        yield c


def body(text: str, *, model: str = MODEL, max_tokens: int = 1000) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


def test_streams_into_the_view_then_shows_the_final_output(client: Client) -> None:
    view = FakeView()
    shown: View = view  # FakeView has every method of the View protocol
    result = cell.send(client, body("Say hello [[reply_tokens=20]]"), shown, chat="default")
    assert view.calls == ["start", "finish"]
    assert "".join(view.texts) == result.text != ""
    assert view.result is result
    assert view.bundle["text/plain"] == result.text
    assert view.bundle["text/markdown"].startswith(result.text)
    assert result.status() in view.bundle["text/markdown"]
    assert view.metadata["claude_magics"]["usage"] == result.usage
    assert result.tokens.output == 20
    assert result.stop_reason == "end_turn"
    assert result.request_id is not None
    assert result.request_id.startswith("req_")
    assert result.time_to_first_token is not None
    assert result.chat == "default"
    assert not result.interrupted
    assert result.failure is None
    expected = price_usage(result.tokens, MODEL)
    assert result.cost == expected
    cell.raise_outcome(result, "markdown")  # a good call does not fail the cell


def test_price_overrides_price_the_result(client: Client) -> None:
    result = cell.send(
        client,
        body("x [[reply_tokens=10]]"),
        FakeView(),
        price_overrides={MODEL: (1000.0, 1000.0)},
    )
    assert result.cost is not None
    assert result.cost.total == pytest.approx(result.tokens.prompt * 1e-3 + 10 * 1e-3)


def test_not_streamed_shows_only_the_final_output_with_its_request_id(client: Client) -> None:
    view = FakeView()
    result = cell.send(client, body("x [[reply_tokens=5]]"), view, stream=False)
    assert view.calls == ["finish"]
    assert view.texts == []
    assert result.tokens.output == 5
    # The request id of a non-streamed reply was lost once (dict() of the API object).
    assert result.request_id is not None
    assert result.request_id.startswith("req_")


def test_interrupt_closes_the_connection_and_keeps_the_partial_answer(
    client: Client, emulator: Emulator, transport: WatchingTransport
) -> None:
    request = body("long one [[reply_tokens=1500]]")
    full = client.messages.create(**request)["content"][0]["text"]
    emulator.configure(tokens_per_second=100)  # the whole answer would take 15 s
    view = FakeView(interrupt_at=5)
    started = time.monotonic()
    result = cell.send(client, request, view)
    elapsed = time.monotonic() - started
    assert result.interrupted
    assert view.calls == ["start", "finish"]
    # The partial answer is exactly what arrived, a strict beginning of the full answer.
    assert result.text == "".join(view.texts)
    assert full.startswith(result.text)
    assert len(result.text) < len(full) / 4
    assert result.stop_reason is None  # the message_delta with the stop reason never came
    # The connection was closed before the reply's end, and send did not wait for the rest.
    (stream,) = transport.streams
    assert stream.closed
    assert not stream.read_to_end
    assert elapsed < 5
    with pytest.raises(cell.ClaudeInterrupted):
        cell.raise_outcome(result, "markdown")


def test_an_interrupted_answer_is_priced_and_recorded_with_what_it_streamed(
    client: Client, tmp_path: Path
) -> None:
    result = cell.send(client, body("long one [[reply_tokens=300]]"), FakeView(interrupt_at=40))
    assert result.interrupted
    # message_start announced 1 output token; 40 text deltas arrived.
    assert result.usage["output_tokens"] == 1
    assert result.output_estimate == estimate_tokens(result.text) > 1
    assert result.tokens.output == result.output_estimate
    assert result.cost == price_usage(result.tokens, MODEL)
    assert f"≈{result.output_estimate:,} out" in result.status()
    ledger = Ledger(tmp_path / "ledger.sqlite")
    assert cell.record_spend(ledger, result)
    (row,) = ledger.calls()
    assert (row.kind, row.output_tokens) == (cell.ESTIMATED_KIND, result.output_estimate)
    assert row.cost_usd == pytest.approx(result.cost.total if result.cost else None)


def test_an_answer_interrupted_after_its_final_usage_keeps_the_api_figure(client: Client) -> None:
    class StopAtTheEnd(FakeView):
        def event(self, event: StreamEvent, acc: MessageAccumulator) -> None:
            super().event(event, acc)
            if event.type == "message_delta":  # the final usage has arrived
                raise KeyboardInterrupt

    result = cell.send(client, body("x [[reply_tokens=30]]"), StopAtTheEnd())
    assert result.interrupted
    assert result.output_estimate is None
    assert result.tokens.output == 30


def test_a_ledger_that_cannot_be_written_is_one_warning_line(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cell.send(client, body("x [[reply_tokens=7]]"), FakeView())
    assert cell.record_spend(Ledger(tmp_path), result) is False  # a folder, not a file
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("Warning: the answer is kept, but its spend was not recorded")
    assert "is a folder, not a file" in err
    # A damaged file: moved aside, said once, and the call recorded in a fresh one.
    damaged = tmp_path / "ledger.sqlite"
    damaged.write_bytes(b"not a database" * 100)
    ledger = Ledger(damaged)
    assert cell.record_spend(ledger, result)
    assert cell.record_spend(ledger, result)
    (notice,) = capsys.readouterr().err.splitlines()
    assert notice.startswith("Warning: ") and "moved to ledger.sqlite.corrupt-" in notice
    assert len(ledger.calls()) == 2


def test_error_before_the_answer_retires_the_view_and_raises(client: Client) -> None:
    view = FakeView()
    with pytest.raises(NotFoundError):
        cell.send(client, body("x", model="claude-nope-1"), view)
    assert view.calls == ["start", "abandon"]


def test_broken_stream_is_shown_and_kept_on_the_result_then_raised(
    client: Client, emulator: Emulator
) -> None:
    emulator.add_fault(kind="drop", after_events=8)
    view = FakeView()
    result = cell.send(client, body("x [[reply_tokens=50]]"), view)
    assert view.calls == ["start", "finish"]
    assert isinstance(result.failure, APIStreamError)
    assert result.text  # what arrived before the break is shown
    assert result.error == str(result.failure)
    assert "⚠" in view.bundle["text/markdown"]
    with pytest.raises(APIStreamError):
        cell.raise_outcome(result, "markdown")


def test_json_format_parses_the_answer(client: Client, emulator: Emulator) -> None:
    emulator.add_reply('```json\n{"label": "good", "score": 4}\n```')
    view = FakeView()
    result = cell.send(client, body("rate it"), view, fmt="json")
    assert result.data == {"label": "good", "score": 4}
    assert view.bundle["text/markdown"].startswith('```json\n{\n  "label": "good"')
    cell.raise_outcome(result, "json")
    emulator.add_reply("not json at all")
    result = cell.send(client, body("rate it"), FakeView(), fmt="json")
    assert result.data is None
    assert result.error is not None
    assert "not valid JSON" in result.error
    with pytest.raises(ClaudeError, match="not valid JSON"):
        cell.raise_outcome(result, "json")


def test_code_format_shows_the_first_code_block(client: Client, emulator: Emulator) -> None:
    emulator.add_reply("Here:\n\n```python\ndef f(x):\n    return x\n```\n\nand ```more```")
    view = FakeView()
    result = cell.send(client, body("write f"), view, fmt="code")
    assert view.bundle["text/plain"] == "def f(x):\n    return x"
    assert cell.extract_code(result.text) == "def f(x):\n    return x"
    assert cell.extract_code("no fences here \n") == "no fences here"


def test_record_spend_writes_the_result_to_the_ledger(client: Client, tmp_path: Path) -> None:
    result = cell.send(client, body("x [[reply_tokens=7]]"), FakeView())
    ledger = Ledger(tmp_path / "ledger.sqlite")
    cell.record_spend(ledger, result, cell="In[4]")
    (row,) = ledger.calls()
    assert (row.model, row.cell, row.kind) == (result.model, "In[4]", "realtime")
    assert row.input_tokens == result.tokens.input
    assert row.output_tokens == 7
    assert row.request_id == result.request_id
    assert result.cost is not None
    assert row.cost_usd == pytest.approx(result.cost.total)
    # A call that reported no tokens (it never started) records nothing.
    empty = ClaudeResult(text="", message={}, model=MODEL)
    cell.record_spend(ledger, empty)
    assert len(ledger.calls()) == 1


def test_status_line_reads_usage_by_kind() -> None:
    usage = Usage(input=10, output=4, cache_write_5m=5, cache_write_1h=7, cache_read=3)
    cost = price_usage(usage, MODEL)
    line = status_line(MODEL, usage, cost, 1.25, first_token=0.5, stop_reason="max_tokens")
    assert line.split(" · ") == [
        MODEL,
        "25 in",  # every prompt token: uncached, written (both lifetimes) and read
        "3 read from cache",
        "12 written to cache",
        "4 out",
        "first token 0.5 s",
        "1.2 s",
        format_usd(cost.total if cost else None),
        "⚠ cut off at max_tokens (raise --max-tokens)",
    ]
    live = status_line(MODEL, usage.with_output(40), None, 2.0, streaming=True)
    assert "≈40 out" in live
    assert live.endswith("cost unknown · streaming…")


def test_thinking_with_its_text_omitted_is_timed_and_said(
    client: Client, emulator: Emulator
) -> None:
    emulator.configure(tokens_per_second=500)  # the hidden thinking takes time, as it would
    request = body("why [[reply_tokens=5]]", model="claude-sonnet-5-5")
    request["thinking"] = {"type": "adaptive"}
    view = FakeView()
    result = cell.send(client, request, view)
    assert result.thought
    assert result.thinking == ""  # Sonnet 5.5 omits the text unless asked
    assert result.thinking_seconds is not None
    assert 0.02 < result.thinking_seconds < result.elapsed
    assert f"thought {result.thinking_seconds:.1f} s" in result.status()
    assert "<details><summary>Thinking (no text returned)</summary>" in view.bundle["text/markdown"]
    assert view.metadata["claude_magics"]["thinking_seconds"] == round(result.thinking_seconds, 3)
    # Not streamed: it thought, for a time nobody measured.
    whole = cell.send(client, request, FakeView(), stream=False)
    assert whole.thought
    assert whole.thinking_seconds is None
    assert " · thought · " in whole.status()
    # No thinking, nothing said about it.
    plain = cell.send(client, body("x [[reply_tokens=5]]"), FakeView())
    assert not plain.thought
    assert "thought" not in plain.status()


def test_status_line_while_thinking() -> None:
    usage = Usage(input=10, output=1)
    # Thinking whose text is omitted sends nothing until it ends: no frozen "0.0 s".
    early = status_line(MODEL, usage, None, 0.2, thinking_seconds=0.1, still_thinking=True)
    assert " · thinking… · " in early
    late = status_line(MODEL, usage, None, 2.5, thinking_seconds=2.3, still_thinking=True)
    assert " · thinking… 2.3 s · " in late
    done = status_line(MODEL, usage, None, 3.0, thinking_seconds=2.5)
    assert " · thought 2.5 s · " in done
