"""`run_concurrently` against a server that holds a few requests at once and refuses more with a
429 and a long ``retry-after`` (no budget headers, as a concurrency limit answers): what it
does with the rows it refused, and what a second run with the same client starts from.

The server is a function in this process rather than the emulator, whose concurrency 429 says
``retry-after: 1``: too close to a small job's length to tell "when a slot frees" from "after
retry-after" by the order of events alone. Here a row that waited for ``retry-after`` would
come back long after every other row. The same fan-out against the emulator, through jobs, is
in tests/test_batch_realtime.py."""

from __future__ import annotations

import threading
import time
from collections import Counter

from claude_magics.api.client import Client
from claude_magics.api.fanout import Outcome, run_concurrently
from claude_magics.api.objects import ApiObject
from claude_magics.errors import RateLimitError

RETRY_AFTER = "5"  # seconds; no run below comes near it unless a refused row waits for it


class LimitedServer:
    """Holds at most ``limit`` requests at once, each for ``seconds``; refuses the rest."""

    def __init__(self, limit: int, seconds: float = 0.01) -> None:
        self.limit = limit
        self.seconds = seconds
        self.holding = 0
        self.lock = threading.Lock()
        self.log: list[tuple[int, int]] = []  # (item, status), in the order decided

    def send(self, item: int) -> ApiObject:
        with self.lock:
            if self.holding >= self.limit:
                self.log.append((item, 429))
                raise RateLimitError(
                    "Number of concurrent connections has exceeded your rate limit.",
                    status_code=429,
                    headers={"retry-after": RETRY_AFTER},
                )
            self.holding += 1
        time.sleep(self.seconds)
        with self.lock:  # the slot is free before the answer is on its way, as on a server
            self.holding -= 1
            self.log.append((item, 200))
        return ApiObject({"item": item})

    def refused(self) -> set[int]:
        return {item for item, status in self.log if status == 429}


def run(server: LimitedServer, items: list[int], **options: object) -> list[Outcome[int]]:
    outcomes: list[Outcome[int]] = []
    run_concurrently(items, server.send, on_outcome=outcomes.append, **options)  # type: ignore[arg-type]
    return outcomes


def test_a_row_refused_for_concurrency_goes_again_when_a_slot_frees() -> None:
    server = LimitedServer(limit=3)
    items = list(range(40))
    outcomes = run(server, items)
    # Every row answered, each exactly once.
    assert sorted(o.item for o in outcomes) == items
    assert all(o.response is not None and o.error is None for o in outcomes)
    assert Counter(item for item, status in server.log if status == 200) == Counter(items)
    # The first window (16) met a limit of 3: most of it was refused...
    refused = server.refused()
    assert len(refused) >= 10
    # ...and went again as slots freed, first in line: each was answered before the last
    # row was even sent, not after retry-after, once everything else was done.
    answered = [item for item, status in server.log if status == 200]
    last_sent = min(i for i, (item, _) in enumerate(server.log) if item == items[-1])
    assert all(answered.index(item) < last_sent for item in refused)


def test_a_second_run_with_the_same_client_starts_at_the_limit_learned() -> None:
    client, other = Client(api_key="k"), Client(api_key="k")
    server = LimitedServer(limit=3)
    run(server, list(range(30)), remember=(client, "model-a"))
    assert server.refused()  # the first run learned the limit the hard way
    server.log.clear()
    run(server, list(range(30)), remember=(client, "model-a"))
    assert not server.refused()  # the second starts at 3, not at 16
    # A limit is learned per client and model: another model starts from the ramp.
    run(server, list(range(30)), remember=(client, "model-b"))
    assert server.refused()
    server.log.clear()
    run(server, list(range(30)), remember=(other, "model-a"))
    assert server.refused()
