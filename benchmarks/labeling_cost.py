"""What labeling 10,000 rows costs, ours against a naive realtime loop, from the emulator's usage.

    python benchmarks/labeling_cost.py [--rows 10000] [--model claude-sonnet-4-6]

Every row shares a 2,000-token instruction (counted by the emulator's count_tokens) and has a
short review of its own, all distinct (no savings from deduplication). Both sides use the same
structured output (an enum of three labels) and the same ``max_tokens``, so what differs is
only how the requests are sent:

* ours: ``df.claude.label(..., mode="batch")``: the instruction is the system prompt with a
  one-hour cache breakpoint, the row is the user turn, one Message Batch (half price);
* naive: one realtime ``messages.create`` per row, instruction and review in one user message,
  no caching.

Costs are priced from each response's ``usage`` by ``pricing.price_usage`` (batch results at
the batch rate). Sonnet, because its minimum cacheable prefix is 1,024 tokens; Haiku 4.5's is
4,096, so a 2,000-token instruction cannot be cached there (run with --model to see).

Target (issue 5): at most 0.06x.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from claude_magics.api.client import Client
from claude_magics.config import Settings
from claude_magics.cost.ledger import Ledger
from claude_magics.cost.pricing import format_usd, price_usage
from claude_magics.emulator import Emulator
from claude_magics.jobs import entry
from claude_magics.jobs.store import JobStore
from claude_magics.jobs.tasks import label_task

LABELS = ["positive", "negative", "neutral"]
TARGET = 0.06
# The emulator ends a batch in half a second: poll every 0.2 s, not every 2 s.
_FAST_POLL = Settings(batch_poll_seconds=0.2)
_RULES = (
    "A review that praises the product but complains about delivery is still about the product.",
    "Sarcasm counts as the opposite of what the words say on their surface.",
    "Short reviews such as 'fine' or 'ok' are neutral unless something else tips them.",
    "A return or a refund request is negative, whatever the tone of the message.",
    "Praise for the seller alone, with nothing about the product, is neutral.",
    "Comparisons with other brands count only for what they say about this product.",
)
_OPENINGS = ("Works", "Broke", "Arrived", "Love", "Returned", "Fine", "Bright", "Cheap")
_BITS = ("after a week", "as described", "on time", "twice", "for the price", "in the rain")


def instruction(client: Client, model: str, tokens: int = 2000) -> str:
    """A labeling guide of about ``tokens`` tokens, as the emulator counts them."""
    parts = ["You label customer reviews of an online electronics shop."]
    rng = random.Random(7)
    while True:
        text = " ".join(parts)
        counted = client.messages.count_tokens(
            model=model,
            system=[{"type": "text", "text": text}],
            messages=[{"role": "user", "content": "x"}],
        )
        if counted >= tokens:
            return text
        parts.append(f"Rule {len(parts)}: {rng.choice(_RULES)}")


def reviews(n: int) -> list[str]:
    rng = random.Random(0)
    return [
        f"{rng.choice(_OPENINGS)} {rng.choice(_BITS)}, item {i}, {rng.choice(LABELS)}."
        for i in range(n)
    ]


def ours(client: Client, frame: pd.DataFrame, guide: str, model: str) -> tuple[float, Any]:
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "ledger.sqlite")
        job = entry.run(
            frame,
            guide + "\n\nLabel this review: {{review}}",
            label_task(LABELS),
            model=model,
            mode="batch",
            yes=True,
            progress=False,
            client=client,
            store=JobStore(Path(folder) / "jobs.sqlite"),
            ledger=ledger,
            settings=_FAST_POLL,
        )
        usage = job.result(frame, usage=True)
        cost = sum(c.cost_usd or 0.0 for c in ledger.calls())
        job.store.close()
    return cost, usage


def naive(client: Client, texts: list[str], guide: str, model: str) -> tuple[float, list[Any]]:
    schema = label_task(LABELS).schema
    max_tokens = label_task(LABELS).default_max_tokens()

    def one(text: str) -> Any:
        return client.messages.create(
            model=model,
            max_tokens=max_tokens,
            messages=[{"role": "user", "content": f"{guide}\n\nLabel this review: {text}"}],
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )

    with ThreadPoolExecutor(8) as pool:
        messages = list(pool.map(one, texts))
    cost = 0.0
    for message in messages:
        priced = price_usage(message["usage"], model)
        cost += priced.total if priced else 0.0
    return cost, messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--model", default="claude-sonnet-4-6")
    args = parser.parse_args()
    texts = reviews(args.rows)
    frame = pd.DataFrame({"review": texts})
    with Emulator(batch_processing_seconds=0.5) as emulator:
        client = Client(api_key="bench", base_url=emulator.url)
        guide = instruction(client, args.model)
        started = time.perf_counter()
        ours_cost, usage = ours(client, frame, guide, args.model)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        naive_cost, messages = naive(client, texts, guide, args.model)
        naive_s = time.perf_counter() - started
    per_row_in = sum(m["usage"]["input_tokens"] for m in messages) / len(messages)
    out = sum(m["usage"]["output_tokens"] for m in messages) / len(messages)
    print(
        f"Labeling {args.rows:,} rows with {args.model}, a shared instruction of about 2,000 "
        f"tokens (emulator usage, prices from the package's table)"
    )
    print(
        f"  naive realtime loop, no caching: {format_usd(naive_cost):>9}  "
        f"({per_row_in:,.0f} input + {out:.0f} output tokens a row, {naive_s:.0f} s)"
    )
    read = usage["cache_read_tokens"].sum()
    fresh = usage["input_tokens"].sum()
    written = usage["cache_write_tokens"].sum()
    print(
        f"  ours (batch, cached instruction): {format_usd(ours_cost):>9}  "
        f"({read:,} tokens read from cache, {written:,} written once, {fresh:,} fresh; "
        f"{ours_s:.0f} s)"
    )
    ratio = ours_cost / naive_cost
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"  ratio ours / naive: {ratio:.4f}x  ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
