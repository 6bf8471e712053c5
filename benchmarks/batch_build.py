"""Building and serialising 100,000 batch requests from a DataFrame, against a json.dumps loop.

    python benchmarks/batch_build.py [--rows 100000] [--runs 5]

Ours: what a labeling job does before its first create, from the DataFrame to the bytes of
every create request: render each row through the template (``{{review}}``, values escaped
into tags), keep distinct prompts once, lay out the shared request once, serialise each
request around its text with orjson, compute the request-set hash, compute every prompt's
replay key and look them all up in an (empty) replay store, cut into batches under the API's
limits. Baseline: the plain loop people write, one dict per row and ``json.dumps`` on
it, joined into one body (no dedup, no escaping, no hash, no splitting: less work).

All rows are distinct, so deduplication saves nothing here. Target (issue 5): at most 0.3x.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from claude_magics.api.client import Client
from claude_magics.cost.replay import Replayer, ReplayStore
from claude_magics.jobs.entry import prompts_replay
from claude_magics.jobs.rows import RowTemplate, build_prompts
from claude_magics.jobs.tasks import label_task
from claude_magics.jobs.wire import batch_bodies, request_items

LABELS = ["positive", "negative", "neutral"]
INSTRUCTION = (
    "You label product reviews for an online shop. Read the review and decide how the customer "
    "feels about the product overall, not about delivery or price alone. Sarcasm counts as "
    "negative. Mixed reviews are neutral unless one side clearly dominates. "
)
WORDS = [
    *("battery", "screen", "strap", "charger", "great", "poor", "fine", "broke", "lasts"),
    *("bright", "dim", "loud", "quiet", "cheap", "works", "again", "never", "always", "love"),
    *("hate", "okay", "returned", "gift", "box", "late", "fast", "slow", "sturdy"),
]
TARGET = 0.3
CLIENT = Client(api_key="unused")


def reviews(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"Review {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 45)))
        for i in range(n)
    ]


def ours(frame: pd.DataFrame, replayer: Replayer) -> list[bytes]:
    template = RowTemplate.parse(INSTRUCTION + "Review: {{review}}", list(frame.columns))
    prompts = build_prompts(frame, template, label_task(LABELS), model="claude-haiku-4-5")
    replay = prompts_replay(prompts, CLIENT, replayer)
    assert replay is not None and not replay.lookup(range(prompts.n_prompts))
    prompts.key(batch=True)
    before, after = prompts.template(batch=True)
    items = request_items("3f9a2c1b7d", before, after, prompts.texts, range(prompts.n_prompts))
    return batch_bodies(items)


def baseline(texts: list[str]) -> str:
    schema = label_task(LABELS).schema
    lines = []
    for i, text in enumerate(texts):
        request = {
            "custom_id": f"row-{i}",
            "params": {
                "model": "claude-haiku-4-5",
                "max_tokens": 36,
                "system": INSTRUCTION,
                "messages": [{"role": "user", "content": f"Review: {text}"}],
                "output_config": {"format": {"type": "json_schema", "schema": schema}},
            },
        }
        lines.append(json.dumps(request))
    return '{"requests":[' + ",".join(lines) + "]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    texts = reviews(args.rows)
    frame = pd.DataFrame({"review": texts})
    folder = tempfile.TemporaryDirectory()
    replayer = Replayer(ReplayStore(Path(folder.name) / "responses.sqlite"))
    ours(frame.head(100), replayer)  # warm-up: imports, regex compilation
    baseline(texts[:100])
    mine: list[float] = []
    theirs: list[float] = []
    size = 0
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        started = time.perf_counter()
        bodies = ours(frame, replayer)
        mine.append(time.perf_counter() - started)
        size = sum(len(b) for b in bodies)
        started = time.perf_counter()
        body = baseline(texts)
        theirs.append(time.perf_counter() - started)
    ours_s, base_s = statistics.median(mine), statistics.median(theirs)
    print(f"Building and serialising {args.rows:,} batch requests (median of {args.runs} runs)")
    print(
        f"  ours (template, dedup, orjson, hash, split): {ours_s * 1000:8.1f} ms"
        f"  ({size / 1e6:.1f} MB in {len(bodies)} create bodies)"
    )
    print(
        f"  baseline (dict + json.dumps per row):       {base_s * 1000:8.1f} ms"
        f"  ({len(body) / 1e6:.1f} MB)"
    )
    ratio = ours_s / base_s
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"  ratio ours / baseline: {ratio:.2f}x  ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
