"""``%claude_fix``: the last failing cell, its error and the variables it uses, sent to Claude;
the explanation shown, the corrected cell put into a new cell below (never run).

    watcher = FailureWatcher(); shell.events.register("post_run_cell", watcher.after_cell)
    prompt = fix_prompt(watcher.last, shell.user_ns)

The watcher remembers the source and the exception of the last cell that failed (a cell that
runs ``%claude_fix`` itself is not one to fix). The prompt holds the cell, the traceback (cut to
its last lines: the frames that matter are the cell's own, at the end) and one line for each
notebook variable the cell names: type, shape or length, a DataFrame's columns and dtypes,
else a short repr. The key is redacted from all of it by the cell flow, as from any prompt.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

__all__ = ["Failure", "FailureWatcher", "fix_prompt"]

#: Most characters of the traceback sent (its end: where the cell's own frames are).
MAX_TRACEBACK_CHARS = 6000
#: Most characters of the failing cell sent.
MAX_CELL_CHARS = 20_000
#: Most variables described, and characters per description.
MAX_VARIABLES = 25
MAX_VARIABLE_CHARS = 400

INSTRUCTIONS = (
    "Explain in two to five sentences what went wrong and why. Then give the whole corrected "
    "cell in one ```python code block (the notebook puts it in a new cell below for me to run; "
    "keep what the cell meant to do)."
)


@dataclass(frozen=True)
class Failure:
    """A cell that raised: its source and the exception."""

    source: str
    error: BaseException


class FailureWatcher:
    """Remembers the last cell that failed (IPython's ``post_run_cell`` event)."""

    def __init__(self) -> None:
        self.last: Failure | None = None

    def after_cell(self, result: Any) -> None:
        error = getattr(result, "error_in_exec", None)
        source = getattr(getattr(result, "info", None), "raw_cell", None)
        if error is None or not isinstance(source, str):
            return
        if "%claude_fix" in source:
            return  # a fix that failed is not the cell to fix
        self.last = Failure(source, error)


def _describe(value: Any) -> str:
    """One line about a variable: type and size, a frame's columns, else a short repr."""
    from ..prompt.dataframes import pandas_kind

    kind = type(value).__name__
    if pandas_kind(value) == "DataFrame":
        columns = ", ".join(f"{name} ({dtype})" for name, dtype in value.dtypes.items())
        return f"DataFrame, {value.shape[0]:,} rows x {value.shape[1]:,} columns: {columns}"
    if pandas_kind(value) == "Series":
        return f"Series {value.name!r}, {len(value):,} values of {value.dtype}"
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"{kind} of shape {shape}"
    try:
        text = repr(value)
    except Exception as exc:  # a repr that raises still names the type
        text = f"<repr failed: {type(exc).__name__}>"
    try:
        size = f", length {len(value):,}" if hasattr(value, "__len__") else ""
    except Exception:
        size = ""
    return f"{kind}{size}: {text}"


def _names(source: str) -> list[str]:
    """The names a cell reads or writes, in order of first use (none if it does not parse)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        # Magics and ! lines as the Python IPython runs (untyped IPython API).
        python = TransformerManager().transform_cell(source)  # type: ignore[no-untyped-call]
        tree = ast.parse(python)
    except (SyntaxError, ValueError):
        return []
    seen: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            seen.setdefault(node.id, None)
    return list(seen)


def fix_prompt(failure: Failure | None, namespace: Mapping[str, Any]) -> str:
    """The prompt of ``%claude_fix`` for ``failure``; a one-line UsageError when there is none."""
    import types

    from ..prompt.values import format_error

    if failure is None:
        raise UsageError(
            "%claude_fix: no cell has failed since claude_magics was loaded; run the failing "
            "cell again, then %claude_fix"
        )
    source = failure.source
    if len(source) > MAX_CELL_CHARS:
        source = source[:MAX_CELL_CHARS] + "\n# … (the rest of the cell is not shown)"
    trace = format_error(failure.error)
    if len(trace) > MAX_TRACEBACK_CHARS:
        trace = "… (earlier frames cut)\n" + trace[-MAX_TRACEBACK_CHARS:]
    lines = []
    for name in _names(failure.source):
        if name not in namespace or name.startswith("_") or name in ("In", "Out"):
            continue
        value = namespace[name]
        if isinstance(value, types.ModuleType) or (callable(value) and not hasattr(value, "shape")):
            continue
        text = " ".join(_describe(value).split())
        if len(text) > MAX_VARIABLE_CHARS:
            text = text[: MAX_VARIABLE_CHARS - 1] + "…"
        lines.append(f"- {name}: {text}")
        if len(lines) >= MAX_VARIABLES:
            break
    variables = "\n".join(lines) if lines else "(none of its names are notebook variables)"
    fence = "````" if "```" in source or "```" in trace else "```"
    return (
        f"This notebook cell failed.\n\nThe cell:\n{fence}python\n{source}\n{fence}\n\n"
        f"The error:\n{fence}\n{trace}\n{fence}\n\n"
        f"The notebook variables it uses, as they are now:\n{variables}\n\n{INSTRUCTIONS}"
    )
