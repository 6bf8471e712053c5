"""Streaming through Bedrock's InvokeModelWithResponseStream: claude_magics against the official
SDK's Bedrock client, and against its own first-party SSE path, on the same emulator.

    python benchmarks/bedrock_stream.py [--deltas 20000] [--rounds 5]

Four readers take the same 20,000-delta reply from one emulator in its own process (test
credentials; every request is SigV4-signed and verified): claude_magics over Bedrock (AWS
event-stream frames, each a base64 JSON event, decoded by ``api/platforms/eventstream.py``),
the same through ``AsyncClient`` (one ``asyncio.run`` per stream), claude_magics over the
first-party API (server-sent events; the cost of the framing alone), and
the official SDK's ``AnthropicBedrock`` (boto3 signs, its own event-stream decoder). Runs are
interleaved so drift hits all alike. Prints deltas per second and the ratios of medians. The
Bedrock figures include the emulator's own cost of framing each event (base64, CRC32), which
the SSE path does not pay.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

MODEL = "claude-haiku-4-5-20251001"  # served through InvokeModel on Bedrock
BEDROCK_ID = "anthropic.claude-haiku-4-5-20251001-v1:0"
AKID, SECRET = "AKIDBENCH", "bench-secret"


def _start_emulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_magics.emulator",
            "--port",
            "0",
            "--aws-credentials",
            f"{AKID}:{SECRET}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http"):
        process.kill()
        raise SystemExit(f"emulator did not start: {url!r}")
    return process, url


def _reader(stream_of: Callable[[], object]) -> Callable[[], int]:
    def run() -> int:
        count = 0
        with stream_of() as stream:  # type: ignore[attr-defined]
            for _ in stream.text_stream:
                count += 1
        return count

    return run


def _async_reader(client: Any, **params: Any) -> Callable[[], int]:
    async def read() -> int:
        count = 0
        async with client.messages.stream(**params) as stream:
            async for _ in stream.text_stream:
                count += 1
        await client.close()
        return count

    return lambda: asyncio.run(read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import anthropic

    from claude_magics.api.client import AsyncClient, Client

    process, url = _start_emulator()
    try:
        messages = [{"role": "user", "content": f"Benchmark [[reply_tokens={args.deltas}]]"}]
        max_tokens = args.deltas + 10
        bedrock = Client(
            platform="bedrock",
            region="us-east-1",
            base_url=url,
            aws_access_key=AKID,
            aws_secret_key=SECRET,
        )
        async_bedrock = AsyncClient(
            platform="bedrock",
            region="us-east-1",
            base_url=url,
            aws_access_key=AKID,
            aws_secret_key=SECRET,
        )
        first_party = Client(platform="anthropic", api_key="bench", base_url=url)
        sdk = anthropic.AnthropicBedrock(
            aws_access_key=AKID, aws_secret_key=SECRET, aws_region="us-east-1", base_url=url
        )
        runners = {
            "ours, Bedrock": _reader(
                lambda: bedrock.messages.stream(
                    model=MODEL, max_tokens=max_tokens, messages=messages
                )
            ),
            "ours async, Bedrock": _async_reader(
                async_bedrock, model=MODEL, max_tokens=max_tokens, messages=messages
            ),
            "ours, SSE": _reader(
                lambda: first_party.messages.stream(
                    model=MODEL, max_tokens=max_tokens, messages=messages
                )
            ),
            "SDK, Bedrock": _reader(
                lambda: sdk.messages.stream(
                    model=BEDROCK_ID, max_tokens=max_tokens, messages=messages
                )
            ),
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

    print(f"{args.deltas:,} text deltas per stream, {args.rounds} interleaved rounds")
    for name, values in rates.items():
        print(
            f"  {name:<19} median {statistics.median(values):>10,.0f} deltas/s"
            f"   (min {min(values):,.0f}, max {max(values):,.0f})"
        )
    median = {name: statistics.median(values) for name, values in rates.items()}
    ours = median["ours, Bedrock"]
    print(f"  ours over Bedrock / SDK over Bedrock: {ours / median['SDK, Bedrock']:.1f}x")
    print(f"  ours over Bedrock / ours over SSE:    {ours / median['ours, SSE']:.2f}x")
    print(f"  ours async / ours sync, over Bedrock: {median['ours async, Bedrock'] / ours:.2f}x")


if __name__ == "__main__":
    main()
