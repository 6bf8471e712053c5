"""Streaming: claude_magics' clients (sync and async) against the official SDK's, on one emulator.

    python benchmarks/stream.py [--deltas 20000] [--rounds 5]

Each client reads the same 20,000-delta reply (one text delta per token, no added latency) from
one emulator running in its own process, so the server's cost is the same for all and the
clients do not share a GIL with it; then 20 short replies (5 deltas), timed to their first text
delta: the cost of starting a stream (the long reply's first delta waits for the server to
write it all). Runs are interleaved (ours, SDK, ours async, SDK async, ...) so that drift on the
machine hits all alike; the async clients run in one event loop each, kept across rounds as a
notebook keeps its loop. Prints for each the median time to the first delta and deltas per
second, then ratios. Target (issue 2): ours >= 5x the SDK's
``messages.stream().text_stream``, sync and async alike (issue 17: the async client keeps up
with the sync one).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

MODEL = "claude-sonnet-4-6"

# A run reads one stream of a prompt: (text deltas seen, seconds to the first, seconds in all).
Run = Callable[[str], tuple[int, float, float]]
SHORT = "Benchmark start [[reply_tokens=5]]"
SHORT_RUNS = 20


def _start_emulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "claude_magics.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http"):
        process.kill()
        raise SystemExit(f"emulator did not start: {url!r}")
    return process, url


def _sync_run(client: object, max_tokens: int) -> Run:
    def run(prompt: str) -> tuple[int, float, float]:
        count, first = 0, 0.0
        started = time.perf_counter()
        with client.messages.stream(  # type: ignore[attr-defined]
            model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}]
        ) as stream:
            for _ in stream.text_stream:
                if not count:
                    first = time.perf_counter() - started
                count += 1
        return count, first, time.perf_counter() - started

    return run


def _async_run(client: object, max_tokens: int) -> Run:
    loop = asyncio.new_event_loop()

    async def read(prompt: str) -> tuple[int, float, float]:
        count, first = 0, 0.0
        started = time.perf_counter()
        async with client.messages.stream(  # type: ignore[attr-defined]
            model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}]
        ) as stream:
            async for _ in stream.text_stream:
                if not count:
                    first = time.perf_counter() - started
                count += 1
        return count, first, time.perf_counter() - started

    return lambda prompt: loop.run_until_complete(read(prompt))


def _runners(url: str, max_tokens: int) -> dict[str, Run]:
    import anthropic

    from claude_magics.api.client import AsyncClient, Client

    return {
        "claude_magics": _sync_run(Client(api_key="bench", base_url=url), max_tokens),
        "anthropic SDK": _sync_run(anthropic.Anthropic(api_key="bench", base_url=url), max_tokens),
        "claude_magics async": _async_run(AsyncClient(api_key="bench", base_url=url), max_tokens),
        "anthropic SDK async": _async_run(
            anthropic.AsyncAnthropic(api_key="bench", base_url=url), max_tokens
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    process, url = _start_emulator()
    try:
        prompt = f"Benchmark reply [[reply_tokens={args.deltas}]]"
        runners = _runners(url, args.deltas + 10)
        for run in runners.values():  # warm up connections and imports
            run(prompt)
        rates: dict[str, list[float]] = {name: [] for name in runners}
        firsts: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, run in runners.items():
                count, _, elapsed = run(prompt)
                if count != args.deltas:
                    raise SystemExit(f"{name} saw {count} text deltas, expected {args.deltas}")
                rates[name].append(count / elapsed)
                firsts[name].extend(run(SHORT)[1] for _ in range(SHORT_RUNS))
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(
        f"{args.deltas:,} text deltas per stream, {args.rounds} interleaved rounds, "
        f"emulator at {url}"
    )
    rate = {name: statistics.median(values) for name, values in rates.items()}
    first = {name: statistics.median(values) for name, values in firsts.items()}
    for name, values in rates.items():
        print(
            f"  {name:<20} first delta {first[name] * 1000:>5.2f} ms   "
            f"median {rate[name]:>10,.0f} deltas/s   (min {min(values):,.0f}, "
            f"max {max(values):,.0f})"
        )
    for ours, sdk in (
        ("claude_magics", "anthropic SDK"),
        ("claude_magics async", "anthropic SDK async"),
    ):
        ratio = rate[ours] / rate[sdk]
        verdict = "meets" if ratio >= 5 else "MISSES"
        print(
            f"  {ours} / {sdk}: throughput {ratio:.1f}x ({verdict} the 5x target), "
            f"first delta {first[ours] / first[sdk]:.2f}x the SDK's time"
        )
    mine, sync = "claude_magics async", "claude_magics"
    print(
        f"  {mine} / sync: throughput {rate[mine] / rate[sync]:.2f}x, "
        f"first delta {first[mine] / first[sync]:.2f}x the sync time"
    )


if __name__ == "__main__":
    main()
