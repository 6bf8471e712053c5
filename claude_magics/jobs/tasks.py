"""What a DataFrame job asks of each row, and how an answer becomes a value (or is refused).

    task = label_task(["positive", "negative", "neutral"])     # or extract_task(schema), map_task()
    task.interpret('{"label": "positive"}', "end_turn")        # -> ("succeeded", "positive")

Three kinds: ``map`` (free text, or the fields of a schema), ``label`` (one of the labels, or
several with ``multi``) and ``extract`` (the fields of a schema). Labels and schemas become
structured output (an enum of the labels, or the schema), so the answer is constrained by the
API; the answer is still checked here, and anything outside the labels or the schema is
``invalid_output``, never coerced into a value. :meth:`Task.dtypes` says which pandas dtype
each output column gets.

A label task can say more: what each label means (``descriptions``) and worked examples
(``examples``), both in the shared instruction (:meth:`Task.instruction_suffix`, part of the
cached prefix of every request); ``abstain`` adds the answer :data:`ABSTAIN` (``"unsure"``),
which gives the row the status ``abstained`` and no label; ``rationale`` and ``confidence`` add
a short reason and the model's own 0..1 confidence to the answer's schema, each an output column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

from ..prompt import PromptError
from ..prompt.body import json_schema_of

__all__ = [
    "ABSTAIN",
    "ABSTAINED",
    "Task",
    "TaskKind",
    "extract_task",
    "label_task",
    "map_task",
    "schema_of",
]

TaskKind = Literal["map", "label", "extract"]

#: How a stored answer with citations starts (``wire.message_row``): then JSON, with the
#: answer's text and its citations as ``[start, end, page, cited_text]`` offsets into it.
CITED = "\x00cited\x00"

#: The answer ``abstain=True`` adds to the labels: the model says it cannot tell. Never a label:
#: the row's label is missing and its ``claude_status`` is :data:`ABSTAINED`.
ABSTAIN = "unsure"
#: The status of a row whose answer was :data:`ABSTAIN`.
ABSTAINED = "abstained"

# Output tokens a structured answer may take beyond its own JSON (spaces, a newline).
_ANSWER_SLACK = 16
# Output tokens allowed for a rationale (asked for in one short sentence).
_RATIONALE_TOKENS = 120
# The longest ``"confidence": 0.xxx`` a model writes, in bytes (so in tokens at most).
_CONFIDENCE_BYTES = len(b',"confidence":0.12345678901234567')
_RATIONALE_SCHEMA = {"type": "string", "description": "Why this answer, in one short sentence."}
_CONFIDENCE_SCHEMA = {
    "type": "number",
    "description": "The probability, from 0 to 1, that the answer is right.",
}
# Text in an example that could open or close the tags examples are shown in.
_EXAMPLE_TAGS = re.compile(r"<(?=/?\s*(?:example|text|label|labels)\b)", re.IGNORECASE)


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
    ``descriptions``: (label or field, what it means) pairs, said in the shared instruction
    (and, for fields, in the schema); ``examples``: (text, answer) pairs shown there, the answer
    a label (a tuple of labels with ``multi``). ``abstain``, ``rationale`` and ``confidence``
    are for labels only: see :func:`label_task`.
    """

    kind: TaskKind
    schema: dict[str, Any] | None = None
    labels: tuple[str, ...] = ()
    multi: bool = False
    descriptions: tuple[tuple[str, str], ...] = ()
    examples: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    abstain: bool = False
    rationale: bool = False
    confidence: bool = False
    #: Citations asked of each row's document (``files=``): the answer's fields come as JSON in
    #: text (the API refuses citations with ``output_config.format``), each with the page and
    #: text it cites in ``<field>_cite_page`` and ``<field>_cite_text``.
    citations: bool = False

    @property
    def _answer_key(self) -> str:
        return "labels" if self.multi else "label"

    @property
    def fields(self) -> list[str]:
        """The output column names."""
        if self.kind == "label":
            extras = ["rationale"] * self.rationale + ["confidence"] * self.confidence
            return [self._answer_key, *extras]
        if self.citations:
            return list(self.dtypes())
        if self.schema is None:
            return ["answer"]
        return list(self.schema["properties"])

    @property
    def structured(self) -> bool:
        return self.schema is not None

    @property
    def output_schema(self) -> dict[str, Any] | None:
        """The schema sent as ``output_config.format``: none when citations are asked for (the
        API allows no structured output with them; the schema is in the instruction)."""
        return None if self.citations else self.schema

    @property
    def by_field(self) -> bool:
        """Whether an answer's value (:meth:`interpret`) is a dict with an entry per output
        column; else it is the value of the one column."""
        if self.kind == "label":
            return self.rationale or self.confidence
        return self.schema is not None or self.citations

    def instruction_suffix(self) -> str:
        """What the shared instruction says of the answer (``rows.RowTemplate.system_text``
        puts it after the user's own words): identical for every row, so it is cached."""
        if self.kind == "label":
            return "\n\n".join(self._label_instruction())
        parts = []
        if self.kind == "extract":
            ask = (
                "Fill in each field of the answer format from the row's data; where the row "
                "does not say and the format allows it, use null rather than guess."
            )
            parts = [ask, *self._meanings("What the fields mean:")]
        if self.citations and self.schema is not None:
            schema = orjson.dumps(self.schema).decode()
            parts.append(
                "Answer with one JSON object and nothing else, matching this JSON schema:\n"
                f"<json_schema>{schema}</json_schema>\nCite the passage of the document each "
                "value comes from."
            )
        return "\n\n".join(parts)

    def _meanings(self, title: str) -> list[str]:
        if not self.descriptions:
            return []
        return [title + "".join(f"\n- {name}: {text}" for name, text in self.descriptions)]

    def _label_instruction(self) -> list[str]:
        listed = ", ".join(self.labels)
        if self.multi:
            parts = [f"Answer with every label that applies (possibly none), from: {listed}."]
        else:
            parts = [f"Answer with one of: {listed}."]
        parts += self._meanings("What the labels mean:")
        if self.examples:
            tag = self._answer_key
            shown = []
            for text, answer in self.examples:
                said = ", ".join(answer) if isinstance(answer, tuple) else answer
                text = _EXAMPLE_TAGS.sub("&lt;", text)
                shown.append(f"<example>\n<text>{text}</text>\n<{tag}>{said}</{tag}>\n</example>")
            parts.append("Examples, each a text and the right answer:\n" + "\n".join(shown))
        if self.abstain:
            parts.append(
                f'If the text does not let you tell which labels apply, answer ["{ABSTAIN}"] '
                "alone rather than guess."
                if self.multi
                else f'If the text does not let you choose a label, answer "{ABSTAIN}" rather '
                "than guess."
            )
        if self.rationale:
            parts.append('In "rationale", give the reason for your answer in one short sentence.')
        if self.confidence:
            parts.append(
                'In "confidence", give the probability, from 0 to 1, that your answer is right.'
            )
        return parts

    def default_max_tokens(self) -> int:
        """A ceiling on the answer: exact for labels (their longest JSON, plus room for the
        rationale asked for), generous otherwise."""
        if self.kind != "label":
            return 1024
        if self.multi:
            longest = len(orjson.dumps({"labels": list(self.labels)}))
            if self.abstain:
                longest = max(longest, len(orjson.dumps({"labels": [ABSTAIN]})))
        else:
            choices = (*self.labels, ABSTAIN) if self.abstain else self.labels
            widest = max(choices, key=lambda s: len(s.encode()))
            longest = len(orjson.dumps({"label": widest}))
        # A token is at least one byte, so the answer's length in bytes bounds its tokens.
        total = longest + _ANSWER_SLACK
        if self.rationale:
            total += _RATIONALE_TOKENS + len(b',"rationale":""')
        if self.confidence:
            total += _CONFIDENCE_BYTES
        return total

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": self.kind,
            "schema": self.schema,
            "labels": list(self.labels),
            "multi": self.multi,
        }
        # Only what is set, so a plain task's spec (part of its job key) is as it always was.
        if self.descriptions:
            spec["descriptions"] = [list(pair) for pair in self.descriptions]
        if self.examples:
            spec["examples"] = [
                [text, list(answer) if isinstance(answer, tuple) else answer]
                for text, answer in self.examples
            ]
        for flag in ("abstain", "rationale", "confidence", "citations"):
            if getattr(self, flag):
                spec[flag] = True
        return spec

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Task:
        return cls(
            kind=spec["kind"],
            schema=spec.get("schema"),
            labels=tuple(spec.get("labels") or ()),
            multi=bool(spec.get("multi")),
            descriptions=tuple((str(n), str(t)) for n, t in spec.get("descriptions") or ()),
            examples=tuple(
                (str(text), tuple(answer) if isinstance(answer, list) else str(answer))
                for text, answer in spec.get("examples") or ()
            ),
            abstain=bool(spec.get("abstain")),
            rationale=bool(spec.get("rationale")),
            confidence=bool(spec.get("confidence")),
            citations=bool(spec.get("citations")),
        )

    def interpret(self, text: str, stop_reason: str | None) -> tuple[str, Any]:
        """``(status, value)`` for an answer's text: ``succeeded`` with the value, ``abstained``
        (a label task's :data:`ABSTAIN`: no label), or ``max_tokens`` / ``refusal`` /
        ``invalid_output`` with None. Never coerced: an answer outside the labels or the
        schema is invalid, not replaced by a default."""
        if stop_reason == "refusal":
            return "refusal", None
        if self.citations:
            return self._cited(text, stop_reason)
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

    def _cited(self, text: str, stop_reason: str | None) -> tuple[str, Any]:
        """An answer with citations (see ``wire.message_row``): the fields, each with the page
        and text of its first citation."""
        from .documents import cited_fields

        cites: list[Any] = []
        if text.startswith(CITED):
            stored = orjson.loads(text[len(CITED) :])
            text, cites = stored["text"], stored["cites"]
        plain = replace(self, citations=False)
        status, value = plain.interpret(text, stop_reason)
        if value is None:
            return status, None
        names = list(self.schema["properties"]) if self.schema is not None else ["answer"]
        values = dict(value) if self.schema is not None else {"answer": value}
        found = cited_fields(text, cites, names)
        for name in names:
            cite = found.get(name) or {}
            values[f"{name}_cite_page"] = cite.get("page")
            values[f"{name}_cite_text"] = cite.get("text")
        return status, values

    def _label(self, data: Any) -> tuple[str, Any]:
        if not isinstance(data, dict) or set(data) != set(self.fields):
            return "invalid_output", None
        extras: dict[str, Any] = {}
        if self.rationale:
            if not isinstance(data["rationale"], str):
                return "invalid_output", None
            extras["rationale"] = data["rationale"]
        if self.confidence:
            level = data["confidence"]
            if isinstance(level, bool) or not isinstance(level, (int, float)):
                return "invalid_output", None
            if not 0 <= level <= 1:
                return "invalid_output", None
            extras["confidence"] = float(level)
        status, value = self._answer(data[self._answer_key])
        if status == "invalid_output" or not extras:
            return status, value
        return status, {self._answer_key: value, **extras}

    def _answer(self, value: Any) -> tuple[str, Any]:
        """The status and value of a label answer (the ``label`` or ``labels`` entry)."""
        allowed = self.labels
        if self.multi:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return "invalid_output", None
            if self.abstain and ABSTAIN in value:
                # "unsure" alone: no label; beside labels it says two things at once.
                return (ABSTAINED, None) if set(value) == {ABSTAIN} else ("invalid_output", None)
            if not all(v in allowed for v in value):
                return "invalid_output", None
            return "succeeded", list(dict.fromkeys(value))  # as given, each label once
        if not isinstance(value, str):
            return "invalid_output", None
        if self.abstain and value == ABSTAIN:
            return ABSTAINED, None
        if value not in allowed:
            return "invalid_output", None
        return "succeeded", value

    def dtypes(self) -> dict[str, tuple[str, list[Any] | None]]:
        """Per output column: a pandas dtype name and, for categoricals, the categories."""
        if self.kind == "label":
            types: dict[str, tuple[str, list[Any] | None]] = {
                self._answer_key: ("object", None) if self.multi else ("category", [*self.labels])
            }
            if self.rationale:
                types["rationale"] = ("string", None)
            if self.confidence:
                types["confidence"] = ("Float64", None)
            return types
        if self.schema is None:
            types = {"answer": ("string", None)}
        else:
            types = {name: _dtype_of(prop) for name, prop in self.schema["properties"].items()}
        if self.citations:
            for name in list(types):
                types[f"{name}_cite_page"] = ("Int64", None)
                types[f"{name}_cite_text"] = ("string", None)
        return types


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


