"""Helpers shared by the DataFrame-job tests: a fast-polling job runner bound to one emulator,
one job store and one spend ledger (all under the test's tmp_path). The ``jobs`` fixture in
conftest.py gives one to a test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from claude_magics.api.client import Client
from claude_magics.config import Settings
from claude_magics.cost.ledger import Ledger
from claude_magics.emulator import Emulator
from claude_magics.jobs import entry
from claude_magics.jobs.job import Job
from claude_magics.jobs.store import JobStore

REVIEWS = [
    "Great value, I would buy it again. positive",
    "Broke after two days. negative",
    "It does the job. neutral",
    "Great value, I would buy it again. positive",  # a duplicate: sent once
    "Arrived late and the box was damaged. negative",
]
LABELS = ["positive", "negative", "neutral"]


#: Poll every few milliseconds, and give a lost create a moment, not half a minute.
FAST = Settings(batch_poll_seconds=0.02, batch_poll_max_seconds=0.05, lost_create_grace_seconds=0.3)
#: The same, as ``%config`` lines for the IPython tests.
FAST_CONFIG = (
    "ClaudeMagics.batch_poll_seconds = 0.02",
    "ClaudeMagics.batch_poll_max_seconds = 0.05",
    "ClaudeMagics.lost_create_grace_seconds = 0.3",
)


@dataclass
class Jobs:
    """Runs jobs against one emulator with a private store and ledger, fast polling (the
    ``FAST`` settings), no progress bar. Realtime retries back off as the client does: a few
    milliseconds (see ``make_jobs``)."""

    emulator: Emulator
    client: Client
    store: JobStore
    ledger: Ledger

    def run(self, frame: Any, template: Any, task: Any, **options: Any) -> Job:
        options.setdefault("progress", False)
        options.setdefault("settings", FAST)
        options.setdefault("client", self.client)
        return entry.run(frame, template, task, store=self.store, ledger=self.ledger, **options)

    def fresh_process_objects(self) -> tuple[JobStore, Client, Ledger]:
        """What a new kernel would have: new store, client and ledger on the same files."""
        return (
            JobStore(self.store.path),
            _client(self.emulator),
            Ledger(self.ledger.path),
        )

    def attach(self, job_id: str, *, wait: bool = True) -> Job:
        store, client, ledger = self.fresh_process_objects()
        return entry.attach(
            job_id,
            wait=wait,
            progress=False,
            store=store,
            client=client,
            ledger=ledger,
            settings=FAST,
        )

    def creates(self) -> list[Any]:
        """The batch create requests the emulator received."""
        return [
            r
            for r in self.emulator.requests
            if r.method == "POST" and r.path == "/v1/messages/batches"
        ]

    def batch_params(self) -> Iterator[dict[str, Any]]:
        """The params of every request of every batch created."""
        for request in self.creates():
            for item in request.body["requests"]:
                yield item["params"]

    def messages(self) -> list[Any]:
        return [r for r in self.emulator.requests if r.path == "/v1/messages"]


def _client(emulator: Emulator) -> Client:
    """A client of ``emulator`` whose retries (its own, and a realtime job's) wait milliseconds."""
    return Client(
        api_key="k", base_url=emulator.url, initial_retry_delay=0.01, max_retry_delay=0.05
    )


def make_jobs(emulator: Emulator, tmp_path: Path) -> Jobs:
    return Jobs(
        emulator,
        _client(emulator),
        JobStore(tmp_path / "jobs.sqlite"),
        Ledger(tmp_path / "ledger.sqlite"),
    )


def user_text(params: dict[str, Any]) -> str:
    return "".join(b["text"] for b in params["messages"][-1]["content"])


def json_size(value: Any) -> int:
    return len(orjson.dumps(value))
