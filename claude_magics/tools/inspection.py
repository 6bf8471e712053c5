"""Read-only tools that let Claude look at the kernel: its variables, a DataFrame, a figure.

    tools = inspection_tools(shell.user_ns, redact=hide_key, budget_tokens=2000)
    # list_variables(), describe_variable(name, column=None, rows=None), show_figure(name=None)

Nothing here runs user code beyond bounded reprs and pandas' own methods: sizes come from
``sys.getsizeof`` and ``memory_usage``, lengths only from built-in containers. Every answer fits
``budget_tokens`` and says what it left out and how to ask for it (``rows='25:45'``,
``start=50``); every text passes ``redact`` before it is cut, so the API key never shows.
"""

from __future__ import annotations

import csv
import difflib
import inspect
import io
import re
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

from ..prompt.budget import chars_for, plural
from ..prompt.dataframes import pandas_kind
from .base import Tool, ToolOutput
from .figures import current_figure, figure_blocks, figure_of
from .text import BoundedRepr, Redact, fit, one_line, safe_end

__all__ = ["inspection_tools"]

# What IPython puts in every user namespace; not the user's variables.
_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})
_ROWS = re.compile(r"^\s*(-?\d*)\s*:\s*(-?\d*)\s*$")
_HEAD_ROWS = 5
_CELL_CHARS = 200
_MAX_COLUMNS_LISTED = 100
_MAX_COLUMNS_IN_ROWS = 40
_TOP_VALUES = 20


class _Refused(Exception):
    """A request the tool answers with an error result: one line, what to ask instead."""


#: Most variable names listed in ``describe_variable``'s schema (beyond that, a plain string).
MAX_NAMES_IN_SCHEMA = 60


def inspection_tools(
    namespace: Mapping[str, Any],
    *,
    redact: Redact,
    budget_tokens: int = 2000,
    fixed_names: bool = True,
) -> list[Tool]:
    """``list_variables``, ``describe_variable`` and ``show_figure`` over ``namespace``.

    With ``fixed_names`` (the namespace will not change during the loop), ``describe_variable``
    names the variables it can describe in its schema (up to ``MAX_NAMES_IN_SCHEMA``): the
    model then picks a real one instead of guessing, and a wrong name is refused before the
    call. A loop that may create variables (``--python``) passes False."""
    inspector = _Inspector(namespace, redact, budget_tokens)
    name_schema: dict[str, Any] = {"type": "string", "description": "The variable's name."}
    names = sorted(
        name
        for name, value in list(namespace.items())
        if _is_user(name) and not isinstance(value, types.ModuleType)
    )
    if fixed_names and 0 < len(names) <= MAX_NAMES_IN_SCHEMA:
        # Names are identifiers: nothing in them can carry the key, but redact all the same.
        name_schema["enum"] = [n for n in names if redact(n) == n]
    return [
        Tool(
            "list_variables",
            "List the user's variables in the Jupyter kernel: name, type, shape or length, "
            "and memory. Functions and classes are marked. Read-only.",
            {
                "type": "object",
                "properties": {
                    "start": {
                        "type": "integer",
                        "minimum": 0,
                        "default": 0,
                        "description": "Skip this many variables (when a list was cut).",
                    }
                },
                "additionalProperties": False,
            },
            inspector.tool(inspector.list_variables),
        ),
        Tool(
            "describe_variable",
            "Look at one variable in the Jupyter kernel. A DataFrame: its shape, dtypes, "
            "missing values per column, first rows and describe(); with `column`, that "
            "column's value counts and statistics; with `rows` ('10:20', Python slice of "
            "positions), those rows. A Series likewise. Anything else: a bounded repr (and "
            "source of functions). Read-only: no code of the user runs.",
            {
                "type": "object",
                "properties": {
                    "name": name_schema,
                    "column": {
                        "type": ["string", "integer"],
                        "description": "A DataFrame column: its value counts and statistics.",
                    },
                    "rows": {
                        "type": "string",
                        "pattern": _ROWS.pattern,
                        "description": "Rows by position, as a Python slice: '10:20', '-5:'.",
                    },
                },
                "required": ["name"],
                "additionalProperties": False,
            },
            inspector.tool(inspector.describe_variable),
        ),
        Tool(
            "show_figure",
            "See a matplotlib figure as an image: the Figure (or Axes) variable `name`, or "
            "pyplot's current figure when no name is given.",
            {
                "type": "object",
                "properties": {
                    "name": {
                        "type": "string",
                        "description": "A variable holding a Figure or Axes.",
                    }
                },
                "additionalProperties": False,
            },
            inspector.tool(inspector.show_figure),
        ),
    ]


