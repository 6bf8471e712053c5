"""One walk over JSON-like values (dicts, lists, strings) that rewrites their strings.

    fixed, changed = map_strings(body, str.strip)     # a new value where anything changed

Used to repair text JSON cannot carry and to keep the API key out of what is sent. A leaf: any
wing may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["map_strings"]


def map_strings(value: Any, rewrite: Callable[[str], str]) -> tuple[Any, int]:
    """``value`` with ``rewrite`` applied to every string in it (dict keys left alone), and how
    many strings changed. Containers are copied only where something changed; the input is
    never modified."""
    if isinstance(value, str):
        new = rewrite(value)
        return (new, 1) if new != value else (value, 0)
    if isinstance(value, dict):
        changed = 0
        out: dict[Any, Any] = {}
        for key, item in value.items():
            out[key], count = map_strings(item, rewrite)
            changed += count
        return (out, changed) if changed else (value, 0)
    if isinstance(value, (list, tuple)):
        pairs = [map_strings(item, rewrite) for item in value]
        changed = sum(count for _, count in pairs)
        if not changed:
            return value, 0
        items = [item for item, _ in pairs]
        return (items if isinstance(value, list) else tuple(items)), changed
    return value, 0
