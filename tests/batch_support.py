"""Helpers shared by the DataFrame-job tests: a fast-polling job runner bound to one emulator,
one job ledger and one spend ledger (all under the test's tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from claude_magics.api.client import Client
from claude_magics.cost.ledger import Ledger
from claude_magics.emulator import Emulator
from claude_magics.jobs import job as batch
from claude_magics.jobs.store import JobStore

REVIEWS = [
    "Great value, I would buy it again. positive",
    "Broke after two days. negative",
    "It does the job. neutral",
    "Great value, I would buy it again. positive",  # a duplicate: sent once
    "Arrived late and the box was damaged. negative",
]
LABELS = ["positive", "negative", "neutral"]


def fast(job: batch.Job) -> None:
    """Poll every few milliseconds, and give a lost create a moment, not half a minute."""
    job.poll_interval = 0.02
    job.max_poll = 0.05
    job.lost_create_grace = 0.3
    job.initial_backoff = 0.01
    job.max_backoff = 0.05


@dataclass
class Jobs:
    """Runs jobs against one emulator with a private ledger, fast polling, no progress bar."""

    emulator: Emulator
    client: Client
    store: JobStore
    ledger: Ledger

    def run(self, frame: Any, template: Any, task: Any, **options: Any) -> batch.Job:
        options.setdefault("progress", False)
        options.setdefault("configure", fast)
        return batch.run(
            frame,
            template,
            task,
            client=self.client,
            store=self.store,
            ledger=self.ledger,
            **options,
        )

    def fresh_process_objects(self) -> tuple[JobStore, Client, Ledger]:
        """What a new kernel would have: new store, client and ledger on the same files."""
        return (
            JobStore(self.store.path),
            Client(api_key="k", base_url=self.emulator.url),
            Ledger(self.ledger.path),
        )

    def attach(self, job_id: str, **options: Any) -> batch.Job:
        store, client, ledger = self.fresh_process_objects()
        job = batch.attach(
            job_id, wait=False, progress=False, store=store, client=client, ledger=ledger
        )
        fast(job)
        if options.get("wait", True):
            job.wait()
        return job

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


def make_jobs(emulator: Emulator, tmp_path: Path) -> Jobs:
    client = Client(
        api_key="k", base_url=emulator.url, initial_retry_delay=0.01, max_retry_delay=0.05
    )
    return Jobs(
        emulator,
        client,
        JobStore(tmp_path / "jobs.sqlite"),
        Ledger(tmp_path / "ledger.sqlite"),
    )


def user_text(params: dict[str, Any]) -> str:
    return "".join(b["text"] for b in params["messages"][-1]["content"])


def json_size(value: Any) -> int:
    return len(orjson.dumps(value))
