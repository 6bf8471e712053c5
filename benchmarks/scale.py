"""Labeling N rows (half distinct) from a Parquet file in batches: streamed vs the pandas path.

    python benchmarks/scale.py [--rows 200000 2000000] [--pandas-rows 200000] [--runs 1]

Each run is a fresh process with its own job store, against an emulator in another process
(``--batch-seconds 0.2``: batches end at once, so the figures are the client's). Its peak RSS
is its own: ``VmHWM``, not ``ru_maxrss``, which on Linux keeps across the exec the peak of
the process that started it (this one, which is why the tables are made in a process of
their own: making 2,000,000 rows' table here took it to about 1 GB).

Streamed: ``claude_magics.jobs.label(path, "review", labels=..., out=...)``, the Parquet file
read a row group at a time and the labels written to Parquet. Pandas: ``pd.read_parquet`` then
``df.claude.label(..., mode="batch")`` and the labels written to Parquet, as people do today.
Printed per run: wall seconds and rows/s (the emulator's work included: it answers about 1,000
requests a second here), client CPU seconds and rows per client CPU second, peak RSS, and the
job store's size (``jobs.sqlite`` and the job's files beside it; the replay store, which only
the pandas path fills, apart).

Targets (issue 16): the streamed peak at the largest N within 1.3x of the peak at the smallest
and under 600 MB; the job store under 60 MB per million rows; rows/s no lower than the pandas
path's at the same N (client side: rows per CPU second of the labeling process).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

LABELS = ["positive", "negative", "neutral"]
WORDS = [
    *("battery", "screen", "strap", "charger", "great", "poor", "fine", "broke", "lasts"),
    *("bright", "dim", "loud", "quiet", "cheap", "works", "again", "never", "always", "love"),
    *("hate", "okay", "returned", "gift", "box", "late", "fast", "slow", "sturdy"),
]

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    started = time.perf_counter()
    path, out, way = sys.argv[1], sys.argv[2], sys.argv[3]
    labels = json.loads(sys.argv[4])
    from claude_magics import jobs
    from claude_magics.config import Settings
    fast = Settings(batch_poll_seconds=0.2, batch_poll_max_seconds=0.5)
    if way == "stream":
        jobs.label(path, "review", labels, out=out, key="id", mode="batch", yes=True,
                   progress=False, settings=fast)
    else:
        import pandas as pd
        import claude_magics.jobs.accessor
        frame = pd.read_parquet(path)
        result = frame.claude.label("review", labels, mode="batch", yes=True, progress=False,
                                    settings=fast)
        pd.DataFrame({"id": frame["id"], "label": result}).to_parquet(out)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # This process's own peak: VmHWM. ru_maxrss also keeps the peak of the process that
    # started it (Linux carries it over the exec), which is not this job's.
    try:
        with open("/proc/self/status") as status:
            peak_kb = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        peak_kb = usage.ru_maxrss
    print(json.dumps({
        "seconds": time.perf_counter() - started,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": peak_kb / 1024,
    }))
    """
)


