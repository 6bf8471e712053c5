"""The bundled model table (``data/models.json``): each model's limits, rules and status.

    table = load()                      # read once per process
    table.find(name).max_tokens         # an id or an alias
    table.find_retired(name)            # RetiredModel(..., replacement=...) or None
    table.defaults["model"], table.defaults["job_model"]   # what cells and jobs use by default

One fact, one place: the emulator serves this table and the client falls back on it when
``GET /v1/models`` cannot be asked (the API stays the authority at run time). A leaf module:
standard library only, importing nothing of the package, so any layer may use it. Entries are
frozen dataclasses; ``ModelEntry.from_dict`` checks every field, so a typo in the data file
fails loudly on first use instead of turning into a wrong rule.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = [
    "EFFORT_LEVELS",
    "Capabilities",
    "Effort",
    "ModelEntry",
    "ModelTable",
    "RetiredModel",
    "Thinking",
    "load",
]

#: Every effort level the API knows, lowest first.
EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")

# The allowed values of each enumerated field; the data file's notes say what each one means.
_CHOICES: dict[str, tuple[str, ...]] = {
    "status": ("active", "legacy", "deprecated"),
    "sampling": ("rejected", "thinking_off_only", "not_temperature_and_top_p", "accepted"),
    "prefill": ("rejected", "accepted"),
    "forced_tool_choice": ("rejected", "accepted"),
    "thinking_display_default": ("omitted", "summarized"),
    "tokenizer": ("new", "old"),
    "text_between_tools": ("text", "thinking"),
    "thinking.types": ("adaptive", "enabled"),
    "thinking.budget": ("rejected", "accepted", "deprecated"),
    "thinking.disabled": ("accepted", "rejected", "effort_at_most_high"),
    "effort.levels": EFFORT_LEVELS,
}


def _choice(value: Any, name: str) -> str:
    allowed = _CHOICES[name]
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return value


def _str(value: Any, name: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected an object, got {value!r}")
    return value


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name}: expected a list, got {value!r}")
    return tuple(_str(item, name) for item in value)


def _unknown(data: Mapping[str, Any], known: set[str], name: str) -> None:
    extra = sorted(set(data) - known)
    if extra:
        raise ValueError(f"{name}: unknown field(s) {', '.join(extra)}")


@dataclass(frozen=True)
class Thinking:
    """How a model thinks: the thinking types it accepts and what it does with the others."""

    types: tuple[str, ...]  # "adaptive" and/or "enabled" (a budget_tokens budget)
    always_on: bool  # thinks (adaptively) when the request has no ``thinking`` field
    budget: str  # {"type": "enabled"}: "rejected" | "accepted" | "deprecated" (accepted)
    disabled: str  # {"type": "disabled"}: "accepted" | "rejected" | "effort_at_most_high"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Thinking:
        data = _mapping(data, "thinking")
        _unknown(data, {f.name for f in dataclasses.fields(cls)}, "thinking")
        types = _strings(data.get("types"), "thinking.types")
        for kind in types:
            _choice(kind, "thinking.types")
        return cls(
            types=types,
            always_on=_bool(data.get("always_on"), "thinking.always_on"),
            budget=_choice(data.get("budget"), "thinking.budget"),
            disabled=_choice(data.get("disabled"), "thinking.disabled"),
        )


@dataclass(frozen=True)
class Effort:
    """The ``output_config.effort`` levels a model accepts, and the one it uses by default."""

    levels: tuple[str, ...]
    default: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Effort:
        data = _mapping(data, "effort")
        _unknown(data, {"levels", "default"}, "effort")
        levels = _strings(data.get("levels"), "effort.levels")
        for level in levels:
            _choice(level, "effort.levels")
        default = _str(data.get("default"), "effort.default")
        if default not in levels:
            raise ValueError(f"effort.default: {default!r} is not one of the model's levels")
        return cls(levels=levels, default=default)


@dataclass(frozen=True)
class Capabilities:
    """What ``GET /v1/models`` reports a model can do (booleans only)."""

    image_input: bool = True
    pdf_input: bool = True
    citations: bool = True
    structured_outputs: bool = True
    batch: bool = True
    code_execution: bool = True
    context_management: bool = True
    compaction: bool = True  # the compact_20260112 context-management strategy

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Capabilities:
        data = _mapping(data, "capabilities")
        names = {f.name for f in dataclasses.fields(cls)}
        _unknown(data, names, "capabilities")
        return cls(**{k: _bool(v, f"capabilities.{k}") for k, v in data.items()})


@dataclass(frozen=True)
class ModelEntry:
    """One model the API serves, with the limits and rules a client or the emulator needs."""

    id: str
    aliases: tuple[str, ...]
    display_name: str
    created_at: str  # RFC 3339; the epoch when the release date is unknown, as the API does
    status: str  # "active" | "legacy" | "deprecated"
    deprecated_on: str | None
    retires_on: str | None
    replacement: str | None
    max_input_tokens: int
    max_tokens: int
    thinking: Thinking
    effort: Effort | None  # None: output_config.effort is a 400
    sampling: str
    prefill: str
    forced_tool_choice: str
    thinking_display_default: str
    tokenizer: str  # "new" counts about 30% more tokens than "old" for the same text
    text_between_tools: str
    cache_min_tokens: int
    capabilities: Capabilities
    notes: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The id and every alias: each one is accepted as ``model``."""
        return (self.id, *self.aliases)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelEntry:
        """An entry from its JSON form; raises ValueError naming the first bad field."""
        data = _mapping(data, "model")
        ident = _str(data.get("id"), "id")
        effort = data.get("effort")
        try:
            _unknown(data, {f.name for f in dataclasses.fields(cls)}, "model")
            return cls(
                id=ident,
                aliases=_strings(data.get("aliases", []), "aliases"),
                display_name=_str(data.get("display_name"), "display_name"),
                created_at=_str(data.get("created_at"), "created_at"),
                status=_choice(data.get("status"), "status"),
                deprecated_on=_str(data.get("deprecated_on"), "deprecated_on", optional=True),
                retires_on=_str(data.get("retires_on"), "retires_on", optional=True),
                replacement=_str(data.get("replacement"), "replacement", optional=True),
                max_input_tokens=_int(data.get("max_input_tokens"), "max_input_tokens"),
                max_tokens=_int(data.get("max_tokens"), "max_tokens"),
                thinking=Thinking.from_dict(_mapping(data.get("thinking"), "thinking")),
                effort=None if effort is None else Effort.from_dict(effort),
                sampling=_choice(data.get("sampling"), "sampling"),
                prefill=_choice(data.get("prefill"), "prefill"),
                forced_tool_choice=_choice(data.get("forced_tool_choice"), "forced_tool_choice"),
                thinking_display_default=_choice(
                    data.get("thinking_display_default"), "thinking_display_default"
                ),
                tokenizer=_choice(data.get("tokenizer"), "tokenizer"),
                text_between_tools=_choice(
                    data.get("text_between_tools", "text"), "text_between_tools"
                ),
                cache_min_tokens=_int(data.get("cache_min_tokens"), "cache_min_tokens"),
                capabilities=Capabilities.from_dict(
                    _mapping(data.get("capabilities", {}), "capabilities")
                ),
                notes=_str(data.get("notes"), "notes", optional=True),
            )
        except ValueError as error:
            raise ValueError(f"model {ident}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``from_dict`` reads (lists for tuples)."""
        data = dataclasses.asdict(self)
        data["aliases"] = list(self.aliases)
        data["thinking"]["types"] = list(self.thinking.types)
        if self.effort is not None:
            data["effort"]["levels"] = list(self.effort.levels)
        return data


@dataclass(frozen=True)
class RetiredModel:
    """A model the API no longer serves (it answers 404), and what replaces it."""

    id: str
    aliases: tuple[str, ...]
    retired_on: str | None
    replacement: str | None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetiredModel:
        data = _mapping(data, "retired")
        _unknown(data, {f.name for f in dataclasses.fields(cls)}, "retired")
        return cls(
            id=_str(data.get("id"), "retired.id"),
            aliases=_strings(data.get("aliases", []), "retired.aliases"),
            retired_on=_str(data.get("retired_on"), "retired.retired_on", optional=True),
            replacement=_str(data.get("replacement"), "retired.replacement", optional=True),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "aliases": list(self.aliases)}


@dataclass(frozen=True)
class ModelTable:
    """The whole table: served models newest first, then the retired ids."""

    as_of: str
    source: str
    models: tuple[ModelEntry, ...]
    retired: tuple[RetiredModel, ...] = ()
    notes: tuple[str, ...] = ()
    #: The models the package uses when none is given: ``model`` (cells), ``job_model`` (jobs).
    defaults: Mapping[str, str] = field(default_factory=dict)
    _by_name: dict[str, ModelEntry] = field(init=False, repr=False, compare=False)
    _retired_by_name: dict[str, RetiredModel] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, ModelEntry] = {}
        for entry in self.models:
            for name in entry.names:
                if name in by_name:
                    raise ValueError(f"model name {name!r} appears twice in the table")
                by_name[name] = entry
        retired = {name: r for r in self.retired for name in r.names}
        clash = sorted(set(retired) & set(by_name))
        if clash:
            raise ValueError(f"served and retired at once: {', '.join(clash)}")
        for role, name in self.defaults.items():
            if name not in by_name:
                raise ValueError(f"defaults.{role}: {name!r} is not a served model")
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_retired_by_name", retired)

    def find(self, name: str) -> ModelEntry | None:
        """The served model called ``name`` (its id or an alias), or None."""
        return self._by_name.get(name)

    def find_retired(self, name: str) -> RetiredModel | None:
        """The retired model called ``name``, or None."""
        return self._retired_by_name.get(name)

    def active(self) -> tuple[ModelEntry, ...]:
        """The current line-up (status ``active``), newest first."""
        return tuple(m for m in self.models if m.status == "active")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelTable:
        data = _mapping(data, "table")
        _unknown(data, {"as_of", "source", "defaults", "models", "retired", "notes"}, "table")
        defaults = _mapping(data.get("defaults", {}), "defaults")
        return cls(
            as_of=_str(data.get("as_of"), "as_of"),
            source=_str(data.get("source"), "source"),
            models=tuple(ModelEntry.from_dict(m) for m in data.get("models", ())),
            retired=tuple(RetiredModel.from_dict(r) for r in data.get("retired", ())),
            notes=_strings(data.get("notes", []), "notes"),
            defaults={str(k): _str(v, f"defaults.{k}") for k, v in defaults.items()},
        )


@functools.cache
def load() -> ModelTable:
    """The bundled table, read and checked once per process."""
    # One name per joinpath call: Python 3.10's Traversable takes no more.
    data = resources.files(__package__ or "claude_magics").joinpath("data").joinpath("models.json")
    return ModelTable.from_dict(json.loads(data.read_text(encoding="utf-8")))
