"""What ``import claude_magics`` costs, against a bare interpreter start.

    python benchmarks/import_time.py [--runs 15]

Each figure is the median wall time of a fresh interpreter (``python -c ...``), so caches of a
long-lived process do not flatter it. Also lists the heavy modules the import must not pull in.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("pandas", "ipywidgets", "httpx", "claude_magics.emulator", "IPython", "numpy")


def _median_seconds(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    baseline = _median_seconds("pass", args.runs)
    ours = _median_seconds("import claude_magics", args.runs)
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, claude_magics; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"python -c pass:                 {baseline * 1000:7.1f} ms (median of {args.runs})")
    print(f"python -c 'import claude_magics': {ours * 1000:7.1f} ms")
    print(
        f"import cost: {(ours - baseline) * 1000:.1f} ms, ratio {ours / baseline:.2f}x a bare start"
    )
    print(f"heavy modules loaded by the import: {loaded or 'none'}")


if __name__ == "__main__":
    main()
