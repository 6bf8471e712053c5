"""Execute a notebook headless and keep a rendered copy: the engine behind ``make demo``.

    python notebooks/run.py notebooks/quickstart.ipynb --out build

Without ``ANTHROPIC_API_KEY`` the notebook runs against the local emulator (started here, in
this process, and handed to the kernel through ``ANTHROPIC_BASE_URL``); with a key it talks to
the real API. Writes ``<out>/<name>.ipynb`` (executed, outputs included) and ``<out>/<name>.html``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def _api_for_kernel() -> Iterator[str]:
    """Point the kernel at the real API when a key is set, else at a local emulator."""
    if os.environ.get("ANTHROPIC_API_KEY"):
        yield os.environ.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com") + " (real API)"
        return
    from claude_magics.emulator import Emulator

    keys = ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "CLAUDE_MAGICS_HOME")
    saved = {k: os.environ.get(k) for k in keys}
    with Emulator(batch_processing_seconds=1.0) as emulator:
        # The kernel inherits this process's environment.
        os.environ["ANTHROPIC_BASE_URL"] = emulator.url
        os.environ["ANTHROPIC_API_KEY"] = "emulator-key"
        # Emulated spend and jobs must not land in the user's real ledger.
        os.environ["CLAUDE_MAGICS_HOME"] = tempfile.mkdtemp(prefix="claude-magics-demo-")
        try:
            yield f"{emulator.url} (local emulator: no ANTHROPIC_API_KEY set)"
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def run(notebook: Path, out_dir: Path, timeout: int) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    executed_path = out_dir / notebook.name
    html_path = out_dir / (notebook.stem + ".html")
    status = 0
    with _api_for_kernel() as target:
        print(f"Running {notebook} against {target}", flush=True)
        started = time.perf_counter()
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(notebook.parent.resolve())}},
        )
        try:
            client.execute()
        except CellExecutionError as exc:
            # Keep what ran: the partial notebook is written below, then report the failing cell.
            lines = str(exc).strip().splitlines()
            print("A cell failed:\n  " + "\n  ".join(lines[-6:]), file=sys.stderr)
            status = 1
        elapsed = time.perf_counter() - started
    nbformat.write(nb, executed_path)
    body, _ = HTMLExporter().from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    cells = sum(1 for cell in nb.cells if cell.cell_type == "code")
    print(f"Executed {cells} code cells in {elapsed:.1f}s")
    print(f"Wrote {executed_path} and {html_path}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build"), help="output folder")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    if not args.notebook.exists():
        parser.error(f"no such notebook: {args.notebook}")
    return run(args.notebook, args.out, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
