"""What one ``%%claude`` call produced, as kept by ``--out NAME``.

    %%claude --out answer
    ...
    answer.text, answer.message, answer.usage, answer.cost, answer.request_id
    answer.tokens.output, answer.tokens.cache_read        # the usage as a typed ``Usage``
    answer.thought, answer.thinking_seconds, answer.thinking
    answer.citations                  # [Citation(number=1, title="report.pdf", pages=(2, 2), ...)]

The object is plain data with a short ``repr`` and a Markdown repr (the answer itself), so
leaving it as the last line of a cell shows the answer again, rendered.

Also the status line every view shows, and :class:`ThinkingClock`, which times thinking from
the stream's events: new models return thinking blocks with empty text unless asked, so how
long the model thought is what there is to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cost.pricing import Cost, format_usd
from ..cost.usage import Usage

if TYPE_CHECKING:
    from .content import Citation

__all__ = ["ClaudeResult", "Step", "ThinkingClock", "status_line"]

#: Content blocks that are the model's thinking (their text may be empty or encrypted).
THINKING_BLOCKS = ("thinking", "redacted_thinking")


class ThinkingClock:
    """How long the model has thought, from stream events: each thinking block counts from its
    ``content_block_start`` to its ``content_block_stop``, whether its text arrives or not.

        clock.feed(event, time.monotonic())     # True when thinking starts or ends
        clock.thinking, clock.seconds(time.monotonic())   # thinking now?  for how long
    """

    def __init__(self) -> None:
        self._open: dict[int, float] = {}
        self._done = 0.0
        self.blocks = 0

    def feed(self, event: Any, now: float) -> bool:
        """Fold in one stream event; True when a thinking block started or stopped (worth
        showing at once, whatever the render throttle says)."""
        kind = getattr(event, "type", None)
        if kind == "content_block_start" and event.block.get("type") in THINKING_BLOCKS:
            self._open[event.index] = now
            self.blocks += 1
            return True
        if kind == "content_block_stop" and event.index in self._open:
            self._done += now - self._open.pop(event.index)
            return True
        return False

    @property
    def thinking(self) -> bool:
        """Whether a thinking block is open (the model is thinking now)."""
        return bool(self._open)

    def seconds(self, now: float) -> float | None:
        """Seconds spent thinking so far; None when the model has not thought."""
        if not self.blocks:
            return None
        return self._done + sum(now - started for started in self._open.values())


@dataclass(frozen=True)
class Step:
    """One tool call of a ``%%claude`` tool loop, as the notebook shows it: the tool, its input
    and a short result (``server``: run by Anthropic, like a web search)."""

    tool: str
    input: dict[str, Any]
    summary: str
    is_error: bool = False
    server: bool = False

    def call(self, width: int = 90) -> str:
        """``tool(name='df', rows='0:5')``, cut to ``width`` characters."""
        args = ", ".join(f"{key}={value!r}" for key, value in self.input.items())
        text = " ".join(f"{self.tool}({args})".split())
        return text if len(text) <= width else text[: width - 1] + "…)"


@dataclass
class ClaudeResult:
    """The answer of one call: text, the full API message, usage, cost and request id."""

    text: str
    message: dict[str, Any]
    model: str
    request_id: str | None = None
    cost: Cost | None = None
    elapsed: float = 0.0
    time_to_first_token: float | None = None
    interrupted: bool = False
    error: str | None = None
    #: The parsed JSON for ``-f json`` and ``--schema`` calls.
    data: Any = None
    chat: str | None = None
    #: Seconds the model spent thinking, timed from the stream (None: not streamed, or no
    #: thinking). Known even when the thinking text is empty.
    thinking_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Output tokens counted locally from what arrived, for an answer cut short before the API
    #: reported its final usage (None: the API's figure stands). :attr:`tokens`, the cost, the
    #: status line (``≈N out``) and the ledger use it.
    output_estimate: int | None = None
    #: The error that cut a streamed answer short (the connection broke, an ``error`` event):
    #: the partial answer is shown and recorded first, then the cell raises it.
    failure: Exception | None = field(default=None, repr=False, compare=False)
    #: Where a replayed answer comes from ("2026-12-02 14:03", "the cassette ci.jsonl"); None
    #: for an answer asked of the API now. A replay costs $0 (``cost``); ``saved_usd`` is
    #: what it cost when it was paid for.
    replayed_from: str | None = None
    saved_usd: float | None = None
    #: The tool calls of a tool loop (``--tools``, ``--inspect``, ``--python``, ``--web``), in
    #: order; empty for a single call.
    steps: list[Step] = field(default_factory=list)
    #: Why a tool loop stopped before the model finished (the step limit, a repeated call, a
    #: declined snippet, the budget, an interrupt); None when it finished.
    loop_note: str | None = None
    #: Model calls the loop made and what they cost together (None: a single call).
    loop_calls: int | None = None
    loop_cost_usd: float | None = None

    @property
    def usage(self) -> dict[str, Any]:
        """The API's ``usage`` object, as it was sent (a copy)."""
        return dict(self.message.get("usage") or {})

    @property
    def tokens(self) -> Usage:
        """The usage as a :class:`~claude_magics.cost.usage.Usage`: tokens by kind, with the
        output estimate of an answer cut short (see :attr:`output_estimate`)."""
        usage = Usage.from_api(self.message.get("usage"))
        return usage if self.output_estimate is None else usage.with_output(self.output_estimate)

    @property
    def citations(self) -> list[Citation]:
        """The sources the answer cites, numbered as its footnotes: each a frozen
        :class:`~.content.Citation` (document title and index, page or range, quoted text; a
        web page's URL and title). Empty when nothing was cited."""
        from .content import citations_of

        return citations_of(self.message)

    @property
    def stop_reason(self) -> str | None:
        return self.message.get("stop_reason")

    @property
    def thinking(self) -> str:
        """The thinking text ("" when there was none, or when the model omitted it)."""
        return "".join(
            block.get("thinking", "")
            for block in self.message.get("content", [])
            if block.get("type") == "thinking"
        )

    @property
    def thought(self) -> bool:
        """Whether the model thought (a thinking block came back, with or without its text)."""
        return any(
            block.get("type") in THINKING_BLOCKS for block in self.message.get("content", [])
        )

    @property
    def replayed(self) -> bool:
        """Whether the answer was shown again from the replay store or a cassette."""
        return self.replayed_from is not None

    def status(self) -> str:
        if self.replayed_from is not None:
            return (
                f"replayed from {self.replayed_from} · $0 (saved {format_usd(self.saved_usd)}) "
                "· --fresh for a new answer"
            )
        return status_line(
            self.model,
            self.tokens,
            self.cost,
            self.elapsed,
            thought=self.thought,
            thinking_seconds=self.thinking_seconds,
            first_token=self.time_to_first_token,
            stop_reason=self.stop_reason,
            interrupted=self.interrupted,
            error=self.error,
            output_estimated=self.output_estimate is not None,
        )

    def __repr__(self) -> str:
        preview = " ".join(self.text.split())
        if len(preview) > 60:
            preview = preview[:57] + "..."
        return (
            f"<ClaudeResult {self.model}: {self.tokens.output} tokens out, "
            f"{format_usd(self.cost.total if self.cost else None)}: {preview!r}>"
        )

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


