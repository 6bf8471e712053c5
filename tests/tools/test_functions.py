"""Function tools at work: input checked before the call, converted to what the hints promise,
errors and results as bounded text."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

import pandas as pd
import pydantic
import pytest

from claude_magics.prompt.budget import estimate_tokens
from claude_magics.tools import ToolBox, function_tool

from .support import FAKE_KEY, REDACTED, call, redact


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


@dataclasses.dataclass
class Shape:
    name: str
    corners: list[Point]


class Item(pydantic.BaseModel):
    name: str
    qty: int = 1

    @pydantic.field_validator("name")
    @classmethod
    def no_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value


class Recorder:
    """A function tool that records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def tool(self) -> ToolBox:
        recorded = self.calls

        def order(
            item: Item,
            color: Color,
            where: Point,
            shape: Shape | None = None,
            span: tuple[int, int] = (0, 1),
            tags: set[str] | None = None,
            count: int = 1,
        ) -> str:
            """Place an order."""
            recorded.append(
                {
                    "item": item,
                    "color": color,
                    "where": where,
                    "shape": shape,
                    "span": span,
                    "tags": tags,
                    "count": count,
                }
            )
            return "ok"

        return ToolBox([function_tool(order)])


GOOD = {"item": {"name": "bolt"}, "color": "red", "where": {"x": 1}}


def test_inputs_become_enum_members_models_dataclasses_tuples_and_sets() -> None:
    rec = Recorder()
    block, output = call(
        rec.tool(),
        "order",
        **GOOD,
        shape={"name": "tri", "corners": [{"x": 0, "y": 0}, {"x": 1.5}]},
        span=[2, 5],
        tags=["a", "b"],
        count=4.0,
    )
    assert block == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
    assert not output.is_error
    (got,) = rec.calls
    assert got["item"] == Item(name="bolt", qty=1)
    assert got["color"] is Color.RED
    assert got["where"] == Point(x=1, y=0.0)
    assert got["shape"] == Shape("tri", [Point(0, 0), Point(1.5, 0.0)])
    assert got["span"] == (2, 5)
    assert got["tags"] == {"a", "b"}
    assert got["count"] == 4
    assert isinstance(got["count"], int)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({**GOOD, "color": "green"}, 'input.color: expected one of "red", "blue", got string "gr'),
        ({**GOOD, "item": {"name": 3}}, "input.item.name: expected string, got integer 3"),
        ({"item": {"name": "x"}, "color": "red"}, "input: missing required field `where`"),
        ({**GOOD, "extra": 1}, "input: unexpected field `extra`"),
        ({**GOOD, "span": [1]}, "input.span: expected at least 2 items, got 1"),
        ({**GOOD, "count": "3"}, 'input.count: expected integer, got string "3"'),
        ({**GOOD, "tags": ["a", "a"]}, "input.tags: expected unique items"),
    ],
)
def test_invalid_input_is_refused_and_the_function_not_called(
    bad: dict[str, Any], named: str
) -> None:
    rec = Recorder()
    block, output = call(rec.tool(), "order", **bad)
    assert output.is_error
    assert block["is_error"] is True
    assert isinstance(output.content, str)
    assert output.content.startswith(f"order was not run: {named}")
    assert rec.calls == []


def test_a_model_validator_refusing_the_input_is_an_error_without_the_call() -> None:
    rec = Recorder()
    _, output = call(rec.tool(), "order", **{**GOOD, "item": {"name": "  "}})
    assert output.is_error
    assert isinstance(output.content, str)
    assert output.content.startswith("input `item` was refused: ValidationError:")
    assert "name must not be blank" in output.content
    assert "\n" not in output.content
    assert rec.calls == []


def test_positional_only_parameters_are_passed_by_position() -> None:
    def scale(value: float, factor: float = 2.0, /, *, offset: float = 0.0) -> float:
        return value * factor + offset

    box = ToolBox([function_tool(scale)])
    assert call(box, "scale", value=3)[1].content == "6.0"
    assert call(box, "scale", value=3, factor=10, offset=1)[1].content == "31.0"


def test_a_raising_function_is_an_error_with_its_type_message_and_line() -> None:
    def divide(a: int, b: int) -> float:
        """Divide."""
        return a / b

    block, output = call(ToolBox([function_tool(divide)]), "divide", a=1, b=0)
    assert output.is_error and block["is_error"] is True
    assert isinstance(output.content, str)
    assert output.content.startswith("ZeroDivisionError: division by zero\n")
    assert "return a / b" in output.content  # the user's own line
    assert "_call" not in output.content  # not the tool machinery's frame
    assert output.summary == "ZeroDivisionError: division by zero"


def test_sys_exit_in_a_tool_is_an_error_not_the_end_of_the_kernel() -> None:
    def quit_now(code: int) -> None:
        raise SystemExit(code)

    _, output = call(ToolBox([function_tool(quit_now)]), "quit_now", code=3)
    assert output.is_error
    assert output.summary == "SystemExit: 3"


def test_keyboard_interrupt_stops_the_loop() -> None:
    def slow(x: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call(ToolBox([function_tool(slow)]), "slow", x=1)


@dataclasses.dataclass
class Reading:
    when: str
    value: float


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(42)"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text", "plain text"),
        ({"b": [1, 2], "a": None}, '{"b": [1, 2], "a": null}'),
        ([Color.BLUE, {3, 1}], '["blue", [1, 3]]'),
        (Reading("noon", 1.5), '{"when": "noon", "value": 1.5}'),
        (Item(name="x"), '{"name": "x", "qty": 1}'),
        (Opaque(), "Opaque(42)"),
        (None, "null"),
    ],
)
def test_return_values_become_text(value: Any, text: str) -> None:
    def give() -> Any:
        return value

    assert call(ToolBox([function_tool(give)]), "give")[1].content == text


def test_a_dataframe_result_is_shown_as_the_prompt_shows_it() -> None:
    def table() -> pd.DataFrame:
        return pd.DataFrame({"a": range(3), "b": ["x", None, "z"]})

    content = call(ToolBox([function_tool(table)]), "table")[1].content
    assert isinstance(content, str)
    assert content.startswith('<dataframe shape="3x2">')
    assert "b: str, 1 missing" in content or "b: object, 1 missing" in content


def test_long_results_are_cut_to_the_budget_with_a_note() -> None:
    def big() -> list[int]:
        return list(range(100_000))

    content = call(ToolBox([function_tool(big, budget_tokens=300)]), "big")[1].content
    assert isinstance(content, str)
    assert estimate_tokens(content) <= 300
    assert content.startswith("[0, 1, 2, ")
    assert "more characters left out; the result is cut at about 300 tokens" in content


def test_the_key_is_redacted_whole_or_never_half_shown() -> None:
    def leak(pad: int) -> str:
        return "word " * pad + f"key={FAKE_KEY} and more text " * 3

    box = ToolBox([function_tool(leak, budget_tokens=200)], redact=redact)
    seen_whole = 0
    # Pads that put the cut before, inside and after the key.
    for pad in range(60, 130, 3):
        content = call(box, "leak", pad=pad)[1].content
        assert isinstance(content, str)
        assert "sk-ant" not in content and "Zq7Zq7" not in content
        seen_whole += REDACTED in content
    assert seen_whole  # some cuts fall after the key, which is then redacted whole


def test_summary_is_one_short_line() -> None:
    def lines() -> str:
        return "first line of the answer\nsecond line"

    output = call(ToolBox([function_tool(lines)]), "lines")[1]
    assert output.summary == "first line of the answer"
    json.dumps(output.summary)
