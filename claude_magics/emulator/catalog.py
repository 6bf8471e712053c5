"""The models the emulator serves: the bundled model table plus models registered at run time.

    catalog = catalog_for(())                    # the table (claude_magics/data/models.json)
    spec = catalog.lookup("claude-haiku-4-5")    # aliases resolve; retired or unknown: 404
    model_info(spec)                             # the /v1/models JSON object
    register("claude-sonnet-6,1000000,128000")   # a model the table does not know yet

Every limit and rule comes from `claude_magics.model_table` (one fact, one place: the client
reads the same table as its offline fallback). A registered model takes the rules of a model
the table knows (``like``; by default the newest active model of its family, judged by the id:
``claude-opus-*``, ``claude-sonnet-*``, ``claude-haiku-*``, ``claude-fable-*``; otherwise the
newest active Sonnet) with its own id and limits; any field of the table can be overridden.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import orjson

from ..model_table import EFFORT_LEVELS, ModelEntry, ModelTable, RetiredModel, load
from .errors import ApiError
from .tokens import TOKENIZER_RATIOS

__all__ = [
    "Catalog",
    "ModelSpec",
    "capabilities",
    "catalog_for",
    "model_info",
    "register",
    "token_ratio",
]

ModelSpec = ModelEntry  # the emulator's name for a served model
_FAMILIES = ("opus", "sonnet", "haiku", "fable")


class Catalog:
    """The served models (registered ones first, then the table's, newest first)."""

    def __init__(self, table: ModelTable, extra: tuple[ModelEntry, ...] = ()) -> None:
        self.table = table
        registered: dict[str, ModelEntry] = {}
        for entry in extra:  # a later registration of the same id wins
            registered[entry.id] = entry
        known = {m.id for m in table.models}
        fresh = [e for e in reversed(registered.values()) if e.id not in known]
        self.models: tuple[ModelEntry, ...] = (
            *fresh,
            *(registered.get(m.id, m) for m in table.models),
        )
        # Registered names go in last: they win over a table alias they reuse.
        self._by_name = {n: m for m in table.models if m.id not in registered for n in m.names}
        self._by_name.update({n: m for m in registered.values() for n in m.names})

    def resolve(self, name: str) -> ModelEntry | None:
        """The model called ``name`` (its id or an alias), or None when it is not served."""
        return self._by_name.get(name)

    def lookup(self, name: str) -> ModelEntry:
        """The model called ``name``; raises the API's 404 otherwise (naming the replacement
        of a retired model)."""
        entry = self.resolve(name)
        if entry is not None:
            return entry
        retired = self.table.find_retired(name)
        if retired is not None:
            raise ApiError(404, "not_found_error", self._retired_message(name, retired))
        raise ApiError(404, "not_found_error", f"model: {name}")

    def _retired_message(self, name: str, retired: RetiredModel) -> str:
        when = f" on {retired.retired_on}" if retired.retired_on else ""
        current = ", ".join(m.id for m in self.models if m.status == "active")
        use = f"use {retired.replacement} instead; " if retired.replacement else ""
        return (
            f"model: {name} was retired{when} and is no longer available. {use}"
            f"current models: {current}"
        )


@functools.lru_cache(maxsize=16)
def catalog_for(extra: tuple[ModelEntry, ...]) -> Catalog:
    """The catalog of the bundled table plus ``extra`` (cached: options rarely change)."""
    return Catalog(load(), extra)


def token_ratio(spec: ModelEntry) -> tuple[int, int]:
    """The input text ratio of the model's tokenizer generation (see `tokens`)."""
    return TOKENIZER_RATIOS[spec.tokenizer]


# --------------------------------------------------------------------------- registration


def _base_for(model_id: str, table: ModelTable) -> ModelEntry:
    """The table model whose rules a new model takes: the newest of its family, or Sonnet."""
    for family in (*(f for f in _FAMILIES if model_id.startswith(f"claude-{f}")), "sonnet"):
        members = [m for m in table.models if m.id.startswith(f"claude-{family}-")]
        active = [m for m in members if m.status == "active"]
        if active or members:
            return (active or members)[0]
    return table.models[0]


def _parse_text(text: str) -> dict[str, Any]:
    text = text.strip()
    if text.startswith("{"):
        data = orjson.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a model given as JSON must be an object")
        return data
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not parts[0]:
        raise ValueError(f"a model is given as ID,MAX_INPUT_TOKENS,MAX_OUTPUT_TOKENS, not {text!r}")
    try:
        max_input, max_output = int(parts[1].replace("_", "")), int(parts[2].replace("_", ""))
    except ValueError:
        raise ValueError(f"model limits must be integers, not {parts[1]!r}, {parts[2]!r}") from None
    return {"id": parts[0], "max_input_tokens": max_input, "max_tokens": max_output}


def register(
    model: ModelEntry | Mapping[str, Any] | str, table: ModelTable | None = None
) -> ModelEntry:
    """A model entry from ``"ID,MAX_INPUT,MAX_OUTPUT"``, a JSON object (string or mapping) or
    a `ModelEntry`. Mappings may name ``like`` (a table model whose rules to take) and any
    field of the model table; nested objects (thinking, effort, capabilities) merge into the
    base model's. Raises ValueError naming the bad field."""
    if isinstance(model, ModelEntry):
        return model
    table = table or load()
    data = dict(_parse_text(model) if isinstance(model, str) else model)
    model_id = data.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise ValueError("a registered model needs an 'id'")
    like = data.pop("like", None)
    if like is not None:
        base = table.find(str(like))
        if base is None:
            raise ValueError(f"like: {like!r} is not a model of the table")
    else:
        base = _base_for(model_id, table)
    merged = base.to_dict()
    merged.update(
        aliases=[],
        display_name=model_id,
        created_at=f"{table.as_of}T00:00:00Z",
        status="active",
        deprecated_on=None,
        retires_on=None,
        replacement=None,
        notes=f"registered at run time with the rules of {base.id}",
    )
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return ModelEntry.from_dict(merged)


# --------------------------------------------------------------------------- /v1/models


def _support(flag: bool) -> dict[str, bool]:
    return {"supported": flag}


def capabilities(spec: ModelEntry) -> dict[str, Any]:
    """The ModelCapabilities object for ``spec``."""
    caps = spec.capabilities
    levels = spec.effort.levels if spec.effort is not None else ()
    effort: dict[str, Any] = {"supported": bool(levels)}
    effort.update({level: _support(level in levels) for level in EFFORT_LEVELS})
    return {
        "batch": _support(caps.batch),
        "citations": _support(caps.citations),
        "code_execution": _support(caps.code_execution),
        "context_management": {
            "supported": caps.context_management,
            "clear_thinking_20251015": _support(caps.context_management),
            "clear_tool_uses_20250919": _support(caps.context_management),
            "compact_20260112": _support(caps.compaction),
        },
        "effort": effort,
        "image_input": _support(caps.image_input),
        "pdf_input": _support(caps.pdf_input),
        "structured_outputs": _support(caps.structured_outputs),
        "thinking": {
            "supported": bool(spec.thinking.types),
            "types": {
                "adaptive": _support("adaptive" in spec.thinking.types),
                "enabled": _support("enabled" in spec.thinking.types),
            },
        },
    }


def model_info(spec: ModelEntry) -> dict[str, Any]:
    """The ModelInfo object /v1/models returns for ``spec``."""
    return {
        "type": "model",
        "id": spec.id,
        "display_name": spec.display_name,
        "created_at": spec.created_at,
        "max_input_tokens": spec.max_input_tokens,
        "max_tokens": spec.max_tokens,
        "capabilities": capabilities(spec),
    }