def label_task(
    labels: Sequence[str] | str,
    *,
    multi: bool = False,
    descriptions: Mapping[str, str] | None = None,
    examples: Iterable[tuple[str, Any]] | None = None,
    abstain: bool = False,
    rationale: bool = False,
    confidence: bool = False,
) -> Task:
    """One of ``labels`` per row (a list or ``"a, b, c"``), or with ``multi`` every label that
    applies; the answer is constrained to them by a schema with an enum. Labels that are not
    strings (numbers) are used as their text.

    ``descriptions`` (``{label: what it means}``) and ``examples`` (``[(text, label), ...]``;
    with ``multi`` the answer may be a list of labels) go into the shared instruction.
    ``abstain`` adds the answer :data:`ABSTAIN` (``"unsure"``; with ``multi``, ``["unsure"]``
    alone): such a row has no label and the status ``abstained``. ``rationale`` adds a
    ``rationale`` field (a short reason) and ``confidence`` a ``confidence`` field (the
    model's own probability, 0..1, that its answer is right: uncalibrated) to the answer, each
    its own output column.

    Raises :class:`PromptError` (one line) for no labels (``None``, empty), empty or repeated
    ones, a label ``"unsure"`` with ``abstain``, descriptions of no label, and examples that
    are not (text, label) pairs of a string and one of the labels."""
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
    if abstain and ABSTAIN in cleaned:
        raise PromptError(
            f"{ABSTAIN!r} is the answer abstain=True adds for a row the model cannot label: "
            "rename that label, or leave abstain off"
        )
    meanings = _descriptions(descriptions, cleaned, "label")
    shown = _examples(examples, cleaned, multi=multi, abstain=abstain)
    key = "labels" if multi else "label"
    inner: dict[str, Any] = {"type": "string", "enum": [*cleaned, ABSTAIN] if abstain else cleaned}
    properties: dict[str, Any] = {}
    if rationale:  # first, so that the model gives its reason before its answer
        properties["rationale"] = dict(_RATIONALE_SCHEMA)
    properties[key] = {"type": "array", "items": inner} if multi else inner
    if confidence:
        properties["confidence"] = dict(_CONFIDENCE_SCHEMA)
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return Task(
        "label",
        schema,
        tuple(cleaned),
        multi,
        descriptions=meanings,
        examples=shown,
        abstain=bool(abstain),
        rationale=bool(rationale),
        confidence=bool(confidence),
    )