def status_line(
    model: str,
    usage: Usage,
    cost: Cost | None,
    elapsed: float,
    *,
    thought: bool = False,
    thinking_seconds: float | None = None,
    still_thinking: bool = False,
    first_token: float | None = None,
    stop_reason: str | None = None,
    interrupted: bool = False,
    error: str | None = None,
    streaming: bool = False,
    output_estimated: bool = False,
) -> str:
    """One line about a call: model, tokens in and out, cache use, thinking, time, cost and how
    it ended. Thinking shows as "thinking… 3.2 s" while it lasts, then "thought 3.2 s" (just
    "thought" when it was not timed): its text may be empty, its time is not. Output tokens
    counted locally (``streaming``, ``output_estimated``) read "≈N out"."""
    parts = [model, f"{usage.prompt:,} in"]
    if usage.cache_read:
        parts.append(f"{usage.cache_read:,} read from cache")
    if usage.cache_write:
        parts.append(f"{usage.cache_write:,} written to cache")
    # While streaming, output tokens are counted locally (the API reports them at the end).
    about = "≈" if streaming or output_estimated else ""
    parts.append(f"{about}{usage.output:,} out")
    if still_thinking:
        # A live view re-renders only when events arrive, and thinking whose text is omitted
        # sends none until it ends: a time frozen at "0.0 s" would mislead, so it shows once
        # there is something to count.
        took = f" {thinking_seconds:.1f} s" if thinking_seconds and thinking_seconds >= 1 else ""
        parts.append(f"thinking…{took}")
    elif thought or thinking_seconds is not None:
        took = f" {thinking_seconds:.1f} s" if thinking_seconds is not None else ""
        parts.append(f"thought{took}")
    if first_token is not None:
        parts.append(f"first token {first_token:.1f} s")
    parts.append(f"{elapsed:.1f} s")
    parts.append(format_usd(cost.total) if cost is not None else "cost unknown")
    if streaming:
        parts.append("streaming…")
    if interrupted:
        parts.append("⏹ interrupted: partial answer")
    elif error:
        parts.append(f"⚠ {error}")
    elif stop_reason == "max_tokens":
        parts.append("⚠ cut off at max_tokens (raise --max-tokens)")
    elif stop_reason == "refusal":
        parts.append("⚠ Claude declined to answer (refusal)")
    elif stop_reason == "stop_sequence":
        parts.append("stopped at a stop sequence")
    return " · ".join(parts)
