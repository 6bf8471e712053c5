"""Cell text, notebook variables, DataFrames and attachments turned into Messages API content.

    content = build_user_content("Why is {{df.columns[0]}} empty?", shell.user_ns)
    client.messages.create(messages=[{"role": "user", "content": content}], model=..., ...)

This is the one place that builds the content blocks of a user turn. It does four things:

* **References.** ``{{name}}``, ``{{name.attr}}``, ``{{name[0]}}``, ``{{name['key']}}`` and chains
  of those are replaced by the value they name in the notebook. ``{{_error}}`` is the last
  exception with its traceback. Nothing else in the cell changes: code with braces, f-strings,
  LaTeX, JSON and Jinja tags pass through byte for byte (a template's own ``{{ user.name }}`` is
  a reference too: send templates with interpolation off). References are resolved with
  ``getattr`` and ``[]`` only (never ``eval``), and attributes starting with ``_`` are refused,
  so a prompt cannot call code beyond what reading an attribute or an item does.
* **Values as text.** Strings as they are, lists/tuples/dicts/sets as JSON, numbers by ``repr``,
  anything else by ``repr``; long values are cut with a marker that names the budget.
* **DataFrames and Series** as a delimited block: shape, dtypes, missing counts and as many rows as
  fit a token budget (head and tail, or a seeded sample), in CSV or Markdown.
* **Attachments**: images, PDFs and text files checked here (type from magic bytes, size, pages)
  so that nothing doomed is ever sent.

Budgets are in tokens, estimated locally by :func:`estimate_tokens` (no offline tokenizer exists
for current Claude models). This module never imports pandas: DataFrames are recognised by their
type's module and name, and handled through their own methods.
"""

from __future__ import annotations

import base64
import csv
import difflib
import io
import itertools
import json
import keyword
import math
import os
import random
import re
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from .errors import ClaudeError
from .media import sniff_image

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_DF_BUDGET",
    "DEFAULT_VALUE_BUDGET",
    "DfFormat",
    "PromptError",
    "build_user_content",
    "dataframe_block",
    "dataframe_text",
    "estimate_tokens",
    "file_block",
    "find_last_error",
    "format_error",
    "image_block",
    "interpolate_text",
    "pdf_block",
    "render_value",
    "resolve_reference",
    "substitute_references",
    "template_references",
]

DfFormat = Literal["csv", "markdown"]
ContentBlock = dict[str, Any]

#: Average characters per token assumed by :func:`estimate_tokens`.
CHARS_PER_TOKEN = 3.5
DEFAULT_VALUE_BUDGET = 8000
DEFAULT_DF_BUDGET = 4000

# Where users raise each budget; named in the markers so the fix is one copy-paste away.
_VALUE_BUDGET_HINT = "raise ClaudeMagics.value_token_budget"
_DF_BUDGET_HINT = "raise ClaudeMagics.df_token_budget"

_MB = 1024 * 1024
# The API measures the image's base64 text against 5 MB ("image.source.base64: image exceeds
# 5 MB maximum: N bytes > 5242880 bytes"), so a 4 MB PNG is already too big.
_IMAGE_MAX_ENCODED = 5 * _MB
# A request is at most 32 MB, and a PDF travels inside it as base64.
_PDF_MAX_ENCODED = 32 * _MB
_PDF_MAX_PAGES = 100
_TEXT_MAX_BYTES = 32 * _MB
_TITLE_MAX = 500  # RequestDocumentBlock.title: maxLength 500 in the API spec


class PromptError(ClaudeError, ValueError):
    """The cell cannot be turned into a prompt: a bad reference, or an attachment the API would
    refuse. The message is one line saying what is wrong; the magic shows it as a UsageError."""


# --------------------------------------------------------------------------------------------
# Token estimate and cutting


