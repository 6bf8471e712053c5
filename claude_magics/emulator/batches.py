"""Message Batches kept in memory, with their state computed from the emulator clock.

    batch = Batch(id, created, items, timing)
    batch.status(now)                      # "in_progress" | "canceling" | "ended"
    batch.to_json(now, base_url)           # the MessageBatch object

No background work: request i of n finishes at ``created + processing * (i + 1) / n``; a
cancel at time k ends the batch ``cancel_seconds`` later and cancels the requests not finished
by k; requests not finished by ``created + expiry_seconds`` expire. Every read recomputes the
state from these times, so ``advance_clock`` moves a batch along instantly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .ratelimit import rfc3339
from .validation import Prompt

__all__ = ["Batch", "BatchItem", "BatchTiming"]


@dataclass(frozen=True)
class BatchTiming:
    processing: float
    cancel: float
    expiry: float
    results_seed: int
    default_reply_tokens: int


@dataclass
class BatchItem:
    custom_id: str
    params: dict[str, Any]
    #: The Files API ids its messages name (a file deleted before it is processed: an error).
    file_ids: frozenset[str] = frozenset()
    prompt: Prompt | None = None
    error: ApiError | None = None
    # Filled in once, the first time results are produced: the cache figures of its usage.
    usage: dict[str, Any] | None = None


@dataclass
class Batch:
    id: str
    created: float
    items: list[BatchItem]
    timing: BatchTiming
    sequence: int
    cancel_at: float | None = None
    results_ready: bool = False
    _order: list[int] = field(default_factory=list)

    def finish_time(self, index: int) -> float:
        return self.created + self.timing.processing * (index + 1) / len(self.items)

    @property
    def expires_at(self) -> float:
        return self.created + self.timing.expiry

    @property
    def ended_at(self) -> float:
        natural = min(self.finish_time(len(self.items) - 1), self.expires_at)
        if self.cancel_at is not None and self.cancel_at < natural:
            return self.cancel_at + self.timing.cancel
        return natural

    def status(self, now: float) -> str:
        if now >= self.ended_at:
            return "ended"
        if self.cancel_at is not None and now >= self.cancel_at:
            return "canceling"
        return "in_progress"

    def outcome(self, index: int) -> str:
        """How request ``index`` ends: succeeded, errored, canceled or expired."""
        finished = self.finish_time(index)
        stop = self.expires_at
        if self.cancel_at is not None:
            stop = min(stop, self.cancel_at)
        if finished <= stop:
            return "errored" if self.items[index].error is not None else "succeeded"
        if self.cancel_at is not None and self.cancel_at < self.expires_at:
            return "canceled"
        return "expired"

    def cancel(self, now: float) -> None:
        if self.status(now) == "in_progress":
            self.cancel_at = now

    def counts(self, now: float) -> dict[str, int]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.status(now) != "ended":
            # While a batch runs the API reports everything as processing.
            counts["processing"] = len(self.items)
            return counts
        for index in range(len(self.items)):
            counts[self.outcome(index)] += 1
        return counts

    def to_json(self, now: float, base_url: str) -> dict[str, Any]:
        status = self.status(now)
        ended = status == "ended"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": self.counts(now),
            "ended_at": rfc3339_ms(self.ended_at) if ended else None,
            "created_at": rfc3339_ms(self.created),
            "expires_at": rfc3339_ms(self.expires_at),
            "archived_at": None,
            "cancel_initiated_at": None if self.cancel_at is None else rfc3339_ms(self.cancel_at),
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }

    def result_order(self) -> list[int]:
        """Indices in the (deterministically shuffled) order results are listed."""
        if not self._order:
            order = list(range(len(self.items)))
            random.Random(f"{self.timing.results_seed}:{self.id}").shuffle(order)
            self._order = order
        return self._order


def rfc3339_ms(timestamp: float) -> str:
    """RFC 3339 with microseconds, as the batch API reports its times."""
    base = rfc3339(timestamp)
    micros = round((timestamp % 1) * 1_000_000) % 1_000_000
    return f"{base[:-1]}.{micros:06d}Z"
