"""A small JSON Schema checker: does a value satisfy a schema? Standard library (and orjson) only.

    matches({"type": "string", "enum": ["yes", "no"]}, "yes")        # True

Used to validate structured answers (a label outside the set is ``invalid_output``) and by the
emulator, whose generated tool inputs and structured outputs must satisfy their schemas. Covers
the keywords tool schemas and pydantic's ``model_json_schema()`` use: type, enum, const,
properties, required, additionalProperties, min/maxProperties, items, prefixItems, min/maxItems,
uniqueItems, contains, min/maxLength, pattern, numeric bounds, multipleOf, anyOf/oneOf/allOf/not
and local ``$ref``s. Unknown keywords are annotations; remote ``$ref``s accept anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

__all__ = [
    "ANNOTATIONS",
    "SchemaChecker",
    "canonical_json",
    "matches",
    "multiple_of",
    "resolve_pointer",
]

Schema = Any  # a JSON Schema: a mapping or a boolean


def matches(schema: Schema, value: Any, root: Schema | None = None) -> bool:
    """Whether ``value`` satisfies ``schema`` (``root`` resolves ``$ref``s; default: schema)."""
    return SchemaChecker(schema if root is None else root).check(schema, value, 0)


# --------------------------------------------------------------------------- references


def resolve_pointer(root: Schema, ref: str) -> Schema:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return True  # remote references cannot be followed offline: accept anything
    node: Any = root
    for part in ref[2:].split("/"):
        key = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return True
    return node


ANNOTATIONS = frozenset(
    {
        "$ref",
        "$defs",
        "definitions",
        "$schema",
        "$id",
        "title",
        "description",
        "examples",
        "default",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)


def _json_equal(a: Any, b: Any) -> bool:
    # In JSON, true != 1 and 1 == 1.0; Python's == gets the first wrong.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _types_of(value: Any) -> set[str]:
    if value is None:
        return {"null"}
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number", "integer"} if value.is_integer() else {"number"}
    if isinstance(value, str):
        return {"string"}
    if isinstance(value, list):
        return {"array"}
    if isinstance(value, dict):
        return {"object"}
    return set()


def multiple_of(value: float, divisor: float) -> bool:
    # The same arithmetic as the jsonschema package, so both agree on float edge cases.
    if isinstance(divisor, float):
        quotient = value / divisor
        try:
            return int(quotient) == quotient
        except OverflowError:
            return False
    return not value % divisor


class SchemaChecker:
    def __init__(self, root: Schema) -> None:
        self.root = root

    def check(self, schema: Schema, value: Any, depth: int) -> bool:
        if schema is True or schema == {}:
            return True
        if schema is False:
            return False
        if not isinstance(schema, Mapping) or depth > 64:
            return True
        if "$ref" in schema and not self.check(
            resolve_pointer(self.root, schema["$ref"]), value, depth + 1
        ):
            return False
        types = schema.get("type")
        if types is not None:
            wanted = {types} if isinstance(types, str) else set(types)
            if not wanted & _types_of(value):
                return False
        if "const" in schema and not _json_equal(schema["const"], value):
            return False
        if "enum" in schema and not any(_json_equal(e, value) for e in schema["enum"]):
            return False
        if isinstance(value, str) and not isinstance(value, bool):
            if len(value) < schema.get("minLength", 0):
                return False
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                return False
            if "pattern" in schema:
                try:
                    if re.search(schema["pattern"], value) is None:
                        return False
                except re.error:
                    pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                return False
            if "maximum" in schema and value > schema["maximum"]:
                return False
            if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
                return False
            if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
                return False
            if "multipleOf" in schema and not multiple_of(value, schema["multipleOf"]):
                return False
        if isinstance(value, dict) and not self._check_object(schema, value, depth):
            return False
        if isinstance(value, list) and not self._check_array(schema, value, depth):
            return False
        if "allOf" in schema and not all(self.check(s, value, depth + 1) for s in schema["allOf"]):
            return False
        if "anyOf" in schema and not any(self.check(s, value, depth + 1) for s in schema["anyOf"]):
            return False
        if "oneOf" in schema:
            hits = sum(1 for s in schema["oneOf"] if self.check(s, value, depth + 1))
            if hits != 1:
                return False
        return not ("not" in schema and self.check(schema["not"], value, depth + 1))

    def _check_object(self, schema: Mapping[str, Any], value: dict[str, Any], depth: int) -> bool:
        props = schema.get("properties", {})
        if any(key not in value for key in schema.get("required", ())):
            return False
        if len(value) < schema.get("minProperties", 0):
            return False
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            return False
        patterns = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            covered = False
            if key in props:
                covered = True
                if not self.check(props[key], item, depth + 1):
                    return False
            for pattern, sub in patterns.items():
                if re.search(pattern, key):
                    covered = True
                    if not self.check(sub, item, depth + 1):
                        return False
            if not covered and not self.check(extra, item, depth + 1):
                return False
        for key, needed in schema.get("dependentRequired", {}).items():
            if key in value and any(n not in value for n in needed):
                return False
        return True

    def _check_array(self, schema: Mapping[str, Any], value: list[Any], depth: int) -> bool:
        if len(value) < schema.get("minItems", 0):
            return False
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return False
        prefix = schema.get("prefixItems", [])
        for item, sub in zip(value, prefix, strict=False):
            if not self.check(sub, item, depth + 1):
                return False
        items = schema.get("items", True)
        if any(not self.check(items, item, depth + 1) for item in value[len(prefix) :]):
            return False
        if schema.get("uniqueItems"):
            seen = [canonical_json(v) for v in value]
            if len(set(seen)) != len(seen):
                return False
        if "contains" in schema:
            found = sum(1 for item in value if self.check(schema["contains"], item, depth + 1))
            if found < schema.get("minContains", 1):
                return False
            if "maxContains" in schema and found > schema["maxContains"]:
                return False
        return True
