"""Estimating a label job over N rows of a Parquet file (half distinct): read a row group at a
time (``jobs.estimate_cost``) vs the file read into pandas (``df.claude.estimate``).

    python benchmarks/table_estimate.py [--rows 200000 2000000] [--pandas-rows 200000] [--runs 1]

Each run is a fresh process with its own home (nothing is sent: an estimate is local). Printed
per run: wall seconds, rows/s and the process's own peak RSS (``VmHWM``; see ``scale.py``).
Both give the same figures (``tests/test_tables.py`` checks it); the table read a row group
at a time holds the hashes of the distinct prompts, 16 bytes each, and one chunk of rows.

Target (issue 16): the streamed peak at the largest N within 1.5x of the peak at the smallest
(a million distinct prompts' hashes are 16 MB); rows/s no lower than the pandas path's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from scale import LABELS

CHILD = textwrap.dedent(
    """
    import json, sys, time
    started = time.perf_counter()
    path, way = sys.argv[1], sys.argv[2]
    labels = json.loads(sys.argv[3])
    from claude_magics import jobs
    if way == "stream":
        table = jobs.estimate_cost(path, "review", labels=labels, compare=(), mode="batch")
    else:
        import pandas as pd
        import claude_magics.jobs.accessor
        table = pd.read_parquet(path).claude.estimate("review", labels=labels, compare=())
    with open("/proc/self/status") as status:
        peak_kb = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    print(json.dumps({
        "seconds": time.perf_counter() - started,
        "peak_mb": peak_kb / 1024,
        "requests": int(table["requests"].iloc[0]),
        "cost": float(table.iloc[0, -1]),
    }))
    """
)


def run(way: str, table: Path) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix=f"estimate-{way}-"))
    env = {**os.environ, "CLAUDE_MAGICS_HOME": str(home), "ANTHROPIC_API_KEY": "bench"}
    env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:9"  # never asked: an estimate is local
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(table), way, json.dumps(LABELS)],
        env=env,
        capture_output=True,
        text=True,
    )
    subprocess.run(["rm", "-rf", str(home)], check=False)
    if done.returncode:
        raise SystemExit(f"{way} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[200_000, 2_000_000])
    parser.add_argument("--pandas-rows", type=int, nargs="*", default=[200_000])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="estimate-"))
    peaks: dict[int, float] = {}
    speeds: dict[tuple[str, int], float] = {}
    for n in sorted(set(args.rows) | set(args.pandas_rows)):
        table = folder / f"reviews-{n}.parquet"
        here = Path(__file__).with_name("scale.py")
        subprocess.run([sys.executable, str(here), "--make-table", str(table), str(n)], check=True)
        ways = ["stream"] if n in args.rows else []
        ways += ["pandas"] if n in args.pandas_rows else []
        for _ in range(args.runs):
            for way in ways:
                figures = run(way, table)
                assert figures["requests"] == n // 2, figures
                if way == "stream":
                    peaks[n] = min(peaks.get(n, figures["peak_mb"]), figures["peak_mb"])
                speeds[(way, n)] = max(speeds.get((way, n), 0.0), n / figures["seconds"])
                print(
                    f"{way:>6} {n:>9,} rows: {figures['seconds']:6.1f} s, "
                    f"{n / figures['seconds']:8,.0f} rows/s, peak {figures['peak_mb']:5.0f} MB, "
                    f"{figures['requests']:,} requests, ${figures['cost']:.4f}",
                    flush=True,
                )
        table.unlink()
    if len(peaks) > 1:
        small, big = min(peaks), max(peaks)
        ratio = peaks[big] / peaks[small]
        verdict = "meets" if ratio <= 1.5 else "MISSES"
        print(f"streamed peak at {big:,} rows / at {small:,}: {ratio:.2f}x ({verdict} 1.5x)")
    for n in args.pandas_rows:
        if ("stream", n) in speeds and ("pandas", n) in speeds:
            ratio = speeds[("stream", n)] / speeds[("pandas", n)]
            print(f"rows/s streamed / pandas at {n:,} rows: {ratio:.2f}x")


if __name__ == "__main__":
    main()
