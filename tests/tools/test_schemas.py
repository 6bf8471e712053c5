"""function_tool's input schemas: one exact schema per kind of hint, docstrings in three styles,
and a one-line refusal for every function that cannot be described."""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NewType, Optional, TypedDict, Union

import jsonschema
import pydantic
import pytest
from typing_extensions import NotRequired  # typing has it from 3.11 only

from claude_magics.schema_check import matches
from claude_magics.tools import Tool, ToolBox, ToolDescriptionError, function_tool


def props(tool: Tool) -> dict[str, Any]:
    return tool.input_schema["properties"]  # type: ignore[no-any-return]


def check_valid(tool: Tool) -> None:
    # An independent validator agrees the schema is a valid draft 2020-12 schema.
    jsonschema.Draft202012Validator.check_schema(tool.input_schema)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    """A point on the plane.

    Attributes:
        x: Distance across.
        y: Distance up.
    """

    x: float
    y: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Address(pydantic.BaseModel):
    city: str


class Person(pydantic.BaseModel):
    """Someone."""

    name: str
    home: Address


UserId = NewType("UserId", int)


# -- each kind of hint --------------------------------------------------------------------------


def test_primitives_and_the_object_around_them() -> None:
    def f(s: str, i: int, x: float, b: bool, n: None, a: Any) -> None:
        """F."""

    tool = function_tool(f)
    assert tool.input_schema == {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
            "n": {"type": "null"},
            "a": {},
        },
        "required": ["s", "i", "x", "b", "n", "a"],
        "additionalProperties": False,
    }
    assert tool.definition() == {
        "name": "f",
        "description": "F.",
        "input_schema": tool.input_schema,
    }
    check_valid(tool)


def test_containers() -> None:
    def f(
        a: list[int],
        b: tuple[int, str],
        c: tuple[float, ...],
        d: set[str],
        e: frozenset[int],
        g: dict[str, float],
        h: list,  # type: ignore[type-arg]
        i: dict,  # type: ignore[type-arg]
        j: Sequence[bool],
    ) -> None:
        pass

    tool = function_tool(f)
    assert props(tool) == {
        "a": {"type": "array", "items": {"type": "integer"}},
        "b": {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "minItems": 2,
            "maxItems": 2,
        },
        "c": {"type": "array", "items": {"type": "number"}},
        "d": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "e": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        "g": {"type": "object", "additionalProperties": {"type": "number"}},
        "h": {"type": "array"},
        "i": {"type": "object"},
        "j": {"type": "array", "items": {"type": "boolean"}},
    }
    check_valid(tool)


def test_optional_and_union() -> None:
    def f(
        a: int | None,
        b: Optional[str],  # noqa: UP045 (the old spelling must work too)
        c: Union[int, str],  # noqa: UP007
        d: list[int] | None = None,
    ) -> None:
        pass

    tool = function_tool(f)
    assert props(tool) == {
        "a": {"type": ["integer", "null"]},
        "b": {"type": ["string", "null"]},
        "c": {"type": ["integer", "string"]},
        "d": {
            "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}],
            "default": None,
        },
    }
    assert tool.input_schema["required"] == ["a", "b", "c"]
    check_valid(tool)


def test_literal_and_enums() -> None:
    def f(
        mode: Literal["fast", "slow"],
        mixed: Literal["a", 1],
        color: Color = Color.BLUE,
        level: Level = Level.LOW,
    ) -> None:
        pass

    tool = function_tool(f)
    assert props(tool) == {
        "mode": {"type": "string", "enum": ["fast", "slow"]},
        "mixed": {"enum": ["a", 1]},
        "color": {"type": "string", "enum": ["red", "blue"], "default": "blue"},
        "level": {"type": "integer", "enum": [1, 2], "default": 1},
    }
    check_valid(tool)


def test_dataclass_is_an_object_with_its_fields_and_their_docs() -> None:
    def f(p: Point) -> None:
        pass

    tool = function_tool(f)
    assert props(tool) == {
        "p": {
            "type": "object",
            "description": "A point on the plane.",
            "properties": {
                "x": {"type": "number", "description": "Distance across."},
                "y": {"type": "number", "description": "Distance up.", "default": 0.0},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["x"],
            "additionalProperties": False,
        }
    }
    check_valid(tool)


def test_typeddict_marks_only_its_required_keys() -> None:
    def f(movie: Movie) -> None:
        pass

    assert props(function_tool(f))["movie"] == {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["title"],
        "additionalProperties": False,
    }


def test_pydantic_model_defs_are_hoisted_so_refs_resolve() -> None:
    def f(person: Person, other: Address | None = None) -> None:
        pass

    tool = function_tool(f)
    schema = tool.input_schema
    assert schema["$defs"] == {"Address": Address.model_json_schema()}
    assert props(tool)["person"]["properties"]["home"] == {"$ref": "#/$defs/Address"}
    assert "$defs" not in props(tool)["person"]
    check_valid(tool)
    good = {"person": {"name": "Ann", "home": {"city": "Oslo"}}}
    bad = {"person": {"name": "Ann", "home": {"town": "Oslo"}}}
    for checker in (
        lambda v: matches(schema, v),
        lambda v: jsonschema.Draft202012Validator(schema).is_valid(v),
    ):
        assert checker(good)
        assert not checker(bad)


def test_annotated_description_wins_over_the_docstring() -> None:
    def f(a: Annotated[int, "How many, from Annotated."], b: UserId) -> None:
        """Summary.

        Args:
            a: From the docstring.
            b: The user.
        """

    assert props(function_tool(f)) == {
        "a": {"type": "integer", "description": "How many, from Annotated."},
        "b": {"type": "integer", "description": "The user."},
    }


def test_defaults_json_cannot_hold_are_left_out_but_still_optional() -> None:
    sentinel = object()

    def f(a: int = 3, b: tuple[int, int] = (1, 2), c: Any = sentinel) -> None:
        pass

    tool = function_tool(f)
    assert props(tool) == {
        "a": {"type": "integer", "default": 3},
        "b": {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "integer"}],
            "minItems": 2,
            "maxItems": 2,
            "default": [1, 2],
        },
        "c": {},
    }
    assert "required" not in tool.input_schema