class _Inspector:
    def __init__(self, namespace: Mapping[str, Any], redact: Redact, budget: int) -> None:
        self.namespace = namespace
        self.redact = redact
        self.budget = budget

    def tool(self, method: Callable[[dict[str, Any]], ToolOutput]) -> Callable[..., ToolOutput]:
        def run(tool_input: dict[str, Any]) -> ToolOutput:
            try:
                return method(tool_input)
            except _Refused as exc:
                message = self.redact(str(exc))
                return ToolOutput(message, is_error=True, summary=one_line(message, 100))

        return run

    def _finish(self, text: str, how_to_ask: str) -> str:
        # Redact first, then cut: a cut never ends inside a key, and the key is gone anyway.
        return fit(self.redact(text), self.budget, how_to_ask)

    def _value(self, name: str) -> Any:
        if name in self.namespace:
            return self.namespace[name]
        close = difflib.get_close_matches(name, [n for n in self.namespace if _is_user(n)], 3)
        hint = f" (did you mean {', '.join(f'`{c}`' for c in close)}?)" if close else ""
        raise _Refused(f"no variable named `{name}`{hint}; list_variables shows them")

    # -- list_variables ------------------------------------------------------------------------

    def list_variables(self, tool_input: dict[str, Any]) -> ToolOutput:
        start = int(tool_input.get("start", 0))
        names = sorted(
            name
            for name, value in list(self.namespace.items())
            if _is_user(name) and not isinstance(value, types.ModuleType)
        )
        header = (
            f"{plural(len(names), 'variable')} (name: type, size, memory; memory is "
            "memory_usage(deep=False) for pandas, sys.getsizeof for the rest: the object "
            "alone, not what it refers to):\n"
        )
        room = chars_for(self.budget) - len(header) - 200
        lines: list[str] = []
        for name in names[start:]:
            line = self.redact(f"{name}: {_summary(self.namespace[name])}") + "\n"
            if len(line) > room and lines:
                break
            room -= len(line)
            lines.append(line)
        shown_end = start + len(lines)
        if not names:
            note = "No user variables yet."
        elif start >= len(names):
            note = f"start={start} is past the last variable ({len(names)} in all)."
        elif shown_end < len(names):
            note = (
                f"Variables {start + 1}-{shown_end} of {len(names)} shown; ask list_variables "
                f"with start={shown_end} for the rest."
            )
        else:
            note = ""
        text = header + "".join(lines) + note
        summary = f"{plural(len(names), 'variable')}"
        return ToolOutput(self._finish(text, "ask with start= for the rest"), summary=summary)

    # -- describe_variable ---------------------------------------------------------------------

    def describe_variable(self, tool_input: dict[str, Any]) -> ToolOutput:
        name = tool_input["name"]
        column = tool_input.get("column")
        rows = tool_input.get("rows")
        value = self._value(name)
        kind = pandas_kind(value)
        if column is not None and kind != "DataFrame":
            raise _Refused(f"column= applies to DataFrames; `{name}` is a {_type_name(value)}")
        if kind == "DataFrame":
            text, summary = self._frame(name, value, column, rows)
            how = "ask for less: one column=, or a shorter rows= slice"
        elif kind == "Series":
            text, summary = self._series(name, value, rows)
            how = "ask for less: a shorter rows= slice"
        else:
            text, summary = self._other(name, value, rows)
            sliceable = type(value) in (list, tuple)
            how = (
                "ask with rows='a:b' for a part"
                if sliceable
                else "the rest of the value is not shown"
            )
        return ToolOutput(self._finish(text, how), summary=self.redact(summary))

    def _frame(
        self, name: str, frame: Any, column: str | int | None, rows: str | None
    ) -> tuple[str, str]:
        n_rows, n_cols = frame.shape
        summary = f"{name}: {n_rows:,} x {n_cols:,} DataFrame"
        header = (
            f"{name}: DataFrame, {n_rows:,} rows x {n_cols:,} columns, memory "
            f"{_memory(frame)}; index: {_index_text(frame.index)}\n"
        )
        total = chars_for(self.budget) - 250  # room for the closing note
        if column is not None:
            series = self._column(name, frame, column)
            body = self._column_text(series, total - len(header))
            return header + body, f"{summary}, column {series.name!r}"
        if rows is not None:
            start, stop = _slice(rows, n_rows)
            table, note = self._rows(frame, start, stop, total - len(header), rows)
            return header + table + note, f"{summary}, rows {start}:{stop}"
        columns = _columns_text(frame)
        columns = _bounded(columns, total // 3)
        described = _bounded(_describe_text(frame), total // 3)
        room = total - len(header) - len(columns) - len(described)
        head_rows = min(_HEAD_ROWS, n_rows)
        table, note = self._rows(frame, 0, head_rows, room, f"0:{head_rows}")
        if n_rows > head_rows and not note:
            note = (
                f"First {head_rows} of {n_rows:,} rows shown; ask with rows='{head_rows}:"
                f"{head_rows + 20}' for more, or column=NAME for one column's values.\n"
            )
        text = f"{header}{columns}first rows (CSV):\n{table}{note}describe():\n{described}"
        return text, summary

    def _column(self, name: str, frame: Any, column: str | int) -> Any:
        labels = list(frame.columns)
        for position, label in enumerate(labels):
            if label == column or str(label) == str(column):
                return frame.iloc[:, position]
        known = ", ".join(repr(str(label)) for label in labels[:30])
        more = ", …" if len(labels) > 30 else ""
        raise _Refused(f"`{name}` has no column {column!r}; its columns: {known}{more}")

    def _column_text(self, series: Any, room: int) -> str:
        lines = [f"column {series.name!r}: {_series_facts(series)}\n"]
        described = _bounded(_describe_text(series), room // 3)
        counts = _bounded(_value_counts_text(series, _TOP_VALUES), room - room // 3)
        lines.append(counts)
        lines.append(f"describe():\n{described}")
        return "".join(lines)

    def _series(self, name: str, series: Any, rows: str | None) -> tuple[str, str]:
        n = len(series)
        summary = f"{name}: Series of {n:,}"
        header = (
            f"{name}: Series {series.name!r}, {_series_facts(series)}, memory {_memory(series)}\n"
        )
        frame = series.to_frame(name="value" if series.name is None else series.name)
        total = chars_for(self.budget) - 250
        if rows is not None:
            start, stop = _slice(rows, n)
            table, note = self._rows(frame, start, stop, total - len(header), rows)
            return header + table + note, f"{summary}, rows {start}:{stop}"
        counts = _bounded(_value_counts_text(series, 10), total // 3)
        described = _bounded(_describe_text(series), total // 4)
        room = total - len(header) - len(counts) - len(described)
        head_rows = min(_HEAD_ROWS, n)
        table, note = self._rows(frame, 0, head_rows, room, f"0:{head_rows}")
        if n > head_rows and not note:
            note = (
                f"First {head_rows} of {n:,} shown; ask with rows='{head_rows}:{head_rows + 20}'.\n"
            )
        return (
            f"{header}first values (CSV):\n{table}{note}{counts}describe():\n{described}",
            summary,
        )

    def _rows(self, frame: Any, start: int, stop: int, room: int, asked: str) -> tuple[str, str]:
        """Rows ``start:stop`` as CSV lines that fit ``room`` characters, and a note when
        some did not fit (or the slice is empty)."""
        n_rows, n_cols = frame.shape
        if start >= stop:
            return "", f"No rows in rows='{asked}' (there are {n_rows:,}).\n"
        shown_cols = min(n_cols, _MAX_COLUMNS_IN_ROWS)
        part = frame.iloc[:, :shown_cols]
        index_name = ",".join("" if n is None else str(n) for n in frame.index.names)
        header = _csv_line([index_name, *(str(c) for c in part.columns)])
        col_note = (
            f"(first {shown_cols} of {n_cols:,} columns; ask with column=NAME for others)\n"
            if shown_cols < n_cols
            else ""
        )
        lines = [col_note, header]
        used = len(col_note) + len(header)
        shown = 0
        # Format a chunk at a time, so a million-row slice costs what the shown rows cost.
        for chunk_start in range(start, stop, 50):
            chunk = part.iloc[chunk_start : min(chunk_start + 50, stop)]
            for label, values in zip(
                chunk.index, chunk.itertuples(index=False, name=None), strict=True
            ):
                line = _csv_line([_cell(label), *(_cell(v) for v in values)])
                if used + len(line) > room:
                    break
                lines.append(line)
                used += len(line)
                shown += 1
            else:
                continue
            break
        note = ""
        if shown < stop - start:
            last = start + shown
            ask = f"rows='{last}:{stop}'" if shown else "column=NAME (a row is too wide)"
            note = (
                f"Rows {start}-{last - 1} of the {stop - start:,} asked ({start}:{stop}) shown; "
                f"ask with {ask} for the rest.\n"
                if shown
                else f"No row fits the budget; ask with {ask}.\n"
            )
        return "".join(lines), note

    def _other(self, name: str, value: Any, rows: str | None) -> tuple[str, str]:
        header = f"{name}: {_summary(value)}\n"
        room = chars_for(self.budget) - len(header) - 250
        summary = f"{name}: {_type_name(value)}"
        if rows is not None:
            if type(value) not in (list, tuple):
                raise _Refused(
                    f"rows= applies to DataFrames, Series, lists and tuples; `{name}` is a "
                    f"{_type_name(value)}"
                )
            start, stop = _slice(rows, len(value))
            return header + self._items(value, start, stop, room), f"{summary}, items {rows}"
        if inspect.isfunction(value) or inspect.ismethod(value) or isinstance(value, type):
            return header + _code_text(value, room), summary
        bounded = BoundedRepr(room, self.redact).repr(value)
        extra = ""
        if figure_of(value) is not None:
            extra = f"\nshow_figure(name='{name}') shows it as an image."
        return f"{header}{bounded}{extra}", summary

    def _items(self, value: list[Any] | tuple[Any, ...], start: int, stop: int, room: int) -> str:
        shaper = BoundedRepr(min(room, 600), self.redact)
        lines: list[str] = []
        used = 0
        for i in range(start, stop):
            line = f"[{i}] {shaper.repr(value[i])}\n"
            if used + len(line) > room:
                return "".join(lines) + (
                    f"Items {start}-{i - 1} of {start}:{stop} shown; ask with rows='{i}:{stop}'.\n"
                )
            lines.append(line)
            used += len(line)
        return "".join(lines) or f"No items in {start}:{stop} (there are {len(value):,}).\n"

    # -- show_figure ---------------------------------------------------------------------------

    def show_figure(self, tool_input: dict[str, Any]) -> ToolOutput:
        name = tool_input.get("name")
        if name is not None:
            fig = figure_of(self._value(name))
            if fig is None:
                value = self.namespace[name]
                raise _Refused(
                    f"`{name}` is a {_type_name(value)}, not a matplotlib Figure or Axes"
                )
        else:
            fig = current_figure()
            if fig is None:
                where = (
                    "matplotlib.pyplot is not imported"
                    if "matplotlib.pyplot" not in sys.modules
                    else "pyplot has no open figure (the inline backend closes them after "
                    "each cell)"
                )
                raise _Refused(
                    f"no current figure: {where}; assign the figure to a variable "
                    "(fig = plt.gcf()) and ask with name='fig'"
                )
        try:
            blocks = figure_blocks(fig, max(self.budget - 100, 100))
        except Exception as exc:  # a figure that cannot draw itself: say why
            raise _Refused(f"the figure could not be drawn: {type(exc).__name__}: {exc}") from None
        blocks[0] = {"type": "text", "text": self.redact(blocks[0]["text"])}
        return ToolOutput(blocks, summary=one_line(blocks[0]["text"], 80))


# -- small facts about values, none of which calls the user's code -----------------------------


def _is_user(name: str) -> bool:
    return not name.startswith("_") and name not in _IPYTHON_NAMES


def _type_name(value: Any) -> str:
    cls = type(value)
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError


def _memory(value: Any) -> str:
    try:
        if pandas_kind(value) == "DataFrame":
            return _size(int(value.memory_usage(deep=False).sum()))
        if pandas_kind(value) == "Series":
            return _size(int(value.memory_usage(deep=False)))
        return _size(sys.getsizeof(value))
    except Exception:  # a __sizeof__ that raises: the size is unknown, not an error
        return "size unknown"


_LENGTH_WORDS: dict[type, str] = {
    str: "characters",
    bytes: "bytes",
    bytearray: "bytes",
    dict: "keys",
}


def _summary(value: Any) -> str:
    """One line: type, shape or length, memory; functions and classes marked."""
    kind = pandas_kind(value)
    if kind == "DataFrame":
        n_rows, n_cols = value.shape
        return f"DataFrame, {n_rows:,} rows x {n_cols:,} columns, {_memory(value)}"
    if kind == "Series":
        return f"Series, length {len(value):,}, dtype {value.dtype}, {_memory(value)}"
    if inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.ismethod(value):
        return f"function {_signature(value)}"
    if isinstance(value, type):
        return f"class {value.__qualname__}"
    cls = type(value)
    if cls.__module__ == "numpy" and cls.__name__ == "ndarray":
        return f"numpy.ndarray, shape {value.shape}, dtype {value.dtype}, {_size(value.nbytes)}"
    if figure_of(value) is not None:
        return f"{_type_name(value)} (show_figure can show it), {_memory(value)}"
    # len() only on built-in containers: a user class's __len__ is user code.
    if cls.__module__ == "builtins" and hasattr(cls, "__len__"):
        word = _LENGTH_WORDS.get(cls, "items")
        return f"{cls.__name__}, {len(value):,} {word}, {_memory(value)}"
    return f"{_type_name(value)}, {_memory(value)}"


def _signature(fn: Any) -> str:
    name = getattr(fn, "__name__", "?")
    try:
        signature = inspect.signature(fn, eval_str=True)  # `x: int`, not `x: 'int'`
    except Exception:  # a hint naming nothing: show the strings as written
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins have none
            return f"{name}(…)"
    return one_line(f"{name}{signature}", 120)


def _code_text(value: Any, room: int) -> str:
    doc = inspect.getdoc(value) or ""
    try:
        source = inspect.getsource(value)
    except (OSError, TypeError):  # defined in C, or its source is gone
        source = ""
    parts = []
    if source:
        parts.append(f"source:\n{_bounded(source, room * 2 // 3)}")
    elif doc:
        parts.append(f"docstring:\n{_bounded(doc, room * 2 // 3)}")
    return "\n".join(parts) or "(no source or docstring)"


def _bounded(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    end = safe_end(text, max(chars - 40, 0))
    return text[:end] + f"… [{len(text) - end:,} characters left out]\n"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""  # missing, as CSV writes it
    try:
        # Ten significant digits say what a float is without its binary noise.
        text = format(value, ".10g") if isinstance(value, float) else str(value)
    except Exception:  # an object column holding something that cannot print
        return f"<{type(value).__name__}>"
    if len(text) > _CELL_CHARS:
        text = text[: safe_end(text, _CELL_CHARS)] + "…"
    return text


def _csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def _slice(rows: str, n: int) -> tuple[int, int]:
    match = _ROWS.match(rows)
    if match is None:
        raise _Refused(f"rows={rows!r} is not a slice; ask with rows='10:20'")
    first, last = (int(g) if g else None for g in match.groups())
    span = range(n)[slice(first, last)]
    return span.start, max(span.stop, span.start)


def _index_text(index: Any) -> str:
    if type(index).__name__ == "RangeIndex" and index.step == 1:
        return f"RangeIndex {index.start}..{index.stop - 1}" if len(index) else "empty"
    name = "" if index.name is None else f" {str(index.name)!r}"
    return f"{type(index).__name__}{name} of {index.dtype}"


def _guarded(compute: Callable[[], str], what: str) -> str:
    try:
        return compute()
    except Exception as exc:  # unhashable cells, mixed types: pandas says no, we say why
        return f"{what}: not available ({type(exc).__name__}: {one_line(str(exc), 120)})\n"


def _columns_text(frame: Any) -> str:
    def compute() -> str:
        missing = frame.isna().sum()
        lines = ["columns (dtype, missing values):\n"]
        for position, label in enumerate(frame.columns[:_MAX_COLUMNS_LISTED]):
            lines.append(
                f"  {label}: {frame.dtypes.iloc[position]}, {missing.iloc[position]:,} missing\n"
            )
        if len(frame.columns) > _MAX_COLUMNS_LISTED:
            rest = len(frame.columns) - _MAX_COLUMNS_LISTED
            lines.append(f"  … {rest:,} more columns; ask with column=NAME for one.\n")
        return "".join(lines)

    return _guarded(compute, "columns")


def _series_facts(series: Any) -> str:
    facts = [f"length {len(series):,}", f"dtype {series.dtype}"]
    try:
        facts.append(f"{int(series.isna().sum()):,} missing")
        facts.append(f"{int(series.nunique(dropna=True)):,} distinct")
    except Exception:  # unhashable values have no distinct count
        pass
    return ", ".join(facts)


def _describe_text(value: Any) -> str:
    def compute() -> str:
        if pandas_kind(value) == "DataFrame":
            try:
                table = value.describe(include="all").T
            except (TypeError, ValueError):  # unhashable object columns: numbers only
                table = value.describe().T
        else:
            table = value.describe()
        return str(table.to_csv(float_format="%.6g", lineterminator="\n"))

    return _guarded(compute, "describe()")


def _value_counts_text(series: Any, top: int) -> str:
    def compute() -> str:
        counts = series.value_counts(dropna=False)
        if len(counts) and int(counts.iloc[0]) == 1:
            return f"value counts: all {len(counts):,} values are distinct.\n"
        lines = [
            f"value counts (missing included; top {min(top, len(counts))} of "
            f"{len(counts):,} distinct):\n"
        ]
        for value, count in counts.head(top).items():
            lines.append(f"  {_cell(value) or 'missing'}: {int(count):,}\n")
        if len(counts) > top:
            rest = int(counts.iloc[top:].sum())
            lines.append(f"  … {len(counts) - top:,} other values ({rest:,} rows).\n")
        return "".join(lines)

    return _guarded(compute, "value counts")
