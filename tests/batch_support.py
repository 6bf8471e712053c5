"""Helpers shared by the DataFrame-job tests: a fast-polling job runner bound to one emulator,
one job store and one spend ledger (all under the test's tmp_path), another process working on
the same files (``Jobs.child``), and ``Gateway``, a server that speaks only part of the Messages
API. The ``jobs`` fixture in conftest.py gives a runner to a test; ``gateway()`` starts a
gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from claude_magics.api.client import Client
from claude_magics.config import Settings
from claude_magics.cost.ledger import Ledger
from claude_magics.cost.replay import Replayer, ReplayStore
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
    #: The replay store of this test (``responses.sqlite`` beside the job store), no cassette.
    replayer: Replayer

    def run(self, frame: Any, template: Any, task: Any, **options: Any) -> Job:
        options.setdefault("progress", False)
        options.setdefault("settings", FAST)
        options.setdefault("client", self.client)
        options.setdefault("store", self.store)
        options.setdefault("ledger", self.ledger)
        options.setdefault("replayer", self.replayer)
        return entry.run(frame, template, task, **options)

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
            replayer=Replayer(ReplayStore(self.replayer.store.path))
            if self.replayer.store
            else None,
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

    @property
    def home(self) -> Path:
        """The folder of the job store and the ledger: another process's CLAUDE_MAGICS_HOME."""
        return self.store.path.parent

    def child(self, code: str) -> subprocess.Popen[str]:
        """Another Python process (another kernel) running ``code`` on the same job store and
        ledger (``CLAUDE_MAGICS_HOME``) against the same emulator (``ANTHROPIC_BASE_URL``).
        ``code`` starts with pandas, ``jobs`` (claude_magics.jobs), ``LABELS`` and ``REVIEWS``
        at hand; its output is read from ``.stdout`` and ``.stderr``."""
        prelude = (
            "import pandas as pd\n"
            "from claude_magics import jobs\n"
            f"LABELS, REVIEWS = {LABELS!r}, {REVIEWS!r}\n"
        )
        env = {
            **os.environ,
            "CLAUDE_MAGICS_HOME": str(self.home),
            "ANTHROPIC_BASE_URL": self.emulator.url,
            "ANTHROPIC_API_KEY": "k",
        }
        return subprocess.Popen(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


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
        Replayer(ReplayStore(tmp_path / "responses.sqlite")),
    )


def user_text(params: dict[str, Any]) -> str:
    return "".join(b["text"] for b in params["messages"][-1]["content"])


def json_size(value: Any) -> int:
    return len(orjson.dumps(value))


# --------------------------------------------------------------------------------------------
# A gateway: a server with /v1/messages and little else (as LiteLLM's proxy may be)


@dataclass
class Gateway:
    """What the stub server at ``url`` answers and what it was asked.

    ``POST /v1/messages`` answers every request: with a label schema, the first label the
    user turn names (else the first label), as JSON; otherwise "ok". ``count_tokens`` is the
    answer to ``POST /v1/messages/count_tokens`` (a dict), or None for no such endpoint.
    Every other path is a bare 404, the way a proxy answers a route it does not have.
    """

    url: str = ""
    count_tokens: dict[str, Any] | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)

    def paths(self, method: str = "POST") -> list[str]:
        return [path for verb, path in self.requests if verb == method]

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        self.requests.append((method, path))
        if method == "POST" and path == "/v1/messages":
            return 200, orjson.dumps(_gateway_message(body))
        if method == "POST" and path == "/v1/messages/count_tokens" and self.count_tokens:
            return 200, orjson.dumps(self.count_tokens)
        return 404, b'{"detail": "Not Found"}'


def _gateway_message(body: dict[str, Any]) -> dict[str, Any]:
    schema = ((body.get("output_config") or {}).get("format") or {}).get("schema") or {}
    labels = ((schema.get("properties") or {}).get("label") or {}).get("enum")
    asked = user_text(body)
    if labels:
        chosen = next((label for label in labels if label in asked), labels[0])
        text = orjson.dumps({"label": chosen}).decode()
    else:
        text = "ok"
    return {
        "id": "msg_gateway",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 20 + len(asked) // 4, "output_tokens": 5},
    }


@contextmanager
def gateway() -> Iterator[Gateway]:
    """A ``Gateway`` listening on 127.0.0.1 for the length of the ``with``."""
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(size) if size else b""
            path = self.path.partition("?")[0]
            status, payload = state.answer(self.command, path, orjson.loads(raw or b"{}"))
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
