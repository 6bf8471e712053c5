"""The JSON Schema instance generator behind tool inputs and structured output."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from claude_magics.emulator.instances import generate_instance, matches

SEEDS = range(120)


class Colour(str, enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str = Field(min_length=3, max_length=30)
    postcode: str = Field(pattern=r"^[A-Z]{2}\d{1,2} \d[A-Z]{2}$")
    country: Literal["UK", "FR"] = "UK"


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=1, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    height_m: float = Field(gt=0.3, lt=2.5)
    score: float = Field(multiple_of=0.25, ge=0, le=10)
    email: Annotated[str, Field(json_schema_extra={"format": "email"})]
    born: datetime.date
    seen: datetime.datetime
    favourite: Colour
    nickname: str | None = None
    addresses: list[Address] = Field(min_length=1, max_length=3)
    pet: Cat | Dog = Field(discriminator="kind")
    tags: set[str] = Field(default_factory=set)
    counts: dict[str, int] = Field(default_factory=dict)
    pair: tuple[int, str]


class Tree(BaseModel):
    value: int
    children: list[Tree] = Field(default_factory=list)
    parent: Tree | None = None


SCHEMAS: dict[str, dict[str, Any]] = {
    "primitives": {
        "type": "object",
        "properties": {
            "s": {"type": "string", "minLength": 5, "maxLength": 8},
            "i": {"type": "integer", "minimum": -3, "maximum": 3},
            "n": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "b": {"type": "boolean"},
            "z": {"type": "null"},
            "c": {"const": {"fixed": [1, 2]}},
            "e": {"enum": [1, "one", None, True]},
            "m": {"type": "integer", "multipleOf": 7, "minimum": 10},
            "f": {"type": "number", "multipleOf": 0.1, "minimum": 1, "maximum": 2},
        },
        "required": ["s", "i", "n", "b", "z", "c", "e", "m", "f"],
        "additionalProperties": False,
    },
    "formats": {
        "type": "object",
        "properties": {
            name: {"type": "string", "format": name}
            for name in (
                "date",
                "date-time",
                "time",
                "email",
                "uri",
                "uuid",
                "ipv4",
                "ipv6",
                "hostname",
            )
        },
        "required": ["date", "date-time", "email", "uuid", "ipv4"],
    },
    "patterns": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": r"^[A-Z]{2}-\d{3}$"},
            "phone": {"type": "string", "pattern": r"^\+?[0-9]{7,12}$"},
            "word": {"type": "string", "pattern": r"^(foo|bar)_[a-z]+$"},
            "vowels": {"type": "string", "pattern": "[aeiou]{3}"},
            "hex": {"type": "string", "pattern": r"^#(?:[0-9a-fA-F]{3}){1,2}$"},
            "not_digit": {"type": "string", "pattern": r"^[^0-9]{4}$"},
            "email_like": {"type": "string", "pattern": r"^\w+@\w+\.(com|org)$"},
            "escapes": {"type": "string", "pattern": r"^[\w.\-]{3,5}\u0041?$"},
            "lookahead": {"type": "string", "pattern": r"^(?=.*\d)[a-z0-9]{6}$"},
            "named": {"type": "string", "pattern": r"^(?P<year>\d{4})-(?:0[1-9]|1[0-2])$"},
        },
        "required": ["code", "phone", "word", "vowels", "hex", "not_digit", "email_like"],
    },
    "arrays": {
        "type": "object",
        "properties": {
            "unique": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 5},
                "minItems": 3,
                "maxItems": 4,
                "uniqueItems": True,
            },
            "tuple": {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "integer"}],
                "items": False,
            },
            "contains": {
                "type": "array",
                "contains": {"const": "needle"},
                "items": {"type": "string"},
            },
            "nested": {"type": "array", "items": {"type": "array", "items": {"enum": ["a", "b"]}}},
        },
        "required": ["unique", "tuple", "contains", "nested"],
    },
    "combinators": {
        "type": "object",
        "properties": {
            "one": {"oneOf": [{"type": "integer"}, {"type": "number"}, {"type": "string"}]},
            "any": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
            "all": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "string"}}, "required": ["b"]},
                ]
            },
            "not": {"type": "integer", "minimum": 0, "maximum": 3, "not": {"const": 2}},
            "typed": {"type": ["string", "null"], "minLength": 2},
        },
        "required": ["one", "any", "all", "not", "typed"],
    },
    "draft7_definitions": {
        "definitions": {
            "item": {
                "type": "object",
                "properties": {"sku": {"type": "string"}},
                "required": ["sku"],
            }
        },
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/definitions/item"}}},
        "required": ["items"],
    },
    "min_properties": {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "minProperties": 3,
    },
    "pydantic_person": Person.model_json_schema(),
    "pydantic_tree": Tree.model_json_schema(),
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_generated_instances_validate(name: str) -> None:
    schema = SCHEMAS[name]
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    distinct = set()
    for seed in SEEDS:
        value = generate_instance(schema, seed)
        errors = list(validator.iter_errors(value))
        assert not errors, (seed, value, errors[0].message)
        assert matches(schema, value)
        distinct.add(repr(value))
    assert len(distinct) > len(SEEDS) // 2  # real variety, not one canned answer


def test_unsatisfiable_recursion_terminates() -> None:
    # Every node requires another: no finite instance exists, but generation must still end.
    schema = {"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]}
    value = generate_instance(schema, 1)
    depth = 0
    while isinstance(value, dict) and "next" in value:
        value, depth = value["next"], depth + 1
    assert depth < 40


def test_patterns_beyond_the_supported_subset_fall_back() -> None:
    schema = {"type": "string", "pattern": r"^(a)\1$"}  # backreference: not generated
    assert isinstance(generate_instance(schema, 0), str)


def test_pydantic_round_trip() -> None:
    for seed in range(40):
        Person.model_validate(generate_instance(SCHEMAS["pydantic_person"], seed))
        Tree.model_validate(generate_instance(SCHEMAS["pydantic_tree"], seed))


def test_deterministic_per_seed() -> None:
    schema = SCHEMAS["pydantic_person"]
    assert generate_instance(schema, 5) == generate_instance(schema, 5)
    assert generate_instance(schema, 5) != generate_instance(schema, 6)


def test_enum_prefers_word_in_hint() -> None:
    schema = {"type": "string", "enum": ["positive", "negative", "neutral"]}
    for seed in range(30):
        assert generate_instance(schema, seed, "This is clearly NEGATIVE.") == "negative"
        # "positivity" is not the word "positive".
        assert generate_instance(schema, seed, "Pure positivity here") in schema["enum"]
    both = {generate_instance(schema, s, "positive or negative?") for s in range(30)}
    assert both == {"positive", "negative"}


def test_matches_rejects_invalid_values() -> None:
    schema = SCHEMAS["primitives"]
    good = generate_instance(schema, 1)
    assert matches(schema, good)
    for key, bad in [("i", 4), ("s", "abc"), ("b", 1), ("e", 2), ("m", 15), ("z", 0)]:
        assert not matches(schema, {**good, key: bad}), key
    assert not matches(schema, {**good, "extra": 1})
    assert not matches({"type": "integer"}, True)  # JSON booleans are not integers
    assert not matches({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 3)
    assert matches({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 3.5)
