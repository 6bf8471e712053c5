"""The ToolBox: tool_result blocks, errors that never escape, redaction, repeated calls; and
schema_check.mismatch, which names what is wrong with an input."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from claude_magics.schema_check import matches, mismatch
from claude_magics.tools import Tool, ToolBox, ToolOutput, function_tool

from .support import FAKE_KEY, REDACTED, call, redact

OBJECT = {"type": "object", "properties": {}, "additionalProperties": False}


def fixed(name: str, output: ToolOutput) -> Tool:
    return Tool(name, f"Gives {name}.", OBJECT, lambda _: output)


def test_definitions_are_the_tools_in_order() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    box = ToolBox([function_tool(add), fixed("ping", ToolOutput("pong"))])
    assert box.names == ["add", "ping"]
    assert len(box) == 2
    assert box.definitions() == [
        {
            "name": "add",
            "description": "Add two numbers.",
            "input_schema": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
        },
        {"name": "ping", "description": "Gives ping.", "input_schema": OBJECT},
    ]


def test_a_result_block_has_is_error_only_on_errors() -> None:
    box = ToolBox([fixed("ok", ToolOutput("fine")), fixed("bad", ToolOutput("no", True))])
    assert call(box, "ok")[0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "fine",
    }
    assert call(box, "bad")[0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "no",
        "is_error": True,
    }


def test_empty_output_is_said_not_sent_empty() -> None:
    block, _ = call(ToolBox([fixed("quiet", ToolOutput(""))]), "quiet")
    assert block["content"] == "(no output)"


def test_unknown_tool_names_the_tools_there_are() -> None:
    box = ToolBox([fixed("a", ToolOutput("")), fixed("b", ToolOutput(""))])
    block, output = call(box, "c")
    assert output.is_error and block["is_error"] is True
    assert output.content == "no tool named 'c'; the tools are: a, b"


def test_input_that_is_not_an_object_is_an_error() -> None:
    box = ToolBox([fixed("a", ToolOutput("x"))])
    _, output = box.run({"type": "tool_use", "id": "t", "name": "a", "input": [1]})
    assert output.is_error
    assert output.content == "the input of a must be a JSON object"


def test_a_tool_that_raises_is_an_error_result_and_the_loop_goes_on() -> None:
    def broken(_: dict[str, Any]) -> ToolOutput:
        raise RuntimeError("tool bug")

    box = ToolBox([Tool("broken", "Breaks.", OBJECT, broken)])
    block, output = call(box, "broken")
    assert block["is_error"] is True
    assert output.content == "broken failed: RuntimeError: tool bug"


def test_keyboard_interrupt_propagates() -> None:
    def interrupted(_: dict[str, Any]) -> ToolOutput:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call(ToolBox([Tool("i", "Interrupted.", OBJECT, interrupted)]), "i")


def test_every_text_is_redacted_and_images_left_alone() -> None:
    source = {"type": "base64", "media_type": "image/png", "data": "AA"}
    image: dict[str, Any] = {"type": "image", "source": source}
    blocks: list[dict[str, Any]] = [{"type": "text", "text": f"key {FAKE_KEY}"}, image]
    box = ToolBox(
        [
            fixed("s", ToolOutput(f"the key is {FAKE_KEY}", summary=FAKE_KEY, stop=FAKE_KEY)),
            fixed("b", ToolOutput(blocks)),
        ],
        redact=redact,
    )
    block, output = call(box, "s")
    assert block["content"] == f"the key is {REDACTED}"
    assert output.summary == REDACTED
    assert output.stop == REDACTED
    block, output = call(box, "b")
    assert block["content"] == [{"type": "text", "text": f"key {REDACTED}"}, image]
    assert output.content == block["content"]
    assert FAKE_KEY in blocks[0]["text"]  # the tool's own output is not modified


def test_repeated_knows_identical_calls_whatever_the_key_order() -> None:
    def echo(a: int, b: str = "") -> str:
        return f"{a}{b}"

    box = ToolBox([function_tool(echo)])
    first = {"type": "tool_use", "id": "1", "name": "echo", "input": {"a": 1, "b": "x"}}
    same = {"type": "tool_use", "id": "2", "name": "echo", "input": {"b": "x", "a": 1}}
    other = {"type": "tool_use", "id": "3", "name": "echo", "input": {"a": 2, "b": "x"}}
    assert not box.repeated(first)
    box.run(first)
    assert box.repeated(same)
    assert not box.repeated(other)
    assert not ToolBox([function_tool(echo)]).repeated(same)  # each loop its own box


def test_importing_tools_stays_light() -> None:
    probe = (
        "import sys, claude_magics\n"
        "assert 'claude_magics.tools' not in sys.modules\n"
        "import claude_magics.tools\n"
        "heavy = ['pandas', 'pydantic', 'matplotlib', 'IPython', 'ipywidgets', 'httpx']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert out.stdout.split() == []


# -- schema_check.mismatch ---------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "rows": {"type": ["string", "null"], "pattern": "^[0-9:]*$"},
        "n": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}]},
        "pick": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
        "ref": {"$ref": "#/$defs/Thing"},
    },
    "required": ["rows"],
    "additionalProperties": False,
    "$defs": {"Thing": {"type": "object", "properties": {"id": {"type": "string"}}}},
}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"rows": "1:2"}, None),
        ({}, "input: missing required field `rows`"),
        ({"rows": 3}, "input.rows: expected string or null, got integer 3"),
        ({"rows": "a"}, 'input.rows: string "a" does not satisfy pattern="^[0-9:]*$"'),
        ({"rows": None, "x": 1}, "input: unexpected field `x` (the fields are: `rows`, `n`, "),
        ({"rows": None, "n": [1, 1.5]}, "input.n[1]: expected integer, got number 1.5"),
        ({"rows": None, "n": "s"}, 'input.n: expected integer or array, got string "s"'),
        ({"rows": None, "pick": 2}, "input.pick: integer 2 matches more than one"),
        ({"rows": None, "ref": {"id": 1}}, "input.ref.id: expected string, got integer 1"),
    ],
)
def test_mismatch_names_the_field_and_agrees_with_matches(
    value: dict[str, Any], message: str | None
) -> None:
    found = mismatch(SCHEMA, value, name="input")
    assert (found is None) == matches(SCHEMA, value)
    if message is None:
        assert found is None
    else:
        assert found is not None and found.startswith(message)
        assert "\n" not in found