def extract_task(schema: Any, *, descriptions: Mapping[str, str] | None = None) -> Task:
    """The fields of ``schema`` (see :func:`schema_of`) from each row. ``descriptions``
    (``{field: what it means}``) become the fields' ``description`` in the schema, and are said
    in the shared instruction too."""
    built = schema_of(schema)
    properties = built["properties"]
    meanings = _descriptions(descriptions, [str(name) for name in properties], "field")
    for name, text in meanings:
        if isinstance(properties[name], Mapping):  # a boolean schema has nowhere to say it
            properties[name] = {**properties[name], "description": text}
    return Task("extract", built, descriptions=meanings)


def _descriptions(
    given: Mapping[str, str] | None, names: Sequence[str], what: str
) -> tuple[tuple[str, str], ...]:
    """``{name: text}`` as (name, text) pairs in the order of ``names``; one-line errors for a
    name that is not one of them and for text that is not a non-empty string."""
    if given is None:
        return ()
    if not isinstance(given, Mapping):
        raise PromptError(
            f"descriptions must be a dict of {what} -> what it means, e.g. "
            f"{{{names[0]!r}: '...'}}, not {type(given).__name__}"
        )
    unknown = [key for key in given if str(key) not in names]
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        raise PromptError(
            f"descriptions: {listed} {'is not a' if len(unknown) == 1 else 'are not'} "
            f"{what}{'s' * (len(unknown) > 1)}; the {what}s are {', '.join(names)}"
        )
    texts = {str(key): text for key, text in given.items()}
    for key, text in texts.items():
        if not isinstance(text, str) or not text.strip():
            raise PromptError(
                f"descriptions[{key!r}] must be a non-empty string, not {type(text).__name__}"
            )
    return tuple((name, texts[name].strip()) for name in names if name in texts)


