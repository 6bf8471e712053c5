"""A small JSON Schema checker: does a value satisfy a schema? Standard library (and orjson) only.

    matches({"type": "string", "enum": ["yes", "no"]}, "yes")        # True
    mismatch({"type": "object", "required": ["n"]}, {}, name="input")  # 'input: missing ...'

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
    "mismatch",
    "multiple_of",
    "resolve_pointer",
]

Schema = Any  # a JSON Schema: a mapping or a boolean


def matches(schema: Schema, value: Any, root: Schema | None = None) -> bool:
    """Whether ``value`` satisfies ``schema`` (``root`` resolves ``$ref``s; default: schema)."""
    return SchemaChecker(schema if root is None else root).check(schema, value, 0)


def mismatch(
    schema: Schema, value: Any, root: Schema | None = None, *, name: str = "value"
) -> str | None:
    """Why ``value`` does not satisfy ``schema``, in one line that names where (``input.rows:
    expected string or null, got integer 3``), or None when it does. :func:`matches` decides;
    this only looks for the first place that explains its no."""
    checker = SchemaChecker(schema if root is None else root)
    if checker.check(schema, value, 0):
        return None
    return _Explainer(checker).explain(schema, value, name, 0)


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


# --------------------------------------------------------------------------- explaining a no


def _short(value: Any) -> str:
    try:
        text = canonical_json(value).decode()
    except TypeError:  # not JSON (a tuple key, an int beyond 64 bits): the repr says enough
        text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _kind(value: Any) -> str:
    types = _types_of(value) - {"number"} if isinstance(value, int) else _types_of(value)
    kind = sorted(types)[0] if types else type(value).__name__
    return kind if kind in ("null", "object", "array") else f"{kind} {_short(value)}"


# Keywords _Explainer follows itself, or that only mean something next to another one.
_EXPLAINED = frozenset(
    {"type", "allOf", "anyOf", "oneOf", "properties", "required", "additionalProperties"}
    | {"patternProperties", "items", "prefixItems", "minContains", "maxContains"}
)


class _Explainer:
    """Walks a schema where a value fails it and names the first part that fails; every
    verdict is the checker's, so the explanation never disagrees with :func:`matches`."""

    def __init__(self, checker: SchemaChecker) -> None:
        self.checker = checker

    def explain(self, schema: Schema, value: Any, where: str, depth: int) -> str:
        check = self.checker.check
        if not isinstance(schema, Mapping) or depth > 64:
            return f"{where}: not allowed here"
        if "$ref" in schema:
            target = resolve_pointer(self.checker.root, schema["$ref"])
            if not check(target, value, depth + 1):
                return self.explain(target, value, where, depth + 1)
        types = schema.get("type")
        if types is not None:
            wanted = [types] if isinstance(types, str) else list(types)
            if not set(wanted) & _types_of(value):
                return f"{where}: expected {' or '.join(wanted)}, got {_kind(value)}"
        if "const" in schema and not check({"const": schema["const"]}, value, depth):
            return f"{where}: expected {_short(schema['const'])}, got {_kind(value)}"
        if "enum" in schema and not check({"enum": schema["enum"]}, value, depth):
            allowed = ", ".join(_short(v) for v in schema["enum"][:12])
            return f"{where}: expected one of {allowed}, got {_kind(value)}"
        if isinstance(value, dict):
            found = self._explain_object(schema, value, where, depth)
            if found:
                return found
        if isinstance(value, list):
            found = self._explain_array(schema, value, where, depth)
            if found:
                return found
        for keyword in ("allOf", "anyOf", "oneOf"):
            options = schema.get(keyword)
            if options is not None and not check({keyword: options}, value, depth):
                return self._explain_options(keyword, options, value, where, depth)
        # Whatever is left is a keyword on its own (a pattern, a bound): name those that fail.
        failing = [
            f"{k}={_short(v)}"
            for k, v in schema.items()
            if k not in ANNOTATIONS and k not in _EXPLAINED and not check({k: v}, value, depth)
        ]
        return f"{where}: {_kind(value)} does not satisfy {', '.join(failing) or 'the schema'}"

    def _explain_object(
        self, schema: Mapping[str, Any], value: dict[str, Any], where: str, depth: int
    ) -> str | None:
        for key in schema.get("required", ()):
            if key not in value:
                return f"{where}: missing required field `{key}`"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        patterns = schema.get("patternProperties", {})
        for key, item in value.items():
            if key in props:
                if not self.checker.check(props[key], item, depth + 1):
                    return self.explain(props[key], item, f"{where}.{key}", depth + 1)
                continue
            if any(re.search(p, key) for p in patterns):
                continue
            if extra is False:
                known = ", ".join(f"`{k}`" for k in props) or "none"
                return f"{where}: unexpected field `{key}` (the fields are: {known})"
            if not self.checker.check(extra, item, depth + 1):
                return self.explain(extra, item, f"{where}.{key}", depth + 1)
        return None

    def _explain_array(
        self, schema: Mapping[str, Any], value: list[Any], where: str, depth: int
    ) -> str | None:
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", True)
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else items
            if not self.checker.check(sub, item, depth + 1):
                return self.explain(sub, item, f"{where}[{i}]", depth + 1)
        if len(value) < schema.get("minItems", 0):
            return f"{where}: expected at least {schema['minItems']} items, got {len(value)}"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{where}: expected at most {schema['maxItems']} items, got {len(value)}"
        if schema.get("uniqueItems") and not self.checker.check({"uniqueItems": True}, value, 0):
            return f"{where}: expected unique items, got repeats"
        return None

    def _explain_options(
        self, keyword: str, options: list[Any], value: Any, where: str, depth: int
    ) -> str:
        failing = [o for o in options if not self.checker.check(o, value, depth + 1)]
        if keyword == "oneOf" and len(failing) < len(options):
            return f"{where}: {_kind(value)} matches more than one of the allowed forms"
        if keyword == "allOf" or len(failing) == 1:
            return self.explain(failing[0], value, where, depth + 1)
        # Of the forms whose type fits, the first explains best (`int | list[int]` given [1.5]).
        kinds = _types_of(value)
        for option in failing:
            wanted = option.get("type") if isinstance(option, Mapping) else None
            wanted_set = {wanted} if isinstance(wanted, str) else set(wanted or ())
            if wanted_set & kinds:
                return self.explain(option, value, where, depth + 1)
        names = [o["type"] for o in failing if isinstance(o, Mapping) and "type" in o]
        if len(names) == len(failing):
            flat = [n for t in names for n in ([t] if isinstance(t, str) else list(t))]
            return f"{where}: expected {' or '.join(flat)}, got {_kind(value)}"
        return f"{where}: {_kind(value)} matches none of the allowed forms"
