"""Streaming throughput: claude_magics' client against the official SDK, on the same emulator.

    python benchmarks/stream.py [--deltas 20000] [--rounds 5]

Both clients read the same 20,000-delta reply (one text delta per token, no added latency) from
one emulator running in its own process, so the server's cost is the same for both and the
clients do not share a GIL with it. Runs are interleaved (ours, SDK, ours, SDK, ...) so that
drift on the machine hits both alike. Prints deltas per second for each and the ratio of
medians. Target (issue 2): ours >= 5x the SDK's ``messages.stream().text_stream``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

MODEL = "claude-sonnet-4-6"


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


def _ours(url: str, prompt: str, max_tokens: int) -> Callable[[], int]:
    from claude_magics.api.client import Client

    client = Client(api_key="bench", base_url=url)

    def run() -> int:
        count = 0
        with client.messages.stream(
            model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}]
        ) as stream:
            for _ in stream.text_stream:
                count += 1
        return count

    return run


def _sdk(url: str, prompt: str, max_tokens: int) -> Callable[[], int]:
    import anthropic

    client = anthropic.Anthropic(api_key="bench", base_url=url)

    def run() -> int:
        count = 0
        with client.messages.stream(
            model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}]
        ) as stream:
            for _ in stream.text_stream:
                count += 1
        return count

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    process, url = _start_emulator()
    try:
        prompt = f"Benchmark reply [[reply_tokens={args.deltas}]]"
        max_tokens = args.deltas + 10
        runners = {
            "claude_magics": _ours(url, prompt, max_tokens),
            "anthropic SDK": _sdk(url, prompt, max_tokens),
        }
        for run in runners.values():  # warm up connections and imports
            run()
        rates: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, run in runners.items():
                started = time.perf_counter()
                count = run()
                elapsed = time.perf_counter() - started
                if count != args.deltas:
                    raise SystemExit(f"{name} saw {count} text deltas, expected {args.deltas}")
                rates[name].append(count / elapsed)
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(
        f"{args.deltas:,} text deltas per stream, {args.rounds} interleaved rounds, "
        f"emulator at {url}"
    )
    for name, values in rates.items():
        print(
            f"  {name:<14} median {statistics.median(values):>10,.0f} deltas/s"
            f"   (min {min(values):,.0f}, max {max(values):,.0f})"
        )
    ratio = statistics.median(rates["claude_magics"]) / statistics.median(rates["anthropic SDK"])
    verdict = "meets" if ratio >= 5 else "MISSES"
    print(f"  ratio claude_magics / SDK: {ratio:.1f}x  ({verdict} the 5x target)")


if __name__ == "__main__":
    main()
