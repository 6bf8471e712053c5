"""What a DataFrame job asks of each row, and how an answer becomes a value (or is refused).

    task = label_task(["positive", "negative", "neutral"])     # or extract_task(schema), map_task()
    task.interpret('{"label": "positive"}', "end_turn")        # -> ("succeeded", "positive")

Three kinds: ``map`` (free text, or the fields of a schema), ``label`` (one of the labels, or
several with ``multi``) and ``extract`` (the fields of a schema). Labels and schemas become
structured output (an enum of the labels, or the schema), so the answer is constrained by the
API; the answer is still checked here, and anything outside the labels or the schema is
``invalid_output``, never coerced into a value. :meth:`Task.dtypes` says which pandas dtype
each output column gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ..prompt import PromptError
from ..prompt.body import json_schema_of

__all__ = ["Task", "TaskKind", "extract_task", "label_task", "map_task", "schema_of"]

TaskKind = Literal["map", "label", "extract"]


# Output tokens a structured answer may take beyond its own JSON (spaces, a newline).
_ANSWER_SLACK = 16


_PY_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _shorthand_schema(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"name": str, "stars": int, "mood": ["happy", "sad"]}`` as a JSON schema, or None when
    ``spec`` is not in that form. Every field may be null: the row may not say."""
    if not spec or any(k in spec for k in ("type", "properties", "$schema", "$defs", "anyOf")):
        return None
    properties: dict[str, Any] = {}
    for name, kind in spec.items():
        if isinstance(kind, type) and kind in _PY_TYPES:
            properties[name] = {"type": [_PY_TYPES[kind], "null"]}
        elif isinstance(kind, str) and kind in _PY_TYPES.values():
            properties[name] = {"type": [kind, "null"]}
        elif isinstance(kind, (list, tuple)) and kind and all(isinstance(v, str) for v in kind):
            properties[name] = {"enum": [*kind, None]}
        else:
            return None
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def schema_of(value: Any) -> dict[str, Any]:
    """A strict JSON schema from a JSON-schema dict, a pydantic model class, or the shorthand
    ``{"field": str | int | float | bool | ["choice", ...]}``."""
    if isinstance(value, Mapping):
        short = _shorthand_schema(value)
        if short is not None:
            return short
        value = dict(value)
    try:
        schema = json_schema_of(value)
    except TypeError as exc:
        raise PromptError(str(exc)) from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise PromptError(
            "the schema must describe an object with properties (one per output column), "
            f"got type {schema.get('type')!r}"
        )
    return schema


@dataclass(frozen=True)
class Task:
    """What each row asks for and how its answer becomes a value.

    ``kind``: ``"map"`` (free text, or the fields of ``schema``), ``"label"`` (one of
    ``labels``, or several with ``multi``), ``"extract"`` (the fields of ``schema``).
    """

    kind: TaskKind
    schema: dict[str, Any] | None = None
    labels: tuple[str, ...] = ()
    multi: bool = False

    @property
    def fields(self) -> list[str]:
        """The output column names."""
        if self.kind == "label":
            return ["labels" if self.multi else "label"]
        if self.schema is None:
            return ["answer"]
        return list(self.schema["properties"])

    @property
    def structured(self) -> bool:
        return self.schema is not None

    def instruction_suffix(self) -> str:
        if self.kind == "label":
            listed = ", ".join(self.labels)
            if self.multi:
                return f"Answer with every label that applies (possibly none), from: {listed}."
            return f"Answer with one of: {listed}."
        if self.kind == "extract":
            return (
                "Fill in each field of the answer format from the row's data; where the row "
                "does not say and the format allows it, use null rather than guess."
            )
        return ""

    def default_max_tokens(self) -> int:
        """A ceiling on the answer: exact for labels (their longest JSON), generous otherwise."""
        if self.kind == "label":
            longest: dict[str, Any] = (
                {"labels": list(self.labels)}
                if self.multi
                else {"label": max(self.labels, key=lambda s: len(s.encode()))}
            )
            # A token is at least one byte, so the answer's length in bytes bounds its tokens.
            return len(orjson.dumps(longest)) + _ANSWER_SLACK
        return 1024

    def to_spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "schema": self.schema,
            "labels": list(self.labels),
            "multi": self.multi,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Task:
        return cls(
            kind=spec["kind"],
            schema=spec.get("schema"),
            labels=tuple(spec.get("labels") or ()),
            multi=bool(spec.get("multi")),
        )

    def interpret(self, text: str, stop_reason: str | None) -> tuple[str, Any]:
        """``(status, value)`` for an answer's text: ``succeeded`` with the value, or
        ``max_tokens`` / ``refusal`` / ``invalid_output`` with None. Never coerced: an answer
        outside the labels or the schema is invalid, not replaced by a default."""
        if stop_reason == "refusal":
            return "refusal", None
        if not self.structured:
            # A cut text is still the model's own words: kept, and flagged by its status.
            return ("max_tokens" if stop_reason == "max_tokens" else "succeeded"), text
        if stop_reason == "max_tokens":
            return "max_tokens", None
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            return "invalid_output", None
        if self.kind == "label":
            return self._label(data)
        if not _valid(self.schema, data):
            return "invalid_output", None
        return "succeeded", data

    def _label(self, data: Any) -> tuple[str, Any]:
        key = "labels" if self.multi else "label"
        if not isinstance(data, dict) or set(data) != {key}:
            return "invalid_output", None
        value = data[key]
        allowed = self.labels
        if self.multi:
            if not isinstance(value, list) or not all(v in allowed for v in value):
                return "invalid_output", None
            return "succeeded", list(dict.fromkeys(value))  # as given, each label once
        if value not in allowed or not isinstance(value, str):
            return "invalid_output", None
        return "succeeded", value

    def dtypes(self) -> dict[str, tuple[str, list[Any] | None]]:
        """Per output column: a pandas dtype name and, for categoricals, the categories."""
        if self.kind == "label":
            return {
                self.fields[0]: ("object", None) if self.multi else ("category", [*self.labels])
            }
        if self.schema is None:
            return {"answer": ("string", None)}
        return {name: _dtype_of(prop) for name, prop in self.schema["properties"].items()}


