"""The tool loop of one ``%%claude`` cell: call the model, run the tools it asks for, send the
results back, until it answers (``--tools``, ``--inspect``, ``--python``, ``--web``,
``--code-execution``).

    outcome = run_loop(body, toolbox, call=one_call, new_view=make_view, steps=LiveSteps(...),
                       max_steps=10, fmt="markdown")
    outcome.result.steps, outcome.exchange        # what was done; the turns to keep

``call(body, view)`` makes one model call the way a plain cell does (replayed when answered
before, else sent; its spend recorded, its answer kept for replay), so every step of a loop is
priced, recorded and replayable on its own, and a Run All of a tool cell whose tools answer as
before sends nothing. The loop stops when the model ends its turn, and also:

- at ``max_steps`` model calls (the tools of the last call are then not run: their results
  could not be sent);
- when the model repeats a call it already made with the same input (run once, not again);
- when a tool says so (a ``run_python`` snippet declined, or with no one to ask: it is in a new
  cell below);
- when ``before_step`` refuses the next call (the session budget);
- on an interrupt: during a model call the partial answer is kept; during a tool the call is
  answered "interrupted" and the loop ends. What was done stays done and is kept.

Every ``tool_use`` the loop keeps is answered by its ``tool_result`` in the next turn, so the
conversation stays valid for the next cell (:class:`~.chat.Turn` keeps ``exchange``).

Each step shows live as a collapsible line (:class:`LiveSteps`: the call, then its result) and,
once the loop ends, as a compact list above the answer in the static output, which is all the
saved notebook keeps (the live lines are emptied, as the live answer is).
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .result import ClaudeResult, Step

if TYPE_CHECKING:
    from ..api.streaming import MessageAccumulator, StreamEvent
    from ..tools import ToolBox
    from .views import View

__all__ = ["LiveSteps", "LoopOutcome", "StepView", "run_loop", "server_steps"]

#: Server tools by flag: Anthropic runs them; the request only names them.
WEB_TOOLS: tuple[dict[str, Any], ...] = (
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 5},
)
CODE_EXECUTION_TOOLS: tuple[dict[str, Any], ...] = (
    {"type": "code_execution_20250825", "name": "code_execution"},
)
#: How much of a tool's input and result the live line's expanded part shows.
_LIVE_DETAIL_CHARS = 2000


class LiveSteps:
    """The live list of steps: collapsible lines in Jupyter (one display-id output whose plain
    text is always empty, so nbval sees the same output on every run), printed lines in a
    terminal. :meth:`close` empties it once the static output holds the list."""

    def __init__(self, plain: bool, out: Any = None) -> None:
        self.plain = plain
        self._out = out
        self._handle: Any = None
        self._lines: list[str] = []

    def add(self, step: Step, detail: str = "") -> None:
        mark = "⚠ " if step.is_error else ""
        where = " (Anthropic)" if step.server else ""
        summary = " ".join(step.summary.split())[:200]
        if self.plain:
            out = self._out or sys.stdout
            out.write(f"  ↳ {step.call()}{where} → {mark}{summary}\n")
            out.flush()
            return
        from .views import display

        shown = detail[:_LIVE_DETAIL_CHARS] + ("…" if len(detail) > _LIVE_DETAIL_CHARS else "")
        self._lines.append(
            "<details><summary>"
            f"<code>{html.escape(step.call())}</code>{where} → {mark}{html.escape(summary)}"
            f"</summary><pre>{html.escape(shown)}</pre></details>"
        )
        bundle = {"text/html": "".join(self._lines), "text/plain": ""}
        if self._handle is None:
            # Shown empty first: nbval compares the first display of an output, never updates.
            self._handle = display({"text/plain": ""}, raw=True, display_id=True)
        self._handle.update(bundle, raw=True)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
            self._handle = None


class StepView:
    """A view for one model call of the loop: streams like the cell's own view, but holds the
    final output back until the loop knows whether this call was the last (then :meth:`show`)
    or not (then :meth:`retire`)."""

    def __init__(self, inner: View) -> None:
        self.inner = inner
        self.finished = False

    def start(self) -> None:
        self.inner.start()

    def event(self, event: StreamEvent, acc: MessageAccumulator) -> None:
        self.inner.event(event, acc)

    def finish(
        self, result: ClaudeResult, bundle: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        self.finished = True

    def abandon(self) -> None:
        self.inner.abandon()

    def retire(self) -> None:
        self.inner.abandon()

    def show(self, result: ClaudeResult, bundle: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.inner.finish(result, bundle, metadata)


@dataclass
class LoopOutcome:
    """What a loop did: the last call's result (with the steps, the note and the totals), the
    turns added after the cell's user turn, and whether the last call's answer is already the
    last assistant turn of ``exchange`` (a loop left open ends with tool results)."""

    result: ClaudeResult
    exchange: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    answer_in_exchange: bool = False
    #: The user interrupted between calls or during a tool (the cell then fails in one line,
    #: after what was done is shown and kept, so Run All stops as it does on any interrupt).
    interrupted: bool = False


def _result_summary(block: Mapping[str, Any]) -> tuple[str, bool]:
    """A short line for a server tool's result block, and whether it is an error."""
    content = block.get("content")
    kind = str(block.get("type") or "")
    if isinstance(content, list):
        count = sum(1 for item in content if isinstance(item, Mapping))
        return f"{count} result{'s' * (count != 1)}", False
    if isinstance(content, Mapping):
        inner = str(content.get("type") or "")
        if inner.endswith("_error"):
            return f"error: {content.get('error_code') or inner}", True
        if "stdout" in content or "stderr" in content:
            code = content.get("return_code")
            out = str(content.get("stdout") or "").strip().splitlines()
            first = out[0][:80] if out else "no output"
            return (f"exit {code}: {first}" if code not in (None, 0) else first), bool(code)
        if kind == "web_fetch_tool_result":
            doc = content.get("content") if isinstance(content.get("content"), Mapping) else {}
            title = (doc or {}).get("title") or content.get("url") or "page"
            return f"read {title}", False
    return kind.replace("_", " "), False