def _examples(
    given: Iterable[tuple[str, Any]] | None, labels: Sequence[str], *, multi: bool, abstain: bool
) -> tuple[tuple[str, str | tuple[str, ...]], ...]:
    """``[(text, label), ...]`` checked: each a pair of a string and a label (with ``multi``,
    a label or a list of them; with ``abstain``, :data:`ABSTAIN` too, alone)."""
    if given is None:
        return ()
    shape = "examples must be a list of (text, label) pairs, e.g. [('Loved it', 'positive')]"
    if isinstance(given, (str, bytes, Mapping)) or not isinstance(given, Iterable):
        raise PromptError(f"{shape}, not {type(given).__name__}")
    choices = [*labels, ABSTAIN] if abstain else list(labels)
    checked: list[tuple[str, str | tuple[str, ...]]] = []
    for i, pair in enumerate(given):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise PromptError(f"examples[{i}] is not a (text, label) pair: {shape}")
        text, answer = pair
        if not isinstance(text, str) or not text.strip():
            raise PromptError(
                f"examples[{i}]: the text must be a non-empty string, not {type(text).__name__}"
            )
        if multi and isinstance(answer, (list, tuple)):
            answers = tuple(_example_label(a, choices, i) for a in answer)
            if ABSTAIN in answers and len(set(answers)) > 1:
                raise PromptError(f"examples[{i}]: {ABSTAIN!r} goes alone, not beside labels")
            checked.append((text, tuple(dict.fromkeys(answers))))
        else:
            one = _example_label(answer, choices, i)
            checked.append((text, (one,) if multi else one))
    return tuple(checked)


def _example_label(answer: Any, choices: Sequence[str], i: int) -> str:
    # Labels given as numbers are used as their text: their examples may say them so too.
    said = str(answer) if isinstance(answer, int) and not isinstance(answer, bool) else answer
    if not isinstance(said, str) or said not in choices:
        raise PromptError(
            f"examples[{i}]: {answer!r} is not one of the labels ({', '.join(choices)})"
        )
    return said