def make_table(path: Path, n: int, seed: int = 0) -> None:
    """``n`` reviews, each text twice (half distinct), in a shuffled order, with an ``id``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    distinct = [
        f"Review {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 45)))
        for i in range(n // 2)
    ]
    texts = distinct + distinct
    rng.shuffle(texts)
    table = pa.table({"id": pa.array(range(len(texts)), pa.int64()), "review": texts})
    pq.write_table(table, path, row_group_size=100_000)


def size_mb(folder: Path, names: tuple[str, ...]) -> float:
    total = 0
    for name in names:
        for path in [folder / name, *folder.glob(name + "-*")]:
            if path.is_file():
                total += path.stat().st_size
            elif path.is_dir():
                total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total / 1e6


def run(way: str, table: Path, url: str) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix=f"scale-{way}-"))
    env = {**os.environ, "CLAUDE_MAGICS_HOME": str(home), "ANTHROPIC_BASE_URL": url}
    env["ANTHROPIC_API_KEY"] = "bench"
    out = home / "labels.parquet"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(table), str(out), way, json.dumps(LABELS)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{way} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall"] = wall
    figures["store_mb"] = size_mb(home, ("jobs.sqlite", "jobs-tables"))
    figures["replay_mb"] = size_mb(home, ("responses.sqlite",))
    import pyarrow.parquet as pq

    figures["rows_out"] = pq.read_metadata(out).num_rows
    subprocess.run(["rm", "-rf", str(home)], check=False)
    return figures


def main() -> None:
    if sys.argv[1:2] == ["--make-table"]:
        make_table(Path(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[200_000, 2_000_000])
    parser.add_argument("--pandas-rows", type=int, nargs="*", default=[200_000])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "claude_magics.emulator", "--batch-seconds", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().strip()
        folder = Path(tempfile.mkdtemp(prefix="scale-"))
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for n in sorted(set(args.rows) | set(args.pandas_rows)):
            table = folder / f"reviews-{n}.parquet"
            # In a process of its own: a big table's peak stays out of this one (and so out
            # of the peaks that runs' ru_maxrss would inherit, where VmHWM is missing).
            subprocess.run(
                [sys.executable, __file__, "--make-table", str(table), str(n)], check=True
            )
            ways = ["stream"] if n in args.rows else []
            ways += ["pandas"] if n in args.pandas_rows else []
            for _ in range(args.runs):
                for way in ways:
                    figures = run(way, table, url)
                    assert figures["rows_out"] == n, figures
                    results.setdefault((way, n), []).append(figures)
                    print(
                        f"{way:>6} {n:>9,} rows: {figures['wall']:7.1f} s wall, "
                        f"{n / figures['wall']:8,.0f} rows/s, {figures['cpu']:6.1f} s client CPU "
                        f"({n / figures['cpu']:7,.0f} rows/s), "
                        f"peak {figures['peak_mb']:6.0f} MB, job store "
                        f"{figures['store_mb']:6.1f} MB ({figures['store_mb'] / n * 1e6:5.1f} "
                        f"MB per million rows), replay store {figures['replay_mb']:.1f} MB",
                        flush=True,
                    )
            table.unlink()
        if args.rows:
            _verdict(results, args.rows)
    finally:
        emulator.terminate()
        emulator.wait()


def _verdict(results: dict[tuple[str, int], list[dict[str, float]]], sizes: list[int]) -> None:
    def best(way: str, n: int, key: str) -> float | None:
        runs = results.get((way, n))
        return None if not runs else min(r[key] for r in runs)

    small, big = min(sizes), max(sizes)
    low, high = best("stream", small, "peak_mb"), best("stream", big, "peak_mb")
    if low and high:
        ratio = high / low
        verdict = "meets" if ratio <= 1.3 and high < 600 else "MISSES"
        print(
            f"peak RSS at {big:,} rows / at {small:,}: {ratio:.2f}x, {high:.0f} MB "
            f"({verdict} the 1.3x and 600 MB targets)"
        )
    per_million = max(
        r["store_mb"] / n * 1e6 for (w, n), rs in results.items() for r in rs if w == "stream"
    )
    print(
        f"job store: at most {per_million:.1f} MB per million rows "
        f"({'meets' if per_million < 60 else 'MISSES'} the 60 MB target)"
    )
    for n in sizes:
        for key, what in (("cpu", "client CPU"), ("wall", "wall, emulator included")):
            mine, theirs = best("stream", n, key), best("pandas", n, key)
            if mine and theirs:
                ratio = theirs / mine
                verdict = "meets" if ratio >= 1 else "MISSES"
                print(
                    f"rows/s at {n:,} ({what}): streamed / pandas = {ratio:.2f}x "
                    f"({verdict} the 1x target)"
                )


if __name__ == "__main__":
    main()
