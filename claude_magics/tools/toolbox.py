"""The tools of one loop: their definitions for the request, and each call run to a result.

    box = ToolBox([function_tool(f), *inspection_tools(ns, redact=hide)], redact=hide)
    block, output = box.run(tool_use_block)   # block goes into the next user turn

A call never raises out of :meth:`ToolBox.run` (KeyboardInterrupt aside): an unknown tool, input
that does not satisfy the schema, or a tool that fails all become error results Claude can read.
Every text that goes back passes the ``redact`` callable, so the API key never reaches the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..errors import ToolDescriptionError
from ..schema_check import canonical_json, mismatch
from .base import Content, Tool, ToolOutput
from .text import Redact, no_redaction, one_line

__all__ = ["ToolBox"]


class ToolBox:
    """The tools Claude may call in one loop, by name."""

    def __init__(self, tools: Iterable[Tool], *, redact: Redact = no_redaction) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ToolDescriptionError(
                    f"two tools are named {tool.name}: rename one (tool names must be unique)"
                )
            self._tools[tool.name] = tool
        self._redact = redact
        self._seen: set[bytes] = set()

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def definitions(self) -> list[dict[str, Any]]:
        """The request's ``tools``, in the order the tools were given."""
        return [tool.definition() for tool in self._tools.values()]

    def repeated(self, call: dict[str, Any]) -> bool:
        """Whether an identical call (same name, same input) already ran in this loop: ask
        before :meth:`run`, which records each call."""
        return _call_key(call) in self._seen

    def run(self, call: dict[str, Any]) -> tuple[dict[str, Any], ToolOutput]:
        """Run one ``tool_use`` block; return its ``tool_result`` block and the output."""
        self._seen.add(_call_key(call))
        output = self._redacted(self._output(call))
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": call.get("id"),
            # The API refuses empty text: say that there was nothing.
            "content": output.content or "(no output)",
        }
        if output.is_error:
            block["is_error"] = True
        return block, output

    def _output(self, call: dict[str, Any]) -> ToolOutput:
        name = call.get("name")
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            known = ", ".join(self._tools) or "(none)"
            return _error(f"no tool named {name!r}; the tools are: {known}")
        tool_input = call.get("input", {})
        if not isinstance(tool_input, dict):
            return _error(f"the input of {name} must be a JSON object")
        problem = mismatch(tool.input_schema, tool_input, name="input")
        if problem is not None:
            return _error(f"{name} was not run: {problem}")
        try:
            return tool.run(tool_input)
        except Exception as exc:  # a tool's own bug: Claude reads it, the loop goes on
            return _error(f"{name} failed: {type(exc).__name__}: {exc}")

    def _redacted(self, output: ToolOutput) -> ToolOutput:
        redact = self._redact
        return ToolOutput(
            content=_redact_content(output.content, redact),
            is_error=output.is_error,
            summary=redact(output.summary),
            stop=None if output.stop is None else redact(output.stop),
        )


def _error(message: str) -> ToolOutput:
    return ToolOutput(message, is_error=True, summary=one_line(message, 100))


def _redact_content(content: Content, redact: Redact) -> Content:
    if isinstance(content, str):
        return redact(content)
    # Only text blocks hold text; an image's base64 cannot hold the key readably.
    return [
        {**block, "text": redact(block["text"])}
        if block.get("type") == "text" and isinstance(block.get("text"), str)
        else block
        for block in content
    ]


def _call_key(call: dict[str, Any]) -> bytes:
    payload = [call.get("name"), call.get("input", {})]
    try:
        return canonical_json(payload)
    except TypeError:  # integers beyond 64 bits: json copes
        return json.dumps(payload, sort_keys=True, default=repr).encode()
