"""What the job store keeps, as named values: a job, a planned batch, a result row, spend
owed to the ledger, a process's claim on a job; and the compact encodings of their lists.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from ..cost.pricing import Cost
from ..cost.usage import Usage

__all__ = [
    "ChunkRecord",
    "ClaimRecord",
    "JobRecord",
    "OwedRow",
    "OwedSpend",
    "ResultRow",
    "pack_ints",
    "unpack_array",
    "unpack_ints",
]


@dataclass(frozen=True)
class JobRecord:
    id: str
    key: str
    created: float
    mode: str
    kind: str
    model: str
    n_rows: int
    n_prompts: int
    state: str
    description: str
    spec: dict[str, Any]
    before: bytes
    after: bytes


@dataclass(frozen=True)
class ChunkRecord:
    job_id: str
    attempt: int
    chunk: int
    #: The batch's prompt numbers (an ``array('I')``: 4 bytes each, for jobs of millions).
    prompts: Sequence[int]
    n: int
    nbytes: int
    state: str
    sent_at: float | None
    batch_id: str | None
    server_status: str | None
    counts: dict[str, int] | None


class ResultRow(NamedTuple):
    """One result of one distinct prompt, as stored (a JSON array of these 13 fields, in this
    order: the field order is the storage format).

    ``status`` is ``succeeded`` for an answer (``text``, ``stop_reason``, ``model`` and the
    token counts set) or ``errored:<type>`` / ``expired`` / ``canceled`` (``error`` may say
    why). ``source`` is the batch id, or the request id of a realtime answer; ``attempt`` the
    job's attempt that produced it (a retry's result replaces an earlier one).
    """

    prompt: int
    status: str
    text: str | None
    stop_reason: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int
    error: str | None
    source: str
    attempt: int

    @property
    def usage(self) -> Usage:
        """The tokens of this result (all zero for a request that failed)."""
        return Usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_write_5m,
            self.cache_write_1h,
            self.cache_read,
        )

    @property
    def answered(self) -> bool:
        """Whether the model answered (and was paid for), whatever the answer's status."""
        return self.status == "succeeded" or self.text is not None


class OwedSpend(NamedTuple):
    """Spend that results owe to the spend ledger, kept in the job store with the results
    until the ledger has it: what one ledger row will say."""

    kind: str  # "realtime" or "batch"
    model: str
    usage: Usage
    cost: Cost | None  # None: the model's price is unknown
    seconds: float
    #: The ledger row's request id: the batch id for a batch; None for realtime answers,
    #: which get one (the job id and a slice number) when their ledger row is written.
    request_id: str | None = None


class OwedRow(NamedTuple):
    """A stored :class:`OwedSpend` whose ledger row is being written. ``retried``: a write of
    it had started before (a process died or the ledger failed), so the ledger may have it."""

    seq: int
    spend: OwedSpend
    request_id: str
    retried: bool
    since: float


class ClaimRecord(NamedTuple):
    """Which process works on a job: a token of the holding object, its process id and host,
    when it took the job and when it last said it was alive."""

    owner: str
    pid: int
    host: str
    since: float
    heartbeat: float


_JOB_COLUMNS = (
    "id, key, created, mode, kind, model, n_rows, n_prompts, state, description, spec, "
    "before, after"
)


def pack_ints(values: Sequence[int]) -> bytes:
    return array("I", values).tobytes()


def unpack_array(blob: bytes) -> array[int]:
    """Packed ints as an ``array('I')``: a tenth of the memory of a list of them."""
    values = array("I")
    values.frombytes(blob)
    return values


def unpack_ints(blob: bytes) -> list[int]:
    values = array("I")
    values.frombytes(blob)
    return values.tolist()


def _encode_owed(spend: OwedSpend) -> tuple[Any, ...]:
    usage = spend.usage
    tokens = [
        usage.input,
        usage.output,
        usage.cache_write_5m,
        usage.cache_write_1h,
        usage.cache_read,
    ]
    cost = spend.cost
    dollars = (
        None
        if cost is None
        else orjson.dumps([cost.input, cost.output, cost.cache_write, cost.cache_read, cost.batch])
    )
    return (
        spend.kind,
        spend.model,
        orjson.dumps(tokens),
        dollars,
        spend.seconds,
        spend.request_id,
    )


def _decode_owed(row: Sequence[Any]) -> OwedSpend:
    kind, model, tokens, dollars, seconds, request_id = row
    cost = None
    if dollars is not None:
        c_in, c_out, c_write, c_read, batch = orjson.loads(dollars)
        cost = Cost(c_in, c_out, c_write, c_read, bool(batch))
    return OwedSpend(kind, model, Usage(*orjson.loads(tokens)), cost, seconds, request_id)