def _valid(schema: Any, value: Any) -> bool:
    # The emulator's checker covers the JSON Schema that structured output accepts (objects,
    # enums, arrays, anyOf, $ref, formats, bounds) with no dependency: one checker for both.
    from ..schema_check import matches

    return matches(schema, value)


def _dtype_of(prop: Any) -> tuple[str, list[Any] | None]:
    """The pandas dtype for one schema property: nullable ints, floats, booleans and strings,
    categoricals for string enums, objects for the rest."""
    if not isinstance(prop, Mapping):
        return "object", None
    options: list[Any] = [prop]
    for key in ("anyOf", "oneOf"):
        if key in prop:
            options = [
                o for o in prop[key] if not (isinstance(o, Mapping) and o.get("type") == "null")
            ]
    if len(options) != 1 or not isinstance(options[0], Mapping):
        return "object", None
    option = options[0]
    enum = option.get("enum")
    if enum is not None:
        values = [v for v in enum if v is not None]
        if values and all(isinstance(v, str) for v in values):
            return "category", values
        return "object", None
    kinds = option.get("type")
    if isinstance(kinds, list):
        kinds = [k for k in kinds if k != "null"]
        kinds = kinds[0] if len(kinds) == 1 else None
    return {
        "integer": ("Int64", None),
        "number": ("Float64", None),
        "boolean": ("boolean", None),
        "string": ("string", None),
    }.get(str(kinds), ("object", None))


def map_task(schema: Any = None) -> Task:
    """A free-text answer per row, or with ``schema`` the fields of that schema."""
    return Task("map", schema_of(schema) if schema is not None else None)


def label_task(labels: Sequence[str] | str, *, multi: bool = False) -> Task:
    """One of ``labels`` per row (a list or ``"a, b, c"``), or with ``multi`` every label that
    applies; the answer is constrained to them by a schema with an enum. Labels that are not
    strings (numbers) are used as their text. Raises :class:`PromptError` (one line) for no
    labels (``None``, empty), empty or repeated ones."""
    if labels is None:
        raise PromptError(
            "labels are needed: the labels to choose from, e.g. ['positive', 'negative'] "
            "(or 'positive, negative')"
        )
    if isinstance(labels, str):
        labels = [part.strip() for part in labels.split(",")]
    elif isinstance(labels, (bytes, Mapping)) or not isinstance(labels, Iterable):
        raise PromptError(
            f"labels must be a list of strings, e.g. ['positive', 'negative'], "
            f"not {type(labels).__name__}"
        )
    cleaned = [str(label) for label in labels]
    if not cleaned or any(not label for label in cleaned):
        raise PromptError("labels must be a non-empty list of non-empty strings")
    if len(set(cleaned)) != len(cleaned):
        raise PromptError(f"labels must be distinct, got {cleaned}")
    key = "labels" if multi else "label"
    inner: dict[str, Any] = {"type": "string", "enum": cleaned}
    prop = {"type": "array", "items": inner} if multi else inner
    schema = {
        "type": "object",
        "properties": {key: prop},
        "required": [key],
        "additionalProperties": False,
    }
    return Task("label", schema, tuple(cleaned), multi)


def extract_task(schema: Any) -> Task:
    """The fields of ``schema`` (see :func:`schema_of`) from each row."""
    return Task("extract", schema_of(schema))
