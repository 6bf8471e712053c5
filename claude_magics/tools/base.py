"""What a tool is to the loop: its definition for the request, and what running it gave.

    tool = Tool("ping", "Answers pong.", {"type": "object"}, lambda _: ToolOutput("pong"))
    body["tools"] = [tool.definition()]

A :class:`Tool` is plain data around a ``run`` callable; :class:`ToolOutput` is what goes back
to Claude in the ``tool_result`` block, plus the one line the notebook shows for the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Content", "Tool", "ToolOutput"]

#: A tool_result's content: text, or a list of content blocks (text and images).
Content = str | list[dict[str, Any]]


@dataclass(frozen=True)
class ToolOutput:
    """What one tool call gave.

    ``content`` goes into the ``tool_result`` block; ``summary`` is one short line for the
    notebook's step list; ``stop`` is set when the loop must end after this step, saying why
    (a snippet declined and put in a new cell, say).
    """

    content: Content
    is_error: bool = False
    summary: str = ""
    stop: str | None = None


@dataclass(frozen=True)
class Tool:
    """A tool Claude may call: ``run`` gets the model's input, already checked against
    ``input_schema`` (by :class:`~claude_magics.tools.ToolBox`)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    run: Callable[[dict[str, Any]], ToolOutput] = field(repr=False, compare=False)

    def definition(self) -> dict[str, Any]:
        """The entry for the request's ``tools`` list."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }
