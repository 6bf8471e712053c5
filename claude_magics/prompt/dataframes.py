"""DataFrames and Series as prompt text within a token budget, without importing pandas.

    dataframe_text(df, "df", budget=4000)      # shape, dtypes, missing counts, rows that fit
    dataframe_block(df, "df")                  # the same as its own content block

Rows are head and tail (or a seeded sample), in CSV or Markdown; the text says which rows were
left out and which budget to raise. pandas objects are recognised by their type's module and
name and handled through their own methods.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from ..errors import PromptError
from .budget import (
    DEFAULT_DF_BUDGET,
    DF_BUDGET_HINT,
    chars_for,
    plural,
)

DfFormat = Literal["csv", "markdown"]
ContentBlock = dict[str, Any]

__all__ = [
    "ContentBlock",
    "DfFormat",
    "check_df_format",
    "dataframe_block",
    "dataframe_text",
    "pandas_kind",
]


def pandas_kind(value: Any) -> Literal["DataFrame", "Series"] | None:
    """ "DataFrame" or "Series" for pandas objects (and subclasses), without importing pandas."""
    for cls in type(value).__mro__:
        # pandas 3 reports "pandas" as the module of its public classes, pandas 2 "pandas.core.*".
        if cls.__module__.split(".")[0] == "pandas":
            if cls.__name__ == "DataFrame":
                return "DataFrame"
            if cls.__name__ == "Series":
                return "Series"
    return None


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def check_df_format(df_format: str) -> None:
    if df_format not in ("csv", "markdown"):
        raise PromptError(f"unknown DataFrame format {df_format!r}: use 'csv' or 'markdown'")


class _RowFormatter:
    """Formats chosen rows of a frame as CSV or Markdown lines, one row at a time, so that only
    the rows that are shown (plus one chunk) are ever turned into text."""

    def __init__(
        self,
        frame: Any,
        columns: list[int],
        show_index: bool,
        df_format: DfFormat,
        max_cell_chars: int,
    ) -> None:
        self.frame = frame
        self.columns = columns
        self.show_index = show_index
        self.df_format = df_format
        self.max_cell_chars = max_cell_chars
        self.dtypes = list(frame.dtypes)  # built once: frame.dtypes is a new Series per call
        self.index_levels = frame.index.nlevels if show_index else 0
        self.width = self.index_levels + len(columns)

    def cell(self, value: Any) -> tuple[str, bool]:
        """A cell's text and whether it was cut. Missing values read as pandas shows them:
        NaN, None, NaT (whose str is "NaT") and <NA> (likewise), so pandas need not be imported."""
        if isinstance(value, str):
            text = value
        elif isinstance(value, float):
            text = "NaN" if math.isnan(value) else repr(value)
        else:
            text = str(value)
        if len(text) > self.max_cell_chars:
            return text[: max(self.max_cell_chars - 1, 0)] + "…", True
        return text, False

    def line(self, cells: Sequence[str]) -> str:
        if self.df_format == "csv":
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow(cells)
            return buffer.getvalue()
        escaped = (
            c.replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>") for c in cells
        )
        return "| " + " | ".join(escaped) + " |\n"

    def header(self) -> str:
        index_names = self.frame.index.names if self.show_index else []
        labels = ["" if n is None else str(n) for n in index_names]
        labels += [str(self.frame.columns[j]) for j in self.columns]
        text = self.line(labels)
        if self.df_format == "markdown":
            kinds = [getattr(self.dtypes[j], "kind", "O") for j in self.columns]
            rules = ["---"] * self.index_levels + ["---:" if k in "iufc" else "---" for k in kinds]
            text += "| " + " | ".join(rules) + " |\n"
        return text

    def gap(self, omitted: int) -> str:
        if self.df_format == "markdown":
            return self.line(["…"] * self.width)
        return f"… {plural(omitted, 'row')} omitted …\n"

    def rows(self, positions: list[int]) -> list[tuple[str, int]]:
        """(line, number of cells cut) for each row position, in the order given."""
        chunk = self.frame.iloc[positions, self.columns]
        table: list[list[Any]] = []
        if self.show_index:
            labels = chunk.index.tolist()
            if self.index_levels > 1:
                table += [list(level) for level in zip(*labels, strict=True)] if labels else []
            else:
                table.append(labels)
        table += [chunk.iloc[:, k].tolist() for k in range(len(self.columns))]
        out: list[tuple[str, int]] = []
        for row in zip(*table, strict=True) if table else ():
            cells = [self.cell(v) for v in row]
            out.append((self.line([t for t, _ in cells]), sum(cut for _, cut in cells)))
        return out


def _head_tail_order(n: int) -> Iterator[int]:
    """0, n-1, 1, n-2, ...: rows taken one at a time from each end."""
    low, high = 0, n - 1
    while low <= high:
        yield low
        low += 1
        if low <= high:
            yield high
            high -= 1


def _format_rows(formatter: _RowFormatter, positions: list[int]) -> list[tuple[str, int]]:
    # A seam for tests that count how many rows were ever formatted.
    return formatter.rows(positions)


def _fit_rows(
    order: Iterator[int], formatter: _RowFormatter, room: int
) -> list[tuple[int, str, int]]:
    """Take rows in ``order`` while their lines fit in ``room`` characters.

    Rows are formatted in chunks that double from 16 to 1024, so a 1,000,000-row frame costs
    only the rows shown plus one chunk; the first row that does not fit ends the selection
    (taking a shorter row after it would bias a sample and leave holes in head/tail).
    """
    chosen: list[tuple[int, str, int]] = []
    used = 0
    size = 16
    while True:
        batch = list(itertools.islice(order, size))
        if not batch:
            return chosen
        for position, (line, cut) in zip(batch, _format_rows(formatter, batch), strict=True):
            if used + len(line) > room:
                return chosen
            chosen.append((position, line, cut))
            used += len(line)
        size = min(size * 2, 1024)


def dataframe_text(
    value: Any,
    name: str | None = None,
    *,
    budget: int = DEFAULT_DF_BUDGET,
    df_format: DfFormat = "csv",
    sample: bool = False,
    seed: int = 0,
    max_columns: int = 40,
    max_cell_chars: int = 200,
) -> str:
    """A pandas DataFrame or Series as a compact, truthful text block of about ``budget`` tokens.

    The block (``<dataframe name="df" shape="1000x5">`` ... ``</dataframe>``, or ``<series>``)
    states the shape, each column's dtype and missing-value count, then as many rows as fit, as
    CSV or Markdown. Left-out rows are named: head and tail by default ("rows 0-24 and 975-999 of
    1,000 shown; 950 rows omitted"), or a random sample drawn with ``seed`` when ``sample`` is
    true, shown in the frame's order. The index is a leading column when it is not the default
    0..n-1 (and always in a sample). Frames wider than ``max_columns`` show their first and last
    columns and list the rest; cells longer than ``max_cell_chars`` are cut and counted.
    Only the rows shown are formatted, so a million-row frame is as quick as a small one.
    """
    check_df_format(df_format)
    kind = pandas_kind(value)
    if kind is None:
        raise PromptError(f"{type(value).__name__} is not a pandas DataFrame or Series")
    if kind == "Series":
        frame = value.to_frame(name="value" if value.name is None else value.name)
    else:
        frame = value
    n_rows, n_cols = frame.shape
    tag = kind.lower()
    size = f'length="{n_rows}"' if kind == "Series" else f'shape="{n_rows}x{n_cols}"'
    name_attr = f' name="{_attr(name)}"' if name else ""

    # Columns: all of them, or the first and last halves of max_columns for very wide frames.
    if n_cols > max_columns:
        tail_count = max_columns // 2
        head_count = max_columns - tail_count
        columns = [*range(head_count), *range(n_cols - tail_count, n_cols)]
        omitted_cols = list(range(head_count, n_cols - tail_count))
    else:
        columns = list(range(n_cols))
        omitted_cols = []

    index = frame.index
    default_index = type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1
    # A sample without its row labels would not say which rows it is.
    show_index = sample or not default_index

    formatter = _RowFormatter(frame, columns, show_index, df_format, max_cell_chars)
    dtypes = formatter.dtypes
    lines = [f"<{tag}{name_attr} {size}>"]
    if show_index:
        lines.append(f"index: {_describe_index(index, default_index)}")
    header = "columns (dtype, missing values)"
    if omitted_cols:
        header += f", {len(columns)} of {n_cols:,} shown"
    lines.append(header + ":")
    for j in columns:
        column = frame.iloc[:, j]  # one column at a time: no copy of the whole frame
        missing = int(column.isna().sum())
        lines.append(f"  {frame.columns[j]}: {dtypes[j]}, {missing:,} missing")
    if omitted_cols:
        lines.append(_describe_omitted_columns(frame.columns, dtypes, omitted_cols))
    preamble = "\n".join(lines) + "\n"

    table_header = formatter.header()
    closing = f"</{tag}>"
    # What is left for rows once the fixed parts and the row note (<= ~250 characters) are in.
    room = chars_for(budget) - len(preamble) - len(table_header) - len(closing) - 250
    if not sample:
        room -= len(formatter.gap(n_rows))
    room = max(room, 0)

    if sample:
        # Draw more candidates than can fit, in random order; those that fit are the sample.
        shortest = len(formatter.line([""] * formatter.width))
        draw = min(n_rows, room // max(shortest, 1) + 1)
        order: Iterator[int] = iter(random.Random(seed).sample(range(n_rows), draw))
    else:
        order = _head_tail_order(n_rows)
    chosen = _fit_rows(order, formatter, room)
    shown = len(chosen)
    cut_cells = sum(cut for _, _, cut in chosen)

    body = [line for _, line, _ in sorted(chosen)]
    if sample:
        note = _sample_note(shown, n_rows, seed, budget)
    else:
        note = _head_tail_note(shown, n_rows, budget)
        if 0 < shown < n_rows:
            # Head rows are positions 0..h-1, tail rows the last t: mark the hole between them.
            head = (shown + 1) // 2
            body.insert(head, formatter.gap(n_rows - shown))
    if cut_cells:
        note += (
            f"\n{plural(cut_cells, 'cell')} longer than {max_cell_chars:,} characters "
            "cut, ending in “…”."
        )
    table = table_header + "".join(body) if shown or n_rows == 0 else ""
    return f"{preamble}{note}\n{table}{closing}"


def _describe_index(index: Any, default_index: bool) -> str:
    if default_index:
        return "row number (first column)"
    if index.nlevels > 1:
        names = ", ".join("(unnamed)" if n is None else str(n) for n in index.names)
        return f"MultiIndex with levels {names} (first {index.nlevels} columns)"
    label = "" if index.name is None else f" {str(index.name)!r}"
    return f"{type(index).__name__}{label} of {index.dtype} (first column)"


def _describe_omitted_columns(labels: Any, dtypes: list[Any], omitted: list[int]) -> str:
    names = [str(labels[j]) for j in omitted[:20]]
    more = ", …" if len(omitted) > 20 else ""
    counts = Counter(str(dtypes[j]) for j in omitted)
    kinds = ", ".join(f"{count} {dtype}" for dtype, count in counts.most_common())
    return (
        f"{plural(len(omitted), 'column')} not shown (positions {omitted[0]}-{omitted[-1]}; "
        f"{kinds}): {', '.join(names)}{more}"
    )


def _head_tail_note(shown: int, total: int, budget: int) -> str:
    if total == 0:
        return "no rows: the frame is empty."
    if shown == total:
        return f"all {plural(total, 'row')} shown."
    if shown == 0:
        return (
            f"no rows shown of {total:,}: the budget of {budget:,} tokens is too small "
            f"({DF_BUDGET_HINT})."
        )
    head, tail = (shown + 1) // 2, shown // 2
    parts = ("row " if shown == 1 else "rows ") + _span(0, head - 1)
    if tail:
        parts += f" and {_span(total - tail, total - 1)}"
    return (
        f"{parts} of {total:,} shown; {plural(total - shown, 'row')} omitted "
        f"(budget {budget:,} tokens — {DF_BUDGET_HINT})."
    )


def _sample_note(shown: int, total: int, seed: int, budget: int) -> str:
    if total == 0:
        return "no rows: the frame is empty."
    if shown == total:
        return f"all {plural(total, 'row')} shown (sampling left nothing out)."
    return (
        f"a random sample of {shown:,} of {total:,} rows (seed {seed}), shown in their original "
        f"order; {plural(total - shown, 'row')} omitted (budget {budget:,} tokens — "
        f"{DF_BUDGET_HINT})."
    )


def dataframe_block(
    value: Any,
    name: str | None = None,
    *,
    budget: int = DEFAULT_DF_BUDGET,
    df_format: DfFormat = "csv",
    sample: bool = False,
    seed: int = 0,
) -> ContentBlock:
    """A DataFrame or Series as its own text content block (``--df NAME``): the text of
    :func:`dataframe_text`. Raises :class:`PromptError` if ``value`` is neither."""
    if pandas_kind(value) is None:
        label = name or "the value"
        raise PromptError(f"{label} is a {type(value).__name__}, not a pandas DataFrame or Series")
    text = dataframe_text(value, name, budget=budget, df_format=df_format, sample=sample, seed=seed)
    return {"type": "text", "text": text}