# -- descriptions from docstrings --------------------------------------------------------------


def google(city: str, days: int = 3) -> str:
    """Forecast the weather.

    Uses the national service; temperatures in Celsius.

    Args:
        city: The city's name.
        days (int): How many days ahead,
            at most 10.

    Returns:
        One line per day.
    """
    return city


def numpy_style(city: str, days: int = 3) -> str:
    """Forecast the weather.

    Uses the national service; temperatures in Celsius.

    Parameters
    ----------
    city : str
        The city's name.
    days : int, optional
        How many days ahead,
        at most 10.

    Returns
    -------
    str
        One line per day.
    """
    return city


def rest(city: str, days: int = 3) -> str:
    """Forecast the weather.

    Uses the national service; temperatures in Celsius.

    :param city: The city's name.
    :param days: How many days ahead,
        at most 10.
    :returns: One line per day.
    """
    return city


@pytest.mark.parametrize("fn", [google, numpy_style, rest])
def test_docstring_styles_give_the_same_descriptions(fn: Any) -> None:
    tool = function_tool(fn)
    assert tool.description == (
        "Forecast the weather.\n\nUses the national service; temperatures in Celsius."
        "\n\nReturns: One line per day."
    )
    assert props(tool)["city"]["description"] == "The city's name."
    assert props(tool)["days"]["description"] == "How many days ahead,\nat most 10."


def test_no_docstring_describes_the_signature() -> None:
    def area(w: float, h: float = 1.0) -> float:
        return w * h

    assert function_tool(area).description == (
        "Calls the Python function area(w: float, h: float = 1.0) -> float."
    )


def test_long_docstrings_are_bounded() -> None:
    def f(x: int) -> None:
        pass

    f.__doc__ = "Summary.\n\n" + "word " * 2000
    description = function_tool(f).description
    assert description.startswith("Summary.")
    assert len(description) <= 2001
    assert description.endswith("…")


def test_positional_only_and_keyword_only_parameters_are_fields() -> None:
    def f(a: int, /, b: str, *, c: bool = False) -> None:
        pass

    tool = function_tool(f)
    assert list(props(tool)) == ["a", "b", "c"]
    assert tool.input_schema["required"] == ["a", "b"]


# -- what cannot be described ------------------------------------------------------------------


async def fetch(url: str) -> str:
    return url


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node]


def _bad_functions() -> list[tuple[Any, str]]:
    def star(*values: int) -> None:
        pass

    def stars(**options: int) -> None:
        pass

    def unhinted(x, y: int) -> None:  # type: ignore[no-untyped-def]
        pass

    def complex_hint(z: complex) -> None:
        pass

    def int_keys(m: dict[int, str]) -> None:
        pass

    def forward(x: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    def tree(node: Node) -> None:
        pass

    def renamed(x: int) -> None:
        pass

    renamed.__name__ = "not allowed!"

    def with_partial(a: int, b: int) -> None:
        pass

    return [
        (lambda x: x, "tool <lambda>: a lambda has no name"),
        (star, "tool star: `*values` cannot be described"),
        (stars, "tool stars: `**options` cannot be described"),
        (unhinted, "tool unhinted: parameter `x` has no type hint the API can describe"),
        (complex_hint, "tool complex_hint: parameter `z`: `complex` has no JSON schema"),
        (int_keys, "parameter `m`: dict keys must be str in JSON, not `int`"),
        (forward, "tool forward: its type hints cannot be read (NameError"),
        (tree, "parameter `node`: `Node` contains itself"),
        (renamed, "tool not allowed!: the API accepts tool names of 1 to 64"),
        (functools.partial(with_partial, 1), "not a function with a name"),
        (fetch, "tool fetch: async functions cannot be tools"),
        (42, "not a function with a name"),
    ]


@pytest.mark.parametrize(("fn", "message"), _bad_functions())
def test_undescribable_functions_are_refused_in_one_line(fn: Any, message: str) -> None:
    with pytest.raises(ToolDescriptionError) as caught:
        function_tool(fn)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_two_tools_with_one_name_are_refused() -> None:
    def f(x: int) -> int:
        return x

    with pytest.raises(ToolDescriptionError, match="two tools are named f"):
        ToolBox([function_tool(f), function_tool(f)])
