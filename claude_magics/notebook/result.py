"""What one ``%%claude`` call produced, as kept by ``--out NAME``.

    %%claude --out answer
    ...
    answer.text, answer.message, answer.usage, answer.cost, answer.request_id
    answer.tokens.output, answer.tokens.cache_read        # the usage as a typed ``Usage``

The object is plain data with a short ``repr`` and a Markdown repr (the answer itself), so
leaving it as the last line of a cell shows the answer again, rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..cost.pricing import Cost, format_usd
from ..cost.usage import Usage

__all__ = ["ClaudeResult", "status_line"]


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
    extra: dict[str, Any] = field(default_factory=dict)
    #: The error that cut a streamed answer short (the connection broke, an ``error`` event):
    #: the partial answer is shown and recorded first, then the cell raises it.
    failure: Exception | None = field(default=None, repr=False, compare=False)

    @property
    def usage(self) -> dict[str, Any]:
        """The API's ``usage`` object, as it was sent (a copy)."""
        return dict(self.message.get("usage") or {})

    @property
    def tokens(self) -> Usage:
        """The usage as a :class:`~claude_magics.cost.usage.Usage`: tokens by kind."""
        return Usage.from_api(self.message.get("usage"))

    @property
    def stop_reason(self) -> str | None:
        return self.message.get("stop_reason")

    @property
    def thinking(self) -> str:
        return "".join(
            block.get("thinking", "")
            for block in self.message.get("content", [])
            if block.get("type") == "thinking"
        )

    def status(self) -> str:
        return status_line(
            self.model,
            self.tokens,
            self.cost,
            self.elapsed,
            first_token=self.time_to_first_token,
            stop_reason=self.stop_reason,
            interrupted=self.interrupted,
            error=self.error,
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
    first_token: float | None = None,
    stop_reason: str | None = None,
    interrupted: bool = False,
    error: str | None = None,
    streaming: bool = False,
) -> str:
    """One line about a call: model, tokens in and out, cache use, time, cost and how it ended."""
    parts = [model, f"{usage.prompt:,} in"]
    if usage.cache_read:
        parts.append(f"{usage.cache_read:,} read from cache")
    if usage.cache_write:
        parts.append(f"{usage.cache_write:,} written to cache")
    # While streaming, output tokens are counted locally (the API reports them at the end).
    parts.append(f"≈{usage.output:,} out" if streaming else f"{usage.output:,} out")
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
