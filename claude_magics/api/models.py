"""What the package knows about each model: asked of ``GET /v1/models`` at run time, with the
bundled table (``data/models.json``) as the offline fallback and the source of the rules the
API does not report.

    catalog = ModelCatalog(client)           # one per session; the list is fetched once
    info = catalog.get(model)                # ModelInfo: limits, capabilities, rules, status
    info.max_input_tokens, info.effort_levels, info.rejects_sampling, info.cache_min_tokens
    cache_min_tokens(model)                  # shorter prefixes are not cached

Limits and capabilities (``max_input_tokens``, ``max_tokens``, thinking types, effort levels,
image and PDF input, structured outputs, batch, citations) come from the API when it answers:
fetched once per session and kept on disk for an hour (``<home>/models-cache.json``, one entry
per server, so the emulator's list never stands in for the real API's). What the API does not
report (sampling, prefill and forced-tool rules, budget thinking, the thinking display default,
the cache minimum, deprecation and retirement dates) comes from the bundled table. A model in
neither is served with what is known (nothing is refused on a guess).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import model_table, platform_table
from ..errors import APIError, MissingAPIKeyError
from ..paths import default_home

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "DEFAULT_CACHE_MIN_TOKENS",
    "ModelCatalog",
    "ModelInfo",
    "cache_min_tokens",
    "canonical_model",
]

#: The minimum cacheable prefix of a model the table does not know (the most common figure).
DEFAULT_CACHE_MIN_TOKENS = 1024
#: How long a fetched model list stays good on disk.
CACHE_SECONDS = 3600.0

_SNAPSHOT = re.compile(r"-\d{8}$")


def canonical_model(model: str) -> str:
    """``model`` without a ``-YYYYMMDD`` snapshot date: the alias the table lists it under."""
    return _SNAPSHOT.sub("", model)


def _bundled(model: str) -> model_table.ModelEntry | None:
    table = model_table.load()
    found = table.find(model) or table.find(canonical_model(model))
    # A Bedrock id (``us.anthropic.<model>``) is the table's model under another name.
    return found or table.find(platform_table.load().canonical(model))


def cache_min_tokens(model: str, override: int | None = None) -> int:
    """The shortest prefix ``model`` caches; ``override`` (a user's setting) wins when given."""
    if override is not None:
        return override
    entry = _bundled(model)
    return entry.cache_min_tokens if entry is not None else DEFAULT_CACHE_MIN_TOKENS


def _supported(node: Any) -> bool | None:
    if isinstance(node, Mapping) and isinstance(node.get("supported"), bool):
        return bool(node["supported"])
    return None


@dataclass(frozen=True)
class ModelInfo:
    """One model as this session knows it. ``None`` means unknown: nothing is refused on it."""

    id: str
    display_name: str = ""
    max_input_tokens: int | None = None
    max_tokens: int | None = None
    thinking_types: frozenset[str] | None = None
    effort_levels: tuple[str, ...] | None = None
    image_input: bool | None = None
    pdf_input: bool | None = None
    structured_outputs: bool | None = None
    batch: bool | None = None
    citations: bool | None = None
    code_execution: bool | None = None
    #: The bundled table's entry (rules, status, cache minimum), when it knows the model.
    entry: model_table.ModelEntry | None = field(default=None, compare=False)
    #: Where the limits came from: "api", "cache" (the API, earlier), "bundled" or "unknown".
    source: str = "unknown"

    @classmethod
    def from_entry(cls, entry: model_table.ModelEntry, model_id: str | None = None) -> ModelInfo:
        caps = entry.capabilities
        return cls(
            id=model_id or entry.id,
            display_name=entry.display_name,
            max_input_tokens=entry.max_input_tokens,
            max_tokens=entry.max_tokens,
            thinking_types=frozenset(entry.thinking.types),
            effort_levels=entry.effort.levels if entry.effort else (),
            image_input=caps.image_input,
            pdf_input=caps.pdf_input,
            structured_outputs=caps.structured_outputs,
            batch=caps.batch,
            citations=caps.citations,
            code_execution=caps.code_execution,
            entry=entry,
            source="bundled",
        )

    @classmethod
    def from_api(cls, obj: Mapping[str, Any], source: str = "api") -> ModelInfo:
        """From one ``GET /v1/models`` object, completed by the bundled entry's rules."""
        model_id = str(obj.get("id") or "")
        entry = _bundled(model_id)
        caps = obj.get("capabilities")
        thinking_types: frozenset[str] | None = None
        efforts: tuple[str, ...] | None = None
        flags: dict[str, bool | None] = {}
        if isinstance(caps, Mapping):
            thinking = caps.get("thinking")
            if isinstance(thinking, Mapping) and isinstance(thinking.get("types"), Mapping):
                thinking_types = frozenset(
                    kind for kind, node in thinking["types"].items() if _supported(node)
                )
            effort = caps.get("effort")
            if isinstance(effort, Mapping):
                efforts = tuple(
                    level
                    for level in model_table.EFFORT_LEVELS
                    if _supported(effort) and _supported(effort.get(level))
                )
            for name in (
                "image_input",
                "pdf_input",
                "structured_outputs",
                "batch",
                "citations",
                "code_execution",
            ):
                flags[name] = _supported(caps.get(name))
        fallback = cls.from_entry(entry, model_id) if entry is not None else cls(id=model_id)

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        max_input = obj.get("max_input_tokens")
        max_out = obj.get("max_tokens")
        return cls(
            id=model_id,
            display_name=str(obj.get("display_name") or fallback.display_name),
            max_input_tokens=pick(
                max_input if isinstance(max_input, int) else None, fallback.max_input_tokens
            ),
            max_tokens=pick(max_out if isinstance(max_out, int) else None, fallback.max_tokens),
            thinking_types=pick(thinking_types, fallback.thinking_types),
            effort_levels=pick(efforts, fallback.effort_levels),
            image_input=pick(flags.get("image_input"), fallback.image_input),
            pdf_input=pick(flags.get("pdf_input"), fallback.pdf_input),
            structured_outputs=pick(flags.get("structured_outputs"), fallback.structured_outputs),
            batch=pick(flags.get("batch"), fallback.batch),
            citations=pick(flags.get("citations"), fallback.citations),
            code_execution=pick(flags.get("code_execution"), fallback.code_execution),
            entry=entry,
            source=source,
        )

    # -- rules the API does not report (from the bundled table) ---------------------------------

    @property
    def status(self) -> str | None:
        """ "active", "legacy" or "deprecated" (None: the table does not know the model)."""
        return self.entry.status if self.entry else None

    @property
    def retires_on(self) -> str | None:
        return self.entry.retires_on if self.entry else None

    @property
    def replacement(self) -> str | None:
        return self.entry.replacement if self.entry else None

    @property
    def cache_min_tokens(self) -> int:
        return self.entry.cache_min_tokens if self.entry else DEFAULT_CACHE_MIN_TOKENS

    @property
    def rejects_sampling(self) -> bool:
        """Non-default temperature, top_p and top_k are a 400 (whatever the thinking)."""
        return bool(self.entry and self.entry.sampling == "rejected")

    @property
    def sampling_needs_thinking_off(self) -> bool:
        """Sampling parameters are accepted only with thinking off (Sonnet and Opus 4.6)."""
        return bool(self.entry and self.entry.sampling == "thinking_off_only")

    @property
    def rejects_prefill(self) -> bool:
        """A conversation ending with an assistant turn is a 400."""
        return bool(self.entry and self.entry.prefill == "rejected")

    @property
    def rejects_forced_tool(self) -> bool:
        """``tool_choice`` any or tool is a 400."""
        return bool(self.entry and self.entry.forced_tool_choice == "rejected")

    @property
    def rejects_thinking_budget(self) -> bool:
        """``{"type": "enabled", "budget_tokens": N}`` is a 400: use adaptive and effort."""
        if self.entry is not None:
            return self.entry.thinking.budget == "rejected"
        return self.thinking_types is not None and "enabled" not in self.thinking_types

    @property
    def accepts_adaptive_thinking(self) -> bool | None:
        if self.thinking_types is None:
            return None
        return "adaptive" in self.thinking_types

    @property
    def thinking_display_default(self) -> str | None:
        """ "omitted" (thinking text comes back empty unless asked) or "summarized"."""
        return self.entry.thinking_display_default if self.entry else None

    @property
    def thinking_always_on(self) -> bool:
        return bool(self.entry and self.entry.thinking.always_on)

    @property
    def effort_default(self) -> str | None:
        return self.entry.effort.default if self.entry and self.entry.effort else None


class ModelCatalog:
    """The models of one server, asked once per session (and cached on disk for an hour).

    ``get`` never raises for a model it cannot find: it returns what is known (the bundled
    entry, or an empty ``ModelInfo`` whose ``None`` fields refuse nothing). ``retired`` names
    a model the API no longer serves, with its replacement.
    """

    def __init__(
        self,
        client: Client,
        *,
        cache_path: str | os.PathLike[str] | None = None,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._client = client
        self._cache_path = cache_path
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._models: dict[str, ModelInfo] | None = None
        #: Why the API's list could not be had this session (None: it was).
        self.unavailable: str | None = None

    # -- the list ----------------------------------------------------------------------------

    def _cache_file(self) -> os.PathLike[str] | str:
        return self._cache_path or default_home() / "models-cache.json"

    def _read_cache(self) -> list[dict[str, Any]] | None:
        try:
            with open(self._cache_file(), encoding="utf-8") as handle:
                data = json.load(handle)
            entry = data[self._client.base_url]
            if time.time() - float(entry["fetched_at"]) > self._cache_seconds:
                return None
            models = entry["models"]
            return [m for m in models if isinstance(m, dict)] if isinstance(models, list) else None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing, stale, corrupt or for another server: ask again

    def _write_cache(self, models: list[dict[str, Any]]) -> None:
        path = os.fspath(self._cache_file())
        try:
            try:
                with open(path, encoding="utf-8") as handle:
                    data = json.load(handle)
                if not isinstance(data, dict):
                    data = {}
            except (OSError, ValueError):
                data = {}
            data[self._client.base_url] = {"fetched_at": time.time(), "models": models}
            folder = os.path.dirname(path) or "."
            os.makedirs(folder, exist_ok=True)
            # Write then rename: a reader never sees half a file.
            handle_fd, temp = tempfile.mkstemp(dir=folder, prefix=".models-", suffix=".json")
            with os.fdopen(handle_fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(temp, path)
        except OSError:
            pass  # a cache that cannot be written only costs one request next session

    def _load(self) -> dict[str, ModelInfo]:
        with self._lock:
            if self._models is not None:
                return self._models
            source = "cache"
            platform = self._client.platform
            # Bedrock and Vertex serve no model list: the bundled table, in their ids.
            listed = platform.models() if platform is not None else self._read_cache()
            if platform is not None:
                source = "bundled"
            elif listed is None:
                source = "api"
                try:
                    listed = [dict(m) for m in self._client.models.iter_all()]
                except MissingAPIKeyError as error:
                    # No key yet: the bundled table answers, and the list is asked for again
                    # once there is one (nothing is kept).
                    self.unavailable = f"{type(error).__name__}: {error}"
                    return {}
                except APIError as error:
                    # No server, or one without the endpoint: the table answers this session.
                    self.unavailable = f"{type(error).__name__}: {error}"
                    listed = []
                else:
                    self._write_cache(listed)
            assert listed is not None
            self._models = {
                str(m.get("id")): ModelInfo.from_api(m, source) for m in listed if m.get("id")
            }
            return self._models

    def refresh(self) -> None:
        """Forget the list (memory and disk), so the next look-up asks the API again."""
        with self._lock:
            self._models = None
        try:
            with open(self._cache_file(), encoding="utf-8") as handle:
                data = json.load(handle)
            if isinstance(data, dict) and data.pop(self._client.base_url, None) is not None:
                with open(self._cache_file(), "w", encoding="utf-8") as out:
                    json.dump(data, out)
        except (OSError, ValueError):
            pass

    def all(self) -> list[ModelInfo]:
        """The server's models, newest first as it lists them; the bundled table's line-up when
        the server could not be asked."""
        models = self._load()
        if models:
            return list(models.values())
        return [ModelInfo.from_entry(entry) for entry in model_table.load().models]

    def get(self, model: str) -> ModelInfo:
        """What is known of ``model`` (an id, an alias or a snapshot id)."""
        models = self._load()
        if model in models:
            return models[model]
        platform = self._client.platform
        if platform is not None and platform.model_id(model) in models:
            return models[platform.model_id(model)]  # a table id, listed under Bedrock's id
        entry = _bundled(model)
        if entry is not None:
            # The server may list the model under its dated id while the user gave the alias.
            for name in entry.names:
                if name in models:
                    return models[name]
            return ModelInfo.from_entry(entry, model)
        for model_id, info in models.items():
            if model_id.startswith(model + "-"):  # an alias of a dated id the table lacks
                return info
        return ModelInfo(id=model)

    def retired(self, model: str) -> model_table.RetiredModel | None:
        """The retired model called ``model`` (the API answers 404 for it), or None."""
        table = model_table.load()
        return table.find_retired(model) or table.find_retired(canonical_model(model))

    def current(self) -> list[str]:
        """The ids of today's line-up (active models), for "use one of these" messages."""
        return [entry.id for entry in model_table.load().active()]

    def names(self) -> Iterable[str]:
        """Every model id the server listed (or the table knows, offline)."""
        return [info.id for info in self.all()]