def server_steps(content: list[dict[str, Any]]) -> list[Step]:
    """The steps Anthropic ran within one answer (web searches, fetches, sandbox runs)."""
    results = {
        block.get("tool_use_id"): block
        for block in content
        if str(block.get("type", "")).endswith("_tool_result")
    }
    steps = []
    for block in content:
        if block.get("type") != "server_tool_use":
            continue
        found = results.get(block.get("id"))
        summary, failed = _result_summary(found) if found is not None else ("no result", True)
        given = block.get("input") if isinstance(block.get("input"), dict) else {}
        steps.append(
            Step(str(block.get("name")), dict(given or {}), summary, is_error=failed, server=True)
        )
    return steps


def _not_run(call: Mapping[str, Any], why: str) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": call["id"],
        "content": why,
        "is_error": True,
    }


def _detail(call: Mapping[str, Any], block: Mapping[str, Any]) -> str:
    given = json.dumps(call.get("input"), ensure_ascii=False, indent=1, default=str)
    content = block.get("content")
    if isinstance(content, list):
        texts = [str(b.get("text", "")) for b in content if b.get("type") == "text"]
        images = sum(1 for b in content if b.get("type") == "image")
        content = "\n".join(texts) + (f"\n[{images} image(s)]" if images else "")
    return f"input: {given}\n\nresult:\n{content}"


