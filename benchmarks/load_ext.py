"""What ``%load_ext claude_magics`` costs, against ``%load_ext jupyter_ai_magics`` (jupyter-ai).

    python benchmarks/load_ext.py [--runs 15] [--rebuild]

What is measured: the wall time of ``ip.run_line_magic("load_ext", NAME)`` in a fresh interpreter
whose ``InteractiveShell`` already exists, as in a kernel that has just started. The clock starts
after IPython is imported and the shell is created (that cost is the same for both and a kernel
pays it before the user types anything) and stops when the magics are registered, so it includes
every import the extension triggers and its own set-up, and nothing else. Each run is a new
process, so no module is cached in memory; runs are interleaved (ours, jupyter-ai, ours, ...)
after one discarded warm-up each, so disk caches and drift hit both alike. Figures are medians.
Shell creation is printed for scale.

Both run with the Python of one separate virtual environment, ``build/bench-venv-jupyter-ai/``,
made on first use with ``jupyter-ai-magics`` and this project (editable) installed: jupyter-ai
pulls in langchain and much else, which must not enter the project's own environment, and
measuring both in the same environment keeps shared dependencies (IPython, traitlets) equal.

Target (issue 3): ours at most 5% of jupyter_ai_magics' time, and ``%load_ext claude_magics``
imports none of httpx, pandas, ipywidgets, claude_magics.emulator.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import venv
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
BENCH_VENV = PROJECT / "build" / "bench-venv-jupyter-ai"
OURS = "claude_magics"
THEIRS = "jupyter_ai_magics"
#: The magic each extension must have registered, so a silently failed load cannot look fast.
REGISTERS = {OURS: "claude", THEIRS: "ai"}
HEAVY = ("httpx", "pandas", "ipywidgets", "claude_magics.emulator")
TARGET = 0.05

# Runs in the benchmark environment's Python, one process per measurement; prints one JSON line.
_CHILD = """
import json, sys, time
started = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
config = Config()
config.HistoryManager.enabled = False
ip = InteractiveShell.instance(config=config)
ready = time.perf_counter()
ip.run_line_magic("load_ext", {name!r})
done = time.perf_counter()
if ip.find_cell_magic({magic!r}) is None:
    raise SystemExit("%load_ext {name} did not register %%{magic}")
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"load_ext": done - ready, "shell": ready - started, "heavy": heavy}}))
"""

_VERSIONS = """
import json, sys
from importlib.metadata import version
names = ["claude-magics", "jupyter-ai-magics", "langchain", "langchain-core", "ipython"]
print(json.dumps({"python": sys.version.split()[0], **{n: version(n) for n in names}}))
"""


def _venv_python() -> Path:
    return BENCH_VENV / "bin" / "python"


def _stamp() -> str:
    """What the project was installed from: reinstalled when its dependencies change."""
    return hashlib.sha256((PROJECT / "pyproject.toml").read_bytes()).hexdigest()


def _pip(*args: str) -> None:
    """pip in the benchmark environment; its output is shown only if it fails."""
    done = subprocess.run(
        [
            str(_venv_python()),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *args,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"pip install {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def _ensure_venv(rebuild: bool) -> Path:
    """The benchmark environment's Python, creating the environment the first time."""
    stamp_file = BENCH_VENV / ".installed"
    if not rebuild and stamp_file.exists():
        if stamp_file.read_text() != _stamp():  # the project's dependencies changed
            _pip("-e", str(PROJECT))
            stamp_file.write_text(_stamp())
        return _venv_python()
    if BENCH_VENV.exists():
        shutil.rmtree(BENCH_VENV)
    print(f"creating {BENCH_VENV.relative_to(PROJECT)} (once; jupyter-ai-magics is large)...")
    venv.create(BENCH_VENV, with_pip=True)
    _pip("--upgrade", "pip")
    _pip("jupyter-ai-magics", "-e", str(PROJECT))
    stamp_file.write_text(_stamp())
    return _venv_python()


def _measure(python: Path, name: str) -> dict[str, object]:
    code = _CHILD.format(name=name, magic=REGISTERS[name], heavy=HEAVY)
    # No user or site configuration, no profile: the same bare shell for both.
    env = {**os.environ, "IPYTHONDIR": str(BENCH_VENV / "ipython-dir")}
    done = subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rebuild", action="store_true", help="recreate the benchmark venv")
    args = parser.parse_args()

    python = _ensure_venv(args.rebuild)
    versions = json.loads(
        subprocess.run(
            [str(python), "-c", _VERSIONS], check=True, capture_output=True, text=True
        ).stdout
    )
    names = (OURS, THEIRS)
    for name in names:  # warm-up: byte-compile, fill the disk cache
        _measure(python, name)
    load: dict[str, list[float]] = {name: [] for name in names}
    shell: list[float] = []
    heavy: set[str] = set()
    for _ in range(args.runs):
        for name in names:
            run = _measure(python, name)
            load[name].append(float(run["load_ext"]))  # type: ignore[arg-type]
            shell.append(float(run["shell"]))  # type: ignore[arg-type]
            if name == OURS:
                heavy.update(run["heavy"])  # type: ignore[arg-type]

    print(
        f"%load_ext in a fresh InteractiveShell, median of {args.runs} interleaved runs, "
        f"Python {versions['python']} in {BENCH_VENV.relative_to(PROJECT)}"
    )
    print(
        f"  versions: claude-magics {versions['claude-magics']}, "
        f"jupyter-ai-magics {versions['jupyter-ai-magics']} "
        f"(langchain {versions['langchain']}, langchain-core {versions['langchain-core']}), "
        f"IPython {versions['ipython']}"
    )
    medians = {name: statistics.median(values) for name, values in load.items()}
    for name in names:
        values = load[name]
        print(
            f"  %load_ext {name:<18} median {medians[name] * 1000:8.1f} ms"
            f"   (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )
    shell_ms = statistics.median(shell) * 1000
    print(f"  (for scale: creating the InteractiveShell, median {shell_ms:.1f} ms)")
    ratio = medians[OURS] / medians[THEIRS]
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(
        f"  ratio claude_magics / jupyter_ai_magics: {ratio:.1%}  "
        f"({verdict} the {TARGET:.0%} target; {medians[THEIRS] / medians[OURS]:.0f}x faster)"
    )
    print(
        f"  heavy modules imported by %load_ext {OURS}: {', '.join(sorted(heavy)) or 'none'}"
        f"  (checked: {', '.join(HEAVY)})"
    )


if __name__ == "__main__":
    main()
