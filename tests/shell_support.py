"""Helpers for tests that drive the magics in an IPython shell (the ``ip`` fixture)."""

from __future__ import annotations

from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from claude_magics.notebook.magics import ClaudeMagics


def magics_of(ip: InteractiveShell) -> ClaudeMagics:
    """The loaded ``ClaudeMagics`` instance of ``ip``."""
    return ip.magics_manager.registry["ClaudeMagics"]  # type: ignore[no-any-return]


def run_cell(ip: InteractiveShell, source: str) -> tuple[Any, Any]:
    """Run ``source`` as a notebook cell: IPython shows any error itself, as a user sees it.
    Returns IPython's result and what the cell printed and displayed."""
    with capture_output() as captured:
        result = ip.run_cell(source)  # type: ignore[no-untyped-call]
    return result, captured


def ok(ip: InteractiveShell, source: str) -> Any:
    """Run a cell that must succeed; what it printed and displayed."""
    result, captured = run_cell(ip, source)
    assert result.success, captured.stdout + captured.stderr
    return captured


def final(captured: Any) -> dict[str, Any]:
    """The last static output of a cell (what the saved notebook keeps of the answer)."""
    outputs = [o for o in captured.outputs if not getattr(o, "update", False)]
    return outputs[-1].data  # type: ignore[no-any-return]
