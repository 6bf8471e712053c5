"""What DataFrame jobs spend: priced as billed, and written to the spend ledger exactly once.

    tally = Tally(kind="batch", overrides=None, model=job.model); tally.add(row)
    store.finish_fetch(chunk, tally.owed(seconds=3600.0, request_id="msgbatch_..."))
    dollars = write_owed(store, job_id, ledger)     # ledger rows, then forgotten in the store

Each result is priced on its own, as it was billed: a price can depend on the length of each
request's prompt (tiers), which a sum of usages no longer shows.

**Exactly once, across kills.** What results owe the ledger is written to the job store in the
same transaction as the results (``OwedSpend``), so no answer is stored without its spend.
:func:`write_owed` then marks the owed rows as being written, writes one ledger row per model
and request id (a batch's id; for realtime answers the job id and a slice number), and forgets
them in the store. A process killed before the ledger write leaves the rows owed, and the next
process to work on the job writes them; one killed between the ledger write and the store's
forgetting leaves rows marked, which are looked for in the ledger (by request id and model)
before being written again. Only the process holding the job's claim writes its spend.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..cost.pricing import Cost, price_usage
from ..cost.usage import Usage
from ..errors import StorageError
from .claim import Hold
from .progress import say
from .store import OwedRow, OwedSpend, ResultRow

if TYPE_CHECKING:
    from ..cost.ledger import Ledger
    from .store import JobStore

__all__ = ["Tally", "row_spend", "settle_owed", "write_owed", "write_spend"]

# Seconds the ledger's clock may be behind the moment a write was marked in the job store.
_CLOCK_SLACK = 60.0


def row_spend(
    row: ResultRow,
    *,
    kind: str,
    model: str,
    overrides: Mapping[str, Any] | None,
    seconds: float = 0.0,
) -> OwedSpend | None:
    """What one result owes the ledger (None: nothing was billed for it). ``model``: the
    job's, for a result that does not name its own."""
    if not row.answered:
        return None
    name = row.model or model
    cost = price_usage(row.usage, name, batch=kind == "batch", overrides=overrides)
    return OwedSpend(kind, name, row.usage, cost, seconds)


class Tally:
    """Results' spend summed per model, each result priced as it was billed."""

    def __init__(self, *, kind: str, overrides: Mapping[str, Any] | None, model: str) -> None:
        """``kind``: "batch" (half price) or "realtime"; ``model``: the job's, for results
        that do not name theirs."""
        self.kind, self.overrides, self.model = kind, overrides, model
        self.usage: dict[str, Usage] = {}
        self.cost: dict[str, Cost | None] = {}

    def add(self, row: ResultRow) -> None:
        """Count one result (failed requests cost nothing)."""
        spend = row_spend(row, kind=self.kind, model=self.model, overrides=self.overrides)
        if spend is None:
            return
        name = spend.model
        if name in self.usage:
            self.usage[name] += spend.usage
            before = self.cost[name]
            self.cost[name] = None if before is None or spend.cost is None else before + spend.cost
        else:
            self.usage[name], self.cost[name] = spend.usage, spend.cost

    def owed(self, *, seconds: float, request_id: str | None = None) -> list[OwedSpend]:
        """What was counted, one entry per model, and start again."""
        owed = [
            OwedSpend(self.kind, name, usage, self.cost[name], seconds, request_id)
            for name, usage in self.usage.items()
        ]
        self.usage.clear()
        self.cost.clear()
        return owed


def _sum(spends: list[OwedSpend]) -> tuple[Usage, Cost | None, float]:
    usage = Usage()
    cost: Cost | None = None
    priced = True
    for spend in spends:
        usage += spend.usage
        if spend.cost is None:
            priced = False
        else:
            cost = spend.cost if cost is None else cost + spend.cost
    return usage, cost if priced else None, sum(spend.seconds for spend in spends)


def write_spend(ledger: Ledger, spends: list[OwedSpend], request_id: str | None) -> float:
    """Write ``spends`` to the ledger, one row per kind and model; returns the dollars. For
    spend that never reached the job store (it could not be written): nothing to mark."""
    groups: dict[tuple[str, str, str | None], list[OwedSpend]] = {}
    for spend in spends:
        groups.setdefault((spend.kind, spend.model, spend.request_id or request_id), []).append(
            spend
        )
    dollars = 0.0
    for (kind, model, ident), members in groups.items():
        usage, cost, seconds = _sum(members)
        ledger.record_usage(
            model=model, usage=usage, cost=cost, seconds=seconds, request_id=ident, kind=kind
        )
        dollars += cost.total if cost is not None else 0.0
    return dollars


def write_owed(store: JobStore, job_id: str, ledger: Ledger | None) -> float:
    """Write what ``job_id`` owes the ledger and forget it in the store; returns the dollars
    written. Raises the ledger's :class:`~claude_magics.errors.StorageError` (the rows stay
    owed, to be written later); the caller holds the job's claim."""
    rows = store.start_spend_write(job_id, f"{job_id}:{secrets.token_hex(3)}")
    if not rows:
        return 0.0
    groups: dict[tuple[str, str, str], list[OwedRow]] = {}
    for row in rows:
        groups.setdefault((row.spend.kind, row.spend.model, row.request_id), []).append(row)
    present: set[tuple[str | None, str]] = set()
    retried = [row for row in rows if row.retried]
    if retried and ledger is not None:
        # A write of these was started before: the ledger may have them already.
        since = min(row.since for row in retried) - _CLOCK_SLACK
        present = {(call.request_id, call.model) for call in ledger.calls(since=since)}
    dollars = 0.0
    done: list[int] = []
    try:
        for (kind, model, request_id), members in groups.items():
            spends = [row.spend for row in members]
            usage, cost, seconds = _sum(spends)
            already = any(row.retried for row in members) and (request_id, model) in present
            if ledger is not None and not already:
                ledger.record_usage(
                    model=model,
                    usage=usage,
                    cost=cost,
                    seconds=seconds,
                    request_id=request_id,
                    kind=kind,
                )
                dollars += cost.total if cost is not None else 0.0
            done.extend(row.seq for row in members)
    finally:
        if done:
            store.spend_written(done)
    return dollars


def settle_owed(store: JobStore, ledger: Ledger | None) -> None:
    """Write the spend that jobs nobody works on still owe the ledger (their process was
    killed between an answer and the ledger write). A job another live process holds is left
    to it; a failure is one line, and the spend stays owed for the next time."""
    try:
        owing = store.jobs_owing()
        for job_id in owing:
            hold = Hold(store, job_id)
            if hold.try_take() is not None:
                continue  # a live process works on it, and writes its spend
            try:
                write_owed(store, job_id, ledger)
            finally:
                hold.release()
    except StorageError as error:
        say(f"⚠ Spend that earlier jobs owe the spend ledger could not be written yet. {error}")