def estimate_tokens(text: str) -> int:
    """Estimate how many tokens ``text`` is: ``ceil(len(text) / 3.5)``.

    Only an estimate, made locally without a tokenizer: English prose runs near 4 characters a
    token, code, numbers and CSV nearer 3, and newer models (4.7 on) count about 30% more.
    Use ``POST /v1/messages/count_tokens`` for a figure from the API.
    """
    return -(-2 * len(text) // 7)  # ceil(n / 3.5) in integers: no float rounding surprises


def _chars_for(tokens: int) -> int:
    """The number of characters that :func:`estimate_tokens` counts as ``tokens``."""
    return max(tokens, 0) * 7 // 2


def _cut(text: str, budget: int, hint: str, *, keep_tail: bool = False) -> str:
    """``text`` if it fits ``budget`` tokens, else its start (or start and end) and a marker."""
    limit = _chars_for(budget)
    if len(text) <= limit:
        return text
    note = f"; budget {budget:,} tokens — {hint}]"
    if keep_tail:
        # Tracebacks: the first frames say where it started, the last ones what failed.
        head = limit // 3
        tail = limit - head
        omitted = len(text) - limit
        middle = f"\n… [cut: {omitted:,} characters here{note}\n"
        return text[:head] + middle + (text[-tail:] if tail else "")
    return f"{text[:limit]}… [cut: {len(text) - limit:,} more characters{note}"


# --------------------------------------------------------------------------------------------
# References: {{name}}, {{name.attr}}, {{name[0]}}, {{name['key']}} and chains of them

_IDENT = r"[^\W\d]\w*"
_KEY = r"""\[(?:-?[0-9]+|'[^'\\\n]*'|"[^"\\\n]*")\]"""
# Exactly two braces on each side: ``{{{x}}}`` (an f-string brace around ``{x}``, or a
# Handlebars raw block) is left alone. Only spaces and tabs may pad the reference.
_REFERENCE = re.compile(
    rf"(?<!\{{)\{{\{{[ \t]*(?P<ref>(?P<head>{_IDENT})(?:\.{_IDENT}|{_KEY})*)[ \t]*\}}\}}(?!\}})"
)
_STEP = re.compile(
    rf"""\.(?P<attr>{_IDENT})|\[(?:(?P<int>-?[0-9]+)|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)")\]"""
)
_HEAD = re.compile(_IDENT)
# Underscore names IPython itself defines: _ __ ___ (last outputs), _N (output N), _i _ii _iii
# and _iN (inputs). ``_error`` is ours and comes from the ``last_error`` argument.
_IPYTHON_NAME = re.compile(r"_{1,3}|_[0-9]+|_i{1,3}|_i[0-9]+")
_ERROR_NAME = "_error"


def _parse_reference(ref: str) -> tuple[str, list[str | int]]:
    """Split ``a.b[0]['c']`` into ``"a"`` and its steps ``[".b", 0, "[c"]``: an attribute is
    ``"." + name``, an integer key an int, a string key ``"[" + key``."""
    head = _HEAD.match(ref)
    assert head is not None  # _REFERENCE only matches references that start with a name
    steps: list[str | int] = []
    pos = head.end()
    while pos < len(ref):
        step = _STEP.match(ref, pos)
        assert step is not None
        if step["attr"] is not None:
            steps.append("." + step["attr"])
        elif step["int"] is not None:
            steps.append(int(step["int"]))
        else:
            steps.append("[" + (step["sq"] if step["sq"] is not None else step["dq"]))
        pos = step.end()
    return head.group(), steps


def _suggest(word: str, candidates: Iterable[Any]) -> str:
    """ " (did you mean 'df'?)" for the closest public name among ``candidates``, else ""."""
    names = [c for c in itertools.islice(candidates, 10_000) if isinstance(c, str)]
    match = difflib.get_close_matches(word, [n for n in names if not n.startswith("_")], n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _resolve(ref: str, namespace: Mapping[str, Any], last_error: BaseException | None) -> Any:
    """The value ``ref`` names: a namespace lookup, then getattr/getitem steps, nothing else."""
    label = "{{" + ref + "}}"
    name, steps = _parse_reference(ref)
    if name == _ERROR_NAME:
        if last_error is None:
            raise PromptError(f"{label}: there is no error to show; nothing has failed yet")
        value: Any = last_error
    elif name.startswith("_") and not _IPYTHON_NAME.fullmatch(name):
        raise PromptError(
            f"{label}: names starting with '_' are private; only _error and IPython's "
            "_, __, ___, _N and _iN can be referenced"
        )
    elif name in namespace:
        value = namespace[name]
    else:
        hint = _suggest(name, namespace)
        raise PromptError(f"{label}: no variable named {name!r} in the notebook{hint}")

    path = name
    for step in steps:
        if isinstance(step, str) and step.startswith("."):
            value = _get_attribute(value, step[1:], path, label)
            path += step
        else:
            key: int | str = step if isinstance(step, int) else step[1:]
            value = _get_item(value, key, path, label)
            path += f"[{key!r}]"
    return value


def _get_attribute(value: Any, attr: str, path: str, label: str) -> Any:
    if attr.startswith("_"):
        raise PromptError(f"{label}: attributes starting with '_' cannot be referenced ({attr})")
    try:
        return getattr(value, attr)
    except AttributeError:
        hint = _suggest(attr, dir(value))
        kind = type(value).__name__
        raise PromptError(f"{label}: {path} ({kind}) has no attribute {attr!r}{hint}") from None
    except Exception as exc:  # a property that raised: report it, as a one-line error
        raise PromptError(
            f"{label}: reading {path}.{attr} raised {type(exc).__name__}: {exc}"
        ) from exc


def _get_item(value: Any, key: int | str, path: str, label: str) -> Any:
    kind = type(value).__name__
    try:
        return value[key]
    except KeyError:
        hint = ""
        if isinstance(key, str) and isinstance(value, Mapping):
            hint = _suggest(key, value)
        elif isinstance(key, str) and _pandas_kind(value) == "DataFrame":
            hint = _suggest(key, value.columns)
        raise PromptError(f"{label}: {path} ({kind}) has no key {key!r}{hint}") from None
    except IndexError:
        size = _length(value)
        raise PromptError(
            f"{label}: index {key} is out of range for {path} ({kind}{size})"
        ) from None
    except TypeError as exc:
        raise PromptError(
            f"{label}: {path} ({kind}) cannot be indexed with {key!r}: {exc}"
        ) from exc
    except Exception as exc:
        raise PromptError(
            f"{label}: reading {path}[{key!r}] raised {type(exc).__name__}: {exc}"
        ) from exc


def _length(value: Any) -> str:
    try:
        return f" of length {len(value)}"
    except Exception:
        return ""


def interpolate_text(
    text: str,
    namespace: Mapping[str, Any],
    *,
    value_budget: int = DEFAULT_VALUE_BUDGET,
    df_budget: int = DEFAULT_DF_BUDGET,
    df_format: DfFormat = "csv",
    sample: bool = False,
    seed: int = 0,
    last_error: BaseException | None = None,
) -> str:
    """Replace each ``{{reference}}`` in ``text`` by the text of the value it names.

    A reference is a name followed by any number of ``.attr``, ``[int]``, ``['str']`` or
    ``["str"]`` steps, inside exactly two braces, optionally padded with spaces or tabs; a
    Python keyword (``{{ and }}``, ``{{None}}``) is never a name. Everything else is returned
    byte for byte, and inserted values are not scanned again. ``{{_error}}`` renders
    ``last_error`` (see :func:`format_error`). Raises :class:`PromptError` naming the first
    reference that fails.
    """
    rendered: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        ref = match["ref"]
        if keyword.iskeyword(match["head"]):
            # No variable can be called ``and`` or ``None``: ``f"{{ and }}"`` is just text.
            return match.group()
        if ref not in rendered:
            value = _resolve(ref, namespace, last_error)
            if ref == _ERROR_NAME:
                rendered[ref] = _cut(
                    format_error(value), value_budget, _VALUE_BUDGET_HINT, keep_tail=True
                )
            else:
                rendered[ref] = render_value(
                    value,
                    name=ref,
                    budget=value_budget,
                    df_budget=df_budget,
                    df_format=df_format,
                    sample=sample,
                    seed=seed,
                )
        return rendered[ref]

    return _REFERENCE.sub(replace, text)


def template_references(text: str) -> list[str]:
    """The distinct ``{{references}}`` of ``text`` in order of first appearance, written as in
    the text without padding (``"review"``, ``"meta['title']"``); keywords are not references.

    The grammar is :func:`interpolate_text`'s, so a row template (``df.claude.map``) reads
    exactly like a ``%%claude`` cell.
    """
    seen: dict[str, None] = {}
    for match in _REFERENCE.finditer(text):
        if not keyword.iskeyword(match["head"]):
            seen.setdefault(match["ref"], None)
    return list(seen)


def substitute_references(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with each ``{{reference}}`` replaced by ``replace(reference)``; everything else,
    braces included, byte for byte (the rules of :func:`interpolate_text`)."""

    def sub(match: re.Match[str]) -> str:
        if keyword.iskeyword(match["head"]):
            return match.group()
        return replace(match["ref"])

    return _REFERENCE.sub(sub, text)


def resolve_reference(ref: str, namespace: Mapping[str, Any]) -> Any:
    """The value ``ref`` (as :func:`template_references` gives it) names in ``namespace``:
    getattr and ``[]`` steps only, never ``eval``. Raises :class:`PromptError` naming it."""
    return _resolve(ref, namespace, None)


# --------------------------------------------------------------------------------------------
# Values as text


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if _is_numpy_scalar(obj):
        return obj.item()
    return str(obj)


def _is_numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and getattr(value, "shape", None) == ()


def render_value(
    value: Any,
    *,
    name: str | None = None,
    budget: int = DEFAULT_VALUE_BUDGET,
    df_budget: int = DEFAULT_DF_BUDGET,
    df_format: DfFormat = "csv",
    sample: bool = False,
    seed: int = 0,
) -> str:
    """The text Claude sees for ``value``, at most about ``budget`` tokens.

    Strings as they are; lists, tuples, dicts and sets as one-line JSON (``str`` for what JSON
    cannot hold); numbers and everything else by ``repr``. A pandas DataFrame or Series becomes
    a :func:`dataframe_text` block of at most ``df_budget`` tokens. Longer text is cut with a
    marker saying how much was left out and which budget to raise.
    """
    if _pandas_kind(value) is not None:
        return dataframe_text(
            value, name, budget=df_budget, df_format=df_format, sample=sample, seed=seed
        )
    label = "{{" + name + "}}" if name else "the value"
    try:
        if isinstance(value, str):
            text = value
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            text = _to_json(value)
        elif _is_numpy_scalar(value):
            text = repr(value.item())  # 3.5, not np.float64(3.5)
        else:
            text = repr(value)  # numbers too: repr is exact where str may not be
    except Exception as exc:  # a broken __repr__ is the object's bug; name it, don't crash
        raise PromptError(
            f"{label}: could not turn it into text: {type(exc).__name__}: {exc}"
        ) from exc
    return _cut(text, budget, _VALUE_BUDGET_HINT)


def _to_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):
        # Keys JSON cannot hold (tuples) or a container that contains itself: repr copes.
        return repr(value)


def find_last_error() -> BaseException | None:
    """The last exception the notebook showed, or None.

    IPython stores it in ``sys.last_value`` (and ``sys.last_exc`` on Python 3.12+) each time it
    prints a traceback; the plain Python REPL does the same. Pass the result to
    :func:`build_user_content` as ``last_error`` so that ``{{_error}}`` can show it.
    """
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return exc if isinstance(exc, BaseException) else None


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def _skip_ipython_frames(tb: TracebackType | None) -> TracebackType | None:
    # IPython's run_code frame (``exec(code_obj, ...)``) sits above every cell's frames; IPython
    # hides it when it prints the traceback, and so do we.
    marker = os.path.join("IPython", "core", "interactiveshell.py")
    while tb is not None and tb.tb_frame.f_code.co_filename.endswith(marker):
        tb = tb.tb_next
    return tb


def format_error(exc: BaseException) -> str:
    """An exception as plain text: its traceback (chained causes included), then its type and
    message, without IPython's own frames or ANSI colour codes."""
    lines = traceback.format_exception(type(exc), exc, _skip_ipython_frames(exc.__traceback__))
    return _ANSI.sub("", "".join(lines)).rstrip("\n")


# --------------------------------------------------------------------------------------------
# DataFrames and Series


def _pandas_kind(value: Any) -> Literal["DataFrame", "Series"] | None:
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


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _check_df_format(df_format: str) -> None:
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
        return f"… {_plural(omitted, 'row')} omitted …\n"

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
    _check_df_format(df_format)
    kind = _pandas_kind(value)
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
    room = _chars_for(budget) - len(preamble) - len(table_header) - len(closing) - 250
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
            f"\n{_plural(cut_cells, 'cell')} longer than {max_cell_chars:,} characters "
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
        f"{_plural(len(omitted), 'column')} not shown (positions {omitted[0]}-{omitted[-1]}; "
        f"{kinds}): {', '.join(names)}{more}"
    )


def _head_tail_note(shown: int, total: int, budget: int) -> str:
    if total == 0:
        return "no rows: the frame is empty."
    if shown == total:
        return f"all {_plural(total, 'row')} shown."
    if shown == 0:
        return (
            f"no rows shown of {total:,}: the budget of {budget:,} tokens is too small "
            f"({_DF_BUDGET_HINT})."
        )
    head, tail = (shown + 1) // 2, shown // 2
    parts = ("row " if shown == 1 else "rows ") + _span(0, head - 1)
    if tail:
        parts += f" and {_span(total - tail, total - 1)}"
    return (
        f"{parts} of {total:,} shown; {_plural(total - shown, 'row')} omitted "
        f"(budget {budget:,} tokens — {_DF_BUDGET_HINT})."
    )


def _sample_note(shown: int, total: int, seed: int, budget: int) -> str:
    if total == 0:
        return "no rows: the frame is empty."
    if shown == total:
        return f"all {_plural(total, 'row')} shown (sampling left nothing out)."
    return (
        f"a random sample of {shown:,} of {total:,} rows (seed {seed}), shown in their original "
        f"order; {_plural(total - shown, 'row')} omitted (budget {budget:,} tokens — "
        f"{_DF_BUDGET_HINT})."
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
    if _pandas_kind(value) is None:
        label = name or "the value"
        raise PromptError(f"{label} is a {type(value).__name__}, not a pandas DataFrame or Series")
    text = dataframe_text(value, name, budget=budget, df_format=df_format, sample=sample, seed=seed)
    return {"type": "text", "text": text}


# --------------------------------------------------------------------------------------------
# Attachments


def _read_file(path: str | os.PathLike[str]) -> tuple[Path, bytes]:
    resolved = Path(path).expanduser()
    try:
        return resolved, resolved.read_bytes()
    except FileNotFoundError:
        raise PromptError(f"no such file: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise PromptError(f"{os.fspath(path)} is a directory, not a file") from None
    except OSError as exc:
        raise PromptError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None


def _is_pdf(data: bytes) -> bool:
    # Readers accept the header anywhere in the first 1024 bytes (some writers put junk first).
    return b"%PDF-" in data[:1024]


def _mb(size: int) -> str:
    # Rounded up, so that an over-limit size never prints as the limit itself ("5.0 MB > 5 MB").
    return f"{math.ceil(size / _MB * 10) / 10:.1f} MB"


def _encoded_size(size: int) -> int:
    return 4 * -(-size // 3)


def _check_encoded_size(data: bytes, label: str, limit: int, what: str) -> None:
    encoded = _encoded_size(len(data))
    if encoded > limit:
        raise PromptError(
            f"{label} is {_mb(len(data))}, {_mb(encoded)} once base64-encoded; the API accepts "
            f"{what} up to {limit // _MB} MB encoded (about {limit * 3 / 4 / _MB:.3g} MB of "
            "raw bytes)"
        )


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_block(value: Any) -> ContentBlock:
    """An image content block from a path, PNG/JPEG/GIF/WebP bytes, a PIL image or a matplotlib
    figure (saved as PNG; ``bbox_inches="tight"`` for figures).

    The media type comes from the bytes' magic number, not the file name. Raises
    :class:`PromptError` for a missing file, another format, or more than the API's 5 MB.
    """
    label = "the image"
    if isinstance(value, (str, os.PathLike)):
        _, data = _read_file(value)
        label = str(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif hasattr(value, "savefig"):  # a matplotlib Figure (duck-typed: no matplotlib import)
        buffer = io.BytesIO()
        value.savefig(buffer, format="png", bbox_inches="tight")
        data = buffer.getvalue()
    elif all(hasattr(value, a) for a in ("save", "mode", "size")):  # a PIL Image, not any .save
        buffer = io.BytesIO()
        try:
            value.save(buffer, format="PNG")
        except (OSError, ValueError, KeyError) as exc:
            raise PromptError(f"cannot save the {type(value).__name__} as PNG: {exc}") from exc
        data = buffer.getvalue()
    else:
        raise PromptError(
            f"cannot make an image from a {type(value).__name__}: pass a path, PNG/JPEG/GIF/WebP "
            "bytes, a PIL image or a matplotlib figure"
        )
    media_type = sniff_image(data)
    if media_type is None:
        extra = "; it is a PDF: attach it with --pdf" if _is_pdf(data) else ""
        raise PromptError(
            f"{label} is not a PNG, JPEG, GIF or WebP image (judged by its first bytes, not its "
            f"name){extra}"
        )
    _check_encoded_size(data, label, _IMAGE_MAX_ENCODED, "images")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": _base64(data)},
    }


_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_PDF_COUNT = re.compile(rb"/Count\s+(\d+)")


def _pdf_pages(data: bytes) -> int | None:
    """About how many pages a PDF has, or None when it cannot be told.

    Approximate: counts ``/Type /Page`` objects (not ``/Pages``). Page objects packed into
    compressed object streams are invisible to this scan, in which case the largest ``/Count``
    of the page tree is used; old page objects kept by incremental updates can overcount.
    """
    pages = len(_PDF_PAGE.findall(data))
    if pages:
        return pages
    counts = [int(c) for c in _PDF_COUNT.findall(data)]
    return max(counts) if counts else None


def _title(path: Path | None) -> dict[str, str]:
    return {"title": path.name[:_TITLE_MAX]} if path is not None and path.name else {}


def pdf_block(value: str | os.PathLike[str] | bytes) -> ContentBlock:
    """A PDF document content block from a path or bytes, titled with the file name if known.

    Checks the ``%PDF-`` header, the 32 MB request limit (base64-encoded) and the API's
    100-page limit (pages counted approximately) and raises :class:`PromptError` if one fails.
    """
    path: Path | None = None
    if isinstance(value, (str, os.PathLike)):
        path, data = _read_file(value)
        label = str(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data, label = bytes(value), "the PDF"
    else:
        raise PromptError(f"cannot attach a {type(value).__name__} as a PDF: pass a path or bytes")
    if not _is_pdf(data):
        extra = "; it is an image: attach it with --image" if sniff_image(data) else ""
        raise PromptError(f"{label} is not a PDF (no %PDF- header){extra}")
    _check_encoded_size(data, label, _PDF_MAX_ENCODED, "PDFs")
    pages = _pdf_pages(data)
    if pages is not None and pages > _PDF_MAX_PAGES:
        raise PromptError(
            f"{label} has about {pages:,} pages; the API accepts at most {_PDF_MAX_PAGES} pages "
            "per PDF: attach the pages you need as a smaller PDF"
        )
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": _base64(data)},
        **_title(path),
    }


def file_block(path: str | os.PathLike[str]) -> ContentBlock:
    """A plain-text document content block from a UTF-8 text file, titled with its name.

    Raises :class:`PromptError` for a missing, empty, binary or non-UTF-8 file, pointing PDFs
    and images to ``--pdf`` and ``--image``.
    """
    resolved, data = _read_file(path)
    label = os.fspath(path)
    if _is_pdf(data):
        raise PromptError(f"{label} is a PDF, not a text file: attach it with --pdf")
    if sniff_image(data):
        raise PromptError(f"{label} is an image, not a text file: attach it with --image")
    if len(data) > _TEXT_MAX_BYTES:
        raise PromptError(f"{label} is {_mb(len(data))}; a request can hold at most 32 MB")
    try:
        if b"\x00" in data[:8192]:  # NUL bytes: binary, even where they happen to decode
            raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), 0, "NUL byte")
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptError(
            f"{label} is not UTF-8 text (binary data at byte {exc.start:,}): attach PDFs with "
            "--pdf and images with --image"
        ) from None
    if not text.strip():
        raise PromptError(f"{label} is empty")
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": text},
        **_title(resolved),
    }


# --------------------------------------------------------------------------------------------
# The user turn

_ATTACHMENT_TYPES = ("image", "document", "text")


def build_user_content(
    cell_text: str,
    namespace: Mapping[str, Any],
    *,
    interpolate: bool = True,
    value_budget: int = DEFAULT_VALUE_BUDGET,
    df_budget: int = DEFAULT_DF_BUDGET,
    df_format: DfFormat = "csv",
    sample: bool = False,
    seed: int = 0,
    last_error: BaseException | None = None,
    attachments: Sequence[ContentBlock] = (),
) -> list[ContentBlock]:
    """The content blocks of the user turn for a cell.

    ``attachments`` (from :func:`image_block`, :func:`pdf_block`, :func:`file_block`,
    :func:`dataframe_block`) come first, in the order given, then one text block with the
    cell's text, its ``{{references}}`` filled in unless ``interpolate`` is false (Anthropic
    recommends documents and images before the question). A whitespace-only cell adds no text
    block (the API rejects one). Raises :class:`PromptError` for a bad reference, or when
    there is nothing to send.
    """
    _check_df_format(df_format)
    blocks: list[ContentBlock] = []
    for block in attachments:
        if not isinstance(block, Mapping) or block.get("type") not in _ATTACHMENT_TYPES:
            raise PromptError(f"not a content block: {block!r:.80}")
        blocks.append(dict(block))
    text = cell_text
    if interpolate:
        text = interpolate_text(
            cell_text,
            namespace,
            value_budget=value_budget,
            df_budget=df_budget,
            df_format=df_format,
            sample=sample,
            seed=seed,
            last_error=last_error,
        )
    if text.strip():
        blocks.append({"type": "text", "text": text})
    if not blocks:
        raise PromptError("nothing to send: the cell is empty")
    return blocks
