"""The bundled platform table (``data/platforms.json``): Bedrock's model ids and APIs, Vertex's.

    table = load()
    table.bedrock_model("us.anthropic.<model>")   # BedrockModel(table_id="<model>", api=...)
    table.bedrock_id("<model>")                   # "global.anthropic.<model>"
    table.canonical("global.anthropic.<model>")   # "<model>"

One fact, one place: the client maps model ids and picks the Bedrock API from this table, and
the emulator serves the same ids. A leaf module (standard library only), like ``model_table``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["BedrockModel", "PlatformTable", "load"]


@dataclass(frozen=True)
class BedrockModel:
    """A model as Bedrock serves it: the id sent (profile included), the model table's id,
    the API (``"messages"`` or ``"invoke"``) and the inference profile (``None``: in-region)."""

    id: str
    table_id: str
    api: str
    profile: str | None

    @property
    def is_global(self) -> bool:
        """Routed through the global profile (no regional price premium)."""
        return self.profile == "global"


@dataclass(frozen=True)
class PlatformTable:
    """The platform facts: Bedrock's ids, profiles and versions; Vertex's host and version."""

    as_of: str
    bedrock: Mapping[str, Any]
    vertex: Mapping[str, Any]

    @property
    def bedrock_profiles(self) -> tuple[str, ...]:
        return tuple(self.bedrock["profiles"])

    def bedrock_model(self, model: str) -> BedrockModel | None:
        """``model`` (a Bedrock id, with or without a profile prefix, or a table id) as Bedrock
        serves it; None when the table does not know it (it is then sent as given)."""
        models: Mapping[str, Mapping[str, str]] = self.bedrock["models"]
        if model in models:
            profile = self.bedrock.get("default_profile")
            base = models[model]["id"]
            return BedrockModel(
                f"{profile}.{base}" if profile else base, model, models[model]["api"], profile
            )
        head, dot, rest = model.partition(".")
        profile = head if dot and head in self.bedrock_profiles else None
        base = rest if profile else model
        for table_id, entry in models.items():
            if entry["id"] == base:
                return BedrockModel(model, table_id, entry["api"], profile)
        return None

    def bedrock_id(self, model: str) -> str:
        """The id to send to Bedrock for ``model`` (unknown ids are sent as given)."""
        found = self.bedrock_model(model)
        return found.id if found is not None else model

    def canonical(self, model: str) -> str:
        """The model table's id for a platform id (``model`` itself when it is not one)."""
        found = self.bedrock_model(model)
        return found.table_id if found is not None else model


@functools.cache
def load() -> PlatformTable:
    """The bundled table, read once per process."""
    data = (
        resources.files(__package__ or "claude_magics").joinpath("data").joinpath("platforms.json")
    )
    raw = json.loads(data.read_text(encoding="utf-8"))
    return PlatformTable(as_of=str(raw["as_of"]), bedrock=raw["bedrock"], vertex=raw["vertex"])
