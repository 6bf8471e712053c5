"""%%claude against today's models, in a real IPython shell, over sockets to the emulator: each
model family's rules checked before sending, thinking shown even when its text is omitted,
no prefill and no stale thinking blocks, deprecated and retired models, %claude_models, and
counting on a server without a token-counting endpoint."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from shell_support import magics_of

from claude_magics import model_table
from claude_magics.config import DEFAULTS, BudgetExceededError
from claude_magics.cost.pricing import PRICES_AS_OF, model_price
from claude_magics.emulator import Emulator
from claude_magics.errors import NotFoundError

NEW_MODELS = ("claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5")
MODELS_4_6 = ("claude-sonnet-4-6", "claude-opus-4-6")


def run(ip: InteractiveShell, line: str, cell: str = "hello [[reply_tokens=5]]") -> Any:
    with capture_output() as captured:
        ip.run_cell_magic("claude", line, cell)
    return captured


def sent(emulator: Emulator, path: str = "/v1/messages") -> list[Any]:
    """The requests to ``path`` the emulator received, in order."""
    return [r for r in emulator.requests if r.path == path]


def nothing_sent(emulator: Emulator) -> bool:
    """No message generated and no token count asked: the cell stopped before the API."""
    return not sent(emulator) and not sent(emulator, "/v1/messages/count_tokens")


def refused(ip: InteractiveShell, line: str) -> str:
    """The one-line UsageError a cell with ``line`` raises."""
    with pytest.raises(UsageError) as info:
        run(ip, line)
    message = str(info.value)
    assert "\n" not in message
    return message


def final_markdown(captured: Any) -> str:
    return [o.data for o in captured.outputs if not getattr(o, "update", False)][-1][
        "text/markdown"
    ]


# -- defaults ----------------------------------------------------------------------------------


def test_the_default_model_is_a_current_sonnet(ip: InteractiveShell, emulator: Emulator) -> None:
    assert DEFAULTS.model == "claude-sonnet-5-5"
    assert DEFAULTS.job_model == "claude-haiku-5-5"
    run(ip, "--once")
    (request,) = sent(emulator)
    assert request.body["model"] == "claude-sonnet-5-5"
    assert request.headers["anthropic-version"] == "2023-06-01"


# -- the model's rules, before sending ---------------------------------------------------------


@pytest.mark.parametrize("model", NEW_MODELS)
def test_new_models_refuse_a_budget_and_sampling_and_check_effort(
    ip: InteractiveShell, emulator: Emulator, model: str
) -> None:
    message = refused(ip, f"--once -m {model} --thinking 2000")
    assert f"{model} takes no thinking budget" in message
    assert "--thinking adaptive" in message
    assert "--effort" in message
    assert "takes no temperature" in refused(ip, f"--once -m {model} -t 0.5")
    assert "takes no top_p" not in refused(ip, f"--once -m {model} -t 1")
    assert nothing_sent(emulator)
    # --count is checked the same way: nothing is counted for a request that cannot be sent.
    refused(ip, f"--count -m {model} --thinking 2000")
    assert nothing_sent(emulator)
    # What they do take: adaptive thinking, steered by every effort level the model has.
    levels = magics_of(ip).catalog.get(model).effort_levels
    assert levels == ("low", "medium", "high", "xhigh", "max")
    for level in levels:
        run(ip, f"--once -m {model} --thinking adaptive --effort {level}")
        request = sent(emulator)[-1]
        assert request.status == 200
        assert request.body["output_config"] == {"effort": level}
        assert request.body["thinking"] == {"type": "adaptive"}


@pytest.mark.claude_emulator(
    models=[
        {
            "id": "claude-sonnet-5-9",
            "like": "claude-sonnet-5-5",
            "effort": {"levels": ["low", "high"], "default": "high"},
        }
    ]
)
def test_effort_levels_come_from_the_models_api(ip: InteractiveShell, emulator: Emulator) -> None:
    # A model the bundled table has never heard of: its levels are what GET /v1/models says.
    message = refused(ip, "--once -m claude-sonnet-5-9 --effort max")
    assert message == "claude-sonnet-5-9 has no effort 'max': use one of low, high"
    assert nothing_sent(emulator)
    run(ip, "--once -m claude-sonnet-5-9 --effort high")
    assert sent(emulator)[-1].status == 200


@pytest.mark.parametrize("model", MODELS_4_6)
def test_4_6_models_take_temperature_only_with_thinking_off(
    ip: InteractiveShell, emulator: Emulator, model: str
) -> None:
    run(ip, f"--once -m {model} -t 0.5")
    request = sent(emulator)[-1]
    assert (request.status, request.body["temperature"]) == (200, 0.5)
    for thinking in ("--thinking adaptive", "--thinking 2000", "--thinking"):
        message = refused(ip, f"--once -m {model} -t 0.5 {thinking}")
        assert f"{model} takes temperature only with thinking off" in message
    assert len(sent(emulator)) == 1
    # A budget is still accepted on these (deprecated, not refused); effort per the model.
    run(ip, f"--once -m {model} --thinking 2000")
    assert sent(emulator)[-1].status == 200
    assert sent(emulator)[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    message = refused(ip, f"--once -m {model} --effort xhigh")
    assert message == f"{model} has no effort 'xhigh': use one of low, medium, high, max"


def test_haiku_4_5_thinks_with_a_budget_only_and_takes_no_effort(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    captured = run(ip, "--once -m claude-haiku-4-5 --thinking 2000")
    request = sent(emulator)[-1]
    assert request.status == 200
    assert request.body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert "<details><summary>Thinking</summary>" in final_markdown(captured)
    message = refused(ip, "--once -m claude-haiku-4-5 --thinking adaptive")
    assert "has no adaptive thinking: give a budget instead" in message
    assert "takes no --effort" in refused(ip, "--once -m claude-haiku-4-5 --effort low")
    assert len(sent(emulator)) == 1


def test_bare_thinking_picks_what_the_model_supports(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    run(ip, "--once --thinking")
    assert sent(emulator)[-1].body["thinking"] == {"type": "adaptive"}
    # Haiku 4.5 has budgets only: half the answer's tokens think, the other half answer.
    run(ip, "--once -m claude-haiku-4-5 --thinking --max-tokens 6000")
    request = sent(emulator)[-1]
    assert request.status == 200
    assert request.body["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert request.body["max_tokens"] == 6000


def test_api_version_2026_10_21_refuses_temperature_on_every_model(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    ip.run_line_magic("config", "ClaudeMagics.api_version = '2026-10-21'")
    models = [entry.id for entry in model_table.load().models]
    for model in models:
        message = refused(ip, f"--once -m {model} -t 0.5")
        assert "API version 2026-10-21 takes no temperature" in message
    assert nothing_sent(emulator)
    # Without -t, a cell works under the new version, which is the header sent.
    run(ip, "--once -m claude-haiku-4-5")
    run(ip, "--once")
    for request in sent(emulator):
        assert request.status == 200
        assert request.headers["anthropic-version"] == "2026-10-21"
    captured = run(ip, "--once --dry-run -t 0.5")
    shown = captured.outputs[0].data["text/plain"]
    assert "anthropic-version: 2026-10-21" in shown
    assert "would be refused before sending: API version 2026-10-21 takes no temperature" in shown
    assert len(sent(emulator)) == 2


# -- thinking shown, with or without its text --------------------------------------------------


def test_omitted_thinking_still_shows_that_and_how_long_it_thought(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    emulator.configure(tokens_per_second=300)
    captured = run(ip, "--once --thinking adaptive", "Why? [[reply_tokens=10]]")
    request = sent(emulator)[-1]
    assert request.body["thinking"] == {"type": "adaptive"}  # no display: the model's default
    result = magics_of(ip).last_result
    assert result is not None
    assert result.thought
    assert result.thinking == ""  # display "omitted", the default of the new models
    assert result.thinking_seconds is not None
    assert result.thinking_seconds > 0
    # Live: the status line said it was thinking, then that it had thought.
    live = [o.data.get("text/markdown", "") for o in captured.outputs if o.update]
    assert any("thinking…" in update for update in live)
    assert any(" thought " in update for update in live)
    # Static, as saved: it thought, for how long, and how to see the text.
    markdown = final_markdown(captured)
    assert "<details><summary>Thinking (no text returned)</summary>" in markdown
    assert "--show-thinking" in markdown
    seconds = re.search(r"thought (\d+\.\d) s", markdown)
    assert seconds is not None
    assert float(seconds.group(1)) == pytest.approx(result.thinking_seconds, abs=0.06)


def test_show_thinking_asks_for_the_summary_and_shows_it(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    captured = run(ip, "--once --thinking adaptive --show-thinking", "Why? [[reply_tokens=10]]")
    assert sent(emulator)[-1].body["thinking"] == {"type": "adaptive", "display": "summarized"}
    result = magics_of(ip).last_result
    assert result is not None
    assert result.thinking
    assert f"<details><summary>Thinking</summary>\n\n{result.thinking}" in final_markdown(captured)
    # The flag alone implies thinking.
    run(ip, "--once --show-thinking")
    assert sent(emulator)[-1].body["thinking"] == {"type": "adaptive", "display": "summarized"}
    # Haiku 4.5 returns its thinking text anyway: nothing to ask for, nothing extra sent.
    run(ip, "--once -m claude-haiku-4-5 --thinking 2000 --show-thinking")
    assert sent(emulator)[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert sent(emulator)[-1].status == 200


def test_show_thinking_trait_on_a_model_that_always_thinks(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    ip.run_line_magic("config", "ClaudeMagics.show_thinking = True")
    # Opus 5.5 thinks unasked: the trait makes its thinking visible.
    run(ip, "--once -m claude-opus-5-5")
    assert sent(emulator)[-1].body["thinking"] == {"type": "adaptive", "display": "summarized"}
    result = magics_of(ip).last_result
    assert result is not None
    assert result.thinking
    # Sonnet 5.5 does not think unless asked: the trait does not turn thinking on.
    run(ip, "--once")
    assert "thinking" not in sent(emulator)[-1].body


def test_plain_view_marks_thinking_as_it_happens(
    ip: InteractiveShell, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    magics_of(ip).display = "plain"
    ip.run_cell_magic("claude", "--once --thinking", "Why? [[reply_tokens=10]]")
    out = capsys.readouterr().out
    result = magics_of(ip).last_result
    assert result is not None
    assert re.match(r"\[thinking…\] \[thought \d+\.\d s\]\n\n", out)
    assert result.text in out
    assert re.search(r"· thought \d+\.\d s ·", out)  # the status line


# -- no prefill, no stale thinking -------------------------------------------------------------


def test_no_request_ends_with_an_assistant_turn(ip: InteractiveShell, emulator: Emulator) -> None:
    # Sonnet 5.5 refuses a prefill (400); json, code and schema answers must not rely on one.
    ip.user_ns["t_schema"] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    magics = magics_of(ip)
    for number, line in enumerate(["", "-f json", "-f code", "-f text", "--schema t_schema"]):
        magics._cell_id = f"cell-{number}"
        if line == "-f json":
            emulator.add_reply('{"answer": 4}')  # asked for in words, as the answer's text
        run(ip, line, f"question {number} [[reply_tokens=5]]")
    requests = sent(emulator)
    assert len(requests) == 5
    for request in requests:
        assert request.status == 200
        assert request.body["messages"][-1]["role"] == "user"
    assert len(requests[-1].body["messages"]) == 9  # four turns, then the fifth question


def test_rerun_in_a_thinking_conversation_sends_no_thinking_blocks(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    magics = magics_of(ip)
    for cell in ("a", "b", "c"):
        magics._cell_id = f"cell-{cell}"
        run(ip, "--thinking --show-thinking", f"question {cell} [[reply_tokens=5]]")
        result = magics.last_result
        assert result is not None
        assert result.thinking  # each answer came with a signed thinking block
    # Re-run the first and second cells with new text: each sees only the turns before it.
    magics._cell_id = "cell-a"
    run(ip, "--thinking --show-thinking", "question a, edited [[reply_tokens=5]]")
    magics._cell_id = "cell-b"
    run(ip, "--thinking --show-thinking", "question b, edited [[reply_tokens=5]]")
    requests = sent(emulator)
    assert [len(r.body["messages"]) for r in requests] == [1, 3, 5, 1, 3]
    for request in requests:
        assert request.status == 200  # the emulator, like the API, accepted every one
        for message in request.body["messages"][:-1]:
            kinds = {block["type"] for block in message["content"]}
            assert kinds == {"text"}  # answers carry their text, never a thinking block
    assert "question a, edited" in str(requests[-1].body["messages"][0])


# -- deprecated and retired models -------------------------------------------------------------


def test_a_deprecated_model_warns_once_and_runs(ip: InteractiveShell, emulator: Emulator) -> None:
    captured = run(ip, "--once -m claude-sonnet-4-5-20250929")
    warning = captured.stderr.strip()
    assert warning == (
        "Warning: claude-sonnet-4-5-20250929 is deprecated (retirement date 2026-11-30): "
        "move to claude-sonnet-5-5 (-m claude-sonnet-5-5)."
    )
    assert sent(emulator)[-1].status == 200
    # Once per model and session, whatever name it goes by.
    # --fresh: the same request again would be replayed, and this one must be sent.
    assert run(ip, "--once --fresh -m claude-sonnet-4-5-20250929").stderr == ""
    assert run(ip, "--once -m claude-sonnet-4-5").stderr == ""
    opus = run(ip, "--once -m claude-opus-4-5").stderr
    assert "2027-01-22" in opus
    assert "claude-opus-5-5" in opus
    # Current and legacy models are not deprecated.
    assert run(ip, "--once").stderr == ""
    assert run(ip, "--once -m claude-haiku-4-5").stderr == ""
    assert [r.status for r in sent(emulator)] == [200] * 6


@pytest.mark.parametrize("flags", ["--once", "--count"])
def test_a_retired_model_gets_the_api_404_and_the_current_models(
    ip: InteractiveShell, emulator: Emulator, flags: str
) -> None:
    with pytest.raises(NotFoundError) as info:
        run(ip, f"{flags} -m claude-opus-4-1-20250805")
    rendered = info.value._render_traceback_()
    assert len(rendered) <= 4
    text = "\n".join(rendered)
    assert "404" in text
    assert "claude-opus-4-1-20250805 was retired on 2026-08-05" in text
    assert "replacement is claude-opus-5-5" in info.value.hint
    for current in magics_of(ip).catalog.current():
        assert current in info.value.hint
    assert [r.status for r in emulator.requests if r.path.startswith("/v1/messages")] == [404]
    # A failed cell stops Run All.
    assert ip.run_cell(f"%%claude {flags} -m claude-opus-4-1\nhello").error_in_exec is not None


# -- %claude_models ----------------------------------------------------------------------------


def _models(ip: InteractiveShell, line: str = "") -> tuple[str, str]:
    with capture_output() as captured:
        ip.run_line_magic("claude_models", line)
    data = captured.outputs[0].data
    return data["text/plain"], data["text/markdown"]


def _row(text: str, model: str) -> str:
    return next(r for r in text.splitlines() if r.split()[0:1] == [model])


def test_models_magic_shows_the_current_line_up(ip: InteractiveShell) -> None:
    text, markdown = _models(ip)
    table = model_table.load()
    for entry in table.active():
        row = _row(text, entry.id)
        assert " active " in row
        price = model_price(entry.id)
        assert price is not None
        assert f"${price.input:g} / ${price.output:g}" in row
    shown = {row.split()[0] for row in text.splitlines()[1:] if row.startswith("claude-")}
    assert shown == {entry.id for entry in table.active()}
    assert f"price table of {PRICES_AS_OF}" in text
    assert "%claude_models --all" in text
    sonnet = _row(text, "claude-sonnet-5-5")
    assert "(model)" in sonnet
    assert re.search(r"1,000,000\s+128,000\s+adaptive\s+low, medium, high, xhigh, max", sonnet)
    assert "always on" in _row(text, "claude-opus-5-5")
    haiku = _row(text, "claude-haiku-5-5")
    assert "(job_model)" in haiku
    assert "$0.1 / $0.5; prompts over 100K: $0.5 / $2.5" in haiku
    assert "| claude-sonnet-5-5 (model) | active |" in markdown


def test_models_magic_all_marks_legacy_and_deprecated(ip: InteractiveShell) -> None:
    text, _ = _models(ip, "--all")
    assert "deprecated, retires 2027-01-22" in _row(text, "claude-opus-4-5-20251101")
    assert "deprecated, retires 2026-11-30" in _row(text, "claude-sonnet-4-5-20250929")
    haiku = _row(text, "claude-haiku-4-5-20251001")
    assert re.search(r"legacy\s+200,000\s+64,000\s+budget\s+—\s+\$1 / \$5$", haiku)
    assert "adaptive, budget (deprecated)" in _row(text, "claude-sonnet-4-6")
    assert "legacy or deprecated models not shown" not in text


@pytest.mark.claude_emulator(models=["claude-next-6,2000000,256000"])
def test_models_magic_shows_yours_and_what_the_table_does_not_know(
    ip: InteractiveShell,
) -> None:
    ip.run_line_magic("config", "ClaudeMagics.model = 'claude-sonnet-4-6'")
    ip.run_line_magic("config", "ClaudeMagics.job_model = 'claude-opus-4-1'")
    text, _ = _models(ip)
    assert "legacy" in _row(text, "claude-sonnet-4-6")  # legacy, but yours: shown
    assert "(model)" in _row(text, "claude-sonnet-4-6")
    assert "claude-opus-4-6" not in text
    # A model the server serves and the table does not know yet: shown, limits from the API.
    assert re.search(r"not in the table\s+2,000,000\s+256,000", _row(text, "claude-next-6"))
    assert "ClaudeMagics.job_model = 'claude-opus-4-1' was retired on 2026-08-05" in text


# -- a server without count_tokens, or one that estimates --------------------------------------


class _Gateway(BaseHTTPRequestHandler):
    """Forwards to the emulator, except routes answered here (path -> status and JSON)."""

    upstream: ClassVar[str] = ""
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}
    seen: ClassVar[list[str]] = []

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.seen.append(self.path)
        if self.path in self.routes:
            status, payload = self.routes[self.path]
            self._answer(status, {"content-type": "application/json"}, payload)
            return
        forwarded = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        reply = httpx.request(
            self.command, self.upstream + self.path, headers=forwarded, content=body
        )
        kind = reply.headers.get("content-type", "application/json")
        self._answer(reply.status_code, {"content-type": kind}, reply.content)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway(ip: InteractiveShell, emulator: Emulator) -> Iterator[dict[str, tuple[int, bytes]]]:
    """The magics pointed at a gateway in front of the emulator; set routes to override."""
    routes: dict[str, tuple[int, bytes]] = {}
    handler = type("Gateway", (_Gateway,), {"upstream": emulator.url, "routes": routes, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    magics_of(ip).base_url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield routes
    finally:
        server.shutdown()
        server.server_close()


NO_ENDPOINT = (404, b'{"detail": "Not Found"}')


def _counted(ip: InteractiveShell, line: str) -> tuple[int, str]:
    with capture_output() as captured:
        ip.run_cell_magic("claude", f"--count {line}", "How many tokens is this question?")
    plain = captured.outputs[0].data["text/plain"]
    figure = re.search(r"^\s*input\s+([\d,]+)", plain, re.M)
    assert figure is not None, plain
    return int(figure.group(1).replace(",", "")), plain


def test_count_falls_back_to_a_labelled_estimate_without_the_endpoint(
    ip: InteractiveShell, emulator: Emulator, gateway: dict[str, tuple[int, bytes]]
) -> None:
    exact, plain = _counted(ip, "--once")
    assert plain.startswith("Token count for claude-sonnet-5-5")
    gateway["/v1/messages/count_tokens"] = NO_ENDPOINT
    estimate, plain = _counted(ip, "--once")
    assert plain.startswith("Token estimate for claude-sonnet-5-5")
    assert "Estimated locally: this server has no token-counting endpoint" in plain
    assert "+30% for claude-sonnet-5-5's newer tokenizer" in plain
    assert exact / 2 < estimate < exact * 2
    # Haiku 4.5 counts with the older tokenizer: no +30% there.
    _, plain = _counted(ip, "--once -m claude-haiku-4-5")
    assert "Estimated locally" in plain
    assert "newer tokenizer" not in plain
    assert not sent(emulator)


def test_budget_checks_against_the_estimate_without_the_endpoint(
    ip: InteractiveShell, emulator: Emulator, gateway: dict[str, tuple[int, bytes]]
) -> None:
    gateway["/v1/messages/count_tokens"] = NO_ENDPOINT
    ip.run_line_magic("config", "ClaudeMagics.budget_usd = 0.01")
    run(ip, "--once --max-tokens 100")  # cheap: fits the budget, so it is sent
    assert [r.status for r in sent(emulator)] == [200]
    with pytest.raises(BudgetExceededError):
        run(ip, "--once --max-tokens 64000")  # $0.64 at most: refused on the estimate
    assert len(sent(emulator)) == 1
    assert not sent(emulator, "/v1/messages/count_tokens")


def test_a_count_the_server_marks_as_an_estimate_is_shown_as_one(
    ip: InteractiveShell, emulator: Emulator, gateway: dict[str, tuple[int, bytes]]
) -> None:
    gateway["/v1/messages/count_tokens"] = (200, b'{"input_tokens": 321, "estimated": true}')
    tokens, plain = _counted(ip, "--once")
    assert tokens == 321
    assert plain.startswith("Token estimate for claude-sonnet-5-5")
    assert "Estimated by the server" in plain
    ip.user_ns["t_value"] = "some text"
    with capture_output() as captured:
        ip.run_line_magic("claude_tokens", "t_value")
    assert captured.outputs[0].data["text/plain"].startswith("t_value: ≈321 tokens")
