"""Parsing 100,000 batch result lines into the DataFrame, against a json.loads loop.

    python benchmarks/batch_parse.py [--rows 100000] [--runs 5]

Ours: everything between the bytes of the results file and the labels column: each line
parsed (orjson, as ``client.batches.results`` does), matched to its prompt by ``custom_id``,
written to the job ledger (SQLite, a transaction every 5,000 lines, as it streams in) and each
answer kept for replay (``responses.sqlite``, in the same slices), then
read back, each answer checked against the labels, and the categorical Series built on the
original index with a status per row. Baseline: ``json.loads`` on each line and nothing else.

The lines are those the emulator writes for a labeling batch (one message each, with usage),
in shuffled order as the API returns them. Target (issue 5): at most 0.5x.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from claude_magics.jobs.job import Job
from claude_magics.jobs.store import JobRecord, JobStore
from claude_magics.jobs.tasks import label_task

LABELS = ["positive", "negative", "neutral"]
TAG = "3f9a2c1b7d"
TARGET = 0.5


def result_lines(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    lines = []
    for i in order:
        label = rng.choice(LABELS)
        message = {
            "id": f"msg_{i:024d}",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": json.dumps({"label": label}), "citations": None}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": {
                "input_tokens": rng.randint(40, 90),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1850,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "output_tokens": 5,
                "inference_geo": None,
                "server_tool_use": None,
                "service_tier": "batch",
            },
        }
        line = {"custom_id": f"{TAG}-{i}", "result": {"type": "succeeded", "message": message}}
        lines.append(orjson.dumps(line))
    return lines


def new_job(folder: Path, n: int, run: int) -> Job:
    store = JobStore(folder / f"jobs-{run}.sqlite")
    task = label_task(LABELS)
    record = JobRecord(
        id=f"job_{TAG}",
        key=f"bench-{run}",
        created=time.time(),
        mode="batch",
        kind="label",
        model="claude-haiku-4-5",
        n_rows=n,
        n_prompts=n,
        state="running",
        description="benchmark",
        spec={"task": task.to_spec(), "cacheable": True},
        before=b'{"model":"claude-haiku-4-5","max_tokens":36,"messages":[{"role":"user","content":',
        after=b"}]}",
    )
    store.create(record, texts=[""] * n, row_prompt=range(n), row_index=None)
    from claude_magics.api.client import Client
    from claude_magics.cost.replay import Replayer, ReplayStore

    replayer = Replayer(ReplayStore(folder / f"responses-{run}.sqlite"))
    return Job(store, record, client=Client(api_key="unused"), progress=False, replayer=replayer)


def ours(job: Job, lines: list[bytes]) -> object:
    loads = orjson.loads
    job.ingest((loads(line) for line in lines), "msgbatch_bench")
    return job.result()


def baseline(lines: list[bytes]) -> list[object]:
    return [json.loads(line) for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    lines = result_lines(args.rows)
    size = sum(len(line) + 1 for line in lines)
    mine: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        ours(new_job(Path(folder), 100, -1), result_lines(100))  # warm-up
        for run in range(args.runs):
            job = new_job(Path(folder), args.rows, run)
            started = time.perf_counter()
            labels = ours(job, lines)
            mine.append(time.perf_counter() - started)
            started = time.perf_counter()
            baseline(lines)
            theirs.append(time.perf_counter() - started)
            job.store.close()
    assert len(labels) == args.rows  # type: ignore[arg-type]
    ours_s, base_s = statistics.median(mine), statistics.median(theirs)
    print(
        f"Parsing {args.rows:,} result lines ({size / 1e6:.1f} MB) into the DataFrame "
        f"(median of {args.runs} runs)"
    )
    print(f"  ours (parse, match, SQLite ledger, check, Series): {ours_s * 1000:8.1f} ms")
    print(f"  baseline (json.loads per line):                   {base_s * 1000:8.1f} ms")
    ratio = ours_s / base_s
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"  ratio ours / baseline: {ratio:.2f}x  ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
