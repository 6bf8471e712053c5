"""Helpers for the tools tests: a fake API key, the redaction the notebook layer passes, and
one tool call run through a ToolBox."""

from __future__ import annotations

import base64
from typing import Any

from claude_magics.tools import ToolBox, ToolOutput

FAKE_KEY = "sk-ant-api03-" + "Zq7" * 30 + "-AbCdEfAA"
REDACTED = "<ANTHROPIC_API_KEY: redacted>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def redact(text: str) -> str:
    """What the client's redaction does: the key, wherever it is, replaced by a marker."""
    return text.replace(FAKE_KEY, REDACTED)


def call(box: ToolBox, tool: str, /, **tool_input: Any) -> tuple[dict[str, Any], ToolOutput]:
    """Run one tool_use block through ``box``."""
    return box.run({"type": "tool_use", "id": "toolu_1", "name": tool, "input": tool_input})


def text_of(output: ToolOutput) -> str:
    """All the text of an output (its text blocks joined, when it has images)."""
    if isinstance(output.content, str):
        return output.content
    return "\n".join(b["text"] for b in output.content if b["type"] == "text")


def images_of(output: ToolOutput) -> list[bytes]:
    """The decoded bytes of every image block in an output."""
    if isinstance(output.content, str):
        return []
    return [base64.b64decode(b["source"]["data"]) for b in output.content if b["type"] == "image"]
