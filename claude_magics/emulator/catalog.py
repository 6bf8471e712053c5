"""The models the emulator serves, as data.

    spec = resolve("claude-haiku-4-5")      # aliases resolve to the dated id
    spec.max_tokens, spec.cache_min_tokens  # limits the emulator enforces
    model_info(spec)                        # the /v1/models JSON object

Limits follow the May 2026 model table: 1M-token context for Opus 4.7, Opus 4.6 and Sonnet 4.6,
200k for the rest; 128k output tokens for Opus 4.7 and 4.6, 64k for the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MODELS", "ModelSpec", "model_info", "resolve"]

_ALL_EFFORT = frozenset({"low", "medium", "high", "max"})


@dataclass(frozen=True)
class ModelSpec:
    id: str
    display_name: str
    created_at: str
    max_input_tokens: int
    max_tokens: int
    aliases: tuple[str, ...] = ()
    # Adaptive thinking ({"type": "adaptive"}) arrived with the 4.6 generation.
    adaptive_thinking: bool = False
    # Effort levels accepted in output_config.effort; empty: the parameter is rejected.
    effort_levels: frozenset[str] = frozenset()
    # Minimum prefix (tokens) a cache breakpoint must close to be cached.
    cache_min_tokens: int = 1024
    # Opus 4.7 accepts only the default sampling: temperature 1.0, no top_k, top_p >= 0.99.
    fixed_sampling: bool = False
    # Input text token ratio (numerator, denominator): Opus 4.7's tokenizer yields ~30% more.
    text_token_ratio: tuple[int, int] = (1, 1)
    context_management: bool = True
    compaction: bool = False


# Newest first: the order /v1/models lists them in.
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="claude-opus-4-7",
        display_name="Claude Opus 4.7",
        created_at="2026-04-16T00:00:00Z",
        max_input_tokens=1_000_000,
        max_tokens=128_000,
        adaptive_thinking=True,
        effort_levels=_ALL_EFFORT | {"xhigh"},
        fixed_sampling=True,
        text_token_ratio=(13, 10),
        compaction=True,
    ),
    ModelSpec(
        id="claude-sonnet-4-6",
        display_name="Claude Sonnet 4.6",
        created_at="2026-02-17T00:00:00Z",
        max_input_tokens=1_000_000,
        max_tokens=64_000,
        adaptive_thinking=True,
        effort_levels=_ALL_EFFORT,
        compaction=True,
    ),
    ModelSpec(
        id="claude-opus-4-6",
        display_name="Claude Opus 4.6",
        created_at="2026-02-05T00:00:00Z",
        max_input_tokens=1_000_000,
        max_tokens=128_000,
        adaptive_thinking=True,
        effort_levels=_ALL_EFFORT,
        compaction=True,
    ),
    ModelSpec(
        id="claude-opus-4-5-20251101",
        display_name="Claude Opus 4.5",
        created_at="2025-11-24T00:00:00Z",
        max_input_tokens=200_000,
        max_tokens=64_000,
        aliases=("claude-opus-4-5",),
        effort_levels=frozenset({"low", "medium", "high"}),
    ),
    ModelSpec(
        id="claude-haiku-4-5-20251001",
        display_name="Claude Haiku 4.5",
        created_at="2025-10-15T00:00:00Z",
        max_input_tokens=200_000,
        max_tokens=64_000,
        aliases=("claude-haiku-4-5",),
        cache_min_tokens=4096,
    ),
    ModelSpec(
        id="claude-sonnet-4-5-20250929",
        display_name="Claude Sonnet 4.5",
        created_at="2025-09-29T00:00:00Z",
        max_input_tokens=200_000,
        max_tokens=64_000,
        aliases=("claude-sonnet-4-5",),
        effort_levels=frozenset({"low", "medium", "high"}),
    ),
)

_BY_NAME: dict[str, ModelSpec] = {}
for _spec in MODELS:
    _BY_NAME[_spec.id] = _spec
    for _alias in _spec.aliases:
        _BY_NAME[_alias] = _spec


def resolve(name: str) -> ModelSpec | None:
    """The model called ``name`` (id or alias), or None when the emulator does not serve it."""
    return _BY_NAME.get(name)


def _support(flag: bool) -> dict[str, bool]:
    return {"supported": flag}


def capabilities(spec: ModelSpec) -> dict[str, Any]:
    """The ModelCapabilities object for ``spec``."""
    efforts = spec.effort_levels
    return {
        "batch": _support(True),
        "citations": _support(True),
        "code_execution": _support(True),
        "context_management": {
            "supported": spec.context_management,
            "clear_thinking_20251015": _support(True),
            "clear_tool_uses_20250919": _support(True),
            "compact_20260112": _support(spec.compaction),
        },
        "effort": {
            "supported": bool(efforts),
            "low": _support("low" in efforts),
            "medium": _support("medium" in efforts),
            "high": _support("high" in efforts),
            "max": _support("max" in efforts),
            "xhigh": _support("xhigh" in efforts),
        },
        "image_input": _support(True),
        "pdf_input": _support(True),
        "structured_outputs": _support(True),
        "thinking": {
            "supported": True,
            "types": {
                "adaptive": _support(spec.adaptive_thinking),
                "enabled": _support(True),
            },
        },
    }


def model_info(spec: ModelSpec) -> dict[str, Any]:
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
