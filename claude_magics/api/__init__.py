"""The HTTP layer: Anthropic's Messages API over httpx, and nothing above it.

    from claude_magics.api import AsyncClient, Client
    message = Client().messages.create(model=..., max_tokens=256, messages=[...])

* :mod:`.client`: ``Client`` (messages, streaming, count_tokens, models, batches, files) and
  ``AsyncClient`` (the same, awaited);
* :mod:`.core`: what both share, without I/O: the request as sent (headers, betas, URL, body,
  the key held so it never shows), retry decisions, errors from answers;
* :mod:`.files`: the Files API (upload in pieces with progress, list, retrieve, download,
  delete); :mod:`.betas`: the ``anthropic-beta`` names a request carries;
* :mod:`.streaming`: server-sent events folded into a message as they arrive;
* :mod:`.retry`: which failures are retried, and how long to wait;
* :mod:`.fanout`: many requests at once, within limits learned from the server.

This wing imports nothing of ``prompt``, ``cost``, ``jobs`` or ``notebook``.
"""

from __future__ import annotations

from .client import ApiObject, AsyncClient, AsyncMessageStream, Client, MessageStream, RateLimits

__all__ = [
    "ApiObject",
    "AsyncClient",
    "AsyncMessageStream",
    "Client",
    "MessageStream",
    "RateLimits",
]
