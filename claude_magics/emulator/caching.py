"""Prompt caching: which part of a prompt is read from cache, written, or billed as input.

    plan = cache.plan(prompt.segments, min_tokens, now)
    cache.commit(plan, now)          # only for requests that are answered
    plan.usage_fields()              # the cache figures of ``usage``

A breakpoint is a segment carrying ``cache_control`` (tools, system blocks, message blocks, or
the last block when the request has a top-level ``cache_control``). Its key hashes the model
and every segment up to and including it, with ``cache_control`` fields removed; a structured
output schema sits right after the tools, so it belongs to every later prefix. A breakpoint
whose prefix is shorter than the model's minimum is never cached. On each request the longest
cached, unexpired prefix is read (and its TTL refreshed): at a breakpoint, or, as the API does,
at one of the `LOOKBACK` block boundaries before a breakpoint, so a conversation that moves its
breakpoint forward each turn still hits the previous turn's entry. The cacheable breakpoints
after the read prefix are written, each segment billed at the TTL of the breakpoint that
closes it. Times are on the emulator clock, so tests expire entries with ``advance_clock``.
One cache serves the whole emulator instance (the real API scopes caches to an organization).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from .tokens import Segment

__all__ = ["CachePlan", "PromptCache"]

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
LOOKBACK = 20  # block boundaries before each breakpoint checked for an earlier entry


@dataclass
class CachePlan:
    total_tokens: int
    read_tokens: int = 0
    read_key: bytes | None = None
    write_5m: int = 0
    write_1h: int = 0
    writes: list[tuple[bytes, int, str]] = field(default_factory=list)

    @property
    def creation_tokens(self) -> int:
        return self.write_5m + self.write_1h

    @property
    def input_tokens(self) -> int:
        """The uncached remainder of the prompt."""
        return self.total_tokens - self.read_tokens - self.creation_tokens

    def usage_fields(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.creation_tokens,
            "cache_read_input_tokens": self.read_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.write_5m,
                "ephemeral_1h_input_tokens": self.write_1h,
            },
        }


@dataclass
class _Entry:
    tokens: int
    ttl: str
    expires_at: float


class PromptCache:
    def __init__(self) -> None:
        self._entries: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def plan(self, segments: list[Segment], min_tokens: int, now: float) -> CachePlan:
        """What this prompt would read and write if answered at ``now`` (nothing changes yet)."""
        total = sum(s.tokens for s in segments)
        plan = CachePlan(total_tokens=total)
        if not any(s.ttl is not None for s in segments):
            return plan
        # Running prefix: (tokens, key) after each segment.
        prefixes: list[tuple[int, bytes]] = []
        running = hashlib.sha256()
        tokens = 0
        for segment in segments:
            running.update(len(segment.material).to_bytes(8, "big"))
            running.update(segment.material)
            tokens += segment.tokens
            prefixes.append((tokens, running.copy().digest()))
        marks = [i for i, s in enumerate(segments) if s.ttl is not None]
        candidates = sorted(
            {i for mark in marks for i in range(max(0, mark - LOOKBACK), mark + 1)}, reverse=True
        )
        read_at = -1
        with self._lock:
            for index in candidates:
                entry = self._entries.get(prefixes[index][1])
                if entry is not None and entry.expires_at > now:
                    read_at = index
                    plan.read_tokens, plan.read_key = prefixes[index]
                    break
        breakpoints = [(*prefixes[i], str(segments[i].ttl)) for i in marks if i > read_at]
        previous = plan.read_tokens
        for size, key, ttl in breakpoints:
            if size < min_tokens or size <= previous:
                continue  # too short to cache: its tokens join the next cacheable segment
            if ttl == "1h":
                plan.write_1h += size - previous
            else:
                plan.write_5m += size - previous
            plan.writes.append((key, size, ttl))
            previous = size
        return plan

    def commit(self, plan: CachePlan, now: float) -> None:
        """Record a plan's read (refreshing the entry) and its writes."""
        with self._lock:
            if plan.read_key is not None:
                entry = self._entries.get(plan.read_key)
                if entry is not None:
                    entry.expires_at = max(entry.expires_at, now + TTL_SECONDS[entry.ttl])
            for key, tokens, ttl in plan.writes:
                current = self._entries.get(key)
                if current is not None and current.expires_at > now and current.ttl == "1h":
                    ttl = "1h"  # a live one-hour entry is not downgraded by a 5m write
                self._entries[key] = _Entry(tokens, ttl, now + TTL_SECONDS[ttl])
