"""Which ``anthropic-beta`` names a request carries: the client's, the call's, a feature's.

    merge_betas(client.betas, ["fast-mode-2026-02-01"], body_betas(body))   # -> a tuple, in order
    body_betas({"messages": [...a block with {"type": "file", "file_id": ...}...]})

The header is one comma-separated list; names repeat nowhere in it. A feature that needs a beta
names it here, once, and adds it itself: the Files API (May 2026 spec: a beta) on its own
calls and on every message, count or batch whose body names a ``file_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FILES_API_BETA", "body_betas", "merge_betas"]

#: The beta the Files API and ``file_id`` references need (``AnthropicBeta`` in the spec).
FILES_API_BETA = "files-api-2025-04-14"

# What a header value item can be made of: printable ASCII, no spaces, no commas.
_NAME = re.compile(r"[!-+\--~]+")


def merge_betas(*groups: Iterable[str] | str) -> tuple[str, ...]:
    """The beta names of ``groups``, in order, each once (``"a,b"`` counts as two names).

    Raises ``ValueError`` for a name that cannot travel in the header (spaces, non-ASCII).
    """
    merged: dict[str, None] = {}
    for group in groups:
        for item in [group] if isinstance(group, str) else group:
            if not isinstance(item, str):
                raise TypeError(f"a beta name is a string, not a {type(item).__name__}")
            for name in item.split(","):
                name = name.strip()
                if not name:
                    continue
                if not _NAME.fullmatch(name):
                    raise ValueError(
                        f"beta name {name!r} has spaces or non-ASCII characters: beta names "
                        f"look like {FILES_API_BETA}"
                    )
                merged[name] = None
    return tuple(merged)


def _refers_to_file(block: Any) -> bool:
    """Whether a content block (or a block nested in it) names a ``file_id``."""
    if not isinstance(block, Mapping):
        return False
    if block.get("type") == "container_upload":
        return True
    source = block.get("source")
    if isinstance(source, Mapping):
        if source.get("type") == "file":
            return True
        inner = source.get("content")  # a document made of blocks
        if isinstance(inner, list) and any(_refers_to_file(b) for b in inner):
            return True
    content = block.get("content")  # a tool result's blocks
    return isinstance(content, list) and any(_refers_to_file(b) for b in content)


def body_betas(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The betas a message body needs for what it refers to: the Files API's when a block
    names a ``file_id`` (a ``file`` source, a ``container_upload``), else none."""
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(_refers_to_file(b) for b in content):
            return (FILES_API_BETA,)
    return ()
