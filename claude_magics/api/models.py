"""What the package knows about each model, in one place.

    cache_min_tokens("claude-haiku-4-5")        # -> 4096: shorter prefixes are not cached
    cache_min_tokens("claude-sonnet-4-6", override=2048)

The bundled table holds the facts the API does not report. Callers pass a model id (an alias or
a dated snapshot id); an unknown model gets the most common figure, named as a default.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_CACHE_MIN_TOKENS", "cache_min_tokens", "canonical_model"]

#: The minimum cacheable prefix of a model not in the table (the most common figure).
DEFAULT_CACHE_MIN_TOKENS = 1024

# Minimum cacheable prefix, in tokens, by model (Anthropic's prompt-caching documentation):
# a breakpoint that closes a shorter prefix is simply not cached, so none is written.
_CACHE_MIN_TOKENS: dict[str, int] = {
    "claude-opus-4-7": 2048,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-sonnet-4-6": 1024,
    "claude-sonnet-4-5": 1024,
    "claude-haiku-4-5": 4096,
}

_SNAPSHOT = re.compile(r"-\d{8}$")


def canonical_model(model: str) -> str:
    """The table's name for ``model``: a dated snapshot id maps to its alias."""
    return _SNAPSHOT.sub("", model)


def cache_min_tokens(model: str, override: int | None = None) -> int:
    """The shortest prefix ``model`` caches; ``override`` (a user's setting) wins when given."""
    if override is not None:
        return override
    return _CACHE_MIN_TOKENS.get(canonical_model(model), DEFAULT_CACHE_MIN_TOKENS)