def run_loop(
    body: dict[str, Any],
    toolbox: ToolBox | None,
    *,
    call: Callable[[dict[str, Any], StepView], ClaudeResult],
    new_view: Callable[[], View],
    steps: LiveSteps,
    max_steps: int,
    fmt: str,
    before_step: Callable[[dict[str, Any]], str | None] | None = None,
) -> LoopOutcome:
    """Run the loop on ``body`` (its ``messages`` grow with each step) and show the answer.

    ``call(body, view)`` makes one model call; ``new_view()`` makes the view of the next;
    ``before_step(body)`` may refuse the next call, returning why. The last call's output is
    shown once, with the steps above it; the live step lines are then emptied."""
    from .cell import ClaudeInterrupted, final_output

    exchange: list[dict[str, Any]] = []
    done: list[Step] = []
    seen: set[str] = set()
    calls = 0
    spent = 0.0
    priced = True
    note: str | None = None
    in_exchange = False
    interrupted = False
    previous: ClaudeResult | None = None
    view = StepView(new_view())
    try:
        while True:
            try:
                result = call(body, view)
            except ClaudeInterrupted:
                if previous is None:
                    raise  # nothing was done yet: the cell says so in one line
                # Before the next answer began: what the steps did is kept, and the last
                # answer (already in the exchange) is shown with them.
                result, note, in_exchange = previous, "interrupted before the next call", True
                interrupted = True
                view = StepView(new_view())
                break
            previous = result
            calls += 1
            if result.cost is not None:
                spent += result.cost.total
            elif not result.replayed:
                priced = False
            content = list(result.message.get("content") or [])
            for step in server_steps(content):
                done.append(step)
                steps.add(step)
            wanted = [b for b in content if b.get("type") == "tool_use"]
            if (
                result.failure is not None
                or result.interrupted
                or result.stop_reason != "tool_use"
                or not wanted
            ):
                if result.stop_reason == "pause_turn":
                    note = "the API paused a long server-tool turn: run the cell again to go on"
                break
            if toolbox is None:
                note = "Claude asked for a tool this cell does not offer"
                break
            if calls >= max_steps:
                note = (
                    f"the step limit of {max_steps} model calls was reached before Claude "
                    "finished (--max-steps, or ClaudeMagics.max_steps, for more)"
                )
                break
            answers: list[dict[str, Any]] = []
            stop: str | None = None
            for wanted_call in wanted:
                if stop is not None:
                    answers.append(_not_run(wanted_call, f"not run: the loop stopped ({stop})"))
                    continue
                signature = _signature(wanted_call)
                if signature in seen:
                    block = _not_run(
                        wanted_call, "not run again: the same call with the same input ran already"
                    )
                    stop = f"Claude repeated an identical call to {wanted_call.get('name')}"
                    step = _step(wanted_call, "repeated: not run again", is_error=True)
                else:
                    seen.add(signature)
                    try:
                        block, output = toolbox.run(wanted_call)
                    except KeyboardInterrupt:
                        block = _not_run(wanted_call, "interrupted by the user before it finished")
                        stop = "interrupted during a tool call; the steps before it are kept"
                        interrupted = True
                        step = _step(wanted_call, "interrupted", is_error=True)
                    else:
                        stop = output.stop or None
                        summary = output.summary or _first_line(block)
                        step = _step(wanted_call, summary, is_error=bool(output.is_error))
                answers.append(block)
                done.append(step)
                steps.add(step, _detail(wanted_call, block))
            turn = [
                {"role": "assistant", "content": content},
                {"role": "user", "content": answers},
            ]
            exchange += turn
            body["messages"] = [*body["messages"], *turn]
            if stop is not None:
                note = stop
                in_exchange = True
                break
            if before_step is not None:
                refused = before_step(body)
                if refused:
                    note = refused
                    in_exchange = True
                    break
            view.retire()
            view = StepView(new_view())
    finally:
        steps.close()
    result.steps = done
    result.loop_note = note
    result.loop_calls = calls
    result.loop_cost_usd = spent if priced else None
    bundle, metadata = final_output(result, fmt)
    view.show(result, bundle, metadata)
    return LoopOutcome(
        result, exchange, list(body.get("tools") or ()), in_exchange, interrupted=interrupted
    )


def _step(call: Mapping[str, Any], summary: str, *, is_error: bool) -> Step:
    return Step(str(call.get("name")), dict(call.get("input") or {}), summary, is_error=is_error)


def _signature(call: Mapping[str, Any]) -> str:
    return f"{call.get('name')}\0" + json.dumps(call.get("input"), sort_keys=True, default=str)


def _first_line(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        content = " ".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
    text = str(content or "").strip()
    return text.splitlines()[0][:120] if text else "(empty)"
