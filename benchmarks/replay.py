"""Replay: Run All of a 10-cell ``%%claude`` notebook twice; the second run pays for nothing.

    python benchmarks/replay.py [--cells 10] [--tokens-per-second 80] [--ttft 0.6]

The notebook runs in a real kernel (nbclient) against an emulator in its own process with
realistic pacing (a first-token delay, then ``--tokens-per-second``), with a fresh
``CLAUDE_MAGICS_HOME`` shared by both runs, as a kernel restart shares the user's cache folder.
Prints the ``/v1/messages`` requests sent and the wall time of each Run All, and their ratio.
Target (issue 12): the second run sends 0 requests and takes under a tenth of the first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any


def _start_emulator(ttft: float, tokens_per_second: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_magics.emulator",
            "--port",
            "0",
            "--ttft",
            str(ttft),
            "--tokens-per-second",
            str(tokens_per_second),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _messages_sent(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_emulator/requests") as response:
        log = json.load(response)
    return sum(1 for r in log if r.get("path") == "/v1/messages")


def _notebook(cells: int) -> Any:
    from nbformat.v4 import new_code_cell, new_notebook

    sources = ["%load_ext claude_magics"] + [
        f"%%claude --once\nQuestion {n}: summarise step {n}. [[reply_tokens=60]]"
        for n in range(1, cells + 1)
    ]
    nb = new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [new_code_cell(source) for source in sources]  # type: ignore[no-untyped-call]
    return nb


def _run_all(cells: int) -> tuple[float, float]:
    """Seconds of Run All in a new kernel: the cells alone, and with the kernel's start."""
    from nbclient import NotebookClient

    nb = _notebook(cells)
    client = NotebookClient(nb, timeout=120)
    started = time.perf_counter()
    with client.setup_kernel():
        cells_started = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        ended = time.perf_counter()
    return ended - cells_started, ended - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10)
    parser.add_argument("--tokens-per-second", type=float, default=80.0)
    parser.add_argument("--ttft", type=float, default=0.6, help="seconds to the first token")
    args = parser.parse_args()
    process, url = _start_emulator(args.ttft, args.tokens_per_second)
    os.environ.update(
        ANTHROPIC_BASE_URL=url,
        ANTHROPIC_API_KEY="emulator-key",
        CLAUDE_MAGICS_HOME=tempfile.mkdtemp(prefix="claude-magics-replay-bench-"),
    )
    try:
        times, sent = [], []
        for run in (1, 2):
            before = _messages_sent(url)
            cells_seconds, with_start = _run_all(args.cells)
            times.append(cells_seconds)
            sent.append(_messages_sent(url) - before)
            print(
                f"Run All {run}: {sent[-1]} requests sent, {cells_seconds:.2f} s "
                f"({with_start:.2f} s with the kernel's start)",
                flush=True,
            )
    finally:
        process.terminate()
        process.wait()
    ratio = times[1] / times[0]
    verdict = "met" if sent[1] == 0 and ratio < 0.1 else "NOT met"
    print(
        f"second / first: {ratio:.3f} ({times[0] / times[1]:.1f}x faster); "
        f"target (0 requests, < 0.1) {verdict}"
    )


if __name__ == "__main__":
    main()
