"""Deterministic JSON values that satisfy a JSON Schema (tool inputs, structured output).

    generate_instance({"type": "object", "properties": {"n": {"type": "integer"}},
                       "required": ["n"]}, seed=7)          # -> {"n": 42}
    matches(schema, value)                                  # the checker the generator uses

Covers what tool schemas and pydantic's ``model_json_schema()`` use: objects (properties,
required, additionalProperties, min/maxProperties), arrays (items, prefixItems, min/maxItems,
uniqueItems, contains), strings (min/maxLength, simple ``pattern`` regexes, formats date,
date-time, time, email, uri, uuid, hostname, ipv4, ipv6), numbers and integers (bounds,
exclusive bounds, multipleOf), booleans, null, enum, const, anyOf/oneOf/allOf/not and ``$ref``
into ``$defs``/``definitions``. Every candidate is checked with `matches` and regenerated if it
fails, so a value that comes back satisfies the schema whenever the schema is one of these.
String enums prefer a value that occurs as a word in ``hint_text`` (the user's last message):
a labeling prompt that names the right label gets it.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from typing import Any

from ..schema_check import ANNOTATIONS as _ANNOTATIONS
from ..schema_check import SchemaChecker as _Checker
from ..schema_check import canonical_json as _canonical
from ..schema_check import matches
from ..schema_check import multiple_of as _multiple_of
from ..schema_check import resolve_pointer as _resolve_pointer

__all__ = ["generate_instance", "matches", "satisfying_instance", "schema_problem"]

Schema = Any  # a JSON Schema: a mapping or a boolean

_WORDS = (
    "amber", "anchor", "apple", "atlas", "basil", "beacon", "birch", "breeze", "cedar",
    "cinder", "clover", "comet", "coral", "delta", "ember", "falcon", "fern", "garnet",
    "harbor", "hazel", "indigo", "iris", "juniper", "kestrel", "lagoon", "lantern", "maple",
    "meadow", "nectar", "nova", "oak", "onyx", "orchid", "pebble", "pine", "quartz", "raven",
    "river", "saffron", "sage", "sierra", "spruce", "summit", "tidal", "topaz", "tundra",
    "velvet", "willow", "zephyr",
)  # fmt: skip

_SOFT_DEPTH = 4  # beyond this, only required properties and minimal arrays
_HARD_DEPTH = 12  # beyond this, recursion is cut off
_ATTEMPTS = 8
# Total sub-generations allowed per value: retries stop when it runs out, so a schema with no
# finite instance (every node requires another) ends quickly instead of retrying at each level.
_WORK_BUDGET = 20_000


def generate_instance(
    schema: Schema,
    seed: int | random.Random = 0,
    hint_text: str = "",
    *,
    hinted_optionals: bool = False,
) -> Any:
    """A value valid against ``schema`` (refs resolve against ``schema`` itself).

    ``hinted_optionals`` (tool inputs) leaves out an optional property unless its name (with
    ``_`` read as a space) is a word of ``hint_text``: a model passes what the request asks for,
    not every optional argument a tool has."""
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    return _Generator(schema, rng, hint_text, hinted_optionals).generate(schema, 0)


def schema_problem(schema: Schema) -> str | None:
    """Why the emulator cannot produce a value for ``schema``, or None when it can.

    The probe is the value `satisfying_instance` falls back on: a schema that passes here
    always gets a valid instance. Any failure of the generator or the checker on a strange
    schema is the schema's problem (a 400), never the emulator's (a 500).
    """
    try:
        if matches(schema, generate_instance(schema, 0)):
            return None
    except Exception:  # a hostile schema may break the generator in many ways
        pass
    return (
        "no JSON value satisfies it (look for contradictory keywords, such as minLength above "
        "maxLength, an empty enum, or a required property that additionalProperties forbids)"
    )


def satisfying_instance(
    schema: Schema,
    seed: int | random.Random,
    hint_text: str = "",
    *,
    hinted_optionals: bool = False,
) -> Any:
    """`generate_instance`, checked: a value valid against ``schema``.

    When the seeded attempt fails, the probe value of `schema_problem` (seed 0, no hint) is
    returned; callers check schemas with `schema_problem` first, so that one is valid.
    """
    try:
        value = generate_instance(schema, seed, hint_text, hinted_optionals=hinted_optionals)
        if matches(schema, value):
            return value
    except Exception:  # the probe below is known to work
        pass
    return generate_instance(schema, 0)


# --------------------------------------------------------------------------- regex patterns


class _PatternError(ValueError):
    pass


_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_WORDCHARS = _LOWER + _LOWER.upper() + _DIGITS + "_"
_PRINTABLE = [chr(c) for c in range(32, 127)]
_CLASS_ESCAPES = {"d": _DIGITS, "w": _WORDCHARS, "s": " ", "D": _LOWER, "W": " -", "S": _LOWER}


class _PatternParser:
    """A small regex parser producing a tree we can sample strings from.

    Tree nodes: ("alt", [seq, ...]), ("seq", [(atom, lo, hi), ...]), ("chars", str),
    ("empty",). Lookarounds, anchors and word boundaries generate nothing.
    """

    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0

    def parse(self) -> tuple[Any, ...]:
        node = self._alt()
        if self.pos != len(self.src):
            raise _PatternError("unbalanced parenthesis")
        return node

    def _peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def _alt(self) -> tuple[Any, ...]:
        options = [self._seq()]
        while self._peek() == "|":
            self.pos += 1
            options.append(self._seq())
        return ("alt", options)

    def _seq(self) -> tuple[Any, ...]:
        items: list[tuple[Any, int, int]] = []
        while self._peek() not in ("", "|", ")"):
            atom = self._atom()
            lo, hi = self._quantifier()
            items.append((atom, lo, hi))
        return ("seq", items)

    def _quantifier(self) -> tuple[int, int]:
        char = self._peek()
        lo, hi = 1, 1
        if char == "*":
            lo, hi = 0, -1
        elif char == "+":
            lo, hi = 1, -1
        elif char == "?":
            lo, hi = 0, 1
        elif char == "{":
            match = re.match(r"\{(\d*)(,?)(\d*)\}", self.src[self.pos :])
            if match is None or not (match.group(1) or match.group(3)):
                return 1, 1  # a literal brace
            lo = int(match.group(1) or 0)
            hi = int(match.group(3)) if match.group(3) else (-1 if match.group(2) else lo)
            self.pos += len(match.group(0)) - 1
        else:
            return 1, 1
        self.pos += 1
        if self._peek() in ("?", "+"):  # lazy / possessive: same strings
            self.pos += 1
        return lo, hi

    def _atom(self) -> tuple[Any, ...]:
        char = self._peek()
        self.pos += 1
        if char == "(":
            if self.src.startswith("?", self.pos):
                if self.src.startswith(("?=", "?!", "?<=", "?<!"), self.pos):
                    depth = 1
                    while self.pos < len(self.src) and depth:
                        depth += {"(": 1, ")": -1}.get(self.src[self.pos], 0)
                        self.pos += 1
                    return ("empty",)
                if self.src.startswith("?:", self.pos):
                    self.pos += 2
                elif self.src.startswith("?P<", self.pos) or self.src.startswith("?<", self.pos):
                    self.pos = self.src.index(">", self.pos) + 1
                else:
                    raise _PatternError("unsupported group")
            node = self._alt()
            if self._peek() != ")":
                raise _PatternError("missing )")
            self.pos += 1
            return node
        if char in ("^", "$"):
            return ("empty",)
        if char == ".":
            return ("chars", _LOWER)
        if char == "[":
            return ("chars", self._char_class())
        if char == "\\":
            return self._escape(in_class=False)
        if char in ("*", "+", "?"):
            raise _PatternError("nothing to repeat")
        return ("chars", char)

    def _escape(self, in_class: bool) -> tuple[Any, ...]:
        char = self._peek()
        self.pos += 1
        if char in _CLASS_ESCAPES:
            return ("chars", _CLASS_ESCAPES[char])
        if char in ("b", "B", "A", "Z", "z") and not in_class:
            return ("empty",)
        if char == "u":
            code = self.src[self.pos : self.pos + 4]
            self.pos += 4
            return ("chars", chr(int(code, 16)))
        if char == "x":
            code = self.src[self.pos : self.pos + 2]
            self.pos += 2
            return ("chars", chr(int(code, 16)))
        if char.isdigit() and not in_class:
            raise _PatternError("backreferences are not supported")
        return ("chars", {"n": "\n", "t": "\t", "r": "\r"}.get(char, char))

    def _char_class(self) -> str:
        negate = self._peek() == "^"
        if negate:
            self.pos += 1
        chars: list[str] = []
        first = True
        while True:
            char = self._peek()
            if char == "":
                raise _PatternError("missing ]")
            if char == "]" and not first:
                self.pos += 1
                break
            first = False
            if char == "\\":
                self.pos += 1
                single = self._escape(in_class=True)[1]
            else:
                self.pos += 1
                single = char
            if (
                len(single) == 1
                and self._peek() == "-"
                and self.src[self.pos + 1 : self.pos + 2] not in ("]", "")
            ):
                self.pos += 1
                end = self._peek()
                self.pos += 1
                if end == "\\":
                    end = self._escape(in_class=True)[1]
                chars.extend(chr(c) for c in range(ord(single), ord(end) + 1))
            else:
                chars.extend(single)
        if negate:
            excluded = set(chars)
            return "".join(c for c in _PRINTABLE if c not in excluded and c.isalnum()) or "~"
        return "".join(dict.fromkeys(chars))


def _sample_pattern(node: tuple[Any, ...], rng: random.Random, out: list[str]) -> None:
    kind = node[0]
    if kind == "alt":
        _sample_pattern(rng.choice(node[1]), rng, out)
    elif kind == "seq":
        for atom, lo, hi in node[1]:
            top = lo + 3 if hi < 0 else hi
            for _ in range(rng.randint(lo, max(lo, min(top, lo + 3)))):
                _sample_pattern(atom, rng, out)
    elif kind == "chars":
        chars = node[1]
        # Prefer readable characters when the class allows them.
        readable = [c for c in chars if c.isalnum()] or list(chars)
        out.append(rng.choice(readable))


def _from_pattern(pattern: str, rng: random.Random) -> str | None:
    try:
        tree = _PatternParser(pattern).parse()
    except (_PatternError, ValueError, IndexError):
        return None
    out: list[str] = []
    _sample_pattern(tree, rng, out)
    return "".join(out)


# --------------------------------------------------------------------------- generation


def _merge(base: Mapping[str, Any], extra: Schema) -> dict[str, Any]:
    """Combine two schemas that must both hold (used for allOf and $ref siblings)."""
    merged = dict(base)
    if not isinstance(extra, Mapping):
        return merged
    for key, value in extra.items():
        if key == "properties" and "properties" in merged:
            props = dict(merged["properties"])
            for name, sub in value.items():
                props[name] = (
                    {"allOf": [props[name], sub]} if name in props and props[name] != sub else sub
                )
            merged["properties"] = props
        elif key == "required" and "required" in merged:
            merged["required"] = list(dict.fromkeys([*merged["required"], *value]))
        elif key in ("minimum", "minLength", "minItems", "exclusiveMinimum", "minProperties"):
            merged[key] = max(merged[key], value) if key in merged else value
        elif key in ("maximum", "maxLength", "maxItems", "exclusiveMaximum", "maxProperties"):
            merged[key] = min(merged[key], value) if key in merged else value
        elif key in ("allOf", "anyOf", "oneOf") and key in merged:
            merged["allOf"] = [*merged.get("allOf", []), {key: merged.pop(key)}, {key: value}]
        elif key == "type" and "type" in merged:
            a = {merged["type"]} if isinstance(merged["type"], str) else set(merged["type"])
            b = {value} if isinstance(value, str) else set(value)
            if ("number" in a and "integer" in b) or ("number" in b and "integer" in a):
                a, b = a | {"integer"}, b | {"integer"}
            common = sorted(a & b)
            merged["type"] = common[0] if len(common) == 1 else common
        else:
            merged.setdefault(key, value)
    return merged


def _is_terminal(schema: Schema) -> bool:
    """A branch that cannot recurse (used to stop deep recursive schemas)."""
    if not isinstance(schema, Mapping):
        return True
    text = _canonical(schema)
    return b'"$ref"' not in text and schema.get("type") not in ("object", "array")


class _Generator:
    def __init__(
        self, root: Schema, rng: random.Random, hint_text: str, hinted_optionals: bool = False
    ) -> None:
        self.root = root
        self.rng = rng
        self.hint = hint_text
        self.hinted_optionals = hinted_optionals
        self.checker = _Checker(root)
        self.work = 0

    # The entry point: generate, check, and retry with fresh random draws if needed.
    def generate(self, schema: Schema, depth: int) -> Any:
        value = self._one(schema, depth)
        for _ in range(_ATTEMPTS):
            if self.work > _WORK_BUDGET or self.checker.check(schema, value, 0):
                return value
            value = self._one(schema, depth)
        return value

    def _one(self, schema: Schema, depth: int) -> Any:
        self.work += 1
        if schema is True or not isinstance(schema, Mapping):
            return self._words(1, 3)
        if schema is False:
            return None
        if depth > _HARD_DEPTH:
            return self._minimal(schema)
        if "$ref" in schema:
            target = _resolve_pointer(self.root, schema["$ref"])
            rest = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
            if not rest:
                return self._one(target, depth + 1)
            return self._one(_merge(rest, target), depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._enum(schema)
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                if isinstance(part, Mapping) and "$ref" in part:
                    part = _merge(
                        {k: v for k, v in part.items() if k not in _ANNOTATIONS},
                        _resolve_pointer(self.root, part["$ref"]),
                    )
                merged = _merge(merged, part)
            return self._one(merged, depth + 1)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return self._choice(schema, key, depth)
        kind = self._type(schema)
        if kind == "null":
            return None
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind in ("integer", "number"):
            return self._number(schema, kind == "integer")
        if kind == "string":
            return self._string(schema)
        if kind == "array":
            return self._array(schema, depth)
        return self._object(schema, depth)

    def _minimal(self, schema: Mapping[str, Any], hops: int = 0) -> Any:
        """The smallest value we can make without recursing further."""
        if "$ref" in schema and hops < 8:
            target = _resolve_pointer(self.root, schema["$ref"])
            if isinstance(target, Mapping):
                return self._minimal(target, hops + 1)
        types = schema.get("type")
        if types == "null" or (isinstance(types, list) and "null" in types):
            return None
        for key in ("anyOf", "oneOf"):
            for option in schema.get(key, ()):
                if isinstance(option, Mapping) and option.get("type") == "null":
                    return None
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        kind = self._type(schema)
        if kind == "array":
            return []
        if kind == "object":
            return {}
        if kind == "boolean":
            return False
        if kind in ("integer", "number"):
            return self._number(schema, kind == "integer")
        return self._string(schema)

    def _type(self, schema: Mapping[str, Any]) -> str:
        types = schema.get("type")
        if isinstance(types, list):
            non_null = [t for t in types if t != "null"]
            return non_null[0] if non_null else "null"
        if isinstance(types, str):
            return types
        if any(k in schema for k in ("properties", "required", "additionalProperties")):
            return "object"
        if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "multipleOf", "exclusiveMinimum")):
            return "number"
        return "string"

    def _enum(self, schema: Mapping[str, Any]) -> Any:
        values = list(schema["enum"])
        valid = [v for v in values if self.checker.check(schema, v, 0)] or values
        named = [
            v
            for v in valid
            if isinstance(v, str)
            and v
            and re.search(rf"(?<!\w){re.escape(v)}(?!\w)", self.hint, re.IGNORECASE)
        ]
        return self.rng.choice(named or valid)

    def _choice(self, schema: Mapping[str, Any], key: str, depth: int) -> Any:
        options = list(schema[key])
        rest = {k: v for k, v in schema.items() if k != key}
        if depth >= _SOFT_DEPTH:
            # Deep in a recursive schema: try the branches that end the recursion first.
            options.sort(key=lambda o: not _is_terminal(o))
        else:
            # Real values rather than nulls: prefer non-null branches, then shuffle them.
            non_null = [
                o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")
            ]
            self.rng.shuffle(non_null)
            options = non_null + [o for o in options if o not in non_null]
        value: Any = None
        for option in options:
            target = option
            if isinstance(option, Mapping) and "$ref" in option:
                target = _resolve_pointer(self.root, option["$ref"])
            candidate = self._one(_merge(rest, target) if rest else target, depth + 1)
            for _ in range(3):
                if self.checker.check(schema, candidate, 0):
                    return candidate
                candidate = self._one(_merge(rest, target) if rest else target, depth + 1)
            value = candidate
        return value

    def _number(self, schema: Mapping[str, Any], integer: bool) -> int | float:
        lo = schema.get("minimum")
        hi = schema.get("maximum")
        ex_lo = schema.get("exclusiveMinimum")
        ex_hi = schema.get("exclusiveMaximum")
        # Draft 4 style booleans: exclusiveMinimum: true means minimum is exclusive.
        if isinstance(ex_lo, bool):
            ex_lo, lo = (lo if ex_lo else None), (None if ex_lo else lo)
        if isinstance(ex_hi, bool):
            ex_hi, hi = (hi if ex_hi else None), (None if ex_hi else hi)
        step = schema.get("multipleOf")
        if integer:
            low = max(
                math.ceil(lo) if lo is not None else -(10**9),
                math.floor(ex_lo) + 1 if ex_lo is not None else -(10**9),
            )
            high = min(
                math.floor(hi) if hi is not None else 10**9,
                math.ceil(ex_hi) - 1 if ex_hi is not None else 10**9,
            )
            low, high = self._span(low, high)
            if step:
                for _ in range(20):
                    k = self.rng.randint(
                        math.ceil(low / step), max(math.ceil(low / step), math.floor(high / step))
                    )
                    value = k * step
                    if float(value).is_integer() and _multiple_of(int(value), step):
                        return int(value)
                return int(math.ceil(low / step) * step)
            return self.rng.randint(int(low), int(high))
        low_f = max(
            float(lo) if lo is not None else -1e9, float(ex_lo) if ex_lo is not None else -1e9
        )
        high_f = min(
            float(hi) if hi is not None else 1e9, float(ex_hi) if ex_hi is not None else 1e9
        )
        low_f, high_f = self._span(low_f, high_f)
        if step:
            first, last = math.ceil(low_f / step), math.floor(high_f / step)
            for _ in range(20):
                k = self.rng.randint(first, max(first, last))
                for candidate in (round(k * step, 10), k * step):
                    if self._in_bounds(candidate, lo, hi, ex_lo, ex_hi) and _multiple_of(
                        candidate, step
                    ):
                        return float(candidate)
            return float(first * step)
        for _ in range(20):
            value = round(self.rng.uniform(low_f, high_f), 2)
            if self._in_bounds(value, lo, hi, ex_lo, ex_hi):
                return value
        return (low_f + high_f) / 2

    @staticmethod
    def _in_bounds(value: float, lo: Any, hi: Any, ex_lo: Any, ex_hi: Any) -> bool:
        return (
            (lo is None or value >= lo)
            and (hi is None or value <= hi)
            and (ex_lo is None or value > ex_lo)
            and (ex_hi is None or value < ex_hi)
        )

    @staticmethod
    def _span(low: float, high: float) -> tuple[float, float]:
        # Unbounded sides get a small friendly range next to the bound that exists.
        if low <= -1e9 < high < 1e9:
            low = high - 100
        elif high >= 1e9 and low > -1e9:
            high = low + 100
        elif low <= -1e9 and high >= 1e9:
            low, high = 0, 100
        return low, high

    def _words(self, lo: int, hi: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(self.rng.randint(lo, hi)))

    def _format(self, fmt: str) -> str | None:
        rng = self.rng
        date = f"{rng.randint(2020, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        time = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        word = rng.choice(_WORDS)
        values = {
            "date": date,
            "date-time": f"{date}T{time}",
            "time": time,
            "email": f"{word}.{rng.choice(_WORDS)}@example.com",
            "idn-email": f"{word}@example.com",
            "uri": f"https://example.com/{word}",
            "url": f"https://example.com/{word}",
            "iri": f"https://example.com/{word}",
            "uri-reference": f"/{word}",
            "hostname": f"{word}.example.com",
            "idn-hostname": f"{word}.example.com",
            "ipv4": f"192.0.2.{rng.randint(1, 254)}",
            "ipv6": f"2001:db8::{rng.randint(1, 0xFFFF):x}",
            "duration": f"P{rng.randint(1, 30)}D",
        }
        if fmt == "uuid":
            bits = rng.getrandbits(128)
            bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
            bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
            text = f"{bits:032x}"
            return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        return values.get(fmt)

    def _string(self, schema: Mapping[str, Any]) -> str:
        min_len = int(schema.get("minLength", 0))
        max_len = schema.get("maxLength")
        if "format" in schema:
            value = self._format(str(schema["format"]))
            if value is not None:
                return value
        if "pattern" in schema:
            for _ in range(_ATTEMPTS):
                value = _from_pattern(str(schema["pattern"]), self.rng)
                if value is None:
                    break
                if (
                    len(value) >= min_len
                    and (max_len is None or len(value) <= max_len)
                    and re.search(schema["pattern"], value)
                ):
                    return value
        text = self._words(1, 3)
        while len(text) < min_len:
            text += " " + self.rng.choice(_WORDS)
        if max_len is not None and len(text) > max_len:
            text = text[: int(max_len)]
            if len(text.rstrip()) >= min_len:
                text = text.rstrip()
        return text

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", True)
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        if items is False:
            hi = len(prefix) if hi is None else min(int(hi), len(prefix))
        contains = schema.get("contains")
        needed = int(schema.get("minContains", 1)) if contains is not None else 0
        lo = max(lo, needed)
        if depth >= _SOFT_DEPTH:
            count = lo
        else:
            top = lo + 2 if hi is None else min(int(hi), max(lo, 1) + 2)
            count = self.rng.randint(min(max(lo, 1), top), top) if top > 0 else 0
        unique = bool(schema.get("uniqueItems"))
        out: list[Any] = []
        seen: set[bytes] = set()
        misses = 0
        while len(out) < count and misses < 20:
            index = len(out)
            if index < len(prefix):
                sub = prefix[index]
            elif needed > 0:
                sub = contains if items is True else _merge(dict(items), contains)
            else:
                sub = items
            value = self.generate(sub, depth + 1)
            key = _canonical(value)
            if unique and key in seen:
                misses += 1
                continue
            if index >= len(prefix) and needed > 0:
                needed -= 1
            seen.add(key)
            out.append(value)
        return out

    def _wanted(self, key: str) -> bool:
        """Whether an optional property goes in (always, unless only hinted ones do)."""
        if not self.hinted_optionals:
            return True
        words = re.escape(key.replace("_", " ")).replace(r"\ ", r"[\s_]+")
        return re.search(rf"(?<![\w-]){words}(?![\w-])", self.hint, re.IGNORECASE) is not None

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        extra = schema.get("additionalProperties", True)
        min_props = int(schema.get("minProperties", 0))
        max_props = schema.get("maxProperties")
        keys = list(required)
        if depth < _SOFT_DEPTH:
            keys += [k for k in props if k not in keys and self._wanted(k)]
        for key, needed in schema.get("dependentRequired", {}).items():
            if key in keys:
                keys += [n for n in needed if n not in keys]
        if max_props is not None and len(keys) > max_props:
            keys = keys[: max(int(max_props), len(required))]
        out: dict[str, Any] = {}
        for key in keys:
            sub = props.get(key, extra if isinstance(extra, Mapping) else True)
            out[key] = self.generate(sub, depth + 1)
        spare = [k for k in props if k not in out]
        counter = 1
        while len(out) < min_props:
            if spare:
                key = spare.pop(0)
                out[key] = self.generate(props[key], depth + 1)
            elif extra is False:
                break
            else:
                out[f"extra_{counter}"] = self.generate(
                    extra if isinstance(extra, Mapping) else True, depth + 1
                )
                counter += 1
        return out
