"""Python type hints as JSON schemas for tool inputs, and the JSON Claude sends back as Python.

    node = SchemaBuilder().node(list[Color])   # node.schema: {"type": "array", "items": ...}
    node.convert(["red"])                      # [<Color.RED: 'red'>]

Each hint gives a :class:`Node`: its schema, and how to turn JSON that satisfies the schema
into what the hint promises (Enum members, dataclasses, pydantic models, tuples, sets).
Covers str, int, float, bool, None, Any, list/Sequence, tuple, set/frozenset, dict[str, X],
Optional/Union, Literal, Enum, NewType, Annotated[X, "description"], dataclasses, TypedDict
and pydantic models (duck-typed: ``model_json_schema`` and ``model_validate``, their ``$defs``
hoisted to the root so every ``$ref`` resolves). Anything else raises :class:`Undescribable`.
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import docstring_parser

from ..schema_check import matches

__all__ = ["Node", "SchemaBuilder", "Undescribable", "hint_name", "json_default"]

Convert = Callable[[Any], Any]


class Undescribable(Exception):
    """A hint with no JSON schema; the message says why in a few words."""


@dataclass(frozen=True)
class Node:
    """A hint's JSON schema, and how to turn JSON satisfying it into what the hint promises
    (``None``: the JSON value as it is)."""

    schema: dict[str, Any]
    convert: Convert | None = None

    def to_python(self, value: Any) -> Any:
        return value if self.convert is None else self.convert(value)


_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_SEQUENCES = (list, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection)
_SETS = (set, frozenset, abc.Set, abc.MutableSet)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)
# Required[X] / NotRequired[X] / ReadOnly[X] in a TypedDict say who must be present, not what.
_KEY_QUALIFIERS = ("Required", "NotRequired", "ReadOnly")

SUPPORTED = (
    "str, int, float, bool, None, list, tuple, set, dict[str, X], Optional/Union, Literal, "
    "Enum, dataclasses, TypedDict or pydantic models"
)


def hint_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return repr(hint).replace("typing.", "")


def json_type(value: Any) -> str | None:
    """The JSON type of a Python scalar (``bool`` before ``int``: True is an int in Python)."""
    if value is None:
        return "null"
    for python, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
    ):
        if isinstance(value, python):
            return name
    return None


def json_default(value: Any) -> tuple[bool, Any]:
    """``(True, json)`` when a default can be written in a schema, else ``(False, None)``."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    return True, value


def _typed_enum(values: list[Any]) -> dict[str, Any]:
    kinds = {json_type(v) for v in values}
    if None in kinds:
        raise Undescribable("its values must be str, int, float, bool or None")
    schema: dict[str, Any] = {}
    if len(kinds) == 1:
        schema["type"] = kinds.pop()
    schema["enum"] = values
    return schema


def _is_pydantic_model(hint: Any) -> bool:
    return (
        isinstance(hint, type)
        and callable(getattr(hint, "model_json_schema", None))
        and callable(getattr(hint, "model_validate", None))
    )


def _field_docs(cls: type) -> dict[str, str]:
    """Per-field descriptions from a class docstring's Attributes/Parameters section."""
    doc = cls.__doc__ or ""
    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        return {}
    return {p.arg_name: p.description for p in parsed.params if p.description}


def _class_summary(cls: type) -> str | None:
    doc = (cls.__doc__ or "").strip()
    # dataclasses invent "Point(x: int, y: int)" as the docstring of a class without one.
    if not doc or doc.startswith(f"{cls.__name__}("):
        return None
    return doc.split("\n\n")[0].strip() or None


class SchemaBuilder:
    """Builds nodes for the hints of one tool. Definitions from pydantic models gather in
    ``defs`` (to be the root's ``$defs``); set ``root`` to the finished input schema so that
    unions can tell which member a value is."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self.root: dict[str, Any] = {}

    def node(self, hint: Any, stack: tuple[type, ...] = ()) -> Node:
        origin = get_origin(hint)
        args = get_args(hint)
        if origin is Annotated:
            return self._annotated(args, stack)
        if origin is not None and getattr(origin, "_name", None) in _KEY_QUALIFIERS:
            return self.node(args[0], stack)
        if hint is Any or hint is object:
            return Node({})
        if hint is None or hint is type(None):
            return Node({"type": "null"})
        if isinstance(hint, type) and hint in _PRIMITIVES:
            return self._primitive(hint)
        if hasattr(hint, "__supertype__"):
            return self.node(hint.__supertype__, stack)  # NewType("UserId", int) is an int
        if origin is Literal:
            try:
                return Node(_typed_enum(list(args)))
            except Undescribable as exc:
                raise Undescribable(f"`{hint_name(hint)}`: {exc}") from None
        if origin is Union or origin is types.UnionType:
            return self._union(args, stack)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return self._enum(hint)
        if _is_pydantic_model(hint):
            return self._pydantic(hint)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self._dataclass(hint, stack)
        if typing.is_typeddict(hint):
            return self._typeddict(hint, stack)
        container = origin if origin is not None else hint
        if container is tuple:
            return self._tuple(args, stack)
        if container in _SEQUENCES or container in _SETS:
            return self._array(container, args, stack)
        if container in _MAPPINGS:
            return self._mapping(args, stack)
        raise Undescribable(f"`{hint_name(hint)}` has no JSON schema (use {SUPPORTED})")

    # -- one method per kind of hint -----------------------------------------------------------

    def _annotated(self, args: tuple[Any, ...], stack: tuple[type, ...]) -> Node:
        inner = self.node(args[0], stack)
        for meta in args[1:]:
            text = meta if isinstance(meta, str) else getattr(meta, "description", None)
            if isinstance(text, str) and text.strip():
                return Node({**inner.schema, "description": text.strip()}, inner.convert)
        return inner

    @staticmethod
    def _primitive(hint: type) -> Node:
        schema = {"type": _PRIMITIVES[hint]}
        if hint is int:
            # JSON has one number type: 3.0 satisfies "integer", and the function wants 3.
            return Node(schema, int)
        if hint is float:
            return Node(schema, float)
        return Node(schema)

    def _union(self, args: tuple[Any, ...], stack: tuple[type, ...]) -> Node:
        members = [self.node(a, stack) for a in args]
        schemas = [m.schema for m in members]
        if all(set(s) == {"type"} and isinstance(s["type"], str) for s in schemas):
            schema: dict[str, Any] = {"type": [s["type"] for s in schemas]}
        else:
            schema = {"anyOf": schemas}
        if all(m.convert is None for m in members):
            return Node(schema)

        def convert(value: Any) -> Any:
            # The first member the value satisfies decides, as the union's order says.
            for member in members:
                if matches(member.schema, value, self.root):
                    return member.to_python(value)
            return value

        return Node(schema, convert)

    @staticmethod
    def _enum(hint: type[enum.Enum]) -> Node:
        try:
            schema = _typed_enum([member.value for member in hint])
        except Undescribable as exc:
            raise Undescribable(f"Enum `{hint.__name__}`: {exc}") from None
        return Node(schema, hint)

    def _pydantic(self, hint: Any) -> Node:
        schema = dict(hint.model_json_schema())
        for name, definition in schema.pop("$defs", {}).items():
            if self.defs.get(name, definition) != definition:
                raise Undescribable(f"two different models are named `{name}`: rename one")
            self.defs[name] = definition
        return Node(schema, hint.model_validate)

    def _dataclass(self, cls: type, stack: tuple[type, ...]) -> Node:
        if cls in stack:
            raise Undescribable(f"`{cls.__name__}` contains itself (use a pydantic model)")
        hints = _hints_of(cls)
        docs = _field_docs(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        converters: dict[str, Node] = {}
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            node = self.node(hints[field.name], (*stack, cls))
            converters[field.name] = node
            schema = dict(node.schema)
            if field.name in docs and "description" not in schema:
                schema["description"] = docs[field.name]
            if field.default is not dataclasses.MISSING:
                ok, default = json_default(field.default)
                if ok:
                    schema["default"] = default
            elif field.default_factory is dataclasses.MISSING:
                required.append(field.name)
            properties[field.name] = schema

        def convert(value: dict[str, Any]) -> Any:
            return cls(**{k: converters[k].to_python(v) for k, v in value.items()})

        return Node(_object(properties, required, _class_summary(cls)), convert)

    def _typeddict(self, cls: Any, stack: tuple[type, ...]) -> Node:
        if cls in stack:
            raise Undescribable(f"`{cls.__name__}` contains itself (use a pydantic model)")
        hints = _hints_of(cls)
        docs = _field_docs(cls)
        nodes = {key: self.node(hint, (*stack, cls)) for key, hint in hints.items()}
        properties = {}
        for key, node in nodes.items():
            schema = dict(node.schema)
            if key in docs and "description" not in schema:
                schema["description"] = docs[key]
            properties[key] = schema
        required = [key for key, hint in hints.items() if _required_key(cls, key, hint)]

        def convert(value: dict[str, Any]) -> dict[str, Any]:
            return {k: nodes[k].to_python(v) for k, v in value.items()}

        return Node(_object(properties, required, _class_summary(cls)), convert)

    def _tuple(self, args: tuple[Any, ...], stack: tuple[type, ...]) -> Node:
        if not args:
            return Node({"type": "array"}, tuple)
        if len(args) == 2 and args[1] is Ellipsis:
            item = self.node(args[0], stack)
            return Node(
                {"type": "array", "items": item.schema},
                lambda value: tuple(item.to_python(v) for v in value),
            )
        if args == ((),):  # tuple[()]: the empty tuple
            return Node({"type": "array", "maxItems": 0}, tuple)
        items = [self.node(a, stack) for a in args]
        schema = {
            "type": "array",
            "prefixItems": [i.schema for i in items],
            "minItems": len(items),
            "maxItems": len(items),
        }
        return Node(
            schema,
            lambda value: tuple(i.to_python(v) for i, v in zip(items, value, strict=True)),
        )

    def _array(self, container: Any, args: tuple[Any, ...], stack: tuple[type, ...]) -> Node:
        unique = container in _SETS
        make: type = frozenset if container is frozenset else set if unique else list
        schema: dict[str, Any] = {"type": "array"}
        if not args:
            item = Node({})
        else:
            item = self.node(args[0], stack)
            schema["items"] = item.schema
        if unique:
            schema["uniqueItems"] = True
        if item.convert is None and make is list:
            return Node(schema)
        return Node(schema, lambda value: make(item.to_python(v) for v in value))

    def _mapping(self, args: tuple[Any, ...], stack: tuple[type, ...]) -> Node:
        if not args:
            return Node({"type": "object"})
        key, value_hint = args
        if key is not str:
            raise Undescribable(f"dict keys must be str in JSON, not `{hint_name(key)}`")
        item = self.node(value_hint, stack)
        schema = {"type": "object", "additionalProperties": item.schema}
        if item.convert is None:
            return Node(schema)
        return Node(schema, lambda value: {k: item.to_python(v) for k, v in value.items()})


def _required_key(cls: Any, key: str, hint: Any) -> bool:
    # Under `from __future__ import annotations` the class sees only strings, so its
    # __required_keys__ miss NotRequired[...]; the resolved hint still says it.
    while get_origin(hint) is not None and getattr(get_origin(hint), "_name", None) in (
        _KEY_QUALIFIERS
    ):
        name = get_origin(hint)._name
        if name in ("Required", "NotRequired"):
            return bool(name == "Required")
        hint = get_args(hint)[0]
    return key in cls.__required_keys__


def _hints_of(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # a forward reference that names nothing, and the like
        raise Undescribable(f"the hints of `{cls.__name__}` cannot be read ({exc})") from None


def _object(
    properties: dict[str, Any], required: list[str], description: str | None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema
